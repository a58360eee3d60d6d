"""Flask CLI commands: thin wrappers over plain functions (migrate, seed, refresh, backfill, tokens)."""

from __future__ import annotations

import functools
import json
import logging
import os
import sys
from typing import TYPE_CHECKING

import click
from flask import Flask
from flask.cli import with_appcontext

from .api.extension import AppState, services, state
from .config import development_store
from .domain.errors import AssetNotFound, InventoryError, PriceSourceError
from .jobs.seed import bundled_rows
from .services.tokens import SCOPES, append_token, hash_token, new_token, remove_token

if TYPE_CHECKING:
    from .services.admin import CatalogAdmin


def register(app: Flask) -> None:
    app.cli.add_command(migrate_command)
    app.cli.add_command(seed_command)
    app.cli.add_command(refresh_command)
    app.cli.add_command(backfill_history_command)
    app.cli.add_command(create_token_command)
    app.cli.add_command(revoke_token_command)


def _credentials_found() -> bool:
    from .store.dynamo import credentials_found

    return credentials_found()


def admin() -> CatalogAdmin:
    """The catalog's admin jobs, pointed at DynamoDB Local first when nothing else is configured (docs/development.md "Which DynamoDB the commands use")."""
    app_state = state()
    app_state.patient = True  # a command is a batch job: nobody waits on one request (store/dynamo.py)
    if not app_state.built:
        _use_this_checkouts_run(app_state)
    if "LOG_LEVEL" not in os.environ:
        # The one-line error below says what the store's warnings would; keep stderr to that line.
        logging.getLogger().setLevel(logging.ERROR)
    return services().admin


def _use_this_checkouts_run(state: AppState) -> None:
    """Point the command at what this checkout's running `make run` uses (.local/run.json):
    its DynamoDB Local and, under `make demo`, its price source, when nothing else is set.
    A command set to use another store says so, in one line."""
    from .devtools.local_run import RUN_FILE, running

    config = state.config
    run = running() or {}
    if not config.DYNAMODB_ENDPOINT_URL:
        endpoint = development_store(os.environ, _credentials_found(), run.get("dynamodb_endpoint"))
        if endpoint:
            config = config.replace(DYNAMODB_ENDPOINT_URL=endpoint)
            state.development_store = endpoint
            state.from_run_file = endpoint == run.get("dynamodb_endpoint")
    elif run.get("dynamodb_endpoint") and run["dynamodb_endpoint"] != config.DYNAMODB_ENDPOINT_URL:
        click.echo(f"note: this checkout's `make run` uses {run['dynamodb_endpoint']}; this command uses "
                   f"{config.DYNAMODB_ENDPOINT_URL} (DYNAMODB_ENDPOINT_URL)", err=True)
    if run.get("price_source") and "COINGECKO_API_URL" not in os.environ:
        config = config.replace(COINGECKO_API_URL=run["price_source"])
        click.echo(f"prices from the demo's emulator at {run['price_source']} ({RUN_FILE})", err=True)
    state.config = config


def _store_label() -> str:
    app_state = state()
    if app_state.from_run_file:
        from .devtools.local_run import RUN_FILE

        return f"DynamoDB Local at {app_state.development_store} (this checkout's `make run`, {RUN_FILE})"
    if app_state.development_store:
        return f"DynamoDB Local at {app_state.development_store} (no DYNAMODB_ENDPOINT_URL, no AWS credentials)"
    config = app_state.config
    return f"DynamoDB at {config.DYNAMODB_ENDPOINT_URL or f'AWS ({config.AWS_REGION})'}"


def explain(error: BaseException) -> str:
    """One line saying what failed and what to do, for any error a command can meet."""
    from .store.dynamo import store_problem

    config = state().config
    where = _store_label()
    problem = store_problem(error)
    if problem == "no_credentials":
        return ("no AWS credentials found: configure them (environment, profile, role), "
                "or unset USE_REAL_AWS to use DynamoDB Local")
    if problem == "unreachable":
        return f"{where} is not reachable: start it (`make run` does) or set DYNAMODB_ENDPOINT_URL"
    if problem == "table_missing":
        return f"table {config.DYNAMODB_TABLE_NAME} does not exist in {where}: run `flask --app wsgi migrate`"
    if problem.startswith("refused:"):
        return f"{where} refused the call: {problem.partition(':')[2]}"
    if isinstance(error, PriceSourceError):
        return f"CoinGecko at {config.COINGECKO_API_URL}: {error.message} (COINGECKO_API_URL changes it)"
    if isinstance(error, InventoryError):
        return error.message
    return f"{type(error).__name__}: {error}"


def one_line_errors(command):
    """Turn any failure into one line on stderr and exit code 1, never a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        from .store.dynamo import STORE_FAILURES

        try:
            result = command(*args, **kwargs)
        except (InventoryError, OSError, *STORE_FAILURES) as exc:
            raise click.ClickException(explain(exc)) from exc
        if state().development_store:
            click.echo(f"used {_store_label()}", err=True)
        return result

    return wrapper


@click.command("migrate")
@with_appcontext
@one_line_errors
def migrate_command():
    """Apply pending table migrations (idempotent)."""
    ran = admin().migrate()
    if ran:
        click.echo(f"applied {len(ran)} migration(s): {', '.join(ran)}")
    else:
        click.echo("nothing to apply: the table is up to date")


@click.command("seed")
@click.option(
    "--from-coingecko", is_flag=True, help="Fetch the live catalog instead of the bundled one."
)
@with_appcontext
@one_line_errors
def seed_command(from_coingecko: bool):
    """Load the catalog into the table; safe to run again."""
    catalog = admin()
    if from_coingecko:
        from .source import client_from_config

        rows = client_from_config(catalog.config).fetch_markets(catalog.config.PRICE_REFRESH_PAGES).rows
    else:
        rows = bundled_rows()
    with click.progressbar(length=len(rows), label="seeding", file=sys.stderr) as bar:
        report = catalog.seed(rows, progress=bar.update)
    click.echo(json.dumps(report.as_dict(), indent=2))


@click.command("refresh")
@with_appcontext
@one_line_errors
def refresh_command():
    """Refresh prices from CoinGecko once and print the report."""
    from .jobs.scheduler import build_refresher

    catalog = admin()
    report = build_refresher(catalog.config)()
    click.echo(json.dumps(report.as_dict(), indent=2))
    if not report.ok:
        raise click.ClickException(f"refresh failed: {report.error} (prices from {catalog.config.COINGECKO_API_URL}; "
                                   "COINGECKO_API_URL changes it)")


@click.command("backfill-history")
@click.argument("asset_id")
@click.option("--days", type=click.IntRange(1, 365), default=30, show_default=True,
              help="How far back (keyless plans allow 365 days).")
@with_appcontext
@one_line_errors
def backfill_history_command(asset_id: str, days: int):
    """Fill an asset's price history from CoinGecko's market_chart, and roll up the finished days it covered."""
    from .source import client_from_config

    catalog = admin()
    asset_id = asset_id.strip().upper()
    try:
        asset, written, rolled = catalog.backfill_history(client_from_config(catalog.config), asset_id, days)
    except AssetNotFound as exc:
        raise click.ClickException(f"no asset {asset_id!r} in the catalog (seed it, or check the id)") from exc
    # Every day rolled up holds the asset's candle: one candle and one report per day.
    click.echo(f"{asset.asset_id}: {written} points written; {len(rolled.days)} daily candles and "
               f"{len(rolled.days)} day reports rolled up")


DEFAULT_TOKEN_FILE = ".local/tokens.json"


@click.command("create-token")
@click.argument("name")
@click.option("--scope", "scopes", multiple=True, required=True, type=click.Choice(SCOPES),
              help="Repeat for several scopes.")
@click.option("--write", is_flag=True,
              help=f"Append the entry to API_TOKENS_FILE ({DEFAULT_TOKEN_FILE} unless set) and print only the token.")
def create_token_command(name: str, scopes: tuple[str, ...], write: bool):
    """Make a bearer token: print it once, and store (--write) or print its API_TOKENS entry (a salted hash)."""
    token = new_token()
    entry = {"name": name, "scopes": sorted(set(scopes)), "hash": hash_token(token)}
    if write:
        path = _change_token_file(append_token, entry)
        # stdout is the token alone, so `TOKEN=$(... --write)` captures it.
        click.echo(f"added {name} to {path}; a running service accepts it within seconds", err=True)
        click.echo(token)
        return
    click.echo(f"token (shown once, give it to {name}): {token}")
    click.echo("API_TOKENS value (a JSON list; in a shell, quote it with single quotes: the hash holds $):")
    click.echo(json.dumps([entry]))


@click.command("revoke-token")
@click.argument("name")
def revoke_token_command(name: str):
    """Remove a token from API_TOKENS_FILE: a running service refuses it within seconds."""
    path = _change_token_file(remove_token, name)
    click.echo(f"removed {name} from {path}; a running service refuses it within seconds", err=True)


def _change_token_file(change, argument) -> str:
    """Apply `change(path, argument)` to API_TOKENS_FILE (DEFAULT_TOKEN_FILE unless set); its path."""
    path = os.environ.get("API_TOKENS_FILE") or DEFAULT_TOKEN_FILE
    try:
        change(path, argument)
    except (OSError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    return path
