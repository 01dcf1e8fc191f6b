"""``headend keys``: API keys for the HTTP API (create, list, revoke)."""

from __future__ import annotations

import typer

from headend.cli.output import emit
from headend.cli.state import CLI, get_runtime
from headend.domain.enums import Role
from headend.services.access.keys import KeyService

KEY_COLUMNS = (
    ("name", "name"),
    ("role", "role"),
    ("state", "state"),
    ("key", "key"),
    ("created_at", "created"),
    ("last_used_at", "last used"),
)
keys_app = typer.Typer(help="API keys: create (shown once), list, revoke.", no_args_is_help=True)


def _service(ctx: typer.Context) -> KeyService:
    return get_runtime(ctx).keys


@keys_app.command("create")
def create(
    ctx: typer.Context,
    name: str = typer.Option(..., help="Who or what uses the key, e.g. billing-cmis."),
    role: Role = typer.Option(..., help="billing, technician, operator or admin."),
) -> None:
    """Create a key and print it. It is shown this once and stored only as a hash."""
    info, key = _service(ctx).create(name, role, actor=CLI)
    typer.echo(key)
    typer.echo(
        f"key {info.name!r} ({info.role}) created; keep it now, it is not shown again", err=True
    )


@keys_app.command("list")
def list_keys(ctx: typer.Context, as_json: bool = typer.Option(False, "--json")) -> None:
    """Every key with its role and state (never the key itself)."""
    keys = _service(ctx)
    items = [
        {
            "name": k.name,
            "prefix": k.prefix,
            "role": str(k.role),
            "created_at": k.created_at.isoformat(),
            "revoked_at": k.revoked_at.isoformat() if k.revoked_at else None,
            "last_used_at": k.last_used_at.isoformat() if k.last_used_at else None,
        }
        for k in keys.list()
    ]
    shown = [
        {
            **item,
            "key": f"hk_{item['prefix']}_…",
            "state": "revoked" if item["revoked_at"] else "active",
        }
        for item in items
    ]
    emit(items if as_json else shown, KEY_COLUMNS, as_json)


@keys_app.command("revoke")
def revoke(ctx: typer.Context, name: str = typer.Argument(..., help="The key's name.")) -> None:
    """Revoke a key: requests with it are refused from now on."""
    _service(ctx).revoke(name, actor=CLI)
    typer.echo(f"key {name!r} revoked")


def register(app: typer.Typer) -> None:
    app.add_typer(keys_app, name="keys")
