"""Requests in: URL and body limits, the JSON content type, and one depth-limited JSON parse that webargs reuses."""

from __future__ import annotations

from decimal import Decimal

import simplejson
from flask import Request, request
from flask.json.provider import DefaultJSONProvider
from flask_smorest import Blueprint as SmorestBlueprint
from webargs import core
from webargs.flaskparser import FlaskParser
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge, RequestURITooLarge

from ..domain.numbers import plain_number
from .errors import error_response

try:  # what gunicorn raises while the app reads a malformed (chunked) body
    from gunicorn.http.errors import NoMoreData, ParseException

    BODY_READ_ERRORS: tuple[type[BaseException], ...] = (ParseException, NoMoreData)
except ImportError:  # pragma: no cover - another WSGI server
    BODY_READ_ERRORS = ()

BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# gunicorn refuses request lines over 4094 bytes itself; a longer URL reaching
# the app (another server in front, the test client) gets the same answer in our shape.
MAX_URL_BYTES = 4096
# Our bodies nest 3 levels deep ({"items": [{...}]}); anything far deeper is an
# attack on the parser (100,000 "[" overflow its recursion) or on the schemas.
MAX_JSON_DEPTH = 32


class JSONTooDeep(ValueError):
    """A JSON document nested deeper than MAX_JSON_DEPTH."""


class JSONProvider(DefaultJSONProvider):
    """JSON with exact Decimals both ways (0.00001234 stays 0.00001234) and a nesting limit on input.

    Output has one layout on every endpoint (compact separators, sorted keys),
    whether a view's body is rendered by `api/responses.py` or by `jsonify`.
    """

    def dumps(self, obj, **kwargs):
        kwargs.setdefault("default", self.default)
        kwargs.setdefault("ensure_ascii", self.ensure_ascii)
        kwargs.setdefault("sort_keys", self.sort_keys)
        kwargs.setdefault("separators", (",", ":"))
        # use_decimal off: every Decimal reaches `default`, which writes it as raw
        # JSON in plain notation (simplejson's use_decimal writes str(Decimal)).
        return simplejson.dumps(obj, use_decimal=False, **kwargs)

    @staticmethod
    def default(o):
        if isinstance(o, Decimal):
            if not o.is_finite():
                raise ValueError(f"{o} is not a JSON number")
            return simplejson.RawJSON(plain_number(o))
        return DefaultJSONProvider.default(o)

    def response(self, *args, **kwargs):
        """`jsonify`'s response with the bytes `dumps` gives every other endpoint (no indent, no trailing newline)."""
        obj = self._prepare_response_obj(args, kwargs)
        return self._app.response_class(self.dumps(obj), mimetype=self.mimetype)

    def loads(self, s, **kwargs):
        """Parse `s`; NaN and Infinity are rejected, numbers with a fraction parse as Decimal.

        :raises ValueError: not JSON, not UTF-8, or nested deeper than MAX_JSON_DEPTH.
        """
        try:
            value = simplejson.loads(s, use_decimal=True, parse_int=_json_int, **kwargs)
        except RecursionError:
            raise JSONTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
        # Fewer brackets than the limit cannot nest deeper than it: most bodies skip the walk.
        square, curly = (b"[", b"{") if isinstance(s, bytes) else ("[", "{")
        if s.count(square) + s.count(curly) > MAX_JSON_DEPTH and _depth_over(value, MAX_JSON_DEPTH):
            raise JSONTooDeep(f"nested deeper than {MAX_JSON_DEPTH} levels")
        return value


def _json_int(text: str):
    # -0 keeps its sign (an int cannot), so "-0" and -0 are the same negative quantity to a validator.
    return Decimal(text) if text == "-0" else int(text)


def _depth_over(value, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


class InventoryRequest(Request):
    """Flask's request with our answer to a body that is not JSON."""

    def on_json_loading_failed(self, e: ValueError | None):
        if e is None:
            return super().on_json_loading_failed(e)  # not a JSON content type: 415
        raise _invalid_json(e)


def _invalid_json(exc: ValueError) -> BadRequest:
    if isinstance(exc, simplejson.JSONDecodeError):
        detail = f"{exc.msg} at line {exc.lineno} column {exc.colno}."
    elif isinstance(exc, JSONTooDeep):
        detail = f"{exc}."
    else:
        detail = "not UTF-8 text."
    error = BadRequest("The request body is not valid JSON.")
    error.data = {"message": error.description, "errors": {"json": [f"Invalid JSON body: {detail}"]}}
    return error


def check_url() -> None:
    """:raises RequestURITooLarge: path and query over MAX_URL_BYTES."""
    if len(request.path) + len(request.query_string) > MAX_URL_BYTES and (
        len(request.path.encode()) + len(request.query_string) > MAX_URL_BYTES
    ):
        raise RequestURITooLarge(f"The URL is longer than {MAX_URL_BYTES} bytes.")


def check_body(max_length: int | None):
    """Refuse over-large bodies (413), non-JSON bodies (415), unreadable or malformed ones (400); parse JSON once.

    The parsed body is cached on the request (`request.get_json()`), where the
    views' webargs parser takes it from.
    """
    if max_length is not None and (request.content_length or 0) > max_length:
        # Refused before anything reads the body, whether or not the view would.
        raise RequestEntityTooLarge(f"The request body is larger than {max_length} bytes.")
    if request.method not in BODY_METHODS or not _has_body():
        return None
    rule = request.url_rule
    if rule is None or request.method not in (rule.methods or ()):
        return None  # routing answers 404/405 in our shape
    if not _is_json(request.mimetype):
        return error_response(
            415,
            "The request body must be JSON (Content-Type: application/json).",
            errors={"headers": {"Content-Type": ["Must be application/json."]}},
        )
    try:
        data = request.get_data(cache=True)
    except BODY_READ_ERRORS:
        # A broken chunked encoding (size "zz", missing terminator) or a body
        # shorter than its Content-Length: the client's fault, not a 500.
        return error_response(400, "The request body could not be read (malformed or incomplete).")
    if data:
        request.get_json(cache=True)  # raises the 400 for malformed JSON
    return None


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (mimetype.startswith("application/") and mimetype.endswith("+json"))


class CachedJSONParser(FlaskParser):
    """webargs' Flask parser, reading the body check_body already parsed instead of parsing it again."""

    # webargs excludes unknown query parameters whatever the schema says; None lets
    # each query schema's Meta.unknown decide (ours raise: a 422 naming them).
    # Headers stay excluded: a request carries many the view never reads.
    DEFAULT_UNKNOWN_BY_LOCATION = {**FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION, "query": None, "querystring": None}

    def _raw_load_json(self, req: Request):
        if not _is_json(req.mimetype) or not req.get_data(cache=True):
            return core.missing
        return req.get_json(cache=True)


class Blueprint(SmorestBlueprint):
    """flask-smorest's Blueprint with the parser that reuses the one parse of the body."""

    ARGUMENTS_PARSER = CachedJSONParser()
