"""Per-sandbox access tokens: what lets E2B's SDKs reach a sandbox on the shared origin.

The control plane hands one out with every create and connect (`envdAccessToken`, and the same
value as `trafficAccessToken`, which the code-interpreter SDK sends where it sends no other). The
server keeps only SHA-256 digests, on the live sandbox, so they die with it; a token is 256 random
bits, so an id alone gets nothing. Each connect adds a token rather than replacing one, so two
clients of one sandbox never lock each other out; the oldest goes past `MAX_TOKENS`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from ..lifecycle import LiveSandbox

MAX_TOKENS = 64
_KEY = "e2b_token_hashes"  # in LiveSandbox.record.extra


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def mint(live: LiveSandbox) -> str:
    token = "ns_sbx_" + secrets.token_urlsafe(32)
    digests: list[bytes] = live.record.extra.setdefault(_KEY, [])
    digests.append(_digest(token))
    del digests[:-MAX_TOKENS]
    return token


def verify(live: LiveSandbox, token: str | None) -> bool:
    if not token:
        return False
    digest = _digest(token)
    # compare_digest against every stored digest: no early exit that would time the match
    return any([hmac.compare_digest(digest, d) for d in live.record.extra.get(_KEY, ())])
