"""Exit codes of the technician scripts (``pacs_backup.cli.main``, ``store_setup``), and the one place where an
error becomes its sentence on stderr and its exit code: never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from pacs_backup.clients.restic import RepositoryUnreachable
from pacs_backup.contracts.errors import BackupError, ConfigError, NotFound, SourceError, StoreUnavailable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

# What each code means in every script's --help (a script may add its own words for 0 and 1).
MEANINGS = {
    EXIT_OK: "done",
    EXIT_FAILED: "the job failed (the message or the summary says what failed)",
    EXIT_USAGE: "bad arguments or settings (the usage line or the message names what to fix)",
    EXIT_UNREACHABLE: "a service could not be reached (the PACS, the object store or a backup repository)",
    EXIT_NOT_FOUND: "nothing matched: a 'not found:' line names what was looked for",
}

# The first kind an error is an instance of gives its code; any other BackupError is EXIT_FAILED.
_EXIT_BY_KIND: tuple[tuple[tuple[type[BackupError], ...], int], ...] = (
    ((ConfigError,), EXIT_USAGE),
    ((SourceError, StoreUnavailable, RepositoryUnreachable), EXIT_UNREACHABLE),
    ((NotFound,), EXIT_NOT_FOUND),
)


class Fail(Exception):
    """A script stops with this exit code and sentence (raised where no domain error fits)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


def epilog(**own: str) -> str:
    """The ``exit codes:`` block of a script's --help; ``own`` replaces a meaning (``ok=``, ``failed=``)."""
    words = {
        **MEANINGS,
        **{EXIT_OK: own.get("ok", MEANINGS[EXIT_OK]), EXIT_FAILED: own.get("failed", MEANINGS[EXIT_FAILED])},
    }
    return "exit codes:\n" + "\n".join(f"  {code}  {text}" for code, text in words.items())


def _say(code: int, message: str) -> None:
    # Nothing found is an answer, not a breakdown: it gets its own word, so a person (or a script) sees which.
    print(f"{'not found' if code == EXIT_NOT_FOUND else 'error'}: {message}", file=sys.stderr)


def exit_code(exc: BackupError) -> int:
    """The exit code a script ends with for ``exc``."""
    for kinds, code in _EXIT_BY_KIND:
        if isinstance(exc, kinds):
            return code
    return EXIT_FAILED


def run_command(command: Callable[[], int], interrupted: str = "interrupted") -> int:
    """Run a script's work and return its exit code; an error prints one sentence (``error: ...``)."""
    try:
        return int(command())
    except Fail as exc:
        _say(exc.code, str(exc))
        return exc.code
    except BackupError as exc:
        _say(exit_code(exc), str(exc))
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return EXIT_FAILED
