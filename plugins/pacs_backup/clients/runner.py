"""The one way this project runs a program: argument tuples, no shell, a timeout, secrets masked."""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from pacs_backup.contracts.errors import BackupError
from pacs_backup.contracts.redact import mask_url_credentials

log = logging.getLogger(__name__)


class CommandError(BackupError):
    """A program could not be run, or did not finish in time."""


@dataclass(frozen=True)
class Completed:
    """Outcome of one run. ``stderr`` is already masked."""

    argv: tuple[str, ...]
    returncode: int
    stdout: bytes
    stderr: str
    duration_s: float


def mask(text: str, secrets: Iterable[str]) -> str:
    """Replace every secret (of 4 characters or more), and any password inside an address, with ``***``."""
    text = mask_url_credentials(text)
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "***")
    return text


def run(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_s: float,
    secrets: Iterable[str] = (),
    stdin: bytes | None = None,
    cwd: str | None = None,
) -> Completed:
    """Run ``argv`` (no shell) with exactly ``env`` and wait at most ``timeout_s``.

    Args:
        argv: program and arguments; never joined into a shell string.
        env: the complete environment of the child (nothing is inherited implicitly).
        timeout_s: the child is killed after this many seconds.
        secrets: values to mask in logs and in the returned stderr.
        stdin: bytes to feed to the child, if any.
    Returns:
        :class:`Completed`, whatever the exit code (callers map codes to errors).
    Raises:
        CommandError: the program is missing or timed out.
    """
    secrets = tuple(secrets)
    shown = mask(" ".join(argv), secrets)
    log.debug("running %s", shown)
    started = time.monotonic()
    try:
        proc = subprocess.run(
            tuple(argv), env=dict(env), input=stdin, capture_output=True, timeout=timeout_s, cwd=cwd, check=False
        )
    except FileNotFoundError:
        raise CommandError(f"The program {argv[0]} is not installed.") from None
    except subprocess.TimeoutExpired:
        raise CommandError(f"{shown} did not finish within {timeout_s:.0f} s and was stopped.") from None
    stderr = mask(proc.stderr.decode("utf-8", "replace"), secrets)
    return Completed(tuple(argv), proc.returncode, proc.stdout, stderr, time.monotonic() - started)


def stream(
    argv: Sequence[str],
    *,
    env: Mapping[str, str],
    timeout_s: float,
    on_line: Callable[[bytes], None],
    secrets: Iterable[str] = (),
) -> Completed:
    """Like :func:`run`, but hand each line of standard output to ``on_line`` as the program writes it.

    Lets a caller act on a long run's progress (restic's per-file messages) instead of waiting for its
    end. ``on_line`` runs in the calling thread; if it raises, the program is stopped and the error
    propagates. The returned ``stdout`` is empty (every line went to ``on_line``).
    """
    secrets = tuple(secrets)
    shown = mask(" ".join(argv), secrets)
    log.debug("running %s (streaming)", shown)
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            tuple(argv), env=dict(env), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except FileNotFoundError:
        raise CommandError(f"The program {argv[0]} is not installed.") from None
    out, err = proc.stdout, proc.stderr
    if out is None or err is None:  # cannot happen with PIPE; keeps the types exact
        raise CommandError(f"{shown} could not be started with its output captured.")
    err_chunks: list[bytes] = []
    # stderr is drained on its own so a chatty program never blocks on a full pipe.
    drain = threading.Thread(target=lambda: err_chunks.append(err.read()), daemon=True)
    drain.start()
    timer = threading.Timer(timeout_s, proc.kill)
    timer.start()
    try:
        for line in out:
            on_line(line)
        proc.wait()
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    finally:
        timer.cancel()
        drain.join(5)
        out.close()
        err.close()
    elapsed = time.monotonic() - started
    if proc.returncode < 0 and elapsed >= timeout_s:
        raise CommandError(f"{shown} did not finish within {timeout_s:.0f} s and was stopped.")
    stderr = mask(b"".join(err_chunks).decode("utf-8", "replace"), secrets)
    return Completed(tuple(argv), proc.returncode, b"", stderr, elapsed)
