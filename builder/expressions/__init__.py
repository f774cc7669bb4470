"""The expression language (docs/expressions.md): parse, check, evaluate, value slots.

Plain Python only: nothing here imports Flask or SQLAlchemy. The SQL compiler lives in
`runtime.core.expressions`.
"""

from .checker import FIELD_TYPES, CheckContext, FieldRef, Scope, check, infer_type
from .errors import ExpressionError
from .evaluator import EvalContext, UserInfo, evaluate, evaluate_condition
from .nodes import (
    Binary,
    BoolOp,
    Call,
    Compare,
    IfElse,
    ListLit,
    Literal,
    Name,
    Node,
    Unary,
)
from .parser import FUNCTIONS, Expression, parse
from .slots import (
    ValueSlot,
    is_plain,
    parse_repeated_slot,
    parse_slot,
    render_template,
    slot_value,
    template_names,
)

__all__ = [
    "FIELD_TYPES", "FUNCTIONS", "Binary", "BoolOp", "Call", "CheckContext", "Compare",
    "EvalContext", "Expression", "ExpressionError", "FieldRef", "IfElse", "ListLit", "Literal",
    "Name", "Node", "Scope", "Unary", "UserInfo", "ValueSlot", "check", "evaluate",
    "evaluate_condition", "infer_type", "is_plain", "parse", "parse_repeated_slot", "parse_slot",
    "render_template", "slot_value", "template_names",
]
