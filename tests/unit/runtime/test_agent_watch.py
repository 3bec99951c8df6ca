from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from nullspace.runtime import agent_watch


def test_process_state_reads_past_a_name_with_parens_and_spaces() -> None:
    assert agent_watch.process_state(os.getpid()) in {"R", "S"}
    assert agent_watch.process_state(2**22 + 12345) is None


def test_a_stopped_process_is_seen_and_resumed() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        child.send_signal(signal.SIGSTOP)
        for _ in range(100):
            if agent_watch.process_state(child.pid) == "T":
                break
            time.sleep(0.01)
        assert agent_watch.process_state(child.pid) == "T"
        # find_agent looks one pid namespace below the launcher; here, fake it with our own depth
        assert agent_watch.find_agent(os.getpid(), [child.pid]) is None
    finally:
        child.send_signal(signal.SIGCONT)
        child.kill()
        child.wait()
