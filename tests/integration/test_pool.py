"""Warm pools: a claimed sandbox is the caller's alone, the pool refills, and running dry is fine."""

from __future__ import annotations

import concurrent.futures
import time

import httpx

from nullspace import Sandbox


def _pool(server) -> dict[str, int]:  # noqa: ANN001
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as c:
        return c.get("/v1/pools").json()["code-interpreter"]


def _wait_full(server, timeout: float = 60) -> dict[str, int]:  # noqa: ANN001
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = _pool(server)
        if state["ready"] == state["target"]:
            return state
        time.sleep(0.2)
    raise AssertionError(f"pool did not refill: {_pool(server)}")


def test_pooled_sandbox_carries_the_callers_settings_only(server) -> None:  # noqa: ANN001
    _wait_full(server)
    claimed_before = _pool(server)["claimed"]
    with Sandbox.create(envs={"TENANT": "first"}, metadata={"who": "first"}, memory_mb=512, timeout=60) as first:
        assert _pool(server)["claimed"] == claimed_before + 1  # it came from the pool
        first.run_code("open('/home/user/mine.txt', 'w').write('first'); leaked = 'first'")
        assert first.run_code("import os; os.environ['TENANT']").text == "first"
        assert first.get_info().metadata == {"who": "first"}
        limit = first.run_code("open('/proc/self/cgroup').read()").text
        del limit
    _wait_full(server)
    with Sandbox.create(envs={"OTHER": "second"}, timeout=60) as second:
        code = "import os\n[os.environ.get('TENANT'), os.environ.get('OTHER'), os.path.exists('/home/user/mine.txt')]"
        assert second.run_code(code).text == "[None, 'second', False]"
        assert second.run_code("leaked").error.name == "NameError"
        assert second.run_code("import subprocess; subprocess.run(['sh', '-c', 'echo $OTHER'], capture_output=True, text=True).stdout.strip()").text == "second"
        assert second.get_info().metadata == {}


def test_pool_refills_after_claims(server) -> None:  # noqa: ANN001
    full = _wait_full(server)
    with Sandbox.create(timeout=60):
        pass
    after = _wait_full(server)
    assert after["claimed"] > full["claimed"]


def test_exhausted_pool_still_serves_creates(server) -> None:  # noqa: ANN001
    target = _wait_full(server)["target"]
    count = target + 3
    with concurrent.futures.ThreadPoolExecutor(count) as ex:
        sandboxes = list(ex.map(lambda _: Sandbox.create(timeout=60), range(count)))
    try:
        answers = [sb.run_code("1 + 1").text for sb in sandboxes]
        assert answers == ["2"] * count
        assert len({sb.sandbox_id for sb in sandboxes}) == count
    finally:
        for sb in sandboxes:
            sb.kill()


PRELOADED = "import sys\n[m in sys.modules for m in ('numpy', 'pandas', 'matplotlib.pyplot')]"


def test_pooled_sandbox_comes_with_the_templates_preload_and_no_trace_of_it(server) -> None:  # noqa: ANN001
    _wait_full(server)
    with Sandbox.create(timeout=60) as sb:
        assert sb.run_code(PRELOADED).text == "[True, True, True]"
        names = sb.run_code("[n for n in dir() if 'preload' in n or n in ('numpy', 'pandas', 'importlib')]")
        assert names.text == "[]"
        assert sb.run_code("import os\n'NULLSPACE_PRELOAD' in os.environ").text == "False"
        assert sb.commands.run("env").stdout.count("NULLSPACE_PRELOAD") == 0
        plot = sb.run_code("import matplotlib.pyplot as plt\nplt.plot([1, 2]); plt.show()")
        assert plot.results[0].png and plot.results[0].chart is not None


def test_cold_sandbox_does_not_wait_for_the_preload(server) -> None:  # noqa: ANN001
    # Take the whole pool (and one more): the last create starts cold.
    target = _wait_full(server)["target"]
    sandboxes = [Sandbox.create(timeout=60) for _ in range(target)]
    sandboxes.append(Sandbox.create(timeout=60, cpu=0.5))
    try:
        cold = sandboxes[-1]
        assert cold.run_code(PRELOADED).text == "[False, False, False]"
        # It started with more CPU (the agent and kernel start side by side); the caller's
        # limit holds once create returned.
        loop = (
            "import time\nstart, cpu = time.monotonic(), time.process_time()\n"
            "while time.monotonic() - start < 1.5: pass\n"
            "round((time.process_time() - cpu) / (time.monotonic() - start), 2)"
        )
        assert float(cold.run_code(loop).text) < 0.8
    finally:
        for sb in sandboxes:
            sb.kill()
