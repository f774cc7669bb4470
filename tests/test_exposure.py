"""W201: `crmforge validate` warns when a formula or rollup a role sees reads a field hidden
from that role — directly, through other formulas and rollups, across a link or over the
child records of a rollup — for the role with every role it inherits (builder/exposure.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import write_pack

from builder.linker import check_paths
from runtime.ops.cli import main

ROLES = """\
roles:
  rep: {label: Rep}
  senior: {label: Senior rep, inherits: [rep]}
  manager: {label: Manager, inherits: [rep]}
  clerk: {label: Clerk}
"""

# An order with its lines and products: every case below changes only the permissions.
PRODUCT = """\
entity: product
fields:
  name: {type: text}
  price: {type: money}
  unit_cost: {type: money}
  margin: {type: percent, formula: "(price - unit_cost) / price * 100"}
  tier: {type: text, formula: "'high' if margin >= 40 else 'low'"}
  code: {type: text, formula: "lookup('product', 'unit_cost', 10) + 0"}
permissions:
{}
"""
LINE = """\
entity: line
fields:
  order: {type: link, to: order}
  product: {type: link, to: product}
  qty: {type: integer}
  line_cost: {type: money, formula: "qty * product.unit_cost"}
  note: {type: text}
permissions:
{}
"""
ORDER = """\
entity: order
fields:
  total: {type: money}
  cost: {type: money, rollup: {from: line.order, op: sum, field: line_cost}}
  profit: {type: money, formula: "total - cost"}
  noted: {type: integer, rollup: {from: line.order, op: count, where: "note != null"}}
  lines: {type: integer, rollup: {from: line.order, op: count}}
permissions:
{}
"""
READ_ALL = {"manager": "  manager: {read: true}\n", "clerk": "  clerk: {read: true}\n"}


def leaks(files: dict[str, str], tmp_path: Path) -> set[tuple[str, str, str]]:
    """(role, entity.field, the hidden entity.field named) of every W201 warning."""
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **files})
    model, diags = check_paths([pack])
    assert model is not None and not diags.errors, [d.format() for d in diags]
    found = set()
    for d in diags:
        if d.code == "W201":
            assert d.severity == "warning"
            role = d.message.split("role '")[1].split("'")[0]
            field = d.message.split("sees the ")[1].split("'")[1]
            hidden = d.message.split("which reads '")[1].split("'")[0]
            found.add((role, field, hidden))
    return found


def perms(product: str = "", line: str = "", order: str = "") -> dict[str, str]:
    """The three entities with the permissions given; managers and clerks read everything
    unless the permissions given say otherwise for them."""
    def with_readers(given: str) -> str:
        return given + "".join(rule for role, rule in READ_ALL.items()
                               if f"  {role}:" not in given)
    return {"entities/product.yaml": PRODUCT.replace("{}", with_readers(product)),
            "entities/line.yaml": LINE.replace("{}", with_readers(line)),
            "entities/order.yaml": ORDER.replace("{}", with_readers(order))}


CASES = [
    ("everyone sees everything", perms(), set()),
    ("direct: a formula over a hidden field",
     perms(order="  rep: {read: true, hidden: [total]}\n"),
     {("rep", "order.profit", "order.total"), ("senior", "order.profit", "order.total")}),
    ("the formula hidden too: nothing to warn about",
     perms(order="  rep: {read: true, hidden: [total, profit]}\n"), set()),
    ("through a chain of formulas: margin, then the tier and the lookup-free fields above it",
     perms(product="  rep: {read: true, hidden: [unit_cost]}\n"),
     {(role, f"product.{name}", "product.unit_cost")
      for role in ("rep", "senior") for name in ("margin", "tier", "code")}),
    ("the chain cut: the formulas above the hidden margin still warn, naming the margin",
     perms(product="  rep: {read: true, hidden: [unit_cost, margin, code]}\n"),
     {(role, "product.tier", "product.margin") for role in ("rep", "senior")}),
    ("across a link: a line's cost from the product's hidden cost",
     perms(product="  rep: {read: true, hidden: [unit_cost, margin, tier, code]}\n",
           line="  rep: {read: true}\n", order="  rep: {read: true}\n"),
     {(role, "line.line_cost", "product.unit_cost") for role in ("rep", "senior")}
     | {(role, "order.cost", "product.unit_cost") for role in ("rep", "senior")}
     | {(role, "order.profit", "product.unit_cost") for role in ("rep", "senior")}),
    ("a rollup over a field hidden on the child entity, and what is computed from it",
     perms(line="  rep: {read: true, hidden: [line_cost]}\n",
           order="  rep: {read: true}\n"),
     {(role, f"order.{name}", "line.line_cost")
      for role in ("rep", "senior") for name in ("cost", "profit")}),
    ("a rollup whose where reads a hidden field; a plain count does not",
     perms(line="  rep: {read: true, hidden: [note]}\n", order="  rep: {read: true}\n"),
     {(role, "order.noted", "line.note") for role in ("rep", "senior")}),
    ("inherited: a role with its own permission that hides nothing sees both, no warning",
     perms(order="  rep: {read: true, hidden: [total]}\n  manager: {read: true}\n"),
     {("rep", "order.profit", "order.total"), ("senior", "order.profit", "order.total")}),
    ("a role that may not read the entity is not warned about it",
     perms(order="  clerk: {read: false, hidden: [total]}\n  manager: {read: true}\n"),
     set()),
    ("a reader whose other role hides less: hidden only when every role hides it",
     perms(order="  rep: {read: true, hidden: [total]}\n  senior: {read: true}\n"),
     {("rep", "order.profit", "order.total")}),
]


@pytest.mark.parametrize("files,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_derived_fields_that_give_hidden_fields_away(files, expected, tmp_path):
    assert leaks(files, tmp_path) == expected


def test_the_warning_points_at_the_formula_and_says_what_to_do(tmp_path):
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **perms(
        order="  rep: {read: true, hidden: [total]}\n")})
    model, diags = check_paths([pack])
    assert model is not None  # a warning does not make the definitions invalid
    rep = [d for d in diags if d.code == "W201" and "role 'rep'" in d.message]
    line = (pack / "entities/order.yaml").read_text().splitlines()[4]
    assert line.startswith("  profit:")
    assert [(Path(d.file).name, d.line, d.col) for d in rep] == [
        ("order.yaml", 5, line.index('"total - cost"') + 1)]
    assert rep[0].format().endswith(
        "warning W201 field 'profit': role 'rep' sees the formula 'order.profit', which reads "
        "'order.total', hidden from that role (hide 'profit' from 'rep' too, in the 'hidden' "
        "list of its permissions on order; or stop hiding 'order.total')")


def test_a_chain_is_named_in_the_message(tmp_path):
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **perms(
        product="  rep: {read: true, hidden: [unit_cost]}\n")})
    _, diags = check_paths([pack])
    tier = [d.message for d in diags if "role 'rep'" in d.message and "'product.tier'" in d.message]
    assert tier == ["field 'tier': role 'rep' sees the formula 'product.tier', which reads "
                    "'product.unit_cost' (through 'product.margin'), hidden from that role"]


def test_no_warning_about_definitions_with_errors(tmp_path):
    files = perms(order="  rep: {read: true, hidden: [total]}\n")
    files["entities/order.yaml"] += "views:\n  list:\n    columns: [nope]\n"
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **files})
    model, diags = check_paths([pack])
    assert model is None and [d.code for d in diags] == ["E203"]


def test_validate_lists_the_warning_and_succeeds(tmp_path, capsys):
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **perms(
        order="  rep: {read: true, hidden: [total]}\n")})
    assert main(["validate", str(pack)]) == 0
    captured = capsys.readouterr()
    assert "warning W201 field 'profit': role 'rep'" in captured.out
    assert captured.err.startswith("ok: ")


def test_the_examples_in_errors_md_are_real_output(tmp_path, monkeypatch):
    pack = write_pack(tmp_path, {"roles.yaml": ROLES, **perms(
        order="  rep: {read: true, hidden: [total]}\n",
        product="  rep: {read: true, hidden: [unit_cost]}\n")})
    monkeypatch.chdir(pack)  # file names relative to the working directory, as in the docs
    _, diags = check_paths(["."])
    output = {d.format() for d in diags}
    docs = (Path(__file__).parent.parent / "docs" / "errors.md").read_text(encoding="utf-8")
    examples = [line for line in docs.splitlines() if " W201 " in line and line[:1] != "|"]
    assert len(examples) >= 2 and set(examples) <= output, set(examples) - output
