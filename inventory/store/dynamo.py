"""The boto3 client and the one place botocore errors become typed store errors."""

from __future__ import annotations

import contextlib
import logging
import os

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

from ..config import Config
from ..errors import StoreError

log = logging.getLogger(__name__)


class ConditionFailed(Exception):
    """A conditional write did not apply; callers turn it into a domain error."""


class TableMissing(StoreError):
    message = "The table does not exist; run `flask --app wsgi migrate`."


def make_client(config: Config):
    """Build the DynamoDB client from Config; call it after gunicorn forks."""
    kwargs = {}
    if config.DYNAMODB_ENDPOINT_URL:
        kwargs["endpoint_url"] = config.DYNAMODB_ENDPOINT_URL
        # A local store accepts any credentials; don't make developers invent them.
        if "AWS_ACCESS_KEY_ID" not in os.environ:
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
    return boto3.client(
        "dynamodb",
        region_name=config.AWS_REGION,
        config=BotoConfig(
            connect_timeout=config.DYNAMODB_CONNECT_TIMEOUT,
            read_timeout=config.DYNAMODB_READ_TIMEOUT,
            retries={"mode": "adaptive", "max_attempts": config.DYNAMODB_MAX_ATTEMPTS},
            max_pool_connections=20,
        ),
        **kwargs,
    )


@contextlib.contextmanager
def translate_errors(operation: str):
    """Turn botocore failures into ConditionFailed or StoreError, keeping the cause."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(operation) from exc
        if code == "ResourceNotFoundException":
            raise TableMissing() from exc
        log.warning("dynamodb %s failed: %s", operation, code)
        raise StoreError() from exc
    except BotoCoreError as exc:
        log.warning("dynamodb %s failed: %s", operation, type(exc).__name__)
        raise StoreError() from exc
