"""Exit codes of the technician scripts (``pacs_backup.cli``, ``store_setup``), and the one place where an
error becomes its sentence on stderr and its exit code: never a traceback."""

from __future__ import annotations

import sys
from collections.abc import Callable

from .errors import BackupError, ConfigError, NotFound, SourceError, StoreUnavailable
from .restic import RepositoryUnreachable

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_UNREACHABLE, EXIT_NOT_FOUND = 0, 1, 2, 3, 4

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
        print(f"error: {exc}", file=sys.stderr)
        return exc.code
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print(f"\n{interrupted}", file=sys.stderr)
        return EXIT_FAILED
