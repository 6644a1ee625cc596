"""What the registry keeps for access control, as plain rows: tokens with their grants, audit.

The registry only stores these; what they mean (which role may do what, how a token is
checked) is decided in `strato.access`, the one place both the SDK and the server ask. A token's
secret is never here: only its SHA-256, which is enough for a random 256-bit secret (no salt
or slow hash is needed when the input cannot be guessed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

SCOPE_KINDS = ("project", "feature_view", "feature_service")
"""What a grant can cover: the whole project, or one view or service by name."""


@dataclass(frozen=True)
class GrantRow:
    """One role on one scope. `scope_name` is None for the project scope."""

    role: str
    scope_kind: str
    scope_name: str | None = None


@dataclass(frozen=True)
class TokenRow:
    """An API token as stored: its public id, who holds it, the hash of its secret, its grants."""

    id: str
    name: str
    secret_sha256: str
    created_at: datetime
    created_by: str
    grants: tuple[GrantRow, ...]
    revoked_at: datetime | None = None

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None


@dataclass(frozen=True)
class AuditRow:
    """One audit record: who did (or tried) what on which object, when, and whether it was allowed.

    `count` > 1 stands for that many allowed reads of the same object by the same principal,
    aggregated over `at`'s refresh interval (reads are too many to log one by one).
    """

    at: datetime
    principal: str
    action: str
    object: str
    allowed: bool
    reason: str = ""
    via: str = "sdk"
    client: str = ""
    count: int = 1
