"""API tokens: salted hashes in config, constant-time matching, scopes (no Flask; the CLI uses it too)."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import threading
import time
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


def parse_tokens(raw: str, source: str = "API_TOKENS") -> list[TokenEntry]:
    """Read a JSON list of {name, scopes, hash} entries (API_TOKENS, or the token file).

    :raises ValueError: one line naming `source` and the entry at fault (the service refuses to start).
    """
    try:
        loaded = json.loads(raw or "[]")
    except json.JSONDecodeError as exc:
        raise ValueError(f"{source}: not valid JSON ({exc})") from None
    if isinstance(loaded, dict):
        loaded = [loaded]  # the single entry `create-token` prints, pasted as it is
    if not isinstance(loaded, list):
        raise ValueError(f"{source}: expected a JSON list of entries from `flask --app wsgi create-token`")
    return [_entry(source, index, entry) for index, entry in enumerate(loaded)]


def _entry(source: str, index: int, entry) -> TokenEntry:
    label = f"{source}: entry {index}"
    if not isinstance(entry, dict) or not {"name", "scopes", "hash"} <= set(entry):
        raise ValueError(f"{label}: expected an object with name, scopes and hash")
    label += f" ({entry['name']!r})"
    scopes = entry["scopes"]
    if not isinstance(scopes, list) or not scopes or not set(scopes) <= set(SCOPES):
        raise ValueError(f"{label}: scopes must be a non-empty list of {', '.join(SCOPES)}")
    parts = str(entry["hash"]).split("$")
    try:
        if len(parts) != 3 or parts[0] != "sha256":
            raise ValueError
        salt, digest = bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
    except ValueError:
        # The usual cause: `export API_TOKENS="..."` let the shell expand the $ in the hash.
        raise ValueError(
            f"{label}: hash is not sha256$<salt>$<digest> (in a shell, quote it with single quotes, "
            "or use API_TOKENS_FILE)"
        ) from None
    return TokenEntry(str(entry["name"]), frozenset(scopes), salt, digest)


def read_token_file(path: str) -> list[dict]:
    """The entries of a token file (a JSON list), or [] when it does not exist yet.

    :raises ValueError: the file is not a list of entries.
    """
    try:
        with open(path, encoding="utf-8") as file:
            raw = file.read()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ValueError(f"API_TOKENS_FILE {path}: cannot be read ({exc.strerror})") from None
    parse_tokens(raw, f"API_TOKENS_FILE {path}")
    return json.loads(raw or "[]") if raw.strip() else []


def merged_tokens(api_tokens: str, token_file: str | None) -> str:
    """API_TOKENS and the token file's entries as one validated JSON list.

    :raises ValueError: either is malformed (one line naming the entry), or two entries share a name.
    """
    parse_tokens(api_tokens)
    entries = json.loads(api_tokens or "[]")
    if isinstance(entries, dict):
        entries = [entries]
    if token_file:
        entries.extend(read_token_file(token_file))
    names = [entry["name"] for entry in entries]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        # A name is who the audit log and the rate limiter say acted: it must be one token's.
        raise ValueError(f"token name {twice[0]!r} is used twice (API_TOKENS and API_TOKENS_FILE together)")
    return json.dumps(entries)


class TokenBook:
    """The tokens the service accepts: API_TOKENS plus the token file, whose changes (a token
    created with `create-token --write`, or revoked) take effect without a restart.

    The file is looked at (one stat) at most every `check_seconds`, and read again only when
    it changed. A file that became malformed is not used: the tokens read before stay, and
    the problem is logged, so a half-edited file never locks every operator out.
    """

    def __init__(self, api_tokens: str, token_file: str | None, check_seconds: float = 2.0,
                 clock=time.monotonic, on_error=None):
        self.api_tokens, self.token_file = api_tokens, token_file
        self.check_seconds, self.clock, self.on_error = check_seconds, clock, on_error
        self._lock = threading.Lock()
        self._next_check = clock() + check_seconds
        self._stamp = self._file_stamp()
        self._entries = parse_tokens(merged_tokens(api_tokens, token_file))

    def entries(self) -> list[TokenEntry]:
        if self.token_file and self.clock() >= self._next_check:
            with self._lock:
                if self.clock() >= self._next_check:
                    self._next_check = self.clock() + self.check_seconds
                    self._reload()
        return self._entries

    def _file_stamp(self):
        try:
            found = os.stat(self.token_file) if self.token_file else None
        except OSError:
            return None
        return found and (found.st_mtime_ns, found.st_size, found.st_ino)

    def _reload(self) -> None:
        stamp = self._file_stamp()
        if stamp == self._stamp:
            return
        try:
            entries = parse_tokens(merged_tokens(self.api_tokens, self.token_file))
        except ValueError as exc:
            if self.on_error:
                self.on_error(exc)
            return  # tried again when the file changes next
        finally:
            self._stamp = stamp
        self._entries = entries


def append_token(path: str, entry: dict) -> None:
    """Add `entry` to the token file, creating it (and its directory) if needed, readable by its owner only.

    :raises ValueError: the file is malformed, or already has a token of that name.
    """
    entries = read_token_file(path)
    if any(existing["name"] == entry["name"] for existing in entries):
        raise ValueError(f"{path} already has a token named {entry['name']!r}: revoke it first "
                         f"(`flask --app wsgi revoke-token {entry['name']}`) or choose another name")
    entries.append(entry)
    _write_token_file(path, entries)


def remove_token(path: str, name: str) -> None:
    """Take the token named `name` out of the token file.

    :raises ValueError: the file is malformed, or has no token of that name.
    """
    entries = read_token_file(path)
    kept = [entry for entry in entries if entry["name"] != name]
    if len(kept) == len(entries):
        raise ValueError(f"{path} has no token named {name!r}")
    _write_token_file(path, kept)


def _write_token_file(path: str, entries: list[dict]) -> None:
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    # Written whole and renamed, so a service starting meanwhile never reads half a file.
    temporary = f"{path}.tmp-{os.getpid()}"
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        json.dump(entries, file, indent=2)
        file.write("\n")
    os.replace(temporary, path)


def identify(entries: Iterable[TokenEntry], token: str) -> TokenEntry | None:
    """The entry whose hash matches `token`, or None."""
    match = None
    # Every entry is compared, and in constant time, so timing tells nothing.
    for entry in entries:
        candidate = hashlib.sha256(entry.salt + token.encode()).digest()
        if hmac.compare_digest(candidate, entry.digest):
            match = entry
    return match
