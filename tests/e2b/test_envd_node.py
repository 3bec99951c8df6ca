"""envd through the official JavaScript SDK (`e2b` on npm, pinned in tests/e2b/node/package.json):
commands, stdin, files (one and several), list, stat, rename, remove, make_dir, watchDir, pty."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

NODE_DIR = Path(__file__).resolve().parent / "node"


def test_envd_from_node(e2b_server) -> None:
    node = shutil.which("node")
    assert node, "node is not installed (scripts/setup.sh installs it)"
    assert (NODE_DIR / "node_modules" / "e2b").is_dir(), "run scripts/setup.sh"
    done = subprocess.run([node, "envd.mjs"], cwd=NODE_DIR, capture_output=True, text=True, timeout=180, env=dict(os.environ))
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["run"] == {"stdout": "out\nuser\n", "stderr": "err\n", "exitCode": 0}
    assert report["failedExit"] == 4
    assert report["listed"] is True and report["bgStdout"] == "piped\n"
    assert report["read"] == "from js"
    assert report["names"] == ["one.txt", "three.txt", "two.txt"]
    assert report["exists"] == [True, False] and report["info"] == 5
    assert report["after"] == ["2.txt", "one.txt"]
    assert report["madeDir"] == [True, False]
    assert "create" in report["watched"]
    assert report["ptyExit"] == 0 and report["ptySizes"] == [True, True]
    assert report["killed"] is True
