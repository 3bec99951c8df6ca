"""`nullspace doctor`'s swap check reads /proc/meminfo: no swap is a warning with the fix."""

from __future__ import annotations

from pathlib import Path

from nullspace.cli._checks import OK, WARN, Host, check_swap


def _host(tmp_path: Path, meminfo: str) -> Host:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "meminfo").write_text(meminfo)
    return Host(data_dir=tmp_path, proc=proc)


def test_no_swap_warns_with_the_fix(tmp_path: Path) -> None:
    check = check_swap(_host(tmp_path, "MemTotal: 1000 kB\nSwapTotal:        0 kB\nSwapFree: 0 kB\n"))
    assert check.status == WARN and "memory stays in RAM" in check.detail
    assert check.fix and "NULLSPACE_SWAP_MB" in check.fix


def test_swap_present(tmp_path: Path) -> None:
    check = check_swap(_host(tmp_path, "SwapTotal:  4194300 kB\nSwapFree:   4000000 kB\n"))
    assert check.status == OK and "4.0 GiB of swap" in check.detail
