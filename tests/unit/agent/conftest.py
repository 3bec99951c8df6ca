from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from .agent_harness import Agent, running_agent


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="module")
async def agent() -> AsyncIterator[Agent]:
    """One agent per test module (kernel starts dominate the run time)."""
    async with running_agent() as a:
        yield a
