"""Flask CLI commands: thin wrappers over plain functions (migrate, seed, refresh)."""

from __future__ import annotations

import json
import sys

import click
from flask import Flask, current_app
from flask.cli import with_appcontext

from .auth import SCOPES, hash_token, new_token
from .catalog import bundled_rows, sync_catalog
from .domain import utcnow
from .extensions import get_service
from .store.migrate import migrate


def register(app: Flask) -> None:
    app.cli.add_command(migrate_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(refresh_command)
    app.cli.add_command(backfill_history_command)
    app.cli.add_command(create_token_command)


@click.command("migrate")
@with_appcontext
def migrate_command():
    """Apply pending table migrations (idempotent)."""
    config = current_app.config
    service = get_service()
    ran = migrate(service.store.client, config["DYNAMODB_TABLE_NAME"], utcnow())
    if ran:
        click.echo(f"applied {len(ran)} migration(s): {', '.join(ran)}")
    else:
        click.echo("nothing to apply: the table is up to date")


@click.command("seed")
@click.option(
    "--from-coingecko", is_flag=True, help="Fetch the live catalog instead of the bundled one."
)
@with_appcontext
def seed_command(from_coingecko: bool):
    """Load the catalog into the table; safe to run again."""
    service = get_service()
    if from_coingecko:
        from .pricing import client_from_config

        rows = client_from_config(service.config).fetch_markets(service.config.PRICE_REFRESH_PAGES).rows
    else:
        rows = bundled_rows()
    now = utcnow()
    with click.progressbar(length=len(rows), label="seeding", file=sys.stderr) as bar:
        report = sync_catalog(rows, service.store, now, progress=bar.update)
    service.store.recount(now, service.max_age)
    service.forget()  # running servers drop what they cached of the old catalog
    click.echo(json.dumps(report.as_dict(), indent=2))


@click.command("refresh")
@with_appcontext
def refresh_command():
    """Refresh prices from CoinGecko once and print the report."""
    from .pricing.scheduler import build_refresher

    report = build_refresher(get_service().config)()
    click.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        raise SystemExit(1)


@click.command("backfill-history")
@click.argument("asset_id")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True,
              help="How far back (keyless plans allow 365 days).")
@with_appcontext
def backfill_history_command(asset_id: str, days: int):
    """Fill an asset's price history from CoinGecko's market_chart."""
    from .pricing import client_from_config
    from .pricing.history import backfill_history

    service = get_service()
    asset = service.store.get(asset_id.strip().upper())
    written = backfill_history(client_from_config(service.config), service.prices, asset, days, utcnow())
    click.echo(f"{asset.asset_id}: {written} points written")


@click.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="Repeat for several scopes.")
def create_token_command(name: str, scopes: tuple[str, ...]):
    """Print a new bearer token once, and the API_TOKENS entry (its salted hash) to configure."""
    token = new_token()
    entry = {"name": name, "scopes": sorted(set(scopes)), "hash": hash_token(token)}
    click.echo(f"token (shown once, give it to {name}): {token}")
    click.echo("add to API_TOKENS (a JSON list):")
    click.echo(json.dumps(entry))
