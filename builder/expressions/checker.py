"""Name and type checking of parsed expressions against the fields of an entity.

Problems are collected, not raised: `check` returns every one it finds, each with a code and
the offset of the culprit, so that `crmforge validate` can report them all in one run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from ..diagnostics import did_you_mean
from .errors import ExpressionError
from .nodes import Binary, BoolOp, Call, Compare, IfElse, ListLit, Literal, Name, Node, Unary
from .parser import Expression

# field type -> expression type. Adding a field type is adding one entry here.
FIELD_TYPES: dict[str, str] = {
    **dict.fromkeys(
        ["text", "longtext", "richtext", "email", "phone", "url", "choice", "autonumber",
         "file", "image"], "text"),
    **dict.fromkeys(["integer", "decimal", "money", "percent", "link"], "number"),
    "boolean": "bool",
    "date": "date",
    "datetime": "datetime",
    "multichoice": "list",
    "links": "list",
}

TYPES = ("text", "number", "bool", "date", "datetime", "duration", "list", "null", "any")
USER_BUILTINS = {"id": "number", "username": "text", "roles": "list", "team": "number"}


@dataclass(frozen=True)
class FieldRef:
    """A field as the checker sees it: name, field type name and, for links, the target."""

    name: str
    type: str
    to: str | None = None


class Scope(Protocol):
    def fields(self, entity: str) -> Mapping[str, FieldRef] | None:
        """The fields of `entity` (system fields included), or None for an unknown entity."""


@dataclass(frozen=True)
class CheckContext:
    entity: str
    allow_old: bool = False
    allow_user: bool = True
    require_sql: bool = False
    boolean: bool = True  # True for conditions, False for formulas and value expressions
    item: str | None = None  # a `create` with `for_each`: the entity `item.*` names


_DEFAULT_USER_FIELDS = {
    "id": FieldRef("id", "integer"),
    "username": FieldRef("username", "text"),
    "full_name": FieldRef("full_name", "text"),
    "email": FieldRef("email", "email"),
    "team": FieldRef("team", "link", "team"),
    "manager": FieldRef("manager", "link", "user"),
    "active": FieldRef("active", "boolean"),
}


@dataclass(frozen=True)
class Resolved:
    """Where a name leads: root ("record", "old" or "user") and the fields it passes."""

    root: str
    hops: tuple[tuple[str, FieldRef], ...]  # (entity, field) per segment after the root
    type: str


@dataclass
class Analysis:
    """Types of every node of one expression, and the problems found on the way."""

    expr: Expression
    scope: Scope
    ctx: CheckContext
    errors: list[ExpressionError] = field(default_factory=list)
    types: dict[int, str] = field(default_factory=dict)
    names: dict[int, Resolved] = field(default_factory=dict)

    def type_of(self, node: Node) -> str:
        return self.types.get(id(node), "any")

    def resolved(self, node: Name) -> Resolved | None:
        return self.names.get(id(node))


def check(expr: Expression, scope: Scope, ctx: CheckContext) -> list[ExpressionError]:
    """Every problem of `expr` in this context (E310-E314); an empty list when it is fine."""
    return analyse(expr, scope, ctx).errors


def infer_type(expr: Expression, scope: Scope, ctx: CheckContext) -> str:
    """The expression type of `expr` ("text", "number", ..., "any" when unknown)."""
    return analyse(expr, scope, ctx).type_of(expr.tree)


def analyse(expr: Expression, scope: Scope, ctx: CheckContext) -> Analysis:
    analysis = Analysis(expr, scope, ctx)
    _Typer(analysis).run()
    return analysis


def user_fields(scope: Scope | None) -> Mapping[str, FieldRef]:
    fields = scope.fields("user") if scope is not None else None
    return fields if fields is not None else _DEFAULT_USER_FIELDS


class _Typer:
    def __init__(self, analysis: Analysis):
        self.a = analysis
        self.scope = analysis.scope
        self.ctx = analysis.ctx

    def error(self, code: str, message: str, offset: int, hint: str | None = None) -> str:
        err = ExpressionError(code, message, offset, hint)
        if err not in self.a.errors:
            self.a.errors.append(err)
        return "any"

    def run(self) -> None:
        tree = self.a.expr.tree
        if self.scope.fields(self.ctx.entity) is None:
            self.error("E310", f"unknown entity '{self.ctx.entity}'", 0)
            return
        result = self.type(tree)
        if self.ctx.boolean and result not in ("bool", "null", "any"):
            self.error("E313", f"a condition must be true or false, not {result}", tree.offset)

    def type(self, node: Node) -> str:
        method = getattr(self, "_" + type(node).__name__)
        result = method(node)
        self.a.types[id(node)] = result
        return result

    # -- leaves ---------------------------------------------------------------------------

    def _Literal(self, node: Literal) -> str:
        if node.value is None:
            return "null"
        if isinstance(node.value, bool):
            return "bool"
        if isinstance(node.value, str):
            return "text"
        return "number"

    def _Name(self, node: Name) -> str:
        path = node.path
        root = "record"
        entity = self.ctx.entity
        start = 0
        if path[0] == "old":
            root, start = "old", 1
            if not self.ctx.allow_old:
                return self.error("E312", "'old' is only available in update automations",
                                  node.offset)
            if self.ctx.require_sql:
                return self.error("E314", "'old' cannot be used in SQL", node.offset)
        elif path[0] == "item" and self.ctx.item is not None and len(path) > 1:
            root, start, entity = "item", 1, self.ctx.item
        elif path[0] == "user":
            root, start, entity = "user", 1, "user"
            if not self.ctx.allow_user:
                return self.error("E312", "'user' is not available here", node.offset)
            if path[1] in ("roles", "id", "username"):
                if len(path) > 2:
                    return self.error("E311", f"user.{path[1]} is not a link",
                                      node.segment_offset(2))
                self.a.names[id(node)] = Resolved("user", (), USER_BUILTINS[path[1]])
                return USER_BUILTINS[path[1]]
        hops: list[tuple[str, FieldRef]] = []
        for index in range(start, len(path)):
            segment = path[index]
            fields = user_fields(self.scope) if entity == "user" else self.scope.fields(entity)
            if fields is None:
                return self.error("E310", f"unknown entity '{entity}'", node.offset)
            ref = fields.get(segment)
            if ref is None:
                where = "the current user" if entity == "user" else f"'{entity}'"
                return self.error("E310", f"unknown field '{segment}' of {where}",
                                  node.segment_offset(index), did_you_mean(segment, fields))
            hops.append((entity, ref))
            if index + 1 < len(path):
                if ref.type != "link" or not ref.to:
                    return self.error(
                        "E311", f"'{segment}' is not a link; '.{path[index + 1]}' cannot follow it",
                        node.segment_offset(index))
                entity = ref.to
        last = hops[-1][1]
        result = FIELD_TYPES.get(last.type, "any")
        if result == "list" and self.ctx.require_sql:
            return self.error("E314", f"the list field '{last.name}' cannot be used in SQL",
                              node.offset)
        self.a.names[id(node)] = Resolved(root, tuple(hops), result)
        return result

    def _ListLit(self, node: ListLit) -> str:
        unified = "null"
        for item in node.items:
            unified = self.unify(unified, self.type(item), item.offset, "list items")
        return "list"

    # -- operators ------------------------------------------------------------------------

    def _Unary(self, node: Unary) -> str:
        operand = self.type(node.operand)
        if node.op == "not":
            if operand not in ("bool", "null", "any"):
                self.error("E313", f"'not' needs true or false, not {operand}", node.offset)
            return "bool"
        if operand in ("number", "duration", "null", "any"):
            return operand
        return self.error("E313", f"cannot negate {operand}", node.offset)

    def _BoolOp(self, node: BoolOp) -> str:
        for value in node.values:
            kind = self.type(value)
            if kind not in ("bool", "null", "any"):
                self.error("E313", f"'{node.op}' needs true or false, not {kind}", value.offset)
        return "bool"

    def _Binary(self, node: Binary) -> str:
        left, right = self.type(node.left), self.type(node.right)
        if "any" in (left, right):
            return "any"
        pair = (left, right)
        op = node.op
        if op == "+":
            table = {("number", "number"): "number", ("text", "text"): "text",
                     ("date", "duration"): "date", ("duration", "date"): "date",
                     ("datetime", "duration"): "datetime", ("duration", "datetime"): "datetime",
                     ("duration", "duration"): "duration"}
        elif op == "-":
            table = {("number", "number"): "number", ("date", "duration"): "date",
                     ("datetime", "duration"): "datetime", ("date", "date"): "duration",
                     ("duration", "duration"): "duration"}
        else:
            table = {("number", "number"): "number"}
        if pair in table:
            return table[pair]
        if "null" in pair:
            other = right if left == "null" else left
            if other == "null" or any(other in p for p in table):
                return "null" if other == "null" else _null_result(op, other, table)
        hint = "use days_since(d)" if "datetime" in pair and op == "-" else None
        return self.error("E313", f"cannot apply '{op}' to {left} and {right}",
                          node.op_offset, hint)

    def _Compare(self, node: Compare) -> str:
        left, right = self.type(node.left), self.type(node.right)
        if node.op in ("in", "not in"):
            if right not in ("list", "null", "any"):
                self.error("E313", f"'{node.op}' needs a list on its right, not {right}",
                           node.right.offset, "write x in ['a', 'b']")
            if left == "list":
                self.error("E313", f"'{node.op}' needs a single value on its left",
                           node.left.offset)
            if isinstance(node.right, ListLit):
                for item in node.right.items:
                    self.comparable(left, self.a.type_of(item), "==", item.offset)
            return "bool"
        if node.op in ("==", "!=") and (_is_null(node.left) or _is_null(node.right)):
            return "bool"
        self.comparable(left, right, node.op, node.op_offset)
        return "bool"

    def comparable(self, left: str, right: str, op: str, offset: int) -> None:
        if "any" in (left, right) or "null" in (left, right):
            return
        kinds = {left, right}
        if left == right or kinds == {"date", "datetime"}:
            if op in ("==", "!=") or left in ("number", "text", "date", "datetime", "duration"):
                if left != "list":
                    return
        self.error("E313", f"cannot compare {left} with {right} using '{op}'", offset)

    def _IfElse(self, node: IfElse) -> str:
        test = self.type(node.test)
        if test not in ("bool", "null", "any"):
            self.error("E313", f"'if' needs true or false, not {test}", node.test.offset)
        return self.unify(self.type(node.body), self.type(node.orelse), node.offset,
                          "both branches of 'if'")

    def unify(self, a: str, b: str, offset: int, what: str) -> str:
        if a == b or b == "null":
            return a
        if a == "null":
            return b
        if "any" in (a, b):
            return "any"
        return self.error("E313", f"{what} must have one type, not {a} and {b}", offset)

    # -- functions ------------------------------------------------------------------------

    def lookup(self, node: Call, args: list[str]) -> str:
        """`lookup('entity', 'field', value)`: the id of the first record (lowest id) of
        `entity` whose `field` equals `value` — a number, like a link."""
        target = _lookup_target(node)
        if target is None:
            culprit = node.args[0] if not (isinstance(node.args[0], Literal) and isinstance(
                node.args[0].value, str)) else node.args[1]
            return self.error("E313", "lookup() needs the entity and the field as quoted "
                              "names, like lookup('contact', 'email', email)", culprit.offset)
        entity, name = target
        fields = self.scope.fields(entity)
        if fields is None:
            return self.error("E310", f"lookup(): unknown entity '{entity}'",
                              node.args[0].offset)
        found = fields.get(name)
        if found is None or found.type in ("links", "multichoice"):
            return self.error("E310", f"lookup(): {entity} has no field '{name}' to match on",
                              node.args[1].offset, did_you_mean(name, [
                                  f for f, r in fields.items()
                                  if r.type not in ("links", "multichoice")]))
        kind = args[2]
        wanted = FIELD_TYPES.get(found.type, "any")
        if kind not in (wanted, "null", "any"):
            self.error("E313", f"lookup(): {entity}.{name} is {wanted}, not {kind}",
                       node.args[2].offset)
        return "number"

    def _Call(self, node: Call) -> str:
        args = [self.type(a) for a in node.args]
        name = node.func

        def need(index: int, *allowed: str) -> None:
            kind = args[index]
            if kind not in (*allowed, "null", "any"):
                self.error("E313", f"{name}() needs {' or '.join(allowed)}, not {kind}",
                           node.args[index].offset)

        if name == "today":
            return "date"
        if name == "now":
            return "datetime"
        if name in ("days", "hours"):
            need(0, "number")
            return "duration"
        if name in ("days_since", "day", "week", "month", "year"):
            need(0, "date", "datetime")
            return "number"
        if name == "len":
            need(0, "text", "list")
            return "number"
        if name in ("lower", "upper", "trim"):
            need(0, "text")
            return "text"
        if name in ("left", "right", "mid"):
            need(0, "text")
            for index in range(1, len(args)):
                need(index, "number")
            return "text"
        if name == "replace":
            for index in range(3):
                need(index, "text")
            return "text"
        if name == "pow":
            need(0, "number")
            need(1, "number")
            return "number"
        if name == "lookup":
            return self.lookup(node, args)
        if name == "contains":
            need(0, "text", "list")
            if args[0] == "text":
                need(1, "text")
            return "bool"
        if name == "has_role":
            need(0, "text")
            return "bool"
        if name == "round":
            need(0, "number")
            if len(node.args) > 1:
                digits = node.args[1]
                if not (isinstance(digits, Literal) and type(digits.value) is int
                        and 0 <= digits.value <= 10):
                    self.error("E313", "round() needs a whole number of digits from 0 to 10",
                               digits.offset)
            return "number"
        result = "null"
        for arg, kind in zip(node.args, args, strict=True):
            if name in ("min", "max") and kind in ("bool", "list"):
                self.error("E313", f"{name}() cannot compare {kind}", arg.offset)
            result = self.unify(result, kind, arg.offset, f"the arguments of {name}()")
        return result


def _lookup_target(node: Call) -> tuple[str, str] | None:
    """The (entity, field) of `lookup('entity', 'field', value)`, when both are text literals."""
    entity, field = node.args[0], node.args[1]
    if isinstance(entity, Literal) and isinstance(entity.value, str) and \
            isinstance(field, Literal) and isinstance(field.value, str):
        return entity.value, field.value
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _null_result(op: str, other: str, table: dict[tuple[str, str], str]) -> str:
    # `x + null` is null at run time, but keeps the type the operation would have had.
    for (a, b), result in table.items():
        if other in (a, b):
            return result
    return "null"
