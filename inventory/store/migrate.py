"""The table itself: apply the numbered migrations in `migrations/` (each run recorded), report its status."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from datetime import datetime

import migrations

from . import mapping
from .dynamo import ConditionFailed, TableMissing, query_items, translate_errors

log = logging.getLogger(__name__)


def available() -> list[str]:
    """Migration module names in the order they apply."""
    return sorted(m.name for m in pkgutil.iter_modules(migrations.__path__) if m.name[:4].isdigit())


def applied(client, table_name: str) -> set[str]:
    """Names recorded as run; empty when the table does not exist yet."""
    try:
        table_status(client, table_name)
    except TableMissing:
        return set()
    request = {
        "TableName": table_name,
        "KeyConditionExpression": "PK = :pk",
        "ExpressionAttributeValues": {":pk": {"S": mapping.MIGRATION_PK}},
        "ConsistentRead": True,
    }
    return {item["SK"]["S"] for item in query_items(client, request)}


def table_status(client, table_name: str) -> str:
    """The table's status as DynamoDB reports it (ACTIVE, UPDATING, ...), for health checks."""
    with translate_errors("DescribeTable"):
        return client.describe_table(TableName=table_name)["Table"]["TableStatus"]


def migrate(client, table_name: str, now: datetime) -> list[str]:
    """Apply pending migrations in order; return the names applied this time."""
    done = applied(client, table_name)
    ran = []
    for name in available():
        if name in done:
            continue
        log.info("applying migration %s to %s", name, table_name)
        importlib.import_module(f"migrations.{name}").apply(client, table_name)
        _record(client, table_name, name, now)
        ran.append(name)
    return ran


def _record(client, table_name: str, name: str, now: datetime) -> None:
    try:
        with translate_errors("PutItem"):
            client.put_item(
                TableName=table_name,
                Item=mapping.migration_record(name, now),
                # Two deploys migrating at once: the first record wins, the second is a no-op.
                ConditionExpression="attribute_not_exists(PK)",
            )
    except ConditionFailed:
        pass

