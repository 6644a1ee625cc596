"""`strato access`, `strato token` and `strato audit`: access control from the command line.

Every command here but `strato access enable` needs an admin token (``STRATO_TOKEN``) once
access control is on; a new token's text is printed once and never again (only its hash is
kept), so the output is meant for a password manager or a secret store, not a log.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from strato.cli import render
from strato.cli.options import RepoOption
from strato.errors import UserError

if TYPE_CHECKING:
    from strato.store import FeatureStore

access_app = typer.Typer(help="Turn access control on or off, or show whether it is on.", no_args_is_help=True)
token_app = typer.Typer(help="Create, list and revoke API tokens.", no_args_is_help=True)


def _examples(*lines: str) -> str:
    return "[bold]Examples:[/]\n" + "\n".join(f"  {line}" for line in lines)


def _store(repo: Path | None) -> FeatureStore:
    from strato.config import CONFIG_FILE, load_config
    from strato.store import FeatureStore

    config = load_config(repo)
    if not (config.repo_path / CONFIG_FILE).is_file():
        raise UserError(f"no feature repo: no {CONFIG_FILE} in {config.repo_path}; create one with `strato init`")
    return FeatureStore(config=config)


def _whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _show_token(text: str, token_id: str, what: str) -> None:
    render.console.print(f"{escape(what)} (id {token_id}); it is shown only this once:", highlight=False)
    # Plain print: no wrapping or markup, so the token copies as one piece.
    print(text)


def _when(moment: datetime | None) -> str:
    return "" if moment is None else moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


@access_app.command(
    "enable", epilog=_examples("strato access enable", "export STRATO_TOKEN=strato_...   # the token it printed")
)
def enable(
    repo: RepoOption = None,
    name: Annotated[str, typer.Option("--name", help="Name of the first admin token.")] = "admin",
) -> None:
    """Turn access control on for the project and print its first admin token.

    From then on every store and server of the project needs a token: FeatureStore(token=...),
    STRATO_TOKEN, or `Authorization: Bearer` over HTTP.
    """
    from strato.access import admin

    with _store(repo) as store:
        token = admin.enable(store.access, created_by=_whoami(), name=name)
        _show_token(token.text, token.id, f"access control is on for project {store.project!r}; admin token {name!r}")


@access_app.command("disable", epilog=_examples("STRATO_TOKEN=strato_... strato access disable"))
def disable(repo: RepoOption = None) -> None:
    """Turn access control off (needs an admin token): stores then need no token again."""
    from strato.access import admin

    with _store(repo) as store:
        admin.disable(store.access)
        render.console.print(f"access control is off for project {store.project!r}", highlight=False)


@access_app.command("status", epilog=_examples("strato access status"))
def status(repo: RepoOption = None) -> None:
    """Say whether access control is on for the project."""
    with _store(repo) as store:
        state = "on" if store.access.access.enabled else "off"
        render.console.print(f"access control is {state} for project {store.project!r}", highlight=False)


@token_app.command(
    "create",
    epilog=_examples(
        "strato token create --role reader --view user_stats --name scoring",
        "strato token create --role writer --name ingest",
        "strato token create --role reader --service fraud_model_v1",
    ),
)
def create(
    role: Annotated[str, typer.Option("--role", help="reader, writer or admin.")],
    view: Annotated[
        list[str] | None,
        typer.Option("--view", help="Grant the role on this feature view (repeat for several).", show_default=False),
    ] = None,
    service: Annotated[
        list[str] | None,
        typer.Option(
            "--service", help="Grant the role on this feature service (repeat for several).", show_default=False
        ),
    ] = None,
    project: Annotated[
        str | None,
        typer.Option(
            "--project", help="Grant on the whole project (the default); must be the repo's.", show_default=False
        ),
    ] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="Who or what holds the token (default: the grant).", show_default=False)
    ] = None,
    repo: RepoOption = None,
) -> None:
    """Make an API token and print it once (needs an admin token in STRATO_TOKEN).

    The role is granted on the whole project, or on each --view and --service given.
    """
    from strato.access import admin

    with _store(repo) as store:
        if project is not None and project != store.project:
            raise UserError(f"--project {project!r}: this repo's project is {store.project!r}")
        if project is not None and (view or service):
            raise UserError("give --project, or --view/--service, not both")
        label = name or f"{role}-{'+'.join([*(view or []), *(service or [])]) or store.project}"
        token = admin.create_token(store.access, role, name=label, created_by=_whoami(), view=view, service=service)
        _show_token(token.text, token.id, f"token {label!r}")


@token_app.command("ls", epilog=_examples("strato token ls"))
def ls(repo: RepoOption = None) -> None:
    """List the project's tokens with their grants (never their secrets)."""
    from strato.access import admin
    from strato.access.policy import Grant

    with _store(repo) as store:
        rows = [
            (
                t.id,
                t.name,
                ", ".join(str(Grant.from_row(g)) for g in t.grants),
                t.created_by,
                _when(t.created_at),
                _when(t.revoked_at) or "live",
            )
            for t in admin.list_tokens(store.access)
        ]
    render.table(None, ["id", "name", "grants", "created by", "created (UTC)", "revoked (UTC)"], rows)


@token_app.command("revoke", epilog=_examples("strato token revoke 3f9c2a1b7d4e"))
def revoke(
    token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id, as `strato token ls` shows it.")],
    repo: RepoOption = None,
) -> None:
    """Revoke a token: stores and servers refuse it within seconds."""
    from strato.access import admin

    with _store(repo) as store:
        row = admin.revoke(store.access, token_id)
        render.console.print(f"revoked token {row.id} ({escape(row.name)})", highlight=False)


def audit(
    denied: Annotated[bool, typer.Option("--denied", help="Only denied actions.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", help="Only records from this ISO 8601 time on (UTC if no zone).", show_default=False),
    ] = None,
    limit: Annotated[int, typer.Option("--limit", help="Most records shown, newest first.")] = 50,
    repo: RepoOption = None,
) -> None:
    """Show the audit log: who did or tried what, on which object, when, allowed or denied.

    Denials and every write, apply and admin action have a row each; allowed reads are
    counted per token and object (the count column) every few seconds.
    """
    from strato.access import admin

    moment = None
    if since is not None:
        try:
            moment = datetime.fromisoformat(since)
        except ValueError:
            raise UserError(f"--since: {since!r} is not an ISO 8601 time (e.g. 2026-01-31T12:00:00)") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    with _store(repo) as store:
        records = admin.audit(store.access, denied_only=denied, since=moment, limit=limit)
    rows = [
        (
            _when(r.at),
            r.principal,
            r.action,
            r.object,
            "allowed" if r.allowed else "DENIED",
            r.reason,
            r.via + (f" {r.client}" if r.client else ""),
            r.count,
        )
        for r in records
    ]
    render.table(None, ["at (UTC)", "who", "action", "object", "result", "reason", "via", "count"], rows)


AUDIT_EPILOG = _examples("strato audit", "strato audit --denied --since 2026-01-31 --limit 20")
