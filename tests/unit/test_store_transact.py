"""Transactions that only collide with other transactions are tried again; failed conditions are not."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from inventory.store.dynamo import TransactionCancelled, make_client, transact

ACTIONS = [{"ConditionCheck": {"TableName": "t", "Key": {"PK": {"S": "A"}, "SK": {"S": "B"}},
                               "ConditionExpression": "attribute_exists(PK)"}}]


def cancelled(stubber, *codes):
    stubber.add_client_error(
        "transact_write_items",
        service_error_code="TransactionCanceledException",
        modeled_fields={"CancellationReasons": [{"Code": c} for c in codes]},
    )


@pytest.fixture
def stubbed(config):
    client = make_client(config)
    with Stubber(client) as stubber:
        yield client, stubber


def test_a_transaction_conflict_is_tried_again(stubbed):
    client, stubber = stubbed
    cancelled(stubber, "TransactionConflict")
    stubber.add_response("transact_write_items", {})
    transact(client, ACTIONS)
    stubber.assert_no_pending_responses()


def test_a_failed_condition_is_not_tried_again(stubbed):
    client, stubber = stubbed
    cancelled(stubber, "ConditionalCheckFailed")
    with pytest.raises(TransactionCancelled) as raised:
        transact(client, ACTIONS)
    assert raised.value.reasons == ["ConditionalCheckFailed"]


def test_conflicts_that_do_not_clear_are_raised(stubbed):
    client, stubber = stubbed
    for _ in range(6):
        cancelled(stubber, "TransactionConflict")
    with pytest.raises(TransactionCancelled):
        transact(client, ACTIONS)
    stubber.assert_no_pending_responses()
