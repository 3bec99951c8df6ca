"""nullspace's Bash kernel: one persistent ``bash`` behind a small Jupyter kernel.

    /opt/venv/bin/python -I /opt/nullspace/lib/nullspace_agent/bash_kernel.py -f CONNECTION_FILE

Why not the stock ``bash_kernel``: it drives bash through pexpect with prompt matching, which
costs ~100 ms per run and ~3 s to start, and it merges stderr into stdout. This kernel needs
only the standard library and pyzmq (both in every template's venv: jupyter_client depends on
pyzmq), speaks the Jupyter wire protocol itself (no ipykernel import), and runs each cell as

    . /tmp/nsbash-XXXX/cell </dev/null; printf '\\0<token> %d\\0' $? >&98; printf '\\0<token>\\0' >&99

in the same bash process, so variables, functions, ``cd`` and ``export`` persist. A cell ends
when both sentinels (random per kernel, so output cannot fake them) have arrived. stdout is a
pty (programs line-buffer and stream, as in a terminal); stderr is a separate pipe; stdin of a
cell is ``/dev/null``. A non-zero status of the cell's last command is an error ``BashError``
(value ``exit status N``, traceback = the cell's stderr). Interrupts: the kernel and bash share
a process group, so jupyter_client's SIGINT reaches bash and the foreground command; bash's
``trap 'return 130' INT`` ends the sourced cell and the sentinels still follow. ``exit`` ends
bash: the run reports it and the next run gets a fresh bash (state is lost, as it says).

It runs from the agent's read-only mount and imports nothing from the agent: keep it standalone.
"""

from __future__ import annotations

import codecs
import contextlib
import datetime
import fcntl
import hashlib
import hmac
import json
import os
import pty
import secrets
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import uuid
from typing import Any

import zmq

PROTOCOL_VERSION = "5.3"
DELIM = b"<IDS|MSG>"
READ_SIZE = 65536
STDERR_TAIL = 8192  # bytes of a failing cell's stderr kept as its traceback

KERNEL_INFO = {
    "protocol_version": PROTOCOL_VERSION,
    "implementation": "nullspace-bash",
    "implementation_version": "1.0",
    "language_info": {
        "name": "bash",
        "version": "",
        "mimetype": "text/x-sh",
        "codemirror_mode": "shell",
        "pygments_lexer": "bash",
        "file_extension": ".sh",
    },
    "banner": "nullspace bash kernel",
    "help_links": [],
    "status": "ok",
}


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat()


class Wire:
    """Signing, framing and parsing of Jupyter messages (HMAC-SHA256 as in the connection file)."""

    def __init__(self, key: bytes, scheme: str) -> None:
        if scheme not in ("hmac-sha256", ""):
            raise ValueError(f"unsupported signature scheme {scheme!r}")
        self.key = key
        self.session = uuid.uuid4().hex

    def sign(self, parts: list[bytes]) -> bytes:
        if not self.key:
            return b""
        mac = hmac.new(self.key, digestmod=hashlib.sha256)
        for part in parts:
            mac.update(part)
        return mac.hexdigest().encode("ascii")

    def send(
        self,
        sock: zmq.Socket,
        msg_type: str,
        content: dict[str, Any],
        parent: dict[str, Any] | None,
        idents: list[bytes],
        metadata: dict[str, Any] | None = None,
    ) -> None:
        header = {
            "msg_id": uuid.uuid4().hex,
            "session": self.session,
            "username": "kernel",
            "date": _now(),
            "msg_type": msg_type,
            "version": PROTOCOL_VERSION,
        }
        parts = [
            json.dumps(header).encode(),
            json.dumps((parent or {}).get("header") or {}).encode(),
            json.dumps(metadata or {}).encode(),
            json.dumps(content, default=str).encode(),
        ]
        sock.send_multipart([*idents, DELIM, self.sign(parts), *parts])

    def recv(self, frames: list[bytes]) -> dict[str, Any] | None:
        try:
            at = frames.index(DELIM)
        except ValueError:
            return None
        idents, signature, parts = frames[:at], frames[at + 1], frames[at + 2 : at + 6]
        if len(parts) < 4 or (self.key and not hmac.compare_digest(signature, self.sign(parts))):
            return None
        try:
            header, parent, metadata, content = (json.loads(p) for p in parts)
        except ValueError:
            return None
        return {"idents": idents, "header": header, "parent_header": parent,
                "metadata": metadata, "content": content}  # fmt: skip


class Bash:
    """The persistent shell: stdout on a pty, stderr on a pipe, commands on a pipe."""

    TRAP = "trap 'return 130 2>/dev/null' INT"  # an interrupt ends the sourced cell

    def __init__(self, workdir: str) -> None:
        self.workdir = workdir
        self.token = secrets.token_hex(8)
        self.out_marker = f"\0NSDONE{self.token} ".encode()
        self.err_marker = f"\0NSDONE{self.token}\0".encode()
        self.cell = os.path.join(workdir, "cell")
        master, slave = pty.openpty()
        attrs = termios.tcgetattr(slave)
        attrs[1] &= ~termios.OPOST  # no \n -> \r\n
        attrs[3] &= ~(termios.ECHO | termios.ICANON)
        termios.tcsetattr(slave, termios.TCSANOW, attrs)
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
        env = {k: v for k, v in os.environ.items() if not k.startswith("JPY_")}
        self.proc = subprocess.Popen(
            ["/bin/bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=slave,
            stderr=subprocess.PIPE,
            env=env,
            close_fds=True,
        )
        os.close(slave)
        self.out_fd = master
        assert self.proc.stderr is not None and self.proc.stdin is not None
        self.err_fd = self.proc.stderr.fileno()
        for fd in (self.out_fd, self.err_fd):
            os.set_blocking(fd, False)
        # The sentinels go to copies of the original stdout/stderr (fds 98, 99), so a cell that
        # redirects its shell's output (`exec >log 2>&1`) cannot swallow them.
        self.send(f"exec 98>&1 99>&2; {self.TRAP}\n")

    def send(self, text: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def run(self, code: str) -> None:
        os.makedirs(self.workdir, exist_ok=True)  # in case a cell emptied /tmp
        with open(self.cell, "w", encoding="utf-8") as fh:
            fh.write(code)
            if not code.endswith("\n"):
                fh.write("\n")
        cell = self.cell.replace("'", "'\\''")
        # The trap is set again after every cell: bash does not run an INT trap a second time
        # after a previous one left through `return`.
        self.send(
            f". '{cell}' </dev/null; printf '\\0NSDONE{self.token} %d\\0' $? >&98; "
            f"trap - INT; {self.TRAP}; printf '\\0NSDONE{self.token}\\0' >&99\n"
        )

    def alive(self) -> bool:
        return self.proc.poll() is None

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.proc.kill()
        with contextlib.suppress(Exception):
            self.proc.wait(timeout=2)
        for fd in (self.out_fd,):
            with contextlib.suppress(OSError):
                os.close(fd)
        for stream in (self.proc.stdin, self.proc.stderr):
            with contextlib.suppress(Exception):
                stream.close()  # type: ignore[union-attr]


class Stream:
    """One output fd of bash: incremental UTF-8 decoding and sentinel detection."""

    def __init__(self, name: str, marker: bytes, with_status: bool) -> None:
        self.name = name
        self.marker = marker
        self.with_status = with_status
        self.buffer = b""
        self.decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self.done = False
        self.status: int | None = None

    def reset(self) -> None:
        self.done = False
        self.status = None

    def feed(self, data: bytes) -> str:
        """Text to emit now; sets `done` (and `status`) when the sentinel passed."""
        self.buffer += data
        out = b""
        at = self.buffer.find(self.marker)
        if at >= 0:
            rest = self.buffer[at + len(self.marker) :]
            if self.with_status:
                end = rest.find(b"\0")
                if end < 0:  # the status is still on its way
                    return self._decode(self.buffer[:at], keep=self.buffer[at:])
                try:
                    self.status = int(rest[:end])
                except ValueError:
                    self.status = 1
                rest = rest[end + 1 :]
            out, self.buffer, self.done = self.buffer[:at], rest, True
            return self.decoder.decode(out) + (self.decoder.decode(b"", final=True) if self.done else "")
        # keep a possible marker prefix (from the last NUL on) for the next read
        nul = self.buffer.rfind(b"\0")
        if nul >= 0 and len(self.buffer) - nul < len(self.marker) + 16:
            return self._decode(self.buffer[:nul], keep=self.buffer[nul:])
        return self._decode(self.buffer, keep=b"")

    def _decode(self, data: bytes, keep: bytes) -> str:
        self.buffer = keep
        return self.decoder.decode(data)


class BashKernel:
    def __init__(self, connection: dict[str, Any]) -> None:
        self.wire = Wire(
            connection.get("key", "").encode(), connection.get("signature_scheme", "hmac-sha256")
        )
        self.ctx = zmq.Context()
        transport, ip = connection.get("transport", "tcp"), connection.get("ip", "127.0.0.1")

        def bind(kind: int, port_key: str) -> zmq.Socket:
            sock = self.ctx.socket(kind)
            sock.linger = 1000
            port = connection[port_key]
            sock.bind(f"ipc://{ip}-{port}" if transport == "ipc" else f"tcp://{ip}:{port}")
            return sock

        self.shell = bind(zmq.ROUTER, "shell_port")
        self.control = bind(zmq.ROUTER, "control_port")
        self.stdin = bind(zmq.ROUTER, "stdin_port")
        self.iopub = bind(zmq.XPUB, "iopub_port")  # XPUB: we see subscriptions (JEP 65 welcome)
        self.iopub.setsockopt(zmq.XPUB_VERBOSE, 1)
        self.hb = bind(zmq.REP, "hb_port")
        self.execution_count = 0
        self.tmpdir = tempfile.mkdtemp(prefix="nsbash-")
        self.bash = Bash(self.tmpdir)
        self.out = Stream("stdout", self.bash.out_marker, with_status=True)
        self.err = Stream("stderr", self.bash.err_marker, with_status=False)
        self.parent: dict[str, Any] | None = None  # the request output is attributed to
        self.running: dict[str, Any] | None = None  # the execute_request in progress
        self.stderr_tail = ""
        self.interrupted = False
        self.exiting = False

    # -- iopub helpers ----------------------------------------------------------------------

    def publish(self, msg_type: str, content: dict[str, Any], parent: dict[str, Any] | None) -> None:
        self.wire.send(self.iopub, msg_type, content, parent, [f"kernel.{msg_type}".encode()])

    def status(self, state: str, parent: dict[str, Any] | None) -> None:
        self.publish("status", {"execution_state": state}, parent)

    def reply(self, sock: zmq.Socket, msg: dict[str, Any], msg_type: str, content: dict[str, Any]) -> None:
        self.wire.send(sock, msg_type, content, msg, msg["idents"])

    def on_subscription(self, frame: bytes) -> None:
        """A client subscribed: greet it, so that it knows iopub is connected without waiting for
        a status message it may have missed (jupyter_client's wait_for_ready)."""
        if frame[:1] == b"\x01":
            topic = frame[1:]
            self.wire.send(self.iopub, "iopub_welcome", {"subscription": topic.decode(errors="replace")},
                           None, [topic])  # fmt: skip

    # -- requests ---------------------------------------------------------------------------

    def on_request(self, sock: zmq.Socket, msg: dict[str, Any]) -> None:
        msg_type = msg["header"].get("msg_type", "")
        if msg_type == "execute_request":
            self.start_execute(msg)
            return
        self.status("busy", msg)
        if msg_type == "kernel_info_request":
            self.reply(sock, msg, "kernel_info_reply", KERNEL_INFO)
        elif msg_type == "is_complete_request":
            self.reply(sock, msg, "is_complete_reply", {"status": "unknown"})
        elif msg_type == "complete_request":
            pos = msg["content"].get("cursor_pos", 0)
            self.reply(sock, msg, "complete_reply", {"status": "ok", "matches": [], "cursor_start": pos,
                                                     "cursor_end": pos, "metadata": {}})  # fmt: skip
        elif msg_type == "inspect_request":
            self.reply(
                sock, msg, "inspect_reply", {"status": "ok", "found": False, "data": {}, "metadata": {}}
            )
        elif msg_type == "history_request":
            self.reply(sock, msg, "history_reply", {"status": "ok", "history": []})
        elif msg_type == "comm_info_request":
            self.reply(sock, msg, "comm_info_reply", {"status": "ok", "comms": {}})
        elif msg_type == "interrupt_request":
            self.interrupt()
            self.reply(sock, msg, "interrupt_reply", {"status": "ok"})
        elif msg_type == "shutdown_request":
            restart = bool(msg["content"].get("restart", False))
            self.reply(sock, msg, "shutdown_reply", {"status": "ok", "restart": restart})
            self.exiting = True
        self.status("idle", msg)

    def start_execute(self, msg: dict[str, Any]) -> None:
        content = msg["content"]
        code = str(content.get("code", ""))
        silent = bool(content.get("silent", False))
        self.parent = self.running = msg
        self.status("busy", msg)
        if not silent and content.get("store_history", True):
            self.execution_count += 1
        if not silent:
            self.publish("execute_input", {"code": code, "execution_count": self.execution_count}, msg)
        if not self.bash.alive():
            self.restart_bash()
        if not code.strip():
            self.finish(0)
            return
        self.out.reset()
        self.err.reset()
        self.stderr_tail = ""
        self.interrupted = False
        try:
            self.bash.run(code)
        except OSError:  # bash died between the check and the write
            self.restart_bash()
            self.finish(None, died=True)

    def interrupt(self) -> None:
        # Our process group: bash and its foreground command (background jobs ignore SIGINT).
        self.interrupted = self.running is not None
        with contextlib.suppress(OSError):
            os.killpg(os.getpgrp(), signal.SIGINT)

    def on_output(self, stream: Stream, fd: int) -> None:
        try:
            data = os.read(fd, READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # EOF: bash is gone (killed from elsewhere, `exit`) or closed its output
            with contextlib.suppress(OSError):
                self.bash.proc.kill()
            code = self.bash.proc.wait()
            if self.running is not None:
                self.finish(None, died=True, returncode=code)  # restarts bash
            else:
                self.restart_bash()  # an fd at EOF would make every poll return at once
            return
        text = stream.feed(data)
        if stream is self.err and text:
            # bash names the sourced file in its messages: say "bash" like `bash -c` does
            text = text.replace(self.bash.cell + ": ", "bash: ")
            if self.running is not None:
                self.stderr_tail = (self.stderr_tail + text)[-STDERR_TAIL:]
        if text:
            silent = self.running is not None and self.running["content"].get("silent", False)
            if not silent:
                self.publish("stream", {"name": stream.name, "text": text}, self.parent)
        if self.running is not None and self.out.done and self.err.done:
            self.finish(self.out.status)

    def finish(self, status: int | None, *, died: bool = False, returncode: int | None = None) -> None:
        msg = self.running
        self.running = None
        if msg is None:
            return
        silent = msg["content"].get("silent", False)
        reply: dict[str, Any] = {"status": "ok", "execution_count": self.execution_count,
                                 "user_expressions": {}, "payload": []}  # fmt: skip
        error: dict[str, Any] | None = None
        if died:
            error = {"ename": "BashExited",
                     "evalue": f"bash exited (status {returncode}); a new shell starts, state is lost",
                     "traceback": []}  # fmt: skip
            self.restart_bash()
        elif status:
            tail = self.stderr_tail
            name = "KeyboardInterrupt" if self.interrupted and status == 130 else "BashError"
            error = {"ename": name, "evalue": f"exit status {status}", "traceback": tail.splitlines()}
        if error is not None:
            reply.update(status="error", **error)
            if not silent:
                self.publish("error", error, msg)
        self.reply(self.shell, msg, "execute_reply", reply)
        self.status("idle", msg)

    def restart_bash(self) -> None:
        self.bash.close()
        self.bash = Bash(self.tmpdir)
        self.out = Stream("stdout", self.bash.out_marker, with_status=True)
        self.err = Stream("stderr", self.bash.err_marker, with_status=False)

    # -- main loop --------------------------------------------------------------------------

    def serve(self) -> None:
        try:
            while not self.exiting:
                poller = zmq.Poller()
                for sock in (self.control, self.hb, self.stdin, self.iopub):
                    poller.register(sock, zmq.POLLIN)
                if self.running is None:
                    poller.register(self.shell, zmq.POLLIN)  # one request at a time
                poller.register(self.bash.out_fd, zmq.POLLIN)
                poller.register(self.err_fd(), zmq.POLLIN)
                ready = dict(poller.poll(1000 if self.running is not None else None))
                if self.hb in ready:
                    self.hb.send(self.hb.recv())
                if self.iopub in ready:
                    self.on_subscription(self.iopub.recv())
                if self.stdin in ready:
                    self.stdin.recv_multipart()  # allow_stdin is not supported
                for sock in (self.control, self.shell):
                    if sock in ready:
                        msg = self.wire.recv(sock.recv_multipart())
                        if msg is not None:
                            self.on_request(sock, msg)
                if self.bash.out_fd in ready:
                    self.on_output(self.out, self.bash.out_fd)
                if self.err_fd() in ready:
                    self.on_output(self.err, self.err_fd())
                if self.running is not None and not self.bash.alive() and not ready:
                    self.finish(None, died=True, returncode=self.bash.proc.returncode)
        finally:
            self.bash.close()
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.ctx.destroy(linger=0)

    def err_fd(self) -> int:
        return self.bash.err_fd


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] != "-f":
        print("usage: bash_kernel.py -f CONNECTION_FILE", file=sys.stderr)
        return 2
    with open(argv[2], encoding="utf-8") as fh:
        connection = json.load(fh)
    # jupyter_client interrupts by SIGINT to our process group (we lead a new session): bash
    # and its foreground command get it too; we only survive it. A Python-level handler, not
    # SIG_IGN: exec resets a handler to the default, while bash could not trap an inherited SIG_IGN.
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    BashKernel(connection).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
