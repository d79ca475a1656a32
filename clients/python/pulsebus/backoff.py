"""Exponential back-off with jitter, for reconnects and retried calls."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Backoff:
    """Delay before retry number `attempt` (0-based): `initial * multiplier**attempt`
    capped at `maximum`, then a uniformly random share of it between `1 - jitter` and 1
    (so many clients cut off together do not come back together)."""

    initial: float = 0.1
    maximum: float = 10.0
    multiplier: float = 2.0
    jitter: float = 0.5

    def delay(self, attempt: int) -> float:
        capped = min(self.maximum, self.initial * self.multiplier ** min(attempt, 64))
        return capped * (1.0 - self.jitter * random.random())
