"""Errors every layer raises and the web layer turns into pages or JSON."""
from __future__ import annotations

import msgspec
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.openapi import ResponseSpec


class FormError(ValueError):
    """Bad input, with a message per field, shown next to the field and in API errors."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class LoginRequired(NotAuthorizedException):
    """A browser route without a logged-in user: redirected to the login page."""


class TenantSuspended(PermissionDeniedException):
    """The company is suspended: its pages say so, its tokens get 403."""


class ErrorOut(msgspec.Struct):
    """The one shape of every API error."""
    error: str
    status: int
    fields: dict[str, str] | None = None


ERRORS = {  # every API error is JSON: {"error": sentence, "status": code, "fields": {field: message}}
    400: ResponseSpec(ErrorOut, description="Unreadable request: bad JSON, a wrong type or an unknown field",
                      generate_examples=False),
    401: ResponseSpec(ErrorOut, description="Missing, invalid or revoked token", generate_examples=False),
    403: ResponseSpec(ErrorOut, description="The token's role is too weak", generate_examples=False),
    404: ResponseSpec(ErrorOut, description="No such object in this tenant", generate_examples=False),
    422: ResponseSpec(ErrorOut, description="Invalid input, with a message per field", generate_examples=False),
    503: ResponseSpec(ErrorOut, description="The database or the queue is unavailable: try again",
                      generate_examples=False),
}
