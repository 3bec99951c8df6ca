"""Per-language pieces of the agent: prestart selection, error tidying, env snippets, transport."""

from __future__ import annotations

import json
import subprocess
from types import SimpleNamespace

import pytest

from nullspace.agent import config, languages
from nullspace.agent.messages import error_event
from nullspace.agent.snippets import ENV_SNIPPETS

KERNELS = {"python": "python3", "r": "ir", "javascript": "deno", "typescript": "deno", "java": "java", "bash": "b"}


@pytest.mark.parametrize(
    ("template", "override", "expected"),
    [
        (["bash", "javascript", "r"], None, ("bash", "javascript", "r")),
        (["bash", "python", "cobol", "bash"], None, ("bash",)),  # boot language, unknown, repeats
        (None, None, ()),
        (["r"], "none", ()),
        (["r"], "", ()),
        (["r"], "all", ("r", "javascript", "typescript", "java", "bash")),
        (["r"], "Java, TS", ("java", "typescript")),
    ],
)
def test_resolve_prestart(template, override, expected) -> None:  # noqa: ANN001
    assert config.resolve_prestart(template, KERNELS, "python", override) == expected


def test_load_prestart(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "template.json"
    assert config.load_prestart(str(path)) is None
    path.write_text(json.dumps({"prestart": ["R", "js"]}))
    assert config.load_prestart(str(path)) == ["r", "javascript"]
    path.write_text(json.dumps({"prestart": "r"}))
    assert config.load_prestart(str(path)) is None


def test_jjava_errors_are_tidied() -> None:
    event = error_event("RuntimeException", "java.lang.IllegalStateException, boom", "tb")
    assert (event["name"], event["value"]) == ("IllegalStateException", "boom")
    event = error_event("RuntimeException", "java.lang.UnsupportedOperationException, null")
    assert (event["name"], event["value"]) == ("UnsupportedOperationException", "")
    event = error_event(
        "CompilationException", "[snippet: [foo();], status: REJECTED]", "|   foo();\ncannot find symbol\n"
    )
    assert (event["name"], event["value"]) == ("CompilationException", "cannot find symbol")
    # everything else is left alone
    assert error_event("ValueError", "a.b, c")["value"] == "a.b, c"
    assert error_event("RuntimeException", "plain message")["value"] == "plain message"


def test_transport_and_settle_come_from_the_kernelspec() -> None:
    km = SimpleNamespace(kernel_spec=SimpleNamespace(metadata={"nullspace": {"transport": "tcp", "settle": 0.01}}),
                         transport="ipc", ip="")  # fmt: skip
    languages.apply_transport(km)
    assert (km.transport, km.ip) == ("tcp", "127.0.0.1")
    assert languages.iopub_settle(km) == 0.01
    plain = SimpleNamespace(kernel_spec=SimpleNamespace(metadata={}), transport="ipc", ip="")
    languages.apply_transport(plain)
    assert plain.transport == "ipc" and languages.iopub_settle(plain) == 0.0


def test_every_language_has_env_snippets() -> None:
    assert set(ENV_SNIPPETS) == {"python", "r", "javascript", "typescript", "java", "bash"}


NASTY = "it's \"quoted\" \\ $HOME `x` ünïcode\nnewline"


def test_bash_env_snippets_round_trip() -> None:
    snippets = ENV_SNIPPETS["bash"]
    script = (
        snippets.set({"NS_A": NASTY, "NS_B": "b"})
        + 'printf "%s|%s\\0" "$NS_A" "$NS_B"\n'
        + snippets.restore({"NS_A": None, "NS_B": "restored"})
        + 'printf "%s|%s" "${NS_A-unset}" "$NS_B"\n'
    )
    out = subprocess.run(["bash", "--norc", "-c", script], capture_output=True, text=True, check=True).stdout
    assert out.split("\0") == [f"{NASTY}|b", "unset|restored"]


def test_r_js_java_snippets_embed_values_as_literals() -> None:
    r = ENV_SNIPPETS["r"].set({"K": NASTY})
    assert json.dumps(NASTY, ensure_ascii=False) in r and "Sys.setenv" in r
    assert "Sys.unsetenv" in ENV_SNIPPETS["r"].restore({"K": None})
    js = ENV_SNIPPETS["typescript"].set({"K": NASTY})
    assert json.dumps({"K": NASTY}) in js and "Deno.env.set" in js
    java = ENV_SNIPPETS["java"].set({"K": NASTY})
    assert json.dumps(NASTY) in java  # ASCII-only JSON: a valid Java literal
    assert '{"K", null}' in ENV_SNIPPETS["java"].restore({"K": None})


def test_prestart_keeps_within_a_third_of_the_memory_limit() -> None:
    wanted = ["bash", "javascript", "r"]
    assert languages.within_budget(wanted, None) == wanted  # the limit is unknown
    assert languages.within_budget(wanted, "1024") == wanted  # 305 of 341 MiB
    assert languages.within_budget(wanted, "512") == ["bash", "r"]
    assert languages.within_budget(wanted, "256") == ["bash"]
    assert languages.within_budget(wanted, "junk") == wanted
