"""Errors the service layer raises, independent of HTTP; app/entrypoints/http/problems.py maps them to
problem+json (404, 409, 413, 422). Messages are written for the API caller: they become `detail`."""

from __future__ import annotations


class ServiceError(Exception):
    problem_type: str = "about:blank"

    def __init__(self, detail: str, *, errors: list[dict[str, str]] | None = None,
                 problem_type: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        if problem_type:
            self.problem_type = problem_type


class NotFound(ServiceError):
    """No such resource for the caller (another user's or tenant's is not found either)."""


class Conflict(ServiceError):
    """The request conflicts with the current state (duplicate serial, invalid transition, key reuse)."""

    problem_type = "urn:hashinsight:problem:conflict"


class Unprocessable(ServiceError):
    """Well-formed, but refers to something that does not exist or cannot be used."""

    problem_type = "urn:hashinsight:problem:unknown-reference"


class TooManyItems(ServiceError):
    """More items than one request may carry."""

    problem_type = "urn:hashinsight:problem:too-many-items"
