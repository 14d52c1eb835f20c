"""Limits on incoming DICOM files and on previews, read from the environment.

docs/security.md ("Limits on incoming files and previews") explains each one and its default. The
received-instance screen (:mod:`dicom_guard`) refuses a file that reaches any of the first four; the
preview renderer (:mod:`preview`) answers a sentence instead of drawing past the last three. Both the
plugin and the dashboard read them (the dashboard draws previews from the bucket while the PACS is down).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .env_values import number

MB = 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Every limit with its default (each is configurable; see :func:`load_limits`)."""

    max_sequence_depth: int = 32  # BACKUP_MAX_SEQUENCE_DEPTH: sequences nested deeper are refused
    max_elements: int = 100_000  # BACKUP_MAX_ELEMENTS: data elements and items in one file, at any depth
    max_inflated_bytes: int = 512 * MB  # BACKUP_MAX_INFLATED_MB: a deflated dataset inflated past this is refused
    screen_seconds: float = 10.0  # BACKUP_SCREEN_SECONDS: checking one file's structure may take this long
    preview_max_image_bytes: int = 256 * MB  # BACKUP_PREVIEW_MAX_IMAGE_MB: declared size of the first frame
    preview_slots: int = 2  # BACKUP_PREVIEW_CONCURRENCY: previews drawn at once by one process
    preview_wait_s: float = 5.0  # BACKUP_PREVIEW_WAIT_SECONDS: how long a preview waits for a free slot


def load_limits(env: Mapping[str, str]) -> Limits:
    """Read the limits; raises ConfigError naming the first variable that is not a number in its range."""
    return Limits(
        max_sequence_depth=int(number(env, "BACKUP_MAX_SEQUENCE_DEPTH", 32, 4, 128)),
        max_elements=int(number(env, "BACKUP_MAX_ELEMENTS", 100_000, 1_000, 10_000_000)),
        max_inflated_bytes=int(number(env, "BACKUP_MAX_INFLATED_MB", 512, 1, 16_384) * MB),
        screen_seconds=number(env, "BACKUP_SCREEN_SECONDS", 10.0, 0.1, 600),
        preview_max_image_bytes=int(number(env, "BACKUP_PREVIEW_MAX_IMAGE_MB", 256, 1, 4_096) * MB),
        preview_slots=int(number(env, "BACKUP_PREVIEW_CONCURRENCY", 2, 1, 64)),
        preview_wait_s=number(env, "BACKUP_PREVIEW_WAIT_SECONDS", 5.0, 0, 120),
    )
