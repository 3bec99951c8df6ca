"""install_packages end to end: the host resolves and downloads, the sandbox (no network) installs.

The first run downloads from PyPI / the npm registry through the host's configuration; later
runs find the files in the server's cache.
"""

from __future__ import annotations

import json

import pytest

from nullspace import InvalidArgumentError, PackageInstallError

HUMANIZE = "import humanize\nhumanize.intword(1234567)"


def test_install_then_import_in_an_existing_context(sandbox) -> None:  # noqa: ANN001
    ctx = sandbox.create_context()
    before = sandbox.run_code("import sys\nx = 41\nimport humanize", context=ctx)
    assert before.error is not None and before.error.name == "ModuleNotFoundError"
    result = sandbox.install_packages(["humanize==4.9.0"])
    assert ("humanize", "4.9.0") in result.installed
    assert result.version("humanize") == "4.9.0"
    assert "humanize" in result.log
    # the context that existed (and failed the import) imports it now, and kept its state
    after = sandbox.run_code(f"{HUMANIZE} + ' ' + str(x + 1)", context=ctx)
    assert after.error is None, after.error
    assert after.text.strip("'") == "1.2 million 42"
    # the default context, and a context created afterwards, too
    assert sandbox.run_code(HUMANIZE).text.strip("'") == "1.2 million"
    assert sandbox.run_code(HUMANIZE, context=sandbox.create_context()).text.strip("'") == "1.2 million"
    # installing it again is a no-op that still reports it
    again = sandbox.install_packages("humanize==4.9.0")
    assert again.version("humanize") == "4.9.0"


def test_dependencies_come_along_and_template_packages_are_kept(sandbox) -> None:  # noqa: ANN001
    numpy_before = sandbox.run_code("import numpy\nnumpy.__version__").text
    result = sandbox.install_packages(["python-dateutil", "tabulate==0.9.0"])
    names = {name.lower() for name, _ in result.installed}
    assert {"tabulate", "python-dateutil"} <= names
    run = sandbox.run_code(
        "import tabulate, numpy\ntabulate.tabulate([[1, 2]]).splitlines()[1] + numpy.__version__"
    )
    assert run.error is None, run.error
    assert run.text.strip("'").endswith(numpy_before.strip("'"))


def test_a_package_that_does_not_exist(sandbox) -> None:  # noqa: ANN001
    listing = "import os\nsorted(os.listdir(os.path.expanduser('~/.local/lib/python3.11/site-packages')))"
    before = sandbox.run_code(listing).text
    with pytest.raises(PackageInstallError) as info:
        sandbox.install_packages(["nullspace-surely-no-such-package-x7q==1.0"])
    message = str(info.value)
    assert "No matching distribution" in message or "Could not find a version" in message
    assert info.value.code == "package_install_failed" and info.value.status_code == 422
    assert sandbox.run_code(listing).text == before  # nothing changed in the sandbox
    with pytest.raises(PackageInstallError, match="humanize"):
        sandbox.install_packages(["humanize==0.0.0.999"])  # exists, but not that version


@pytest.mark.parametrize(
    "bad",
    [
        "-e git+https://evil/x",
        "--index-url=http://evil",
        "pkg @ https://evil/p.whl",
        "./local",
        "a; os_name=='nt'",
        "a b",
    ],
)
def test_requirements_are_validated(sandbox, bad: str) -> None:  # noqa: ANN001
    with pytest.raises(InvalidArgumentError):
        sandbox.install_packages([bad])


def test_pip_inside_the_sandbox(sandbox) -> None:  # noqa: ANN001
    missing = sandbox.run_code("!pip install nullspace-not-in-the-cache-x7q")
    output = "".join(missing.logs.stdout + missing.logs.stderr)
    assert "install_packages" in output and "no network" in output
    percent = sandbox.run_code("%pip install nullspace-not-in-the-cache-x7q")
    assert "install_packages" in "".join(percent.logs.stdout + percent.logs.stderr)
    # what install_packages fetched for this sandbox, `!pip install` finds without network
    sandbox.install_packages(["humanize==4.9.0"])
    again = sandbox.run_code("!pip install humanize==4.9.0")
    assert "already satisfied" in "".join(again.logs.stdout)


def test_javascript_package(sandbox) -> None:  # noqa: ANN001
    kernels = sandbox.run_code("import json\njson.load(open('/opt/nullspace/template.json'))['kernels']").text
    has_js = "javascript" in kernels
    running = sandbox.create_context(language="javascript") if has_js else None
    if running is not None:
        assert sandbox.run_code("40 + 2", context=running).text == "42"
    result = sandbox.install_packages(["is-odd@3.0.1"], language="javascript")
    assert ("is-odd", "3.0.1") in result.installed
    assert result.version("is-number") is not None  # its dependency came along
    # lands in ~/node_modules (+ ~/package.json), where Node and Deno resolve bare specifiers
    files = sandbox.run_code(
        "import json, os\n"
        "home = os.path.expanduser('~')\n"
        "pkg = json.load(open(f'{home}/node_modules/is-odd/package.json'))\n"
        "dep = os.path.exists(f'{home}/node_modules/is-number/package.json')\n"
        "manifest = json.load(open(f'{home}/package.json'))\n"
        "print(json.dumps([pkg['version'], dep, manifest['dependencies']['is-odd']]))"
    )
    assert files.error is None, files.error
    version, has_dep, declared = json.loads("".join(files.logs.stdout))
    assert version == "3.0.1" and has_dep and "3.0.1" in declared
    if running is None:
        pytest.skip("this template has no JavaScript kernel; the package landed (checked above)")
    # a JavaScript context started after the install imports it by name (ES modules)
    fresh = sandbox.run_code(
        "import isOdd from 'is-odd';\nisOdd(3)", context=sandbox.create_context(language="javascript")
    )
    assert fresh.error is None, fresh.error
    assert fresh.text == "true"
    # Deno fixes a kernel's package.json dependencies when it starts: a context that was already
    # running loads new packages with require() (docs/templates.md, "JavaScript")
    existing = sandbox.run_code(
        "const { createRequire } = await import('node:module');\ncreateRequire('/home/user/')('is-odd')(5)",
        context=running,
    )
    assert existing.error is None, existing.error
    assert existing.text == "true"


def test_javascript_package_that_does_not_exist(sandbox) -> None:  # noqa: ANN001
    with pytest.raises(PackageInstallError, match="npm"):
        sandbox.install_packages(["nullspace-surely-no-such-npm-package-x7q"], language="javascript")


def test_scripts_extensions_and_a_version_change(sandbox) -> None:  # noqa: ANN001
    result = sandbox.install_packages(["tabulate==0.9.0", "wrapt==1.16.0"])
    assert result.version("wrapt") == "1.16.0"
    run = sandbox.run_code(
        "import subprocess, os, wrapt\n"
        "out = subprocess.run([os.path.expanduser('~/.local/bin/tabulate'), '--help'], capture_output=True, text=True)\n"
        "print(out.returncode, 'usage' in out.stdout.lower(), wrapt.__file__.endswith('__init__.py'))"
    )
    assert run.error is None, run.error
    assert "".join(run.logs.stdout).split() == ["0", "True", "True"]
    shown = sandbox.run_code("!pip show tabulate")
    assert "Version: 0.9.0" in "".join(shown.logs.stdout)
    # another version of a package installed earlier: pip swaps them
    newer = sandbox.install_packages(["tabulate==0.8.10"])
    assert newer.version("tabulate") == "0.8.10"
    fresh = sandbox.create_context()
    assert (
        sandbox.run_code("import tabulate\ntabulate.__version__", context=fresh).text.strip("'") == "0.8.10"
    )


def test_another_version_of_a_template_package_is_refused(sandbox) -> None:  # noqa: ANN001
    version = sandbox.run_code("import packaging\npackaging.__version__").text.strip("'")
    with pytest.raises(PackageInstallError, match="part of this sandbox's template"):
        sandbox.install_packages(["packaging==23.2"])
    assert sandbox.run_code("import packaging\npackaging.__version__").text.strip("'") == version


def test_the_cache_view_is_read_only_and_per_sandbox(server, sandbox) -> None:  # noqa: ANN001
    from nullspace import Sandbox

    sandbox.install_packages(["humanize==4.9.0"])
    probe = (
        "import os\n"
        "names = sorted(os.listdir('/opt/nullspace/cache/wheels'))\n"
        "try:\n"
        "    open('/opt/nullspace/cache/wheels/x.whl', 'w')\n"
        "    writable = True\n"
        "except OSError:\n"
        "    writable = False\n"
        "print(names, writable)"
    )
    mine = "".join(sandbox.run_code(probe).logs.stdout)
    assert "humanize-4.9.0-py3-none-any.whl" in mine and mine.strip().endswith("False")
    with Sandbox.create(timeout=60) as other:
        assert "".join(other.run_code(probe).logs.stdout).strip() == "[] False"
