"""Large and odd output: 10 MB of stdout, binary junk, unicode line separators, very long lines.
The stream stays valid, the run completes, and output past the cap is cut with a marker."""

from __future__ import annotations

from nullspace import Sandbox

MiB = 1 << 20
TEN_MIB = "import sys\nfor _ in range(160):\n    sys.stdout.write('y' * 65535 + '\\n')\n'after'"


def test_ten_megabytes_of_stdout_arrive_whole(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(TEN_MIB, max_output_bytes=16 * MiB, timeout=120)
    assert execution.error is None
    out = "".join(execution.logs.stdout)
    assert len(out) == 10 * MiB and out == ("y" * 65535 + "\n") * 160
    assert execution.logs.stderr == []
    assert execution.text == "after"  # the stream went on after the flood


def test_output_past_the_default_cap_is_cut_with_a_marker(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(TEN_MIB, timeout=120)
    assert execution.error is None
    assert len("".join(execution.logs.stdout)) == 8 * MiB  # the default cap, exactly
    assert execution.logs.stderr[-1] == f"\n[nullspace: output truncated after {8 * MiB} bytes]\n"
    assert execution.text == "after"


def test_the_cap_is_configurable_per_run_and_counts_stderr_too(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import sys\nprint('o' * 600, flush=True)\nprint('e' * 600, file=sys.stderr, flush=True)\nprint('never')",
        max_output_bytes=1000,
    )
    assert "".join(execution.logs.stdout) == "o" * 600 + "\n"
    stderr = "".join(execution.logs.stderr)
    assert stderr.startswith("e" * 399) and stderr.endswith(
        "[nullspace: output truncated after 1000 bytes]\n"
    )
    assert "never" not in "".join(execution.logs.stdout)
    assert sandbox.run_code("print('fresh budget')").logs.stdout == ["fresh budget\n"]


def test_binary_junk_keeps_the_stream_valid(sandbox: Sandbox) -> None:
    execution = sandbox.run_code(
        "import sys, subprocess, time\n"
        "sys.stdout.write(bytes(range(256)).decode('latin-1'))\n"  # every control character
        "subprocess.run(['head', '-c', '100000', '/dev/urandom'])\n"  # raw bytes on fd 1
        "time.sleep(0.5)\n"  # ipykernel forwards fd output from a thread
        "print('\\nstill here')"
    )
    assert execution.error is None
    out = "".join(execution.logs.stdout)
    assert out.startswith(bytes(range(256)).decode("latin-1"))
    assert "\ufffd" in out  # invalid UTF-8 from the subprocess, replaced
    assert out.endswith("\nstill here\n")


def test_unicode_and_line_separators_survive(sandbox: Sandbox) -> None:
    text = "a\u2028b\u2029c\x85d\x00e\x1ef 😀 עברית é\u0301"
    execution = sandbox.run_code(
        f"import sys\nt = {text!r}\nprint(t)\nprint(t, file=sys.stderr)\nprint('lone \\udcff surrogate')\nt"
    )
    assert execution.error is None
    assert "".join(execution.logs.stdout) == text + "\nlone \ufffd surrogate\n"
    assert "".join(execution.logs.stderr) == text + "\n"
    assert execution.results[0].data["text/plain"] == repr(text)


def test_very_long_lines_arrive_whole_in_chunks(sandbox: Sandbox) -> None:
    execution = sandbox.run_code("import sys\nsys.stdout.write('é' * 3_000_000)\n'ok'", timeout=120)
    assert execution.text == "ok"
    assert "".join(execution.logs.stdout) == "é" * 3_000_000  # one 6 MB line, no newline
    assert len(execution.logs.stdout) > 1
    assert all(len(piece.encode()) <= 64 * 1024 for piece in execution.logs.stdout)
