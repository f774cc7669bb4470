"""The errors of the record layer: one small hierarchy, each with an HTTP status and a message
that says what to do. The web pages and the API render them through one handler
(`runtime/error_handler.py`); nothing here knows about HTTP beyond the status number.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def N_(message: str) -> str:  # noqa: N802 - the name gettext tools look for
    """Marks `message` for the catalogs (runtime/translations) without translating it here:
    this layer knows no request. The one error handler translates it on the way out."""
    return message


class RecordError(Exception):
    """A write or read that cannot be done as asked; `status` is the HTTP answer."""

    status = 400

    def __init__(self, message: str, **params: Any):
        """`message` may hold `%(name)s` slots filled from `params`: the error handler then
        translates the message before filling them (`template`, `params`)."""
        self.template, self.params = message, params
        self.message = message % params if params else message
        super().__init__(self.message)


class BadRequest(RecordError):
    """A malformed read: unknown filter field or operator, unknown sort field, bad cursor."""

    status = 400


class Forbidden(RecordError):
    status = 403


class NotFound(RecordError):
    """No such record — or one the actor may not read: both get the same answer."""

    status = 404


class Conflict(RecordError):
    """The record's state refuses the change: a restrict link, a blocking duplicate, a lock.

    `record_id` names the other record involved when there is one (the duplicate found).
    """

    status = 409

    def __init__(self, message: str, *, record_id: int | None = None,
                 entity: str | None = None):
        super().__init__(message)
        self.record_id = record_id
        self.entity = entity


class AwaitingApproval(Conflict):
    """The record has a pending approval request; it is locked until that is decided."""


class StaleVersion(Conflict):
    """Someone saved the record since the actor read it; `current` is the record now.

    `current` must be the record as the actor may see it — `values.to_json(entity, record,
    hidden_fields(...))`, never the stored row — and `entity` names its entity, so that the
    error handler can hold the answer to the reader's hidden fields once more: a write made
    as the system on someone's behalf (a workflow move) would otherwise see every field."""

    def __init__(self, current: dict[str, Any], message: str | None = None, *,
                 entity: str | None = None):
        super().__init__(message or (
            f"This record was changed by someone else (it is now at version "
            f"{current.get('version')}); reload it, apply your change again and save."),
            record_id=current.get("id"), entity=entity)
        self.current = current


SOME_NOT_VALID = N_("Some values are not valid; fix them and save again — %(problems)s")


def problems(errors: Mapping[str, Iterable[str]]) -> str:
    """`field: message; message | message` of what `errors` says (field names as they are)."""
    return " | ".join(f"{field}: {'; '.join(msgs)}" if field != "_record" else "; ".join(msgs)
                      for field, msgs in errors.items())


class ValidationFailed(RecordError):
    """Values that cannot be saved: `errors` maps a field (or "_record") to its messages."""

    status = 422

    def __init__(self, errors: Mapping[str, Iterable[str]]):
        self.errors: dict[str, list[str]] = {k: list(v) for k, v in errors.items() if v}
        super().__init__(SOME_NOT_VALID, problems=problems(self.errors))
