"""Who is calling: the bearer token of a request, and the scope each route needs, checked before its body is read."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request

from ..domain import Forbidden, Unauthorized
from ..services.tokens import TokenEntry, identify

READ_METHODS = frozenset({"GET", "HEAD"})
_CHALLENGE = 'Bearer realm="inventory"'
_MAX_TOKEN_CHARS = 200


def require_scope(scope: str):
    """View decorator: the route needs a token with `scope`; the request hook checks it before webargs reads the body."""

    def decorator(view):
        view.required_scope = scope
        return view

    return decorator


def read_operation(view):
    """View decorator: a POST that changes nothing (batch-get); it is a read for rate limits and REQUIRE_AUTH_FOR_READS."""
    view.read_operation = True
    return view


@dataclass(frozen=True)
class RouteAccess:
    """What one (endpoint, method) needs: a scope or none, and whether it is a read."""

    scope: str | None
    read: bool


# Blueprints whose reads serve catalog data: REQUIRE_AUTH_FOR_READS covers them (health, docs and metrics stay open).
CATALOG_DATA_BLUEPRINTS = ("assets.", "reports.", "recommendations.", "quotes.")


def access_table(app: Flask, require_auth_for_reads: bool) -> dict[tuple[str, str], RouteAccess]:
    """(endpoint, method) -> RouteAccess for every route of `app`, built once after the blueprints are registered."""
    table = {}
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        view_class = getattr(view, "view_class", None)
        for method in rule.methods or ():
            handler = view
            if view_class is not None:
                # MethodView answers HEAD with its get().
                handler = getattr(view_class, method.lower(), None) or getattr(view_class, "get", None)
            scope = _marker(handler, "required_scope")
            read = method in READ_METHODS or bool(_marker(handler, "read_operation"))
            if scope is None and read and require_auth_for_reads and rule.endpoint.startswith(CATALOG_DATA_BLUEPRINTS):
                scope = "assets:read"
            table[(rule.endpoint, method)] = RouteAccess(scope, read)
    return table


def _marker(func, name: str):
    # flask-smorest's decorators copy attributes with functools.wraps; follow
    # __wrapped__ too, in case a wrapper did not.
    while func is not None:
        value = getattr(func, name, None)
        if value is not None:
            return value
        func = getattr(func, "__wrapped__", None)
    return None


def bearer_token(entries: list[TokenEntry]) -> tuple[TokenEntry | None, Unauthorized | None]:
    """The token entry behind this request's Authorization header, or why there is none.

    The error is returned, not raised: a public route ignores a bad token, while
    the rate limiter still needs to know who is calling before access is checked.
    """
    header = request.headers.get("Authorization")
    if header is None:
        return None, None  # check_access makes the 401 if the route needs a token
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token or len(token) > _MAX_TOKEN_CHARS:
        return None, Unauthorized(headers={"WWW-Authenticate": _CHALLENGE})
    entry = identify(entries, token.strip())
    if entry is None:
        return None, Unauthorized(
            "The token is not valid.", headers={"WWW-Authenticate": _CHALLENGE + ', error="invalid_token"'}
        )
    return entry, None


def check_access(access: RouteAccess | None, entry: TokenEntry | None, error: Unauthorized | None) -> None:
    """Refuse the request unless its token grants what the route needs.

    :raises Unauthorized: the route needs a token and there is no valid one.
    :raises Forbidden: the token lacks the scope.
    """
    if access is None or access.scope is None:
        return
    if entry is None:
        raise error or Unauthorized(headers={"WWW-Authenticate": _CHALLENGE})
    if not entry.grants(access.scope):
        raise Forbidden(
            f"This token lacks the {access.scope} scope.",
            headers={"WWW-Authenticate": _CHALLENGE + f', error="insufficient_scope", scope="{access.scope}"'},
        )
