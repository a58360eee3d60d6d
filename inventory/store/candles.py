"""CandleStore: daily candles per asset and per day, with each day's market totals."""

from __future__ import annotations

from datetime import date

from ..domain import Fence
from ..domain.history import CANDLE_RETENTION_DAYS, Candle, DayTotals
from . import mapping
from .dynamo import query_items, translate_errors, write_groups


class CandleStore:
    """Cost (docs/api.md "History and candles"): a roll-up writes 2 items per asset-day plus one totals
    item; the 1d history is one Query of <= 366 small items; a day report one Query of the day."""

    def __init__(self, client, table_name: str, write_concurrency: int = 4):
        self.client = client
        self.table_name = table_name
        self.write_concurrency = write_concurrency

    def put_day(self, candles: dict[str, Candle], totals: DayTotals, fence: Fence | None = None) -> None:
        """Store one finished day: each asset's candle, then the totals that mark the day as rolled up.

        :raises LeaseLost: the fence's lease has moved on.
        """
        put = lambda item: {"Put": {"TableName": self.table_name, "Item": item}}  # noqa: E731
        groups = [[put(i) for i in mapping.candle_items(a, c, CANDLE_RETENTION_DAYS)] for a, c in sorted(candles.items())]
        check = mapping.fence_check(self.table_name, fence)
        write_groups(self.client, groups, self.write_concurrency, check)
        # Last, so a roll-up cut short is redone (its puts are idempotent).
        write_groups(self.client, [[put(mapping.day_totals_item(totals, CANDLE_RETENTION_DAYS))]], 1, check)

    def totals(self, day: date) -> DayTotals | None:
        """The day's totals, None when the day is not rolled up."""
        with translate_errors("GetItem"):
            item = self.client.get_item(
                TableName=self.table_name,
                Key={"PK": {"S": mapping.DAY_PREFIX + day.isoformat()}, "SK": {"S": mapping.DAY_TOTALS_SK}},
            ).get("Item")
        return mapping.item_to_day_totals(item) if item else None

    def day(self, day: date) -> tuple[dict[str, Candle], DayTotals | None]:
        """Every asset's candle of one day by asset id, and the day's totals (None: not rolled up)."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk",
            "ExpressionAttributeValues": {":pk": {"S": mapping.DAY_PREFIX + day.isoformat()}},
        }
        candles, totals = {}, None
        for item in query_items(self.client, request):
            if item["SK"]["S"] == mapping.DAY_TOTALS_SK:
                totals = mapping.item_to_day_totals(item)
            else:
                candles[item["SK"]["S"]] = mapping.item_to_candle(item, day_from_sk=False)
        return candles, totals

    def asset_days(self, asset_id: str, first: date, last: date) -> list[Candle]:
        """One asset's daily candles from `first` to `last` (inclusive), oldest first."""
        request = {
            "TableName": self.table_name,
            "KeyConditionExpression": "PK = :pk AND SK BETWEEN :first AND :last",
            "ExpressionAttributeValues": {
                ":pk": {"S": mapping.CANDLE_PREFIX + asset_id},
                ":first": {"S": first.isoformat()},
                ":last": {"S": last.isoformat()},
            },
        }
        return [mapping.item_to_candle(item, day_from_sk=True) for item in query_items(self.client, request)]
