"""Per-sandbox access tokens: what lets E2B's SDKs reach a sandbox on the shared origin.

The control plane hands one out with every create and connect (`envdAccessToken`, and the same
value as `trafficAccessToken`, which the code-interpreter SDK sends where it sends no other). The
server keeps only SHA-256 digests, on the live sandbox, so they die with it; a token is 256 random
bits, so an id alone gets nothing. Each connect adds a token rather than replacing one, so two
clients of one sandbox never lock each other out; past `MAX_TOKENS` connects the oldest goes.
"""

from __future__ import annotations

import hashlib
import secrets

from ..lifecycle import LiveSandbox

MAX_TOKENS = 4096
_KEY = "e2b_token_hashes"  # in LiveSandbox.record.extra: digest → None, oldest first


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def mint(live: LiveSandbox) -> str:
    token = "ns_sbx_" + secrets.token_urlsafe(32)
    digests: dict[bytes, None] = live.record.extra.setdefault(_KEY, {})
    digests[_digest(token)] = None
    while len(digests) > MAX_TOKENS:
        del digests[next(iter(digests))]
    return token


def verify(live: LiveSandbox, token: str | None) -> bool:
    """A dict lookup of the token's SHA-256: its timing says nothing usable about any stored token
    (finding a digest prefix is as hard as finding the token)."""
    return bool(token) and _digest(token) in live.record.extra.get(_KEY, {})
