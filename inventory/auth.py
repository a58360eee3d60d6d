"""API tokens: salted hashes in config, constant-time matching, scopes (no Flask; the CLI uses it too)."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

SCOPES = ("assets:read", "assets:write", "assets:admin")
TOKEN_PREFIX = "inv_"
# What each scope grants besides itself.
_IMPLIED = {"assets:admin": frozenset(SCOPES), "assets:write": frozenset({"assets:write", "assets:read"})}


@dataclass(frozen=True)
class TokenEntry:
    name: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes

    def grants(self, wanted: str) -> bool:
        """Whether this token carries `wanted` (admin implies write and read, write implies read)."""
        return any(wanted == s or wanted in _IMPLIED.get(s, ()) for s in self.scopes)


def hash_token(token: str, salt: bytes | None = None) -> str:
    """`sha256$<salt hex>$<digest hex>`: tokens are 256 random bits, so a fast salted hash is enough."""
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.sha256(salt + token.encode()).hexdigest()
    return f"sha256${salt.hex()}${digest}"


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def parse_tokens(raw: str) -> list[TokenEntry]:
    """Read API_TOKENS (a JSON list of {name, scopes, hash}).

    :raises ValueError: malformed configuration (the service refuses to start).
    """
    entries = []
    for entry in json.loads(raw or "[]"):
        scheme, salt, digest = entry["hash"].split("$")
        scopes = frozenset(entry["scopes"])
        if scheme != "sha256" or not scopes <= set(SCOPES):
            raise ValueError(f"API_TOKENS: bad entry for {entry.get('name')!r}")
        entries.append(TokenEntry(entry["name"], scopes, bytes.fromhex(salt), bytes.fromhex(digest)))
    return entries


def identify(entries: Iterable[TokenEntry], token: str) -> TokenEntry | None:
    """The entry whose hash matches `token`, or None."""
    match = None
    # Every entry is compared, and in constant time, so timing tells nothing.
    for entry in entries:
        candidate = hashlib.sha256(entry.salt + token.encode()).digest()
        if hmac.compare_digest(candidate, entry.digest):
            match = entry
    return match
