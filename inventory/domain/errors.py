"""The InventoryError tree: one class per outcome a caller must handle; each names its HTTP status."""

from __future__ import annotations


class InventoryError(Exception):
    """Base of every error the service raises on purpose; each maps to one HTTP status."""

    http_status = 500
    message = "Internal error."

    headers: dict = {}

    def __init__(self, message: str | None = None, *, errors: dict | None = None, headers: dict | None = None):
        super().__init__(message or self.message)
        self.message = message or self.message
        self.errors = errors
        if headers:
            self.headers = headers


class Unauthorized(InventoryError):
    http_status = 401
    message = "A valid bearer token is required."


class Forbidden(InventoryError):
    http_status = 403
    message = "This token may not do that."


class PreconditionRequired(InventoryError):
    http_status = 428
    message = "Send If-Match with the asset's current ETag."


class TransitionNotAllowed(InventoryError):
    http_status = 409
    message = "That status change is not allowed."


class AssetNotFound(InventoryError):
    http_status = 404
    message = "Asset not found."


class InvalidRequest(InventoryError):
    """A well-formed request whose values are not acceptable."""

    http_status = 422
    message = "Invalid request."


class InvalidCursor(InventoryError):
    http_status = 400
    message = "The cursor is not valid for this request."


class VersionConflict(InventoryError):
    """A conditional write lost against a newer version of the item."""

    http_status = 412
    message = "The resource was changed by someone else."


class StoreError(InventoryError):
    """DynamoDB failed or could not be reached; the cause stays in the logs."""

    http_status = 503
    message = "The data store is unavailable; try again shortly."


class PriceSourceError(InventoryError):
    """The price source failed in a way the caller should hear about."""

    http_status = 503
    message = "The price source is unavailable."


# -- quotes and valuations ---------------------------------------------------


class UnknownAssets(InvalidRequest):
    """A quote named assets the catalog does not hold (`errors.assets` names each)."""

    message = "Some assets are not in the catalog."


class QuoteRefused(InventoryError):
    """No quote: some assets are not tradable now (`errors.assets` names each and the reason)."""

    http_status = 409
    message = "Some assets cannot be quoted now."


class QuoteNotFound(InventoryError):
    """A quote id this service did not sign (tampered, truncated, or signed with an unknown key)."""

    http_status = 404
    message = "No such quote: the id is not one this service signed."


class QuotesUnavailable(InventoryError):
    """Quotes cannot be signed: no QUOTE_SIGNING_KEY on a deployment that needs one."""

    http_status = 503
    message = "Quotes are not configured on this instance."
