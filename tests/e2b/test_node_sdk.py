"""The official JavaScript SDK (`@e2b/code-interpreter`, pinned in tests/e2b/node/package.json and
installed by scripts/setup.sh) against a real server: create -> run_code -> chart -> files -> kill."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_node_sdk_flow(e2b_server) -> None:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/setup.sh installs it)"
    assert (NODE_DIR / "node_modules" / "@e2b" / "code-interpreter").is_dir(), "run scripts/setup.sh"
    done = subprocess.run(
        [node, "flow.mjs"], cwd=NODE_DIR, capture_output=True, text=True, timeout=180, env=os.environ
    )
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["text"] == "42" and report["stdout"] == ["hello from node\n"]
    assert report["executionCount"] == 1
    assert report["jsText"] == "[ 2, 4, 6 ]"
    assert report["error"] == {"name": "ZeroDivisionError", "value": "division by zero"}
    assert report["chart"] == {"type": "bar", "title": "Bars", "elements": [["a", 3], ["b", 5]]}
    assert report["pngBytes"] > 1000
    assert report["contextCwd"] == "/tmp"
    assert report["contexts"][:2] == ["python", "javascript"] and report["contexts"][-1] == "python"
    assert report["fileRead"] == "written by node"  # envd's /files, then seen by the kernel
    assert report["fileSeenByCode"] == "written by node"
    assert report["listed"] is True
    assert report["killed"] is True and report["runningAfterKill"] is False
