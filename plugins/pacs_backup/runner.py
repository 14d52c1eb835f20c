"""The one way this project runs a program: argument tuples, no shell, a timeout, secrets masked."""

from __future__ import annotations

import logging
import subprocess
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .errors import BackupError
from .redact import mask_url_credentials

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
