"""Pool sizing and refill policy (server/pool_policy.py): pure functions, no server."""

from __future__ import annotations

import pytest

from nullspace.server.pool_policy import (
    FAST_WARMING_CPU,
    WARMING_CPU,
    Demand,
    PoolBounds,
    refill_plan,
    target,
)


def test_bounds_parse() -> None:
    assert PoolBounds.parse("3") == PoolBounds(3, 3)
    assert PoolBounds.parse("2:8") == PoolBounds(2, 8)
    assert str(PoolBounds(2, 8)) == "2:8" and str(PoolBounds(4, 4)) == "4"
    for bad in ("", "x", "3:", ":3", "8:2", "-1", "2:x"):
        with pytest.raises(ValueError):
            PoolBounds.parse(bad)


def test_target_follows_rate_within_bounds() -> None:
    bounds = PoolBounds(2, 8)
    assert target(bounds, rate=0.0, boot_seconds=1.0) == 2          # idle: the floor
    assert target(bounds, rate=3.0, boot_seconds=1.0) == 5          # 3/s × 1 s × 1.5 headroom
    assert target(bounds, rate=100.0, boot_seconds=1.0) == 8        # never above the ceiling
    assert target(PoolBounds(0, 0), rate=100.0, boot_seconds=1.0) == 0


def test_demand_window_decays() -> None:
    demand = Demand(window=10.0)
    for i in range(30):
        demand.record(100.0 + i * 0.1)                # 30 claims in 3 s
    assert demand.rate(103.0) == pytest.approx(30 / 5.0)   # a new stream counts over MIN_SPAN
    assert demand.rate(109.9) == pytest.approx(30 / 9.9)
    assert demand.rate(120.0) == 0.0                   # all older than the window
    single = Demand(window=10.0)
    single.record(0.0)
    assert single.rate(0.01) == pytest.approx(0.2)     # one claim is not a stream
    demand.observe_boot(2.0)
    assert 1.0 < demand.boot_seconds < 2.0             # moves toward what was measured


def test_refill_backs_off_when_sandboxes_need_the_cpu() -> None:
    idle = refill_plan(host_cores=2, busy_cores=0.1)
    assert idle.parallel == 2 and idle.cpu == FAST_WARMING_CPU
    half = refill_plan(host_cores=2, busy_cores=1.0)
    assert half.parallel == 1 and half.cpu == FAST_WARMING_CPU
    busy = refill_plan(host_cores=2, busy_cores=1.9)
    assert busy.parallel == 1 and busy.cpu == WARMING_CPU
