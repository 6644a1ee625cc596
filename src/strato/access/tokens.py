"""API tokens: ``strato_<id>_<secret>``, shown once, stored as the SHA-256 of the secret.

The id is public (it names the token in `strato token ls`, the audit log and revocation); the
secret is 256 random bits, so a plain SHA-256 is as good as a slow password hash here: there is
no dictionary to try. Checking compares digests with `hmac.compare_digest`, in constant time.
Nothing in this module logs, and `Token.__repr__` hides the secret.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field

PREFIX = "strato"
_ID_BYTES = 6  # 12 hex characters: unique enough per project, short enough to type
_SECRET_BYTES = 32
_SHAPE = re.compile(r"strato_([0-9a-f]{12})_([A-Za-z0-9_-]{20,128})")


@dataclass(frozen=True)
class Token:
    """A freshly made token: its `text` is what the holder sends; only `secret_sha256` is stored."""

    id: str
    text: str = field(repr=False)
    secret_sha256: str


def new_token() -> Token:
    token_id = secrets.token_hex(_ID_BYTES)
    secret = secrets.token_urlsafe(_SECRET_BYTES)
    return Token(token_id, f"{PREFIX}_{token_id}_{secret}", digest(secret))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def parse(text: str) -> tuple[str, str] | None:
    """(id, secret) of a well-formed token, else None (never says what was wrong with it)."""
    match = _SHAPE.fullmatch(text.strip())
    return (match.group(1), match.group(2)) if match else None


def matches(secret: str, stored_sha256: str) -> bool:
    """Whether `secret` hashes to `stored_sha256`, compared in constant time."""
    return hmac.compare_digest(digest(secret).encode(), stored_sha256.encode())
