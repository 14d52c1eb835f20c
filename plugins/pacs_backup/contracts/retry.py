"""Capped exponential backoff with jitter."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """Delay before the next attempt of a failed item.

    ``base_s * 2**(attempt-1)``, capped at ``cap_s``, then scaled by a random factor in
    ``[0.5, 1.0]`` so that many items failing together do not retry in lockstep.
    """

    base_s: float = 1.0
    cap_s: float = 300.0

    def delay(self, attempt: int, rng: random.Random | None = None) -> float:
        """Return the delay in seconds after failed attempt number ``attempt`` (1-based)."""
        attempt = max(1, attempt)
        # Bound the exponent so huge attempt counts do not overflow a float.
        raw = min(self.cap_s, self.base_s * (2 ** min(attempt - 1, 32)))
        r = rng.random() if rng is not None else random.random()  # noqa: S311 - jitter, not crypto
        return float(raw * (0.5 + 0.5 * r))
