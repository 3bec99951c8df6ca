"""Template specs: a TOML file parsed into a frozen, validated `TemplateSpec`.

A spec looks like (docs/templates.md has the full reference)::

    name = "my-analysis"
    base = "template:code-interpreter"   # or "debian:bookworm"
    apt = ["graphviz"]
    pip = ["scikit-learn>=1.4"]
    npm = ["lodash@4.17.21"]
    run = ["python -c 'import sklearn'"]  # shell commands, run as root, without network
    user = "user"                         # uid/gid 1000; "root" is allowed
    workdir = "/home/user"
    start = "python -m http.server"       # optional
    preload = ["numpy", "pandas"]         # imported by warm-pool sandboxes' Python kernel

    [[files]]                             # copied in, relative to this file
    src = "data/iris.csv"
    dest = "/home/user/data/iris.csv"

    [env]
    LANG = "C.UTF-8"

    [kernels]                             # language -> kernelspec name
    python = "python3"

Everything the builder consumes is validated here, strictly: package strings can never carry
options (`-e`, `--index-url`, `--allow-unauthenticated` …), names are restricted to what paths,
users and kernelspecs can safely hold, files never come from outside the spec's directory.
The digest is the build-cache key of a `debian:` template without layered steps; layered
builds key each step (see `templates.layers`).
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn

from nullspace._exceptions import TemplateBuildError
from nullspace._protocol.languages import normalize_language
from nullspace.templates.mounts import MOUNT_POINTS

__all__ = [
    "BUILDER_VERSION",
    "FileSpec",
    "TemplateSpec",
    "TemplateSpecError",
    "load_spec",
    "parse_spec",
]

BUILDER_VERSION = "5"
"""Part of every digest: bump it when the builder's output changes for the same spec."""

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_BASE_RE = re.compile(r"^(debian|template):([a-z0-9][a-z0-9.-]{0,62})$")
# Debian package names (policy 5.6.1), optionally :arch and =version. No commas (mmdebstrap
# --include is comma-separated), no spaces, no leading '-'.
_APT_RE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+:~-]+)?$")
# A PEP 508 subset: name, optional extras, optional version specifiers. No URLs, no markers,
# no options, no paths.
_PIP_NAME = r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?"
_PIP_SPEC = r"(?:===|==|!=|~=|<=|>=|<|>) *[A-Za-z0-9.*+!_-]+"
_PIP_RE = re.compile(
    rf"^(?P<name>{_PIP_NAME}) *(?:\[ *{_PIP_NAME}(?: *, *{_PIP_NAME})* *\])?"
    rf" *(?:{_PIP_SPEC}(?: *, *{_PIP_SPEC})*)?$"
)
_ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_LANGUAGE_RE = re.compile(r"^[a-z][a-z0-9_+-]{0,31}$")
_KERNELSPEC_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
_PATH_RE = re.compile(r"^(/[A-Za-z0-9._+-]+)+$")
# npm: [@scope/]name[@range]. The range may not hold ':' or '/' (no git+https:, file:, npm:
# aliases, github:user/repo), nor whitespace.
_NPM_NAME = r"(?:@[a-z0-9][a-z0-9._-]*/)?[a-z0-9][a-z0-9._-]*"
_NPM_RE = re.compile(rf"^(?P<name>{_NPM_NAME})(?:@(?P<range>[A-Za-z0-9.^~<>=*+|_-]+))?$")
_REL_PATH_RE = re.compile(r"^[A-Za-z0-9._+@-]+(/[A-Za-z0-9._+@-]+)*$")
_MODE_RE = re.compile(r"^0?[0-7]{3}$")
_MODULE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
MAX_COMMAND = 64 << 10

_KEYS = (
    "name", "base", "apt", "pip", "npm", "files", "run", "env", "user", "workdir", "kernels", "start",
    "preload",
)  # fmt: skip
_FILE_KEYS = ("src", "dest", "mode")
# File destinations the runtime hides (it mounts over them) or that are not files at all.
# /home/user is merged with the sandbox's own home, so files there are fine.
_HIDDEN_DESTS = tuple(p for p in (*MOUNT_POINTS, "/sys") if p != "/home/user")


def package_problem(package: object, language: str) -> str | None:
    """Why `package` is not an acceptable requirement (None if it is).

    The same strict rules as a spec's `pip`/`npm` lists: a name plus an optional version
    specifier; never an option (`-…`), a URL, a path, a marker (`;`), whitespace tricks.
    """
    if not isinstance(package, str):
        return "must be a string"
    if len(package) > 214:
        return "is too long"
    if package.lstrip().startswith("-"):
        return "looks like an option; options are not allowed"
    if language == "python":
        ok = _PIP_RE.fullmatch(package) is not None and "\n" not in package
        return None if ok else "is not a requirement 'name[extras]<specifiers>'"
    if language == "javascript":
        return None if _NPM_RE.fullmatch(package) else "is not an npm package '[@scope/]name[@version-range]'"
    return f"language {language!r} has no package installer"


def npm_name(package: str) -> str:
    """The package name of a validated npm spec (`@scope/name@^1` -> `@scope/name`)."""
    match = _NPM_RE.fullmatch(package)
    return match.group("name") if match else package


@dataclass(frozen=True)
class FileSpec:
    """One `[[files]]` entry: `src` (relative to the spec file) copied to `dest` in the rootfs.

    Attributes:
        src: A file or directory, relative to the spec's directory, never escaping it.
        dest: Absolute, normalized destination path inside the template.
        mode: Optional octal permission string for `dest` (e.g. `"0755"`); default: the
            source's permissions.
    """

    src: str
    dest: str
    mode: str | None = None

    def to_dict(self) -> dict[str, str]:
        data = {"src": self.src, "dest": self.dest}
        if self.mode is not None:
            data["mode"] = self.mode
        return data


class TemplateSpecError(TemplateBuildError):
    """A spec file is invalid. The message names the file, the line (when known) and the problem."""

    def __init__(self, problem: str, *, path: str | Path | None = None, line: int | None = None):
        where = str(path) if path is not None else "<template spec>"
        if line is not None:
            where += f":{line}"
        super().__init__(f"{where}: {problem}")
        self.problem = problem
        self.path = path
        self.line = line


@dataclass(frozen=True)
class TemplateSpec:
    """A validated template description. Build it with `load_spec` or `parse_spec`.

    Attributes:
        name: Template name (`^[a-z0-9][a-z0-9-]{0,62}$`), also its directory name.
        base: `"debian:<suite>"`, or `"template:<name>"` to start from another template.
        apt: Debian packages (mmdebstrap for a Debian base; `apt-get` on a template base).
        pip: Requirement strings installed (wheels only) into `/opt/venv`.
        npm: npm packages (`name[@range]`), fetched on the host with `--ignore-scripts`.
        files: Files and directories copied in from next to the spec file.
        run: Shell commands run as root inside the new root, without network; one layer each.
        env: Environment variables for everything started in the sandbox.
        user: The unprivileged user (uid/gid 1000), or `"root"`.
        workdir: The default working directory.
        kernels: Language (`python`, `r`, `javascript` …) → Jupyter kernelspec name.
        start: Optional command started when a sandbox starts.
        preload: Python modules the default Python kernel of a warm-pool sandbox imports while
            it waits to be claimed (a first ``import pandas`` or plot is then ~10× faster);
            None: the parent template's, or nothing. Not imported by cold starts.
        source: The file the spec was read from (not part of the digest).
    """

    name: str
    base: str = "debian:bookworm"
    apt: tuple[str, ...] = ()
    pip: tuple[str, ...] = ()
    npm: tuple[str, ...] = ()
    files: tuple[FileSpec, ...] = ()
    run: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    user: str = "user"
    workdir: str = "/home/user"
    kernels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    start: str | None = None
    preload: tuple[str, ...] | None = None
    source: Path | None = field(default=None, compare=False)

    @property
    def base_kind(self) -> str:
        """`"debian"` or `"template"`."""
        return self.base.split(":", 1)[0]

    @property
    def base_ref(self) -> str:
        """The Debian suite or the parent template's name."""
        return self.base.split(":", 1)[1]

    @property
    def home(self) -> str:
        """The user's home directory."""
        return "/root" if self.user == "root" else f"/home/{self.user}"

    @property
    def spec_dir(self) -> Path | None:
        """The directory `files` sources are relative to (the spec file's), if known."""
        return self.source.parent if self.source is not None else None

    @property
    def layered_steps(self) -> bool:
        """True if the spec has steps that are built as layers on top of a Debian base."""
        return bool(self.npm or self.files or self.run)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready data; `parse_spec(spec.to_dict())` round-trips."""
        data: dict[str, Any] = {
            "name": self.name,
            "base": self.base,
            "apt": list(self.apt),
            "pip": list(self.pip),
            "env": dict(self.env),
            "user": self.user,
            "workdir": self.workdir,
            "kernels": dict(self.kernels),
        }
        if self.start is not None:
            data["start"] = self.start
        # Only when set: specs without them keep the digest they had before these keys existed.
        if self.npm:
            data["npm"] = list(self.npm)
        if self.files:
            data["files"] = [f.to_dict() for f in self.files]
        if self.run:
            data["run"] = list(self.run)
        if self.preload is not None:
            data["preload"] = list(self.preload)
        return data

    @property
    def digest(self) -> str:
        """sha256 (hex) of the canonical JSON of the spec plus `BUILDER_VERSION`."""
        canonical = json.dumps(
            {"builder": BUILDER_VERSION, "spec": self.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
        )
        return hashlib.sha256(canonical.encode()).hexdigest()


def load_spec(path: str | Path) -> TemplateSpec:
    """Read and validate a spec file. `name` defaults to the file's stem (to the directory's
    name for a file called `template.toml`).

    Raises:
        TemplateSpecError: The file is unreadable, not TOML, or not a valid spec.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateSpecError(f"cannot read spec: {exc}", path=path) from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"\(at line (\d+), column \d+\)", str(exc))
        raise TemplateSpecError(
            f"invalid TOML: {exc}", path=path, line=int(match.group(1)) if match else None
        ) from exc
    # `<dir>/template.toml` is named after its directory; any other file after its stem.
    data.setdefault("name", path.resolve().parent.name if path.name == "template.toml" else path.stem)
    return parse_spec(data, path=path, text=text, check_files=True)


def parse_spec(
    data: Mapping[str, Any],
    *,
    path: str | Path | None = None,
    text: str | None = None,
    check_files: bool = False,
) -> TemplateSpec:
    """Validate already-parsed spec data.

    Args:
        data: The TOML document (or `TemplateSpec.to_dict()` output).
        path: Where the data came from, for error messages (and, with `check_files`, the
            file that `files` sources are relative to).
        text: The TOML source, used to find the line of a bad key or value.
        check_files: Also check that every `files` source exists next to `path` and does not
            escape its directory (symlinks resolved).

    Raises:
        TemplateSpecError: On the first problem found.
    """
    v = _Validator(path, text)
    for key in data:
        if key not in _KEYS:
            v.fail(f"unknown key {key!r} (allowed: {', '.join(_KEYS)})", key)
    name = v.string(data, "name", required=True)
    if not NAME_RE.fullmatch(name):
        v.fail(f"invalid name {name!r}: use 1-63 of a-z, 0-9 and '-', not starting with '-'", "name")
    base = v.string(data, "base", default="debian:bookworm")
    if not _BASE_RE.fullmatch(base):
        v.fail(f"invalid base {base!r}: expected 'debian:<suite>' or 'template:<name>'", "base")
    apt = v.packages(data, "apt", _APT_RE, "a Debian package name (name[:arch][=version])")
    pip = v.packages(data, "pip", _PIP_RE, "a requirement 'name[extras]<specifiers>'")
    npm = v.packages(data, "npm", _NPM_RE, "an npm package '[@scope/]name[@version-range]'")
    files = _files(v, data, Path(path) if check_files and path is not None else None)
    run = _commands(v, data)
    env = v.table(data, "env", _ENV_KEY_RE, "a variable name", _check_env_value)
    user = v.string(data, "user", default="user")
    if not _USER_RE.fullmatch(user):
        v.fail(f"invalid user {user!r}", "user")
    default_workdir = "/root" if user == "root" else f"/home/{user}"
    workdir = v.string(data, "workdir", default=default_workdir)
    if not _PATH_RE.fullmatch(workdir) or any(p in (".", "..") for p in workdir.split("/")):
        v.fail(f"invalid workdir {workdir!r}: expected a normalized absolute path", "workdir")
    raw_kernels = v.table(data, "kernels", _LANGUAGE_RE, "a language name", _check_kernelspec)
    kernels: dict[str, str] = {}
    for language, kernelspec in raw_kernels.items():
        canonical = normalize_language(language)
        if canonical in kernels:
            v.fail(f"language {canonical!r} is listed twice in [kernels]", language, "kernels")
        kernels[canonical] = kernelspec
    start = data.get("start")
    if start is not None and (not isinstance(start, str) or not start.strip() or "\0" in start):
        v.fail("'start' must be a non-empty string", "start")
    preload = data.get("preload")
    if preload is not None:
        if not isinstance(preload, list) or not all(isinstance(m, str) and _MODULE_RE.fullmatch(m) for m in preload):
            v.fail("'preload' must be a list of Python module names such as \"matplotlib.pyplot\"", "preload")
        preload = tuple(preload)
    return TemplateSpec(
        name=name,
        base=base,
        apt=apt,
        pip=pip,
        npm=npm,
        files=files,
        run=run,
        env=MappingProxyType(env),
        user=user,
        workdir=workdir,
        kernels=MappingProxyType(kernels),
        start=start,
        preload=preload,
        source=Path(path) if path is not None else None,
    )


def _files(v: _Validator, data: Mapping[str, Any], spec_file: Path | None) -> tuple[FileSpec, ...]:
    value = data.get("files", [])
    if not isinstance(value, list):
        v.fail(f"'files' must be an array of tables ([[files]]), not {_type(value)}", "files")
    entries = []
    dests: set[str] = set()
    for item in value:
        if not isinstance(item, Mapping):
            v.fail(f"'files' entries must be tables with src and dest, not {_type(item)}", "files")
        for key in item:
            if key not in _FILE_KEYS:
                v.fail(f"[[files]]: unknown key {key!r} (allowed: {', '.join(_FILE_KEYS)})", key, "files")
        src, dest, mode = item.get("src"), item.get("dest"), item.get("mode")
        if not isinstance(src, str) or not isinstance(dest, str):
            v.fail("[[files]] entries need 'src' and 'dest' strings", "src", "files")
        if not _REL_PATH_RE.fullmatch(src) or any(p in (".", "..") for p in src.split("/")):
            v.fail(
                f"[[files]] src {src!r} must be a relative path inside the spec's directory "
                "(no '..', no leading '/')",
                "src", "files", src,
            )  # fmt: skip
        if not _PATH_RE.fullmatch(dest) or any(p in (".", "..") for p in dest.split("/")):
            v.fail(f"[[files]] dest {dest!r} must be a normalized absolute path", "dest", "files", dest)
        hidden = next((p for p in _HIDDEN_DESTS if dest == p or dest.startswith(p + "/")), None)
        if hidden is not None or dest == "/":
            v.fail(f"[[files]] dest {dest!r}: the sandbox mounts over {hidden or '/'}", "dest", "files", dest)
        if dest in dests:
            v.fail(f"[[files]] dest {dest!r} is listed twice", "dest", "files", dest)
        dests.add(dest)
        if mode is not None and (not isinstance(mode, str) or not _MODE_RE.fullmatch(mode)):
            v.fail(f'[[files]] mode {mode!r} must be an octal string such as "0644"', "mode", "files")
        if spec_file is not None:
            _check_source(v, spec_file, src)
        entries.append(FileSpec(src=src, dest=dest, mode=mode))
    return tuple(entries)


def _check_source(v: _Validator, spec_file: Path, src: str) -> None:
    base = spec_file.resolve().parent
    target = (base / src).resolve()
    if target != base and base not in target.parents:
        v.fail(f"[[files]] src {src!r} resolves to {target}, outside {base}", "src", "files", src)
    if not target.exists():
        v.fail(f"[[files]] src {src!r} does not exist (looked for {target})", "src", "files", src)
    if not (target.is_file() or target.is_dir()):
        v.fail(f"[[files]] src {src!r} is neither a file nor a directory", "src", "files", src)


def _commands(v: _Validator, data: Mapping[str, Any]) -> tuple[str, ...]:
    value = data.get("run", [])
    if not isinstance(value, list):
        v.fail(f"'run' must be a list of shell commands, not {_type(value)}", "run")
    for item in value:
        if not isinstance(item, str):
            v.fail(f"'run' entries must be strings, not {_type(item)}", "run")
        if not item.strip() or "\0" in item or len(item) > MAX_COMMAND:
            v.fail("'run' entries must be non-empty commands without NUL, at most 64 KiB", "run", value=item)
    return tuple(value)


def _check_env_value(value: str) -> str | None:
    return "must not contain NUL" if "\0" in value else None


def _check_kernelspec(value: str) -> str | None:
    return None if _KERNELSPEC_RE.fullmatch(value) else "is not a valid kernelspec name"


class _Validator:
    """Type checks with error messages that point at the offending line of the TOML source."""

    def __init__(self, path: str | Path | None, text: str | None):
        self.path = path
        self.lines = text.splitlines() if text is not None else []

    def fail(self, problem: str, key: str, table: str | None = None, value: str | None = None) -> NoReturn:
        raise TemplateSpecError(problem, path=self.path, line=self._line_of(key, table, value))

    def string(self, data: Mapping[str, Any], key: str, *, default: str = "", required: bool = False) -> str:
        if key not in data:
            if required:
                self.fail(f"missing required key {key!r}", key)
            return default
        value = data[key]
        if not isinstance(value, str):
            self.fail(f"{key!r} must be a string, not {_type(value)}", key)
        return value

    def packages(
        self, data: Mapping[str, Any], key: str, pattern: re.Pattern[str], what: str
    ) -> tuple[str, ...]:
        value = data.get(key, [])
        if not isinstance(value, list):
            self.fail(f"{key!r} must be a list of strings, not {_type(value)}", key)
        seen: set[str] = set()
        for item in value:
            if not isinstance(item, str):
                self.fail(f"{key!r} entries must be strings, not {_type(item)}", key)
            if item.lstrip().startswith("-"):
                self.fail(
                    f"{key!r} entry {item!r} looks like an option; options are not allowed",
                    key,
                    value=item,
                )
            if not pattern.fullmatch(item):
                self.fail(f"{key!r} entry {item!r} is not {what}", key, value=item)
            if item in seen:
                self.fail(f"{key!r} lists {item!r} twice", key, value=item)
            seen.add(item)
        return tuple(value)

    def table(
        self,
        data: Mapping[str, Any],
        key: str,
        key_re: re.Pattern[str],
        what: str,
        check: Callable[[str], str | None],
    ) -> dict[str, str]:
        value = data.get(key, {})
        if not isinstance(value, Mapping):
            self.fail(f"{key!r} must be a table, not {_type(value)}", key)
        for name, item in value.items():
            if not key_re.fullmatch(name):
                self.fail(f"[{key}] key {name!r} is not {what}", name, key)
            if not isinstance(item, str):
                self.fail(f"[{key}] {name!r} must be a string, not {_type(item)}", name, key)
            problem = check(item)
            if problem:
                self.fail(f"[{key}] {name!r}: value {item!r} {problem}", name, key)
        return dict(value)

    def _line_of(self, key: str, table: str | None, value: str | None) -> int | None:
        """Best effort: the first line holding `value`, else the line assigning `key`."""
        if not self.lines:
            return None
        if value is not None:
            for quoted in (json.dumps(value), f"'{value}'"):
                for number, line in enumerate(self.lines, 1):
                    if quoted in line:
                        return number
        plain = re.compile(rf"""^\s*["']?{re.escape(key)}["']?\s*=""")
        dotted = (
            re.compile(rf"""^\s*{re.escape(table)}\s*\.\s*["']?{re.escape(key)}["']?\s*=""")
            if table is not None
            else None
        )
        in_table = table is None  # top-level keys live before the first [header]
        for number, line in enumerate(self.lines, 1):
            header = re.match(r"^\s*\[\[?\s*([^\]]+?)\s*\]", line)  # [table] or [[array]]
            if header:
                in_table = header.group(1) == table
                continue
            if (in_table and plain.match(line)) or (dotted is not None and dotted.match(line)):
                return number
        if table is not None:
            return self._line_of(table, None, None)
        return None


def _type(value: object) -> str:
    return {dict: "a table", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )
