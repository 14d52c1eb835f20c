"""Reading one environment variable: trimmed text, a secret (or its ``_FILE``), yes/no, a number in range.

Secrets may also come from ``<NAME>_FILE`` (a path whose content is the secret), the usual form with
Docker secrets. A bad value raises :class:`ConfigError` whose message names the variable.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypeVar

from pacs_backup.contracts.errors import ConfigError

T = TypeVar("T")


def raw(env: Mapping[str, str], name: str) -> str | None:
    """The value of ``name`` without surrounding blanks; None when it is unset or blank."""
    value = env.get(name)
    return value.strip() if value is not None and value.strip() != "" else None


def secret(env: Mapping[str, str], name: str, required: bool = True) -> str | None:
    """Read secret ``name`` from the environment, or from the file named by ``<name>_FILE``.

    Raises:
        ConfigError: both or neither are set (when required), or the file cannot be read or is empty.
    """
    direct, path = raw(env, name), raw(env, name + "_FILE")
    if direct is not None and path is not None:
        raise ConfigError(f"{name} and {name}_FILE are both set; set only one of them.")
    if path is not None:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"{name}_FILE={path} cannot be read ({exc.strerror}).") from None
        if not value:
            raise ConfigError(f"{name}_FILE={path} is empty; put the secret in that file.")
        return value
    if direct is None and required:
        raise ConfigError(f"{name} is not set; set it (or {name}_FILE) to the secret.")
    return direct


def parse_bool(name: str, value: str) -> bool:
    """Parse a yes/no value; raises ConfigError naming ``name`` otherwise."""
    low = value.lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name}={value!r} is not a yes/no value; use true or false.")


def parse_number(name: str, value: str, cast: Callable[[str], T], low: float, high: float) -> T:
    """``cast(value)`` when it is a number from ``low`` to ``high``; ConfigError naming ``name`` otherwise."""
    try:
        number = cast(value)
    except ValueError:
        raise ConfigError(f"{name}={value!r} is not a number; use a value from {low} to {high}.") from None
    if not low <= float(number) <= high:  # type: ignore[arg-type]
        raise ConfigError(f"{name}={value!r} is out of range; use a value from {low} to {high}.")
    return number


def number(env: Mapping[str, str], name: str, default: float, low: float, high: float) -> float:
    """The number in ``name`` from ``low`` to ``high`` (``default`` when unset); ConfigError naming it otherwise."""
    value = raw(env, name)
    return default if value is None else parse_number(name, value, float, low, high)


def optional_number(env: Mapping[str, str], name: str) -> float | None:
    """A positive number read from ``name`` (e.g. a quota in GB), or None when it is unset."""
    value = raw(env, name)
    return None if value is None else parse_number(name, value, float, 0.001, 10_000_000)


def parse_duration(name: str, value: str) -> str:
    """A duration as restic takes it (``30s``, ``2m``, ``1h``); ConfigError naming ``name`` otherwise."""
    if not (value[:-1].isdigit() and value[-1] in "smh"):
        raise ConfigError(f"{name}={value!r} is not a duration; use e.g. 30s, 2m or 1h.")
    return value
