"""Shared fixtures: a fake builder (no root, no network) that publishes like the real one."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from nullspace._exceptions import TemplateBuildError
from nullspace.templates import TemplateImage, TemplateSpec, _process, _store, builder


class FakeSteps:
    """Stands in for the real steps (root, mmdebstrap, network); publishes like the builder."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.fail_at: str | None = None

    def __call__(
        self, spec: TemplateSpec, data_dir: Path, build_dir: Path, log: _process.BuildLog
    ) -> TemplateImage:
        self.calls.append(spec.digest)
        with log.step_scope("bootstrap"):
            (build_dir / "rootfs/etc").mkdir(parents=True)
            log.line("I: fake bootstrap")
            if self.fail_at == "bootstrap":
                raise TemplateBuildError("template build failed at step 'bootstrap': boom")
        with log.step_scope("commit"):
            (build_dir / "meta.json").write_text(json.dumps(_store.meta_dict(spec, _now(), 4096)))
            return builder._publish(spec, data_dir, build_dir)


def _now() -> datetime:
    return datetime.now(UTC)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeSteps:
    steps = FakeSteps()
    monkeypatch.setattr(builder, "_preflight", lambda spec: None)
    monkeypatch.setattr(builder, "_run_steps", steps)
    return steps
