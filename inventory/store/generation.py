"""The stored catalog generation: a counter every catalog change bumps (README "Caching")."""

from __future__ import annotations

from .dynamo import translate_errors

# Its own item, so writers of the refresh state (a PutItem of the whole item)
# never reset it.
GENERATION_KEY = {"PK": {"S": "CATALOG"}, "SK": {"S": "GENERATION"}}


def read_generation(client, table_name: str) -> int:
    """The current generation; 0 before the first change.

    :raises StoreError: the store is unreachable.
    """
    with translate_errors("GetItem"):
        item = client.get_item(TableName=table_name, Key=GENERATION_KEY, ConsistentRead=True).get("Item")
    return int(item["generation"]["N"]) if item else 0


def bump_generation(client, table_name: str) -> int:
    """Add one to the generation after a committed catalog change; return the new value.

    :raises StoreError: the store is unreachable.
    """
    with translate_errors("UpdateItem"):
        response = client.update_item(
            TableName=table_name,
            Key=GENERATION_KEY,
            UpdateExpression="ADD generation :one",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="UPDATED_NEW",
        )
    return int(response["Attributes"]["generation"]["N"])
