"""The expression tree: small frozen nodes, independent of Python's `ast`.

Every node carries `offset`, the 0-based character offset of its first character in the
source, so that later checks (unknown names, type errors) can point at the culprit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Literal:
    value: Any  # str, int, Decimal, bool or None
    offset: int = 0


@dataclass(frozen=True)
class Name:
    """A field path: ("price",), ("property", "price"), ("old", "amount"), ("user", "team")."""

    path: tuple[str, ...]
    offset: int = 0
    offsets: tuple[int, ...] = ()  # offset of each segment of `path`

    def segment_offset(self, index: int) -> int:
        return self.offsets[index] if index < len(self.offsets) else self.offset


@dataclass(frozen=True)
class Unary:
    op: str  # "-" or "not"
    operand: Node
    offset: int = 0


@dataclass(frozen=True)
class Binary:
    op: str  # "+", "-", "*", "/", "%"
    left: Node
    right: Node
    offset: int = 0
    op_offset: int = 0


@dataclass(frozen=True)
class BoolOp:
    op: str  # "and" or "or"
    values: tuple[Node, ...]
    offset: int = 0


@dataclass(frozen=True)
class Compare:
    op: str  # "==", "!=", "<", "<=", ">", ">=", "in", "not in"
    left: Node
    right: Node
    offset: int = 0
    op_offset: int = 0


@dataclass(frozen=True)
class IfElse:
    test: Node
    body: Node
    orelse: Node
    offset: int = 0


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    offset: int = 0


@dataclass(frozen=True)
class ListLit:
    items: tuple[Node, ...]
    offset: int = 0


Node = Literal | Name | Unary | Binary | BoolOp | Compare | IfElse | Call | ListLit


def children(node: Node) -> tuple[Node, ...]:
    """The direct sub-expressions of a node, in source order."""
    if isinstance(node, Unary):
        return (node.operand,)
    if isinstance(node, Binary | Compare):
        return (node.left, node.right)
    if isinstance(node, BoolOp):
        return node.values
    if isinstance(node, IfElse):
        return (node.body, node.test, node.orelse)
    if isinstance(node, Call):
        return node.args
    if isinstance(node, ListLit):
        return node.items
    return ()


def walk(node: Node):
    """Every node of the tree, parents before children."""
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(children(current)))
