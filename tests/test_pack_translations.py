"""`crmforge validate --languages zh,es`: every text a business user reads that lacks one of the
languages is a W101 warning at its file, line and column (builder/translations.py), and the
shipped packs lack none."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from builder import translations
from builder.diagnostics import Diagnostics
from builder.packs import SHIPPED_DIR
from runtime.ops.cli import main

PACK = {
    "pack.yaml": """\
pack: shop
format: 1
version: 1.0.0
label: {en: Shop, zh: 商店, es: Tienda}
""",
    "entities/offer.yaml": """\
# an offer made to a customer
entity: offer
label: {en: Offer, zh: 报价, es: Oferta}
plural: {en: Offers, zh: 报价单, es: Ofertas}
fields:
  name: {type: text, label: {en: Name, zh: 名称, es: Nombre}, required: true}
  price: {type: money, label: {en: Price, zh: 价格, es: Precio}}
  size:
    type: choice
    label: {en: Size, zh: 尺寸, es: Tamaño}
    options: {small: {en: Small, zh: 小, es: Pequeño}, large: {en: Large, zh: 大, es: Grande}}
workflow:
  field: status
  initial: draft
  states:
    draft: {label: {en: Draft, zh: 草稿, es: Borrador}}
    sent: {label: {en: Sent, zh: 已发送, es: Enviada}, final: true}
  transitions:
    send:
      label: {en: Send, zh: 发送, es: Enviar}
      from: draft
      to: sent
      when: "price > 0"
      message: {en: Set a price first., zh: 请先填写价格。, es: Indique primero un precio.}
validations:
  - rule: "price >= 0"
    message:
      {en: The price cannot be negative., zh: 价格不能为负。, es: El precio no puede ser negativo.}
views:
  form:
    sections:
      - {label: {en: Offer, zh: 报价, es: Oferta}, fields: [name, price, size]}
""",
    "dashboards/offers.yaml": """\
dashboard: offers
label: {en: Offers, zh: 报价, es: Ofertas}
widgets:
  - {type: number, entity: offer, label: {en: Open offers, zh: 未结报价, es: Ofertas abiertas}}
""",
}

# (what to change in which file, where the warning is, what it names)
MISSING = [
    ("entities/offer.yaml", "zh: 价格, es", "zh: ' ', es", "7:31",
     "fields.price.label 'Price' has no zh translation"),
    ("entities/offer.yaml", "{en: Price, zh: 价格, es: Precio}", "Price", "7:31",
     "fields.price.label 'Price'"),
    ("entities/offer.yaml", "label: {en: Price, zh: 价格, es: Precio}", "min: 0", "7:3",
     "fields.price.label is made from a name"),
    ("entities/offer.yaml", "{small: {en: Small, zh: 小, es: Pequeño}, large: {en: Large, "
     "zh: 大, es: Grande}}", "[small, large]", "11:15", "fields.size.options[0]"),
    ("entities/offer.yaml", "{label: {en: Draft, zh: 草稿, es: Borrador}}", "{}", "16:5",
     "workflow.states.draft.label is made from a name"),
    ("entities/offer.yaml", "{en: Send, zh: 发送, es: Enviar}", "{en: Send, es: Enviar}", "20:14",
     "workflow.transitions.send.label 'Send' has no zh translation"),
    ("entities/offer.yaml", "{en: Set a price first., zh: 请先填写价格。, es: Indique primero un "
     "precio.}", "Set a price first.", "24:16", "transitions.send.message 'Set a price first.'"),
    ("entities/offer.yaml", "{en: The price cannot be negative., zh: 价格不能为负。, es: El "
     "precio no puede ser negativo.}", "The price cannot be negative.", "28:7",
     "validations[0].message"),
    ("entities/offer.yaml", "- {label: {en: Offer, zh: 报价, es: Oferta}, fields",
     "- {label: Offer, fields", "32:17", "views.form.sections[0].label 'Offer'"),
    ("dashboards/offers.yaml", "label: {en: Open offers, zh: 未结报价, es: Ofertas abiertas}",
     "label: Open offers", "4:42", "widgets[0].label 'Open offers'"),
    ("dashboards/offers.yaml", "widgets:", "description: Offers made and won.\nwidgets:", "3:14",
     "description 'Offers made and won.'"),  # shown under the dashboard's title
    ("pack.yaml", "label: {en: Shop, zh: 商店, es: Tienda}", "description: A shop", "1:1",
     "label is made from a name"),
]


def write_pack(root: Path, change: tuple[str, str, str] | None = None) -> Path:
    for name, text in PACK.items():
        if change and change[0] == name:
            assert change[1] in text
            text = text.replace(change[1], change[2])
        (root / "shop" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "shop" / name).write_text(text, encoding="utf-8")
    return root / "shop"


@pytest.fixture
def validate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """`validate(*args)` -> (exit status, stdout, stderr), run in `tmp_path`."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CRMFORGE_CUSTOM_DIR", str(tmp_path / "custom"))

    def call(*args: str) -> tuple[int, str, str]:
        try:
            code = main(["validate", *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out = capsys.readouterr()
        return code, out.out, out.err
    return call


def test_a_complete_pack_reports_nothing(tmp_path: Path, validate) -> None:
    write_pack(tmp_path)
    code, out, err = validate("--languages", "zh,es", "shop")
    assert (code, out) == (0, "")
    assert err.startswith("ok: 1 pack(s)") and "translation" not in err


@pytest.mark.parametrize(("file", "old", "new", "place", "names"), MISSING,
                         ids=[m[4] for m in MISSING])
def test_a_missing_translation_is_a_warning_at_its_place(
        tmp_path: Path, validate, file: str, old: str, new: str, place: str, names: str) -> None:
    write_pack(tmp_path, (file, old, new))
    code, out, err = validate("--languages", "zh,es", "shop")
    lines = out.splitlines()
    assert code == 0, out + err
    assert len(lines) == 1 or names.endswith("options[0]"), lines
    assert lines[0].startswith(f"shop/{file}:{place}: warning W101 "), lines
    assert names in lines[0] and "zh" in lines[0]
    assert "1 text(s) lack a translation" in err or names.endswith("options[0]")


def test_the_text_output_names_the_languages_and_how_to_fix(tmp_path: Path, validate) -> None:
    write_pack(tmp_path, MISSING[1][:3])
    code, out, _ = validate("--languages", "zh,es", "shop")
    assert out == ("shop/entities/offer.yaml:7:31: warning W101 fields.price.label 'Price' has "
                   "no zh, es translation (write it as a map: {en: …, zh: …, es: …})\n")


@pytest.mark.parametrize("case", [0, 3, 4])
def test_the_examples_in_errors_md_are_real_output(tmp_path: Path, validate, case: int) -> None:
    write_pack(tmp_path, MISSING[case][:3])
    first = validate("--languages", "zh,es", "shop")[1].splitlines()[0]
    assert first in (SHIPPED_DIR.parent / "docs" / "errors.md").read_text(encoding="utf-8")


def test_the_json_output_has_the_warning(tmp_path: Path, validate) -> None:
    write_pack(tmp_path, MISSING[2][:3])
    code, out, _ = validate("--languages", "zh,es", "--format", "json", "shop")
    assert code == 0
    assert json.loads(out) == [{
        "file": "shop/entities/offer.yaml", "line": 7, "col": 3, "code": "W101",
        "message": "fields.price.label is made from a name, so it has no zh, es translation",
        "hint": "add label: {en: …, zh: …, es: …}", "severity": "warning"}]


def test_only_the_languages_asked_for_are_looked_for(tmp_path: Path, validate) -> None:
    write_pack(tmp_path, MISSING[5][:3])  # the send transition lacks zh only
    assert validate("--languages", "es", "shop")[:2] == (0, "")
    assert validate("shop")[:2] == (0, "")
    assert "W101" in validate("--languages", "zh", "shop")[1]


def test_errors_come_first_and_alone(tmp_path: Path, validate) -> None:
    write_pack(tmp_path, ("entities/offer.yaml", "to: sent", "to: snet"))
    code, out, _ = validate("--languages", "zh,es", "shop")
    assert code == 1 and "E201" in out and "W101" not in out


@pytest.mark.parametrize("languages", ["", "zh,1x", "chinese", "zh;es"])
def test_a_bad_language_list_is_a_usage_error(tmp_path: Path, validate, languages: str) -> None:
    write_pack(tmp_path)
    code, _, err = validate("--languages", languages, "shop")
    assert code == 2 and "language code" in err


@pytest.mark.parametrize("pack", ["core", "real_estate", "telecom", "finance", "hotel"])
def test_every_shipped_pack_is_translated(pack: str) -> None:
    diags = Diagnostics()
    translations.check([SHIPPED_DIR / pack], ("zh", "es"), diags)
    assert [d.format() for d in diags] == []


@pytest.mark.slow  # every shipped pack linked: 8 s
def test_the_shipped_packs_validate_with_nothing_missing(validate) -> None:
    code, out, err = validate("--languages", "zh,es", str(SHIPPED_DIR))
    assert (code, out) == (0, ""), out
    assert "translation" not in err
