"""Request and response bodies of the HTTP API (pydantic; they make the OpenAPI document)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from ..egress.api import NetworkSpec, SecretSpec
from .settings import Settings
from .store import SandboxRecord

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MAX_ENVS = 256
MAX_ENV_VALUE = 32 << 10
MAX_METADATA = 64
MAX_META_VALUE = 1024


def _check_envs(value: dict[str, str] | None) -> dict[str, str] | None:
    if value is None:
        return None
    if len(value) > MAX_ENVS:
        raise ValueError(f"at most {MAX_ENVS} environment variables")
    for key, val in value.items():
        if not ENV_NAME.match(key):
            raise ValueError(f"invalid environment variable name {key!r}")
        if "\0" in val or len(val) > MAX_ENV_VALUE:
            raise ValueError(f"environment variable {key!r}: value has NUL or is over 32 KiB")
    return value


def _check_text(value: Any, where: str = "") -> None:
    """Refuse strings that are not valid Unicode (a lone surrogate such as "\\ud800" cannot be
    stored, sent back or passed to a sandbox)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{where or 'text'} is not valid Unicode (a lone surrogate?)") from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_text(key, f"a key of {where or 'a map'}")
            _check_text(item, f"{where}.{key}" if where and isinstance(key, str) else where)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_text(item, where)


class Strict(BaseModel):
    """A request body: unknown fields refused, no type coercion (`"timeout": true` is not 1),
    no NaN or infinity, and valid Unicode only."""

    model_config = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _valid_text(cls, value: Any) -> Any:
        _check_text(value)
        return value


EnvName = Annotated[str, StringConstraints(pattern=ENV_NAME.pattern)]
EnvValue = Annotated[str, StringConstraints(max_length=MAX_ENV_VALUE)]
Envs = Annotated[dict[EnvName, EnvValue], Field(max_length=MAX_ENVS)]
MetaKey = Annotated[str, StringConstraints(min_length=1, max_length=128)]
MetaValue = Annotated[str, StringConstraints(max_length=MAX_META_VALUE)]


class CreateSandbox(Strict):
    template: str = Field("code-interpreter", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    timeout: int | None = Field(None, ge=1, le=Settings.max_timeout, description="seconds until the sandbox is killed")
    envs: Envs | None = None
    metadata: Annotated[dict[MetaKey, MetaValue], Field(max_length=MAX_METADATA)] | None = None
    cpu: float | None = Field(None, ge=Settings.min_cpu, le=Settings.max_cpu, description="CPU cores (quota)")
    memory_mb: int | None = Field(None, ge=64, le=Settings.max_memory_mb)
    disk_mb: int | None = Field(None, ge=16, le=Settings.max_disk_mb)
    auto_resume: bool = Field(False, description="a call to the paused sandbox resumes it instead of failing")
    network: NetworkSpec | None = Field(None, description="egress policy (docs/egress.md); default none")
    secrets: dict[str, SecretSpec] | None = Field(
        None, description="env name → value + hosts; the sandbox sees a placeholder (docs/egress.md)"
    )

    _envs = field_validator("envs")(_check_envs)

    @field_validator("secrets")
    @classmethod
    def _secret_names(cls, value: dict[str, SecretSpec] | None) -> dict[str, SecretSpec] | None:
        for key in value or {}:
            if not ENV_NAME.match(key):
                raise ValueError(f"invalid secret (environment variable) name {key!r}")
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        if value is not None:
            if len(value) > MAX_METADATA:
                raise ValueError(f"at most {MAX_METADATA} metadata entries")
            for key, val in value.items():
                if not key or len(key) > 128 or len(val) > MAX_META_VALUE:
                    raise ValueError(f"metadata {key!r}: key must be 1-128 chars, value ≤ 1024")
        return value


class SetTimeout(Strict):
    timeout: int = Field(..., ge=1, le=Settings.max_timeout)


class Pause(Strict):
    timeout: int | None = Field(None, ge=1, le=Settings.max_paused_timeout,
                                description="kill the sandbox if not resumed within this many seconds")


class Resume(Strict):
    timeout: int | None = Field(None, ge=1, le=Settings.max_timeout,
                                description="lifetime after resuming (default: what it had left)")


class SandboxInfo(BaseModel):
    sandbox_id: str
    template: str
    state: str
    created_at: datetime
    end_at: datetime
    ended_at: datetime | None = None
    end_reason: str | None = None
    metadata: dict[str, str]
    env_keys: list[str]
    cpu: float
    memory_mb: int
    disk_mb: int

    @classmethod
    def of(cls, rec: SandboxRecord) -> SandboxInfo:
        def ts(value: float | None) -> datetime | None:
            return None if value is None else datetime.fromtimestamp(value, UTC)

        return cls(
            sandbox_id=rec.id, template=rec.template, state=rec.state,
            created_at=ts(rec.created_at), end_at=ts(rec.end_at), ended_at=ts(rec.ended_at),
            end_reason=rec.end_reason, metadata=rec.metadata, env_keys=rec.env_keys,
            cpu=rec.cpu, memory_mb=rec.memory_mb, disk_mb=rec.disk_mb,
        )


class PauseInfo(SandboxInfo):
    memory_before_bytes: int = Field(description="memory the sandbox held (RAM) before the pause")
    memory_after_bytes: int = Field(description="memory still resident once paused (the rest is in swap)")


class Execute(Strict):
    code: str = Field(..., max_length=8 << 20)
    language: str | None = Field(None, max_length=64)
    context_id: str | None = Field(None, max_length=128)
    envs: Envs | None = None
    timeout: float | None = Field(None, gt=0, le=Settings.max_timeout)
    max_output_bytes: int | None = Field(None, ge=1, le=256 << 20)

    _envs = field_validator("envs")(_check_envs)


class CreateContext(Strict):
    language: str | None = Field(None, max_length=64)
    cwd: str | None = Field(None, max_length=4096)


class ContextInfo(BaseModel):
    id: str
    language: str
    cwd: str
    default: bool = False  # the language's default context (runs without a context id use it)


class ErrorBody(BaseModel):
    code: str
    message: str
