"""Create the single table with the three rank-ordered asset indexes."""

from botocore.exceptions import ClientError

_INDEXES = {"by_rank": "kind", "by_status": "status", "by_category": "category"}


def apply(client, table_name: str) -> None:
    try:
        client.create_table(
            TableName=table_name,
            BillingMode="PAY_PER_REQUEST",
            AttributeDefinitions=[
                {"AttributeName": name, "AttributeType": "S"}
                for name in ("PK", "SK", "rank_key", *_INDEXES.values())
            ],
            KeySchema=[
                {"AttributeName": "PK", "KeyType": "HASH"},
                {"AttributeName": "SK", "KeyType": "RANGE"},
            ],
            GlobalSecondaryIndexes=[
                {
                    "IndexName": index,
                    "KeySchema": [
                        {"AttributeName": partition, "KeyType": "HASH"},
                        {"AttributeName": "rank_key", "KeyType": "RANGE"},
                    ],
                    # Listings return whole assets, so the index carries them whole.
                    "Projection": {"ProjectionType": "ALL"},
                }
                for index, partition in _INDEXES.items()
            ],
        )
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
    client.get_waiter("table_exists").wait(
        TableName=table_name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
