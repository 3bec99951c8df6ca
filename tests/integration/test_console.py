"""The web console (/console) in real headless Chromium (Debian's `chromium`, driven by Playwright
with that binary; no browser download), against the test server, with sandboxes made by the SDK
over TCP with the same API key the browser logs in with.

One browser page for the module; the tests run in order on it (log in, list, notebook, files,
hostile HTML, kill).
"""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from nullspace import Sandbox

from .conftest import ServerHandle

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (scripts/setup.sh)")
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/setup.sh)")
DOCS = Path(__file__).resolve().parents[2] / "docs"
WAIT_MS = 60_000


@pytest.fixture(scope="module")
def sdk_sandbox(server: ServerHandle) -> Iterator[Sandbox]:
    sandbox = Sandbox.create(timeout=600, metadata={"owner": "console-test"}, api_url=server.tcp_url, api_key=server.api_key)
    try:
        yield sandbox
    finally:
        try:
            sandbox.kill()
        except Exception:
            pass


@pytest.fixture(scope="module")
def page(server: ServerHandle) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(WAIT_MS)
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.errors = errors  # type: ignore[attr-defined]
        try:
            yield page
        finally:
            browser.close()


def _shot(page: Any, name: str) -> None:
    """Keep the docs' screenshots current (docs/console*.png) when asked: NULLSPACE_SCREENSHOTS=1."""
    if os.environ.get("NULLSPACE_SCREENSHOTS"):
        page.wait_for_timeout(1500)  # a few usage samples in the chart
        page.screenshot(path=str(DOCS / name), full_page=True)


def _until(page: Any, expression: str, arg: Any = None) -> None:
    """Poll a JS expression from here: the console's CSP (no eval) breaks wait_for_function's polling."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while not page.evaluate(expression, arg):
        assert time.monotonic() < deadline, f"timed out waiting for {expression}"
        page.wait_for_timeout(100)


def _open_sandbox(page: Any, server: ServerHandle, sandbox: Sandbox) -> None:
    page.goto(f"{server.tcp_url}/console#/sandbox/{sandbox.sandbox_id}")
    page.wait_for_selector("#code")
    page.locator(".status[data-stream=live]").wait_for()


def test_login_then_the_sdk_sandbox_is_listed_live(page: Any, server: ServerHandle, sdk_sandbox: Sandbox) -> None:
    page.goto(f"{server.tcp_url}/console")
    page.fill("#api-key", "ns_not-a-key")
    page.click("#login button[type=submit]")
    page.wait_for_selector("#login .notice.error")
    assert "refused" in page.inner_text("#login .notice.error")

    page.fill("#api-key", server.api_key)
    page.click("#login button[type=submit]")
    row = page.locator(f"#sandboxes tr[data-id={sdk_sandbox.sandbox_id}]")
    row.wait_for()
    assert "running" in row.inner_text() and "owner=console-test" in row.inner_text()
    # usage arrives from the live stream: memory used against the 1 GiB limit
    row.locator("td.memory", has_text="/ 1.0 GiB").wait_for()
    # the key is in this tab's session storage, and nowhere a frame or another site could use
    assert page.evaluate("sessionStorage.getItem('nullspace.apiKey')") == server.api_key
    assert page.context.cookies() == []
    _shot(page, "console-sandboxes.png")


def test_a_cell_draws_a_matplotlib_chart(page: Any, server: ServerHandle, sdk_sandbox: Sandbox) -> None:
    _open_sandbox(page, server, sdk_sandbox)
    page.fill("#code", "import matplotlib.pyplot as plt\nplt.plot([1, 2, 3], [1, 4, 9])\nplt.show()\nprint('drawn')")
    page.click("#run")
    image = page.locator(".cell[data-origin=console] img.output-image").last
    image.wait_for()
    assert image.get_attribute("src").startswith("data:image/png;base64,")
    _until(page, "(img) => img.complete && img.naturalWidth > 100", image.element_handle())
    assert "drawn" in page.locator(".cell[data-origin=console] .output-stdout").last.inner_text()

    # another of the six languages, in its own default context
    page.select_option("#language", "lang:bash")
    page.fill("#code", "echo \"hi from $0\" >&2; echo out")
    page.click("#run")
    cell = page.locator(".cell[data-origin=console]").filter(has_text="hi from").last
    cell.locator(".output-stderr", has_text="hi from").wait_for()
    assert cell.locator(".output-stdout").inner_text().strip() == "out"
    assert "bash" in cell.locator(".cell-head").inner_text()


def test_an_sdk_run_streams_into_the_open_page(page: Any, sdk_sandbox: Sandbox) -> None:
    """The SDK's run is still going (it waits for a file) when its first line shows up."""
    code = (
        "import os, time\nprint('first line', flush=True)\n"
        "while not os.path.exists('/tmp/console-go'):\n    time.sleep(0.05)\n"
        "print('last line')\n1 / 0"
    )
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def run() -> None:
        outcome["execution"] = sdk_sandbox.run_code(code, timeout=120)
        done.set()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    cell = page.locator(".cell[data-origin=other]").filter(has_text="first line").last
    cell.locator(".output-stdout", has_text="first line").wait_for()
    assert not done.is_set(), "the line must show while the run is still going"
    assert cell.locator(".badge").inner_text() == "running"
    sdk_sandbox.files.write("/tmp/console-go", b"")
    thread.join(60)
    assert done.is_set()
    cell.locator(".output-stdout", has_text="last line").wait_for()
    error = cell.locator(".output-error")
    error.wait_for()
    assert "ZeroDivisionError" in error.inner_text() and "Traceback" in error.inner_text()
    assert cell.locator(".badge").inner_text() == "error"
    assert outcome["execution"].error.name == "ZeroDivisionError"

    # rich results: a pandas table (in an isolated frame) and an interactive plotly chart
    sdk_sandbox.run_code("import pandas as pd\npd.DataFrame({'alpha': [1, 2], 'beta': [3, 4]})")
    table = page.frame_locator(".cell iframe.output-frame >> nth=-1").locator("table.dataframe")
    table.wait_for()
    assert "alpha" in table.inner_text()
    sdk_sandbox.run_code("import plotly.express as px\npx.line(x=[1, 2, 3], y=[3, 1, 2]).show()")
    plot = page.frame_locator(".cell iframe.output-frame >> nth=-1").locator("svg.main-svg").first
    plot.wait_for()
    # markdown through the escaping renderer, LaTeX as text, SVG as an image
    sdk_sandbox.run_code(
        "from IPython.display import Markdown, Latex, SVG, display\n"
        "display(Markdown('# Findings\\n* **bold** <b>not html</b>'))\n"
        "display(Latex(r'$\\alpha^2$'))\n"
        "display(SVG('<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><rect width=\"40\" height=\"20\"/></svg>'))"
    )
    rich = page.locator(".cell").last
    rich.locator(".output-markdown h1", has_text="Findings").wait_for()
    assert rich.locator(".output-markdown strong").inner_text() == "bold"
    assert "<b>not html</b>" in rich.locator(".output-markdown li").inner_text()  # shown, not parsed
    assert rich.locator(".latex").inner_text() == "$\\alpha^2$"
    assert rich.locator("img.output-image").get_attribute("src").startswith("data:image/svg+xml")
    # the usage chart has been sampling all along
    assert int(page.locator("#usage-chart").get_attribute("data-samples")) >= 2
    _shot(page, "console-sandbox.png")


def test_upload_and_download_a_file(page: Any, sdk_sandbox: Sandbox, tmp_path: Path) -> None:
    upload = tmp_path / "from-browser.txt"
    upload.write_bytes(b"uploaded through the console\n" * 100)
    page.set_input_files("#upload", str(upload))
    row = page.locator("#files-table tr[data-name='from-browser.txt']")
    row.wait_for()
    page.locator("#files .notice.ok", has_text="Uploaded /home/user/from-browser.txt (2.8 KiB)").wait_for()
    assert "2.8 KiB" in row.inner_text()
    assert sdk_sandbox.files.read("/home/user/from-browser.txt", format="bytes") == upload.read_bytes()

    sdk_sandbox.files.write("/home/user/from-sdk.bin", bytes(range(256)) * 4)
    page.fill("#files-path", "/home/user")
    page.click("#files button[type=submit]")
    with page.expect_download() as info:
        page.locator("#files-table tr[data-name='from-sdk.bin'] [data-action=download]").click()
    assert info.value.suggested_filename == "from-sdk.bin"
    assert Path(info.value.path()).read_bytes() == bytes(range(256)) * 4


def test_commands_and_packages_panels(page: Any, sdk_sandbox: Sandbox) -> None:
    command = sdk_sandbox.commands.run("sleep 600 # console-test", background=True)
    row = page.locator("#commands tr", has_text="console-test")
    row.wait_for()  # the panel refreshes every 3 s
    row.locator("button", has_text="Kill").click()
    row.wait_for(state="detached")
    assert command.wait(check=False).exit_code != 0

    page.click("#packages-load")
    page.locator("#packages td", has_text="numpy").first.wait_for()
    page.fill("#packages-filter", "pandas")
    assert all("pandas" in name.lower() for name in page.locator("#packages tbody tr td:first-child").all_inner_texts())


HOSTILE = r'''
from IPython.display import HTML, display
display(HTML("""<pre id="probe">pending</pre><script>
const seen = {};
function probe(name, f) { try { seen[name] = String(f()); } catch (e) { seen[name] = 'blocked: ' + e.name; } }
probe('origin', () => window.origin);
probe('own_session', () => sessionStorage.getItem('nullspace.apiKey'));
probe('own_local', () => localStorage.length);
probe('parent_session', () => parent.sessionStorage.getItem('nullspace.apiKey'));
probe('parent_local', () => parent.localStorage.length);
probe('parent_dom', () => parent.document.body.innerHTML.length);
probe('cookie', () => document.cookie);
probe('popup', () => window.open('/console'));
probe('top_nav', () => { top.location.href = '/v1/sandboxes'; return 'tried'; });
const api = (url, init) => fetch(url, init).then(r => 'status ' + r.status, e => 'failed: ' + e.name);
Promise.all([
  api('/v1/sandboxes'),
  api(new URL('/v1/sandboxes', document.baseURI.startsWith('http') ? document.baseURI : location.href).href,
      {method: 'DELETE', headers: {'X-Nullspace-Console': '1'}}),
]).then(results => {
  seen.fetch = results.join(', ');
  document.getElementById('probe').textContent = JSON.stringify(seen);
});
</script>"""))
'''


def test_hostile_html_cannot_reach_the_console(page: Any, server: ServerHandle, sdk_sandbox: Sandbox) -> None:
    """Sandbox output runs in an opaque-origin frame: no storage, no DOM, no cookie, no network."""
    url = page.url
    sdk_sandbox.run_code(HOSTILE)
    probe = page.frame_locator(".cell iframe.output-frame >> nth=-1").locator("#probe")
    probe.filter(has_text="fetch").wait_for()
    seen = json.loads(probe.inner_text())
    assert seen["origin"] == "null"  # opaque: nothing of the console's origin is its own
    for name in ("own_session", "own_local", "parent_session", "parent_local", "parent_dom", "cookie"):
        assert seen[name].startswith("blocked: SecurityError"), (name, seen[name])
    assert seen["popup"] == "null"  # no allow-popups
    assert seen["fetch"] == "failed: TypeError, failed: TypeError"  # connect-src 'none'
    assert server.api_key not in json.dumps(seen)
    # the console page is untouched: same URL, key still in its storage, sandbox still listed
    page.wait_for_timeout(300)
    assert page.url == url
    assert page.evaluate("sessionStorage.getItem('nullspace.apiKey')") == server.api_key
    assert httpx.get(f"{server.tcp_url}/v1/sandboxes/{sdk_sandbox.sandbox_id}",
                     headers={"X-API-Key": server.api_key}).json()["state"] == "running"
    # and without the key the API refuses even a request that looks like the console's
    assert httpx.get(f"{server.tcp_url}/v1/sandboxes", headers={"X-Nullspace-Console": "1"}).status_code == 401


def _first_list(server: ServerHandle, key: str) -> list[dict[str, Any]]:
    with httpx.stream("GET", f"{server.tcp_url}/v1/watch/sandboxes?state=running",
                      headers={"X-API-Key": key}, timeout=30) as reply:
        assert reply.headers["content-type"].startswith("text/event-stream")
        lines = reply.iter_lines()
        for line in lines:
            if line == "event: sandboxes":
                return json.loads(next(lines).removeprefix("data: "))
    raise AssertionError("the stream ended without a list")


def test_the_streams_show_a_tenant_only_its_own(server: ServerHandle, sdk_sandbox: Sandbox) -> None:
    from .test_tenants import new_tenant

    _, other_key = new_tenant(server)
    mine = _first_list(server, server.api_key)
    assert sdk_sandbox.sandbox_id in [s["sandbox_id"] for s in mine]
    assert next(s for s in mine if s["sandbox_id"] == sdk_sandbox.sandbox_id)["usage"]["memory_limit"] == 1 << 30
    assert _first_list(server, other_key) == []
    for path in ("events", "stats"):
        reply = httpx.get(f"{server.tcp_url}/v1/sandboxes/{sdk_sandbox.sandbox_id}/{path}",
                          headers={"X-API-Key": other_key}, timeout=30)
        assert reply.status_code == 404 and reply.json()["code"] == "sandbox_not_found"


def test_create_extend_filter_and_kill_from_the_list(page: Any, server: ServerHandle, sdk_sandbox: Sandbox) -> None:
    page.goto(f"{server.tcp_url}/console#/server")
    page.locator("#templates td", has_text="code-interpreter").first.wait_for()
    page.locator("#pools td", has_text="code-interpreter").first.wait_for()
    _shot(page, "console-server.png")
    page.goto(f"{server.tcp_url}/console#/")
    row = page.locator(f"#sandboxes tr[data-id={sdk_sandbox.sandbox_id}]")
    row.wait_for()

    # create one from the page, find it by its metadata, give it five more minutes
    page.fill("#create-timeout", "120")
    page.fill("#create-metadata", "made=console")
    page.click("#create-button")
    page.locator(".notice.ok", has_text="Created").wait_for()
    made = page.locator(".notice.ok").inner_text().removeprefix("Created ").rstrip(".")
    page.fill("#filter-metadata", "made=console")
    page.click("#sandboxes-filter")
    row.wait_for(state="detached")  # the filter holds
    created = page.locator(f"#sandboxes tr[data-id={made}]")
    created.wait_for()
    assert page.locator("#sandboxes tbody tr").count() == 1
    other = Sandbox.connect(made, api_url=server.tcp_url, api_key=server.api_key)
    assert other.get_info().metadata == {"made": "console"}
    before = other.get_info().end_at
    created.locator("[data-action=extend]").click()
    deadline = time.monotonic() + 30
    while (other.get_info().end_at - before).total_seconds() < 250:
        assert time.monotonic() < deadline, "the timeout was not extended"
        time.sleep(0.2)
    created.locator("[data-action=kill]").click()
    created.locator("[data-action=kill]").click()
    created.wait_for(state="detached")
    page.fill("#filter-metadata", "")
    page.click("#sandboxes-filter")

    row.wait_for()
    row.locator("[data-action=kill]").click()
    assert row.locator("[data-action=kill]").inner_text() == "Really kill?"
    row.locator("[data-action=kill]").click()
    row.wait_for(state="detached")
    assert sdk_sandbox.get_info().state == "killed"
    assert page.errors == []  # type: ignore[attr-defined]
