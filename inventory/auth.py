"""Bearer tokens: salted hashes in config, constant-time checks, scopes per token."""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

from flask import current_app, g, request

from .domain import Forbidden, Unauthorized

SCOPES = ("assets:read", "assets:write", "assets:admin")
TOKEN_PREFIX = "inv_"
_CHALLENGE = 'Bearer realm="inventory"'


@dataclass(frozen=True)
class TokenEntry:
    name: str
    scopes: frozenset[str]
    salt: bytes
    digest: bytes


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


def _identify(token: str) -> TokenEntry | None:
    match = None
    # Every entry is compared, and in constant time, so timing tells nothing.
    for entry in current_app.extensions["inventory"]["tokens"]:
        candidate = hashlib.sha256(entry.salt + token.encode()).digest()
        if hmac.compare_digest(candidate, entry.digest):
            match = entry
    return match


def authenticate() -> TokenEntry:
    """The token entry behind this request's Authorization header.

    :raises Unauthorized: missing, malformed or unknown token.
    """
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        raise Unauthorized(headers={"WWW-Authenticate": _CHALLENGE})
    entry = _identify(token.strip())
    if entry is None:
        raise Unauthorized(
            "The token is not valid.", headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'}
        )
    g.token_name = entry.name
    return entry


def require_scope(scope: str):
    """View decorator: a valid token carrying `scope` (admin implies write and read)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            entry = authenticate()
            if not _grants(entry.scopes, scope):
                raise Forbidden(
                    f"This token lacks the {scope} scope.",
                    headers={"WWW-Authenticate": _CHALLENGE + f', error="insufficient_scope", scope="{scope}"'},
                )
            return view(*args, **kwargs)

        return wrapper

    return decorator


def _grants(scopes: frozenset[str], wanted: str) -> bool:
    implied = {"assets:admin": set(SCOPES), "assets:write": {"assets:write", "assets:read"}}
    return any(wanted == s or wanted in implied.get(s, ()) for s in scopes)


def check_read_access() -> None:
    """before_request: with REQUIRE_AUTH_FOR_READS, reads need a token with assets:read."""
    if not current_app.config["REQUIRE_AUTH_FOR_READS"] or not request.path.startswith("/inventory/"):
        return
    # batch-get is a read that takes its ids in a body.
    if request.method not in ("GET", "HEAD") and request.path != "/inventory/assets/batch-get":
        return
    entry = authenticate()
    if not _grants(entry.scopes, "assets:read"):
        raise Forbidden("This token lacks the assets:read scope.")
