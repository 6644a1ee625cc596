"""Name rules shared by every definition: names become table names, keys and SQL identifiers."""

from __future__ import annotations

import re

from strato.errors import DefinitionError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
RESERVED_COLUMNS = frozenset({"event_timestamp", "created_timestamp"})
RESERVED_PREFIX = "__strato"
"""Names Strato's engines use for their own columns and tables start with this (any case:
DuckDB compares identifiers without case), so no user name may: a feature `__strato_rid`
would otherwise be read back as the join's row id."""


def check_name(kind: str, name: object, *, where: str = "") -> str:
    """Return `name` if it is a valid identifier, else raise naming the object and the field."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        place = f" in {where}" if where else ""
        raise DefinitionError(
            f"{kind} name {name!r}{place} is invalid: use letters, digits and underscores, "
            "starting with a letter or underscore (at most 128 characters)"
        )
    if name.lower().startswith(RESERVED_PREFIX):
        place = f" in {where}" if where else ""
        raise DefinitionError(
            f"{kind} name {name!r}{place} is reserved: names starting with {RESERVED_PREFIX!r} are Strato's own"
        )
    return name


def check_tags(where: str, tags: object) -> dict[str, str]:
    if not isinstance(tags, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise DefinitionError(f"{where}: tags must be a dict of str to str, got {tags!r}")
    return dict(tags)
