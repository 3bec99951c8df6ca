"""`sandbox.files` end to end: verified writes, streaming both ways, escapes, the disk limit."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import resource
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from nullspace import (
    AsyncSandbox,
    ConflictError,
    DiskFullError,
    EntryInfo,
    IntegrityError,
    InvalidArgumentError,
    NotFoundError,
    Sandbox,
    WriteEntry,
    WriteInfo,
)

from .conftest import ServerHandle

MiB = 1 << 20


@pytest.fixture(scope="module")
def sbx(server: ServerHandle) -> Iterator[Sandbox]:
    with Sandbox.create(template="code-interpreter", timeout=600) as sb:
        yield sb


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def leftovers(sbx: Sandbox, directory: str = "/home/user") -> list[str]:
    """Temporary upload files anywhere under `directory`."""
    return sbx.commands.run(f"find {directory} -name '*.nsupload'").stdout.split()


# -- writing and reading --------------------------------------------------------------------------


def test_write_str_and_bytes_report_what_the_sandbox_wrote(sbx: Sandbox) -> None:
    info = sbx.files.write("notes/hello.txt", "héllo\n")
    assert isinstance(info, WriteInfo)
    assert (info.path, info.name, info.size) == ("/home/user/notes/hello.txt", "hello.txt", 7)
    assert info.sha256 == sha("héllo\n".encode())
    assert sbx.commands.run("sha256sum notes/hello.txt").stdout.split()[0] == info.sha256
    blob = os.urandom(3 * MiB + 17)
    info = sbx.files.write("/tmp/blob.bin", blob)
    assert (info.size, info.sha256) == (len(blob), sha(blob))
    assert sbx.files.read("/tmp/blob.bin", format="bytes") == blob
    assert sbx.files.read("notes/hello.txt") == "héllo\n"


def test_write_file_objects_and_iterators(sbx: Sandbox, tmp_path: Path) -> None:
    local = tmp_path / "local.bin"
    local.write_bytes(os.urandom(5 * MiB))
    with open(local, "rb") as fh:
        info = sbx.files.write("from_file.bin", fh)
    assert info.sha256 == sha(local.read_bytes())
    info = sbx.files.write("from_iter.txt", (f"line {i}\n" for i in range(1000)))
    expected = "".join(f"line {i}\n" for i in range(1000)).encode()
    assert (info.size, info.sha256) == (len(expected), sha(expected))
    assert sbx.files.write("empty", b"").size == 0 and sbx.files.read("empty") == ""
    assert sbx.files.write("bio", io.BytesIO(b"xyz")).sha256 == sha(b"xyz")


def test_write_replaces_atomically_and_keeps_the_mode(sbx: Sandbox) -> None:
    sbx.files.write("script.sh", "#!/bin/sh\necho v1\n")
    sbx.commands.run("chmod 750 script.sh")
    sbx.files.write("script.sh", "#!/bin/sh\necho v2\n")
    assert sbx.commands.run("./script.sh").stdout == "v2\n"
    assert sbx.files.get_info("script.sh").permissions == "-rwxr-x---"
    assert leftovers(sbx) == []


def test_read_stream_never_holds_the_file(sbx: Sandbox) -> None:
    sbx.commands.run("head -c 20000000 /dev/urandom > stream.bin")
    expected = sbx.commands.run("sha256sum stream.bin").stdout.split()[0]
    digest, size, chunks = hashlib.sha256(), 0, 0
    for chunk in sbx.files.read("stream.bin", format="stream"):
        digest.update(chunk)
        size += len(chunk)
        chunks += 1
    assert (size, digest.hexdigest()) == (20_000_000, expected)
    assert chunks > 1


def test_write_files(sbx: Sandbox) -> None:
    infos = sbx.files.write_files(
        [WriteEntry("batch/a.txt", "A"), ("batch/b.bin", b"B" * 10), {"path": "batch/c.txt", "data": "C"}]
    )
    assert [i.name for i in infos] == ["a.txt", "b.bin", "c.txt"]
    assert sbx.commands.run("cat batch/a.txt batch/b.bin batch/c.txt").stdout == "A" + "B" * 10 + "C"


def test_files_and_code_share_the_filesystem(sbx: Sandbox) -> None:
    sbx.files.write("shared.csv", "a,b\n1,2\n3,4\n")
    assert sbx.run_code("import pandas as pd\nint(pd.read_csv('shared.csv').b.sum())").text == "6"
    sbx.run_code("open('made_by_code.txt', 'w').write('from the kernel')")
    assert sbx.files.read("made_by_code.txt") == "from the kernel"


# -- metadata ------------------------------------------------------------------------------------


def test_list_exists_info_mkdir_rename_remove(sbx: Sandbox) -> None:
    assert sbx.files.make_dir("tree/sub/deeper") is True
    assert sbx.files.make_dir("tree/sub") is False
    sbx.files.write("tree/top.txt", "1")
    sbx.files.write("tree/sub/inner.txt", "22")
    sbx.commands.run("ln -sfn sub tree/link")
    names = [e.path.removeprefix("/home/user/tree/") for e in sbx.files.list("tree")]
    assert names == ["link", "sub", "top.txt"]
    deep = {e.path.removeprefix("/home/user/tree/"): e for e in sbx.files.list("tree", depth=3)}
    assert set(deep) == {"link", "sub", "sub/deeper", "sub/inner.txt", "top.txt"}  # links not descended
    assert deep["link"].type == "dir" and deep["link"].symlink_target == "sub"
    assert deep["sub/inner.txt"].size == 2 and deep["sub/inner.txt"].owner == "user"

    info = sbx.files.get_info("tree/top.txt")
    assert isinstance(info, EntryInfo) and (info.type, info.size, info.name) == ("file", 1, "top.txt")
    assert info.modified_time is not None and abs(info.modified_time.timestamp() - time.time()) < 120
    assert sbx.files.exists("tree/top.txt") and not sbx.files.exists("tree/missing")
    with pytest.raises(NotFoundError):
        sbx.files.get_info("tree/missing")
    with pytest.raises(ConflictError):
        sbx.files.make_dir("tree/top.txt")

    moved = sbx.files.rename("tree/top.txt", "elsewhere/new/top.txt")
    assert moved.path == "/home/user/elsewhere/new/top.txt"
    assert not sbx.files.exists("tree/top.txt") and sbx.files.read("elsewhere/new/top.txt") == "1"

    sbx.files.remove("tree/link")  # the link, not its target
    assert sbx.files.exists("tree/sub/inner.txt")
    sbx.files.remove("tree")
    assert not sbx.files.exists("tree")
    with pytest.raises(NotFoundError):
        sbx.files.remove("tree")
    with pytest.raises(InvalidArgumentError, match="is a directory"):
        sbx.files.read("elsewhere")


# -- confinement ---------------------------------------------------------------------------------


def test_dotdot_above_root_is_refused(sbx: Sandbox) -> None:
    for path in ("../../../../../etc/passwd", "/../etc/passwd", "a/../../../../../x"):
        with pytest.raises(InvalidArgumentError, match="leaves the sandbox"):
            sbx.files.read(path)
        with pytest.raises(InvalidArgumentError, match="leaves the sandbox"):
            sbx.files.write(path, "x")
    # '..' that stays inside the sandbox is a normal path
    assert sbx.files.read("../user/notes/../notes/hello.txt") == "héllo\n"


def test_host_paths_mean_nothing_in_the_sandbox(sbx: Sandbox, server: ServerHandle) -> None:
    secret = Path("/var/tmp") / f"ns-host-secret-{uuid.uuid4().hex}"
    secret.write_text("host secret")
    try:
        with pytest.raises(NotFoundError, match="never on the host"):
            sbx.files.read(str(secret))
        with pytest.raises(NotFoundError):
            sbx.files.read(str(server.data_dir / "state.db"))
        # a write to the same absolute path lands in the sandbox, not on the host
        sbx.files.write(str(secret), "sandbox copy")
        assert secret.read_text() == "host secret"
        assert sbx.files.read(str(secret)) == "sandbox copy"
        target = Path("/var/tmp") / f"ns-host-new-{uuid.uuid4().hex}"
        sbx.files.write(str(target), "should not appear on the host")
        assert not target.exists()
    finally:
        secret.unlink()


def test_symlinks_that_point_outside_are_refused(sbx: Sandbox) -> None:
    sbx.commands.run(
        "mkdir -p links && cd links && ln -sfn ../../../../../../../etc/hostname up "
        "&& ln -sfn /proc/self/root/etc/hostname proc && ln -sfn /etc/hostname abs "
        "&& ln -sfn up chain && ln -sfn loop2 loop1 && ln -sfn loop1 loop2"
    )
    for name in ("up", "chain"):
        with pytest.raises(InvalidArgumentError, match="points above /"):
            sbx.files.read(f"links/{name}")
        with pytest.raises(InvalidArgumentError, match="points above /"):
            sbx.files.write(f"links/{name}", "x")
    with pytest.raises(InvalidArgumentError, match="kernel interfaces"):
        sbx.files.read("/proc/self/environ")
    with pytest.raises(InvalidArgumentError, match="symlinks"):
        sbx.files.read("links/loop1")
    # a symlink to an absolute path inside the sandbox is followed, inside the sandbox; so is a
    # /proc magic link (resolved by reading it, never by the kernel following it)
    own = sbx.commands.run("cat /etc/hostname").stdout
    assert sbx.files.read("links/abs") == own and sbx.files.read("links/proc") == own
    assert sbx.files.get_info("links/up").type == "symlink"  # described, never followed out


def test_special_files_are_refused(sbx: Sandbox) -> None:
    sbx.commands.run("mkfifo pipe")
    start = time.monotonic()
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        sbx.files.read("pipe")
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        sbx.files.write("pipe", "x")
    with pytest.raises(InvalidArgumentError, match="not a regular file"):
        sbx.files.read("/dev/zero")
    assert time.monotonic() - start < 5  # nothing blocked on the FIFO
    with pytest.raises(InvalidArgumentError, match="read-only"):
        sbx.files.write("/opt/nullspace/lib/nullspace_agent/app.py", "x")


# -- verification --------------------------------------------------------------------------------


def test_a_body_that_differs_from_what_was_announced_is_not_written(sbx: Sandbox, server: ServerHandle) -> None:
    path = f"/v1/sandboxes/{sbx.sandbox_id}/files"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as client:
        answer = client.put(path, params={"path": "tampered.txt"}, content=b"what arrived",
                            headers={"X-Nullspace-Expected-Sha256": sha(b"what was sent")})
        assert answer.status_code == 422 and answer.json()["code"] == "integrity_error"
        answer = client.put(path, params={"path": "tampered.txt"}, content=b"short",
                            headers={"X-Nullspace-Expected-Size": "6"})
        assert answer.status_code == 422
    assert not sbx.files.exists("tampered.txt")
    assert issubclass(IntegrityError, Exception)


def test_an_interrupted_upload_leaves_nothing_behind(sbx: Sandbox, server: ServerHandle) -> None:
    sbx.files.write("interrupted.bin", "old content")

    def body() -> Iterator[bytes]:
        yield b"x" * MiB
        raise RuntimeError("the uploader crashed")

    path = f"/v1/sandboxes/{sbx.sandbox_id}/files"
    with httpx.Client(transport=httpx.HTTPTransport(uds=str(server.socket)), base_url="http://n") as client:
        with pytest.raises(RuntimeError):
            client.put(path, params={"path": "interrupted.bin"}, content=body())
    time.sleep(0.5)
    assert sbx.files.read("interrupted.bin") == "old content"
    assert leftovers(sbx) == []


# -- limits and size -----------------------------------------------------------------------------


def test_disk_full_is_a_clear_error_and_writes_nothing(server: ServerHandle) -> None:
    with Sandbox.create(timeout=120, disk_mb=64) as sb:
        sb.files.write("keep.txt", "precious")
        chunk = os.urandom(MiB)
        with pytest.raises(DiskFullError, match="disk is full") as info:
            sb.files.write("huge.bin", (chunk for _ in range(100)))  # streamed, 100 MiB
        assert info.value.status_code == 507 and "64 MiB" in str(info.value)
        assert not sb.files.exists("huge.bin")
        with pytest.raises(DiskFullError):
            sb.files.write("keep.txt", b"y" * 80 * MiB)  # one body, size known
        assert sb.files.read("keep.txt") == "precious"  # the old file is intact
        assert leftovers(sb) == []
        info2 = sb.files.write("after.bin", chunk * 16)  # the space was given back
        assert info2.size == 16 * MiB


def _peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_one_gib_round_trip_streams_and_checksums(server: ServerHandle) -> None:
    size = 1 << 30
    blocks = [os.urandom(MiB) for _ in range(4)]

    def data() -> Iterator[bytes]:
        for i in range(size // MiB):
            yield blocks[i % 4][:-8] + i.to_bytes(8, "big")  # every MiB differs

    expected = hashlib.sha256()
    for block in data():
        expected.update(block)
    client_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    server_before = _peak_rss_kib(server.process.pid)
    with Sandbox.create(timeout=300, memory_mb=2048, disk_mb=3072) as sb:
        start = time.monotonic()
        info = sb.files.write("big.bin", data(), request_timeout=120)
        up = time.monotonic() - start
        assert (info.size, info.sha256) == (size, expected.hexdigest())
        start = time.monotonic()
        got, received = hashlib.sha256(), 0
        for chunk in sb.files.read("big.bin", format="stream", request_timeout=120):
            got.update(chunk)
            received += len(chunk)
        down = time.monotonic() - start
        assert (received, got.hexdigest()) == (size, expected.hexdigest())
    print(f"\n1 GiB: upload {size / up / 1e6:.0f} MB/s ({up:.1f} s), download {size / down / 1e6:.0f} MB/s ({down:.1f} s)")
    # neither the SDK nor the server held the file: their peak memory grew by far less than 1 GiB
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - client_before < 256 * 1024
    assert _peak_rss_kib(server.process.pid) - server_before < 256 * 1024


def test_uploads_bigger_than_the_request_body_limit_work_over_tcp(server: ServerHandle) -> None:
    blob = os.urandom(40 * MiB)  # the API's JSON body limit is 16 MiB; uploads are exempt
    with Sandbox.create(api_url=server.tcp_url, api_key=server.api_key, timeout=120) as sb:
        assert sb.files.write("over_tcp.bin", blob).sha256 == sha(blob)
        assert sb.files.read("over_tcp.bin", format="bytes") == blob
    with httpx.Client(base_url=server.tcp_url) as client:  # ...but still need the API key
        answer = client.put("/v1/sandboxes/sb_x/files", params={"path": "x"}, content=b"x")
        assert answer.status_code == 401


def test_async_files(server: ServerHandle) -> None:
    async def chunks() -> object:
        for i in range(3):
            yield f"part {i}\n".encode()

    async def main() -> None:
        async with await AsyncSandbox.create(timeout=120) as sb:
            info = await sb.files.write("async.txt", chunks())
            assert info.sha256 == sha(b"part 0\npart 1\npart 2\n")
            assert await sb.files.read("async.txt") == "part 0\npart 1\npart 2\n"
            stream = await sb.files.read("async.txt", format="stream")
            assert b"".join([c async for c in stream]) == b"part 0\npart 1\npart 2\n"
            assert "async.txt" in [e.name for e in await sb.files.list(".")]
            assert await sb.files.exists("async.txt")

    asyncio.run(main())
