"""Limits hold and say which limit was hit; the sandbox keeps working afterwards."""

from __future__ import annotations

import time

from nullspace import Sandbox


def test_memory_bomb_is_contained(server) -> None:  # noqa: ANN001
    with Sandbox.create(memory_mb=256, timeout=120) as sb:
        sb.run_code("before = 1")
        bomb = sb.run_code("block = b'x' * (1024 ** 3)")
        assert bomb.error is not None
        if bomb.error.name == "MemoryError":  # the allocator refused first: also contained
            assert sb.run_code("before").text == "1"
            return
        assert bomb.error.name == "OutOfMemory", bomb.error
        assert "256 MiB" in bomb.error.value
        after = sb.run_code("40 + 2")  # the context restarted by itself
        assert after.text == "42"
        assert sb.run_code("before").error.name == "NameError"  # state was lost, as reported


def test_java_sees_the_memory_limit_and_raises_out_of_memory_error(server) -> None:  # noqa: ANN001
    with Sandbox.create(memory_mb=512, timeout=180) as sb:
        sb.run_code("int before = 1;", language="java", timeout=120)
        heap = sb.run_code("Runtime.getRuntime().maxMemory() / (1024 * 1024)", language="java")
        assert 0 < int(heap.text) <= 256, heap  # half the limit, not a quarter of the host's RAM
        bomb = sb.run_code("long[] block = new long[400 * 1024 * 1024 / 8];", language="java")
        assert bomb.error is not None and bomb.error.name == "OutOfMemoryError", bomb.error
        assert sb.run_code("before + 41", language="java").text == "42"  # the kernel lived on


def test_fork_bomb_is_contained(server) -> None:  # noqa: ANN001
    with Sandbox.create(timeout=120) as sb:
        run = sb.run_code(
            "import subprocess\n"
            "p = subprocess.run(['bash', '-c', ':(){ :|:& };:; sleep 3'], capture_output=True, timeout=30)\n"
            "print('bomb returned')",
            timeout=60,
        )
        assert any(limit["resource"] == "pids" for limit in run.limits), run
        # kill what is left of the bomb, then the sandbox answers again
        sb.run_code("import subprocess; subprocess.run(['pkill', '-9', 'bash'])", timeout=30)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            check = sb.run_code("6 * 7", timeout=10)
            if check.text == "42":
                break
        assert check.text == "42"


def test_cpu_is_limited_and_loop_is_interruptible(server) -> None:  # noqa: ANN001
    with Sandbox.create(cpu=0.5, timeout=120) as sb:
        code = (
            "import time\n"
            "start, cpu = time.monotonic(), time.process_time()\n"
            "while time.monotonic() - start < 2: pass\n"
            "round((time.process_time() - cpu) / (time.monotonic() - start), 2)"
        )
        share = float(sb.run_code(code).text)
        assert share < 0.8, share  # ~0.5 of a core, not 1.0
