"""`install_packages`: the request it sends, the result it returns, the errors it raises
(`tests/unit/client/_sync` is generated from this)."""

from __future__ import annotations

import json

import httpx
import pytest

import nullspace

from ..fakes import FakeAPI, error


def fake(answer: httpx.Response) -> FakeAPI:
    api = FakeAPI()
    plain = api.__call__

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/packages"):
            api.requests.append(request)
            return answer
        return plain(request)

    api.transport = lambda: httpx.MockTransport(handler)  # type: ignore[method-assign]
    return api


async def make(api: FakeAPI) -> nullspace.AsyncSandbox:
    return await nullspace.AsyncSandbox.create(api_url="http://test", api_key="k", transport=api.transport())


@pytest.mark.anyio
async def test_install_sends_the_packages_and_returns_names_and_versions() -> None:
    answer = {"installed": [{"name": "humanize", "version": "4.9.0"}, {"name": "junk"}], "log": "ok\n"}
    api = fake(httpx.Response(200, json=answer))
    sbx = await make(api)
    result = await sbx.install_packages(["humanize==4.9.0"])
    assert isinstance(result, nullspace.InstallResult)
    assert result.installed == [("humanize", "4.9.0")]  # malformed entries are dropped
    assert result.installed[0].name == "humanize" and result.installed[0].version == "4.9.0"
    assert isinstance(result.installed[0], nullspace.InstalledPackage)
    assert result.version("Humanize") == "4.9.0" and result.version("other") is None
    assert result.log == "ok\n"
    (request,) = [r for r in api.requests if r.url.path.endswith("/packages")]
    assert request.url.path == "/v1/sandboxes/sb_1/packages"
    assert json.loads(request.content) == {"packages": ["humanize==4.9.0"], "language": "python"}
    await sbx.install_packages("is-odd@3.0.1", language="javascript", timeout=60)
    assert json.loads(api.requests[-1].content) == {
        "packages": ["is-odd@3.0.1"], "language": "javascript", "timeout": 60,
    }  # fmt: skip


@pytest.mark.anyio
async def test_install_errors() -> None:
    api = fake(
        error(422, "package_install_failed", "pip download failed for x:\nERROR: No matching distribution")
    )
    sbx = await make(api)
    with pytest.raises(nullspace.PackageInstallError, match="No matching distribution") as info:
        await sbx.install_packages(["x"])
    assert isinstance(info.value, nullspace.APIError) and info.value.status_code == 422
    with pytest.raises(nullspace.InvalidArgumentError):
        await sbx.install_packages([])
    bad = await make(fake(error(400, "invalid_argument", "package '-e x' looks like an option")))
    with pytest.raises(nullspace.InvalidArgumentError, match="option"):
        await bad.install_packages(["-e x"])
