"""How big a warm pool should be and how fast to refill it: pure policy, no I/O.

A pool follows demand within the operator's bounds (`--pool TEMPLATE=MIN:MAX`). Its target is
the number of claims expected while one refill runs (Little's law: claim rate × warm-start
time), with headroom, never below MIN nor above MAX. Refills go faster (two at a time, a whole
core each) when the running sandboxes leave the host's cores idle, and back off to one at a
time on half a core when they need the CPU.
"""

from __future__ import annotations

import collections
import math
from dataclasses import dataclass

WINDOW = 15.0
"""Seconds of claims the rate is computed over; after a burst the target decays back to MIN."""
MIN_SPAN = 5.0
"""A rate is never computed over less than this: one claim is not a stream of them."""
HEADROOM = 1.5
"""Claims arrive in bursts: keep half again what the average rate needs."""
WARMING_CPU = 0.5
"""Cores a warming sandbox gets when running sandboxes need the CPU."""
FAST_WARMING_CPU = 1.0
"""Cores a warming sandbox gets when the host has cores to spare."""
DEFAULT_BOOT_SECONDS = 1.0
"""A first guess at a warm start's duration (agent, kernel, preload), until one is measured."""


@dataclass(frozen=True)
class PoolBounds:
    """What the operator allows for one template's pool."""

    min: int
    max: int

    def __post_init__(self) -> None:
        if not 0 <= self.min <= self.max:
            raise ValueError(f"pool bounds must satisfy 0 <= MIN <= MAX, got {self.min}:{self.max}")

    @classmethod
    def parse(cls, text: str) -> PoolBounds:
        """`"N"` (a fixed size) or `"MIN:MAX"` (follows demand between the two)."""
        low, sep, high = text.partition(":")
        if not low.isdigit() or (sep and not high.isdigit()):
            raise ValueError(f"pool size must be N or MIN:MAX, got {text!r}")
        return cls(int(low), int(high) if sep else int(low))

    def __str__(self) -> str:
        return str(self.min) if self.min == self.max else f"{self.min}:{self.max}"


@dataclass(frozen=True)
class RefillPlan:
    parallel: int
    cpu: float


class Demand:
    """Claims of one template (hits and misses alike) in a sliding window, and the measured
    duration of a warm start."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._claims: collections.deque[float] = collections.deque()
        self.boot_seconds = DEFAULT_BOOT_SECONDS

    def record(self, now: float) -> None:
        self._claims.append(now)
        self._forget(now)

    def observe_boot(self, seconds: float) -> None:
        self.boot_seconds = 0.7 * self.boot_seconds + 0.3 * seconds  # EWMA: recent starts count most

    def rate(self, now: float) -> float:
        """Claims per second over the window (or since the oldest claim in it, so that a stream
        that just began counts at once, but over at least MIN_SPAN seconds)."""
        self._forget(now)
        if not self._claims:
            return 0.0
        span = min(self.window, max(now - self._claims[0], MIN_SPAN))
        return len(self._claims) / span

    def _forget(self, now: float) -> None:
        while self._claims and self._claims[0] < now - self.window:
            self._claims.popleft()


def target(bounds: PoolBounds, rate: float, boot_seconds: float) -> int:
    """Warm sandboxes to keep ready for `rate` claims per second."""
    needed = math.ceil(rate * boot_seconds * HEADROOM)
    return max(bounds.min, min(bounds.max, needed))


def refill_plan(host_cores: float, busy_cores: float) -> RefillPlan:
    """How many sandboxes to warm at once, and with what CPU quota each, given how many cores
    the running (claimed) sandboxes used lately."""
    spare = host_cores - busy_cores
    if spare >= 1.5:
        return RefillPlan(parallel=2, cpu=FAST_WARMING_CPU)
    if spare >= 0.75:
        return RefillPlan(parallel=1, cpu=FAST_WARMING_CPU)
    return RefillPlan(parallel=1, cpu=WARMING_CPU)
