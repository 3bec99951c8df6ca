"""Runs, commands and files as MCP content blocks (pure functions, no server)."""

from __future__ import annotations

import base64

from mcp_types import BlobResourceContents, EmbeddedResource, ImageContent, TextContent

from nullspace.client._commands import CommandResult
from nullspace.client._models import Execution, ExecutionError, Logs, Result
from nullspace.mcp import content

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nrest").decode()


def test_a_chart_is_an_image_and_its_text_form_is_dropped() -> None:
    result = Result({"image/png": PNG, "text/plain": "<Figure size 640x480 with 1 Axes>"})
    [block] = content.result_blocks(result, "u")
    assert isinstance(block, ImageContent) and block.mime_type == "image/png" and block.data == PNG


def test_a_table_is_its_text_not_its_html() -> None:
    table = Result({"text/plain": "   a\n0  1", "text/html": "<table class='dataframe'>",
                    content.TABLE_MIME: {"schema": {}, "data": []}})
    assert [b.text for b in content.result_blocks(table, "u")] == ["   a\n0  1"]


def test_html_and_svg_are_embedded_resources_named_by_the_uri() -> None:
    blocks = content.result_blocks(Result({"text/html": "<b>x</b>", "image/svg+xml": "<svg/>"}), "ns://r/0")
    assert [(b.resource.uri, b.resource.mime_type) for b in blocks if isinstance(b, EmbeddedResource)] == [
        ("ns://r/0.svg", "image/svg+xml"), ("ns://r/0.html", "text/html")]


def test_json_and_plain_results_are_text() -> None:
    assert '"a": 1' in content.result_blocks(Result({"application/json": {"a": 1}}), "u")[0].text
    assert content.result_blocks(Result({"text/plain": "'hi'"}), "u")[0].text == "hi"
    assert content.result_blocks(Result({}), "u") == []


def test_the_summary_has_logs_and_the_error_without_colour_codes() -> None:
    execution = Execution(
        logs=Logs(stdout=["a\n", "b\n"], stderr=["warn\n"]),
        error=ExecutionError("ZeroDivisionError", "division by zero", "\x1b[0;31mTraceback\x1b[0m here",
                             state_lost=True),
        execution_count=3,
    )
    summary = content.run_summary(execution, "sb_1", "python")
    assert "sb_1 · python · execution 3" in summary
    assert "stdout:\na\nb\n" in summary and "stderr:\nwarn" in summary
    assert "error: ZeroDivisionError: division by zero\nTraceback here" in summary
    assert "restarted" in summary
    structured = content.run_structured(execution, "sb_1", "python")
    assert structured["error"]["traceback"] == "Traceback here" and structured["stdout"] == "a\nb\n"


def test_a_silent_run_says_so_and_long_output_is_cut_with_a_note() -> None:
    assert "(no output)" in content.run_summary(Execution(), "s", "bash")
    clipped = content.clip("x" * 150, 100)
    assert clipped.startswith("x" * 100) and "50 more characters" in clipped


def test_run_blocks_put_the_summary_first_then_each_result() -> None:
    execution = Execution(results=[Result({"image/png": PNG}), Result({"text/plain": "42"}, is_main_result=True)])
    blocks = content.run_blocks(execution, "s", "python")
    assert [type(b) for b in blocks] == [TextContent, ImageContent, TextContent] and blocks[2].text == "42"


def test_command_blocks_show_the_exit_code_and_both_streams() -> None:
    [block] = content.command_blocks(CommandResult("out", "err", 3), "sb")
    assert "exit code 3 (exited)" in block.text and "stdout:\nout" in block.text and "stderr:\nerr" in block.text


def test_files_are_images_text_or_blobs_by_content() -> None:
    assert isinstance(content.file_block("a.png", b"\x89PNG\r\n\x1a\n..", "s"), ImageContent)
    assert content.file_block("a.txt", "héllo".encode(), "s").text == "héllo"
    blob = content.file_block("/home/user/a.bin", b"\xff\x00\xfe", "s")
    assert isinstance(blob.resource, BlobResourceContents)
    assert blob.resource.uri == "nullspace://sandboxes/s/files/home/user/a.bin"
    assert base64.b64decode(blob.resource.blob) == b"\xff\x00\xfe"


def test_the_summary_names_the_files_a_run_wrote() -> None:
    from nullspace.client._artifacts import ArtifactInfo

    execution = Execution(artifacts=[ArtifactInfo("/home/user/a.csv", 12, change="created")])
    assert "files written: /home/user/a.csv (created, 12 bytes)" in content.run_summary(execution, "s", "python")


def test_a_long_text_file_is_cut_with_a_hint() -> None:
    block = content.file_block("big.txt", b"y" * (content.MAX_TEXT + 10), "s")
    assert "10 more characters not shown" in block.text and "head, tail" in block.text
