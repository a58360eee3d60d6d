"""Expire items that carry `expires_at` (price history points) through DynamoDB TTL."""

from botocore.exceptions import ClientError


def apply(client, table_name: str) -> None:
    current = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if current.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        return
    try:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": "expires_at"},
        )
    except ClientError as exc:
        # Raised when TTL is already being enabled by a concurrent run.
        if exc.response["Error"]["Code"] != "ValidationException":
            raise
