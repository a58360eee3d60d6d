"""GenerationStore: the catalog generation, a counter every catalog change bumps (README "Caching")."""

from __future__ import annotations

from . import mapping
from .dynamo import translate_errors


class GenerationStore:
    def __init__(self, client, table_name: str):
        self.client = client
        self.table_name = table_name

    def read(self) -> int:
        """The current generation; 0 before the first change.

        :raises StoreError: the store is unreachable.
        """
        with translate_errors("GetItem"):
            item = self.client.get_item(
                TableName=self.table_name, Key=mapping.GENERATION_KEY, ConsistentRead=True
            ).get("Item")
        return mapping.item_to_generation(item)

    def bump(self) -> int:
        """Add one after a committed catalog change; return the new value.

        :raises StoreError: the store is unreachable.
        """
        with translate_errors("UpdateItem"):
            response = self.client.update_item(
                TableName=self.table_name, ReturnValues="UPDATED_NEW", **mapping.generation_bump()
            )
        return mapping.item_to_generation(response["Attributes"])
