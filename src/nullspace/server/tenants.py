"""Who is calling: the `Principal` every request carries, and the quotas a tenant runs under.

A tenant is a name the operator creates (`nullspace keys tenant create NAME`); each API key
belongs to one tenant, or to none (an admin key). A tenant sees and touches only its own
sandboxes; another tenant's sandbox answers exactly like one that never existed. The unix
socket and admin keys act as `ADMIN` and see everything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
DEFAULT_TENANT = "default"
"""Keys created without `--tenant` (and keys and sandboxes from before tenants) belong here."""


@dataclass(frozen=True)
class Principal:
    """The caller of one request. `tenant_id` None: an admin (unix socket or admin key)."""

    tenant_id: str | None
    key_id: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.tenant_id is None

    def owns(self, owner: str | None) -> bool:
        """May this caller see a sandbox owned by `owner` (a tenant id, None: an admin's)?"""
        return self.is_admin or owner == self.tenant_id


ADMIN = Principal(None, None)
"""The unix socket's principal: its file permissions are the authentication."""


@dataclass(frozen=True)
class Quotas:
    """Per-tenant limits set by the operator; None means no limit beyond the server's own."""

    max_sandboxes: int | None = None
    max_cpu: float | None = None
    max_memory_mb: int | None = None
    max_lifetime: int | None = None  # seconds from a sandbox's creation to its end


@dataclass(frozen=True)
class Tenant:
    id: str
    created_at: float
    quotas: Quotas
