"""Sans-I/O part of `install_packages`: the request body and the result types."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from .._exceptions import InvalidArgumentError, ServerError


class InstalledPackage(NamedTuple):
    """One package `install_packages` put into the sandbox (a `(name, version)` tuple)."""

    name: str
    version: str


@dataclass
class InstallResult:
    """What `install_packages` did.

    Attributes:
        installed: The requested packages and the dependencies that came with them, as
            `(name, version)` tuples (`InstalledPackage`).
        log: The installer's output: the host-side resolution and download, then the install
            inside the sandbox.
    """

    installed: list[InstalledPackage] = field(default_factory=list)
    log: str = ""

    def version(self, name: str) -> str | None:
        """The installed version of `name` (case and `-`/`_`/`.` insensitive), or None."""
        wanted = _normalize(name)
        return next((p.version for p in self.installed if _normalize(p.name) == wanted), None)

    @classmethod
    def from_dict(cls, data: Any) -> InstallResult:
        if not isinstance(data, dict) or not isinstance(data.get("installed"), list):
            raise ServerError(f"unexpected install_packages answer: {data!r}"[:300])
        installed = [
            InstalledPackage(str(item["name"]), str(item["version"]))
            for item in data["installed"]
            if isinstance(item, dict) and "name" in item and "version" in item
        ]
        return cls(installed=installed, log=str(data.get("log") or ""))


def install_body(packages: Sequence[str] | str, language: str, timeout: float | None) -> dict[str, Any]:
    """The JSON of `POST /v1/sandboxes/{id}/packages` (a lone string is one package)."""
    if isinstance(packages, str):
        packages = [packages]
    packages = list(packages)
    if not packages or not all(isinstance(p, str) for p in packages):
        raise InvalidArgumentError("packages must be a non-empty list of strings such as 'humanize==4.9.0'")
    body: dict[str, Any] = {"packages": packages, "language": language}
    if timeout is not None:
        body["timeout"] = timeout
    return body


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")
