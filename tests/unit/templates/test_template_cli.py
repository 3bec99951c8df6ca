"""`nullspace template build | list | delete` with the builder faked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nullspace._exceptions import TemplateBuildError
from nullspace.cli import template as cli
from nullspace.templates import BuildProgress, TemplateSpec, ensure_template

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(cli.app, list(args))


def test_build_then_cached(tmp_path: Path, fake: Any) -> None:
    result = invoke("build", "code-interpreter", "--data-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert "built in" in result.output and "rootfs" in result.output
    assert str(tmp_path / "templates" / "code-interpreter") in result.output
    result = invoke("build", "code-interpreter", "--data-dir", str(tmp_path))
    assert result.exit_code == 0 and "up to date" in result.output
    assert len(fake.calls) == 1


def test_build_from_a_spec_file_and_list_and_delete(tmp_path: Path, fake: Any) -> None:
    spec_file = tmp_path / "mine.toml"
    spec_file.write_text('pip = ["numpy"]\n')
    data = str(tmp_path / "data")
    assert invoke("build", str(spec_file), "--data-dir", data).exit_code == 0
    listing = invoke("list", "--data-dir", data)
    assert listing.exit_code == 0 and "mine" in listing.output and "4.0 KiB" in listing.output
    rebuilt = invoke("build", "mine", "--force", "--data-dir", data)  # from the stored spec
    assert rebuilt.exit_code == 0 and len(fake.calls) == 2
    assert invoke("delete", "mine", "--data-dir", data).exit_code == 0
    missing = invoke("delete", "mine", "--data-dir", data)
    assert missing.exit_code == 1 and "no template named" in missing.output
    assert "No templates built yet" in invoke("list", "--data-dir", data).output


def test_build_failure_prints_the_step_log_and_exits_1(tmp_path: Path, fake: Any) -> None:
    fake.fail_at = "bootstrap"
    result = invoke("build", "code-interpreter", "--data-dir", str(tmp_path))
    assert result.exit_code == 1
    assert "I: fake bootstrap" in result.output
    assert "step 'bootstrap'" in result.output


def test_bad_spec_file_exits_1(tmp_path: Path) -> None:
    spec_file = tmp_path / "bad.toml"
    spec_file.write_text('pip = ["--index-url=http://evil"]\n')
    result = invoke("build", str(spec_file), "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "bad.toml:1" in result.output


def test_unknown_name(tmp_path: Path) -> None:
    result = invoke("build", "nope", "--data-dir", str(tmp_path))
    assert result.exit_code != 0 and "not a spec file" in result.output


def test_display_tracks_steps() -> None:
    display = cli._BuildDisplay(cli.console)
    display(BuildProgress("bootstrap", 1, 8, "Bootstrapping", "start"))
    display(BuildProgress("bootstrap", 1, 8, "I: line", "log"))
    assert list(display.lines) == ["I: line"]
    display(BuildProgress("bootstrap", 1, 8, "Bootstrapping", "done"))
    assert display.progress.tasks[0].finished
    display(BuildProgress("user", 2, 8, "User", "start"))
    display.fail()
    assert display.progress.tasks[1].fields["failed"] is True


def test_ensure_template_accepts_specs_directly(tmp_path: Path, fake: Any) -> None:
    image = ensure_template(TemplateSpec(name="direct"), tmp_path)
    assert image.name == "direct"


def test_cli_catches_build_errors_only(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def boom(*args, **kwargs):
        raise TemplateBuildError("template build failed at step 'pip': x", log="tail line")

    monkeypatch.setattr(cli, "ensure_template", boom)
    result = invoke("build", "code-interpreter", "--data-dir", str(tmp_path))
    assert result.exit_code == 1 and "tail line" in result.output
