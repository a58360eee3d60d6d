"""RefreshStateStore: the one item recording what the last price refreshes did."""

from __future__ import annotations

from ..domain import RefreshState
from . import mapping
from .dynamo import translate_errors


class RefreshStateStore:
    def __init__(self, client, table_name: str):
        self.client = client
        self.table_name = table_name

    def get(self) -> RefreshState:
        """The recorded state; an empty one before the first refresh."""
        with translate_errors("GetItem"):
            response = self.client.get_item(TableName=self.table_name, Key=mapping.REFRESH_STATE_KEY)
        if "Item" not in response:
            return RefreshState()
        return mapping.item_to_refresh_state(response["Item"])

    def put(self, state: RefreshState) -> None:
        with translate_errors("PutItem"):
            self.client.put_item(TableName=self.table_name, Item=mapping.refresh_state_to_item(state))
