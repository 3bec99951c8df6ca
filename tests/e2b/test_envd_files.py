"""envd's files (``/files`` and ``filesystem.Filesystem``) through the official `e2b` SDK."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Iterator

import pytest
from e2b import AsyncSandbox, FilesystemEventType, FileType, Sandbox
from e2b.exceptions import FileNotFoundException, InvalidArgumentException, SandboxException
from e2b.sandbox.filesystem.filesystem import WriteEntry

from nullspace import Sandbox as NullspaceSandbox


@pytest.fixture(scope="module")
def sbx(e2b_server) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=600)
    try:
        yield sandbox
    finally:
        sandbox.kill()


def test_write_read_text_bytes_and_streams(sbx: Sandbox) -> None:
    info = sbx.files.write("/home/user/a.txt", "hello")
    assert (info.path, info.name, info.type) == ("/home/user/a.txt", "a.txt", FileType.FILE)
    assert sbx.files.read("a.txt") == "hello"  # relative paths start at /home/user
    blob = bytes(range(256)) * 4096  # 1 MiB, every byte value
    sbx.files.write("deep/dir/blob.bin", blob)  # parents are created
    assert bytes(sbx.files.read("deep/dir/blob.bin", format="bytes")) == blob
    assert b"".join(sbx.files.read("deep/dir/blob.bin", format="stream")) == blob
    # a file object goes as an octet-stream upload (envd >= 0.5.7), gzip too
    sbx.files.write("from-io.bin", io.BytesIO(blob))
    sbx.files.write("gz.txt", b"zipped", gzip=True)
    assert sbx.files.read("from-io.bin", format="bytes") == blob and sbx.files.read("gz.txt") == "zipped"
    # what one door writes, the other reads
    assert NullspaceSandbox.connect(sbx.sandbox_id).files.read("/home/user/a.txt") == "hello"
    with pytest.raises(FileNotFoundException):
        sbx.files.read("/home/user/missing.txt")
    with pytest.raises(InvalidArgumentException):
        sbx.files.read("/home/user")  # a directory


def test_write_several_files_in_one_multipart_upload(sbx: Sandbox) -> None:
    infos = sbx.files.write_files([
        WriteEntry(path="/home/user/multi/one.txt", data="1"),
        WriteEntry(path="multi/two.bin", data=b"\x00\x02"),
        WriteEntry(path="/tmp/three.txt", data=io.BytesIO(b"three")),
    ])  # fmt: skip
    assert [i.path for i in infos] == ["/home/user/multi/one.txt", "/home/user/multi/two.bin", "/tmp/three.txt"]
    assert sbx.files.read("/tmp/three.txt") == "three"
    assert sbx.files.read("multi/two.bin", format="bytes") == b"\x00\x02"


def test_a_failed_multi_file_upload_changes_nothing(sbx: Sandbox) -> None:
    sbx.files.write("all-or-none/keep.txt", "old")
    with pytest.raises(InvalidArgumentException):
        sbx.files.write_files([
            WriteEntry(path="all-or-none/keep.txt", data="new"),
            WriteEntry(path="all-or-none/fresh.txt", data="fresh"),
            WriteEntry(path="/home/user", data="a directory is in the way"),
        ])  # fmt: skip
    assert sbx.files.read("all-or-none/keep.txt") == "old"
    assert [e.name for e in sbx.files.list("all-or-none")] == ["keep.txt"]
    assert sbx.commands.run("ls -a /home/user/all-or-none").stdout.split() == [".", "..", "keep.txt"]


def test_list_stat_exists_make_dir_rename_remove(sbx: Sandbox) -> None:
    assert sbx.files.make_dir("tree/a/b") is True
    assert sbx.files.make_dir("tree/a/b") is False  # already there
    sbx.files.write("tree/top.txt", "t")
    sbx.files.write("tree/a/b/leaf.txt", "leaf!")
    sbx.commands.run("ln -s top.txt /home/user/tree/link")
    one = {e.name: e for e in sbx.files.list("tree")}
    assert set(one) == {"a", "top.txt", "link"}
    assert one["a"].type == FileType.DIR and one["top.txt"].type == FileType.FILE
    assert one["link"].type == FileType.SYMLINK and one["link"].symlink_target == "top.txt"
    deep = [e.path for e in sbx.files.list("/home/user/tree", depth=3)]
    assert "/home/user/tree/a/b/leaf.txt" in deep and "/home/user/tree/a/b" in deep
    assert "/home/user/tree/a/b/leaf.txt" not in [e.path for e in sbx.files.list("tree", depth=2)]

    info = sbx.files.get_info("tree/a/b/leaf.txt")
    assert (info.size, info.type, info.owner, info.permissions) == (5, FileType.FILE, "user", "-rw-r--r--")
    assert abs(info.modified_time.timestamp() - time.time()) < 120
    assert sbx.files.exists("tree/top.txt") and not sbx.files.exists("tree/nope")

    moved = sbx.files.rename("tree/top.txt", "tree/a/moved.txt")
    assert moved.path == "/home/user/tree/a/moved.txt" and not sbx.files.exists("tree/top.txt")
    sbx.files.remove("tree/a")
    assert not sbx.files.exists("tree/a/moved.txt")
    with pytest.raises(FileNotFoundException):
        sbx.files.get_info("tree/a")
    with pytest.raises(FileNotFoundException):
        sbx.files.list("/no/such/dir")


def test_file_metadata(sbx: Sandbox) -> None:
    info = sbx.files.write("meta/doc.txt", "m", metadata={"owner": "alice", "stage": "raw"})
    assert info.metadata == {"owner": "alice", "stage": "raw"}
    assert sbx.files.get_info("meta/doc.txt").metadata == {"owner": "alice", "stage": "raw"}
    assert sbx.files.rename("meta/doc.txt", "meta/moved.txt").metadata == {"owner": "alice", "stage": "raw"}
    listed = {e.name: e.metadata for e in sbx.files.list("meta")}
    assert listed == {"moved.txt": {"owner": "alice", "stage": "raw"}}
    sbx.files.write("meta/plain.txt", "p")
    assert sbx.files.get_info("meta/plain.txt").metadata is None


def test_paths_stay_in_the_sandbox(sbx: Sandbox) -> None:
    with pytest.raises(InvalidArgumentException):
        sbx.files.read("/proc/self/environ")
    with pytest.raises(InvalidArgumentException):
        sbx.files.list("/../../..")
    with pytest.raises(SandboxException, match="root"):
        sbx.files.write("/x.txt", "x", user="root")
    with pytest.raises(SandboxException, match="root"):
        sbx.files.list("/", user="root")


def test_watch_dir_polling(sbx: Sandbox) -> None:
    sbx.files.make_dir("watched/sub")
    handle = sbx.files.watch_dir("watched", recursive=True)
    try:
        sbx.files.write("watched/new.txt", "1")
        sbx.files.write("watched/sub/deeper.txt", "2")
        sbx.files.rename("watched/new.txt", "watched/renamed.txt")
        sbx.files.remove("watched/renamed.txt")
        sbx.commands.run("chmod 600 /home/user/watched/sub/deeper.txt")
        events: list = []
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and FilesystemEventType.CHMOD not in {e.type for e in events}:
            events += handle.get_new_events()
            time.sleep(0.05)
        seen = {(e.name, e.type) for e in events}
        # uploads land atomically (temp file, rename); a watcher sees the file created and written
        assert ("new.txt", FilesystemEventType.CREATE) in seen and ("new.txt", FilesystemEventType.WRITE) in seen
        assert not any("nsupload" in name for name, _ in seen)
        assert ("new.txt", FilesystemEventType.RENAME) in seen
        assert ("renamed.txt", FilesystemEventType.CREATE) in seen
        assert ("renamed.txt", FilesystemEventType.REMOVE) in seen
        assert ("sub/deeper.txt", FilesystemEventType.CREATE) in seen
        assert ("sub/deeper.txt", FilesystemEventType.CHMOD) in seen
    finally:
        handle.stop()
    with pytest.raises(SandboxException):
        handle.get_new_events()
    with pytest.raises(FileNotFoundException):
        sbx.files.watch_dir("/home/user/not-there")


def test_watch_dir_streaming(e2b_server) -> None:
    async def main() -> None:
        sandbox = await AsyncSandbox.create(timeout=120)
        try:
            await sandbox.files.make_dir("w")
            got: list = []
            handle = await sandbox.files.watch_dir("w", on_event=got.append, include_entry=True, allow_network_mounts=True)
            await sandbox.commands.run("echo x > /home/user/w/made.txt; echo y >> /home/user/w/made.txt")
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and FilesystemEventType.WRITE not in {e.type for e in got}:
                await asyncio.sleep(0.05)
            await handle.stop()
            assert ("made.txt", FilesystemEventType.CREATE) in {(e.name, e.type) for e in got}
            assert ("made.txt", FilesystemEventType.WRITE) in {(e.name, e.type) for e in got}
            entries = [e.entry for e in got if e.type == FilesystemEventType.CREATE]
            assert entries[0] is not None and entries[0].path == "/home/user/w/made.txt"
            assert await sandbox.files.read("w/made.txt") == "x\ny\n"
        finally:
            await sandbox.kill()

    asyncio.run(main())
