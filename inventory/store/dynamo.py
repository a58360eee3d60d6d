"""The boto3 client and the one place botocore errors become typed store errors."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import boto3.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ReadTimeoutError,
)

from ..config import Config
from ..domain import StoreError

log = logging.getLogger(__name__)


class ConditionFailed(Exception):
    """A conditional write did not apply; callers turn it into a domain error."""


class TransactionCancelled(Exception):
    """A transaction was cancelled; `reasons` holds one code per action ("None" = fine)."""

    def __init__(self, reasons: list[str]):
        super().__init__(", ".join(reasons))
        self.reasons = reasons


class LeaseLost(Exception):
    """This instance no longer holds the lease its writes were fenced with."""


class TableMissing(StoreError):
    message = "The table does not exist; run `flask --app wsgi migrate`."


# What the refresher's jobs allow a request, at the least: nobody waits on them, and a
# refresh that gives up at the first slow transaction would only leave prices stale.
PATIENT_CONNECT_TIMEOUT, PATIENT_READ_TIMEOUT, PATIENT_MAX_ATTEMPTS = 2.0, 5.0, 4


def make_client(config: Config, patient: bool = False):
    """Build the DynamoDB client from Config; call it after gunicorn forks.

    A web worker's client bounds every request by Config's timeouts (a caller waits);
    `patient` (background jobs) allows at least PATIENT_* and retries in adaptive mode.
    """
    connect, read, attempts = config.DYNAMODB_CONNECT_TIMEOUT, config.DYNAMODB_READ_TIMEOUT, config.DYNAMODB_MAX_ATTEMPTS
    if patient:
        connect, read = max(connect, PATIENT_CONNECT_TIMEOUT), max(read, PATIENT_READ_TIMEOUT)
        attempts = max(attempts, PATIENT_MAX_ATTEMPTS)
    kwargs = {}
    if config.DYNAMODB_ENDPOINT_URL:
        kwargs["endpoint_url"] = config.DYNAMODB_ENDPOINT_URL
        # A local store accepts any credentials; don't make developers invent them.
        if "AWS_ACCESS_KEY_ID" not in os.environ:
            kwargs.update(aws_access_key_id="local", aws_secret_access_key="local")
    # Its own botocore session, dropped once the client exists: the session's endpoint
    # resolver and the loader's cache hold every JSON document read to build the client
    # (endpoints.json alone is ~7 MB of objects once parsed) though the client needs only
    # the service model it keeps itself. Freed, that memory takes the worker's snapshot
    # instead of adding to it (issue 11, worker RSS; tests/unit/test_dynamo_instrument.py).
    client = boto3.session.Session().client(
        "dynamodb",
        region_name=config.AWS_REGION,
        config=BotoConfig(
            connect_timeout=connect,
            read_timeout=read,
            retries={"mode": "adaptive" if patient else "standard", "max_attempts": attempts},
            max_pool_connections=20,
        ),
        **kwargs,
    )
    cache = getattr(getattr(client, "_loader", None), "_cache", None)  # botocore's Loader, if it still has one
    if isinstance(cache, dict):
        cache.clear()
    return client


_THROTTLES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def instrument(client, observe: Callable[[str, str, float, int, int], None]) -> None:
    """Report every DynamoDB call: observe(operation, outcome, seconds, retries, throttles).

    Built on botocore's own events, so retries made inside botocore are seen too.
    """
    calls = threading.local()

    def before(model, **_):
        calls.started = time.perf_counter()
        calls.throttles = 0

    def needs_retry(response, attempts, **_):
        if response is not None:
            code = response[1].get("Error", {}).get("Code", "")
            if code in _THROTTLES:
                calls.throttles = getattr(calls, "throttles", 0) + 1

    def after(model, parsed, **_):
        error = parsed.get("Error", {}).get("Code")
        outcome = "ok" if not error else ("conditional_failed" if "Condition" in error or "Cancel" in error else "error")
        retries = parsed.get("ResponseMetadata", {}).get("RetryAttempts", 0)
        seconds = time.perf_counter() - getattr(calls, "started", time.perf_counter())
        observe(model.name, outcome, seconds, retries, getattr(calls, "throttles", 0))

    def after_error(exception, event_name, **_):
        # botocore passes no operation model here; the event name ends with it.
        seconds = time.perf_counter() - getattr(calls, "started", time.perf_counter())
        observe(event_name.rsplit(".", 1)[-1], "unreachable", seconds, 0, getattr(calls, "throttles", 0))

    events = client.meta.events
    events.register("before-call.dynamodb", before)
    events.register("needs-retry.dynamodb", needs_retry)
    events.register("after-call.dynamodb", after)
    events.register("after-call-error.dynamodb", after_error)


@contextlib.contextmanager
def count_calls(client):
    """Count the DynamoDB API calls made on `client` inside the block (retries excluded)."""
    counter = {"calls": 0}

    def handler(**_):
        counter["calls"] += 1

    client.meta.events.register("before-call.dynamodb", handler)
    try:
        yield counter
    finally:
        client.meta.events.unregister("before-call.dynamodb", handler)


# Every failure a boto3 call can raise on its own (outside `translate_errors`): what a caller
# that must never show a traceback (the CLI) catches, without knowing botocore.
STORE_FAILURES: tuple[type[BaseException], ...] = (BotoCoreError, ClientError)


def store_problem(error: BaseException) -> str:
    """What went wrong with the store, for a one-line message: `no_credentials`, `unreachable`,
    `table_missing`, `refused:<DynamoDB error code>`, or `other`. Looks through a StoreError
    at its cause."""
    cause = error.__cause__ if isinstance(error, StoreError) and error.__cause__ else error
    if isinstance(error, TableMissing):
        return "table_missing"
    if isinstance(cause, NoCredentialsError):
        return "no_credentials"
    if isinstance(cause, (EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError)):
        return "unreachable"
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code", "unknown")
        return "table_missing" if code == "ResourceNotFoundException" else f"refused:{code}"
    return "other"


def credentials_found() -> bool:
    """Whether boto3 finds AWS credentials here (environment, profile, role)."""
    return boto3.session.Session().get_credentials() is not None


@contextlib.contextmanager
def translate_errors(operation: str):
    """Turn botocore failures into ConditionFailed or StoreError, keeping the cause."""
    try:
        yield
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ConditionalCheckFailedException":
            raise ConditionFailed(operation) from exc
        if code == "TransactionCanceledException":
            reasons = [r.get("Code", "None") for r in exc.response.get("CancellationReasons", [])]
            raise TransactionCancelled(reasons) from exc
        if code == "ResourceNotFoundException":
            raise TableMissing() from exc
        log.warning("dynamodb %s failed: %s", operation, code)
        raise StoreError() from exc
    except BotoCoreError as exc:
        log.warning("dynamodb %s failed: %s", operation, type(exc).__name__)
        raise StoreError() from exc


def query_items(client, request: dict) -> Iterator[dict]:
    """Every item a Query returns, page after page (LastEvaluatedKey followed lazily).

    Stop iterating (islice) to stop reading: the next page is asked for only
    when the items already read are used up.
    """
    request = dict(request)
    while True:
        with translate_errors("Query"):
            response = client.query(**request)
        yield from response["Items"]
        if "LastEvaluatedKey" not in response:
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def transact(client, actions: list[dict]) -> None:
    """One TransactWriteItems, retried while it only collides with other transactions.

    Two transactions on one item at once (an operator's change racing a refresh's
    transaction) can cancel each other (TransactionConflict) although neither's
    condition failed: those are tried again after a short, jittered pause.

    :raises TransactionCancelled: a condition failed, or the conflicts did not clear.
    """
    for attempt in range(_CONFLICT_RETRIES + 1):
        try:
            with translate_errors("TransactWriteItems"):
                client.transact_write_items(TransactItems=actions)
            return
        except TransactionCancelled as exc:
            if "ConditionalCheckFailed" in exc.reasons or attempt == _CONFLICT_RETRIES:
                raise
            time.sleep(random.uniform(0.01, 0.05) * (attempt + 1))


# DynamoDB's limit on actions in one TransactWriteItems call.
TRANSACTION_MAX_ACTIONS = 100
_CONFLICT_RETRIES = 5


def write_groups(
    client, groups: list[list[dict]], concurrency: int = 4, fence_check: dict | None = None, journal=None
) -> tuple[list[int], list[int]]:
    """Write groups of transaction actions, many groups per TransactWriteItems call.

    Each group (the actions for one entity) applies whole or not at all. A group
    whose condition fails is dropped and reported; the others are retried, as
    are groups cancelled by a conflicting concurrent write. Up to `concurrency`
    transactions are in flight at once: each waits a network round trip.
    `fence_check`, a ConditionCheck on the lease, joins every transaction.
    `journal(group indexes)` (the live stream's feed, store/feed.py) gives each
    transaction attempt one more action, its feed entry, and is cancelled when
    that attempt does not commit.
    Returns (applied group indexes, rejected group indexes).

    :raises LeaseLost: the fence's condition failed.
    """
    capacity = TRANSACTION_MAX_ACTIONS - (1 if fence_check else 0) - (1 if journal else 0)
    batches, batch, size = [], [], 0
    for index, group in enumerate(groups):
        if batch and size + len(group) > capacity:
            batches.append(batch)
            batch, size = [], 0
        batch.append(index)
        size += len(group)
    if batch:
        batches.append(batch)
    applied: list[int] = []
    rejected: list[int] = []
    if len(batches) <= 1 or concurrency <= 1:
        outcomes = [_write_batch(client, groups, b, fence_check, journal) for b in batches]
    else:
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            outcomes = list(pool.map(lambda b: _write_batch(client, groups, b, fence_check, journal), batches))
    for done, failed in outcomes:
        applied.extend(done)
        rejected.extend(failed)
    return applied, rejected


def _write_batch(client, groups: list[list[dict]], batch: list[int], fence_check: dict | None, journal=None):
    """One transaction for the batch's groups; returns (applied, rejected) group indexes."""
    rejected: list[int] = []
    for attempt in range(_CONFLICT_RETRIES + 1):
        if not batch:
            break
        actions = ([fence_check] if fence_check else []) + [action for index in batch for action in groups[index]]
        entry = journal(batch) if journal else None
        try:
            with translate_errors("TransactWriteItems"):
                client.transact_write_items(TransactItems=actions + ([entry.action] if entry else []))
            if entry:
                entry.committed()
            return batch, rejected
        except BaseException as exc:
            if entry:
                entry.cancel()
            if not isinstance(exc, TransactionCancelled):
                raise
            reasons = exc.reasons[: len(actions)]
            if fence_check:
                if reasons and reasons[0] == "ConditionalCheckFailed":
                    raise LeaseLost() from exc
                reasons = reasons[1:]
            failed = _failed_groups(batch, groups, reasons)
            rejected.extend(failed)
            batch = [index for index in batch if index not in failed]
            if batch and attempt == _CONFLICT_RETRIES:
                raise StoreError("writes kept conflicting with other writes") from exc
            if batch and not failed:  # a conflict, not a condition: back off a little
                time.sleep(0.05 * (attempt + 1))
    return [], rejected


def _failed_groups(batch: list[int], groups: list[list[dict]], reasons: list[str]) -> set[int]:
    """Groups with an action whose condition failed (reasons align with the actions)."""
    failed, position = set(), 0
    for index in batch:
        width = len(groups[index])
        if "ConditionalCheckFailed" in reasons[position : position + width]:
            failed.add(index)
        position += width
    return failed
