"""The one exception of the expression language: a code, a message and a place."""

from __future__ import annotations


class ExpressionError(Exception):
    """A problem with an expression.

    `offset` is the 0-based character offset of the culprit inside the expression source
    (for a value slot "=...", inside the whole slot string). Codes:

    E301 syntax, E302 forbidden construct, E303 unknown function or wrong number of
    arguments, E304 too long or too deeply nested, E310 unknown field, E311 link-follow
    through a field that is not a link, E312 `old` not allowed here, E313 type mismatch,
    E314 not translatable to SQL, E320 evaluation impossible (runtime set-up problem).
    """

    def __init__(self, code: str, message: str, offset: int = 0, hint: str | None = None):
        super().__init__(f"{code} {message}" + (f" ({hint})" if hint else ""))
        self.code = code
        self.message = message
        self.offset = offset
        self.hint = hint

    def shifted(self, delta: int) -> ExpressionError:
        """The same error with its offset moved by `delta` (for "=expr" value slots)."""
        return type(self)(self.code, self.message, self.offset + delta, self.hint)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code!r}, {self.message!r}, offset={self.offset})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ExpressionError):
            return NotImplemented
        return (self.code, self.message, self.offset, self.hint) == (
            other.code, other.message, other.offset, other.hint)

    def __hash__(self) -> int:
        return hash((self.code, self.message, self.offset, self.hint))
