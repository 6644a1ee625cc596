"""`PostgreSQLRegistry`: the registry on a shared PostgreSQL database, through psycopg 3.

The tables, queries and version rules are `SQLRegistry`'s; what differs on PostgreSQL
(isolation levels, row and advisory locks, which errors are worth a retry) lives there
too, chosen by dialect, so the two backends cannot drift apart. This class exists so
``registry: postgresql://user@host:5432/db`` picks a backend by its URL scheme and shows
under its own name in messages and in `strato.plugins.available("registry")`.
"""

from __future__ import annotations

from typing import ClassVar

from strato.registry.backends.sql import SQLRegistry


class PostgreSQLRegistry(SQLRegistry):
    """The registry in a PostgreSQL database; ``postgresql://`` URLs use psycopg 3."""

    name: ClassVar[str] = "postgresql"
