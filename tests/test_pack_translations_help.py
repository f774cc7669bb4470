"""Issue 17: help texts, placeholders and roles in the reader's language. W101
(`crmforge validate --languages`) reports a field's help text or placeholder and a role's label
or description that lacks a language; a role's label map shows in the reader's language on
the admin pages; the rights of a role read as whole sentences in Chinese and Spanish
(`builder.guard_words` with gettext as its voice, `runtime.read.role_rights`)."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import admin_actor, write_pack
from web_support import make_app, sign_in

from builder import translations
from builder.diagnostics import Diagnostics

OFFER = """\
entity: offer
label: {en: Offer, zh: 报价, es: Oferta}
plural: {en: Offers, zh: 报价, es: Ofertas}
fields:
  name:
    type: text
    label: {en: Name, zh: 名称, es: Nombre}
    placeholder: {en: Corner flat, zh: 转角公寓, es: Piso en esquina}
  amount:
    type: money
    label: {en: Amount, zh: 金额, es: Importe}
    help: {en: Before tax., zh: 税前。, es: Antes de impuestos.}
  stage:
    type: choice
    label: {en: Stage, zh: 阶段, es: Etapa}
    options: {draft: {en: Draft, zh: 草稿, es: Borrador}, sent: {en: Sent, zh: 已发送, es: Enviada}}
  valid_until: {type: date, label: {en: Valid until, zh: 有效期至, es: Válida hasta}}
workflow:  # its Status field is labelled in English only, from its name
  field: status
  initial: open
  states:
    open: {label: {en: Open, zh: 未结, es: Abierta}}
    closed: {label: {en: Closed, zh: 已关闭, es: Cerrada}, final: true}
  transitions:
    close: {label: {en: Close, zh: 关闭, es: Cerrar}, from: open, to: closed}
permissions:
  agent:
    read: true
    create: "status == 'open'"
    update: "stage == 'draft' and amount >= 1000"
    delete: "valid_until >= today() or amount == null"
"""
PACK = "pack: shop\nformat: 1\nversion: 1.0.0\nlabel: {en: Shop, zh: 商店, es: Tienda}\n"
ROLES = """\
roles:
  agent:
    label: {en: Agent, zh: 经纪人, es: Agente}
    description:
      en: Sells the offers.
      zh: 负责销售报价。
      es: Vende las ofertas.
  lead_agent:
    label: {en: Lead agent, zh: 首席经纪人, es: Agente principal}
    inherits: [agent]
"""

# (file, what to change, into what, the place W101 names)
MISSING = [
    ("entities/offer.yaml", "{en: Before tax., zh: 税前。, es: Antes de impuestos.}",
     "Before tax.", "fields.amount.help 'Before tax.' has no zh, es translation"),
    ("entities/offer.yaml", "zh: 税前。, ", "", "fields.amount.help 'Before tax.' has no zh "),
    ("entities/offer.yaml", "{en: Corner flat, zh: 转角公寓, es: Piso en esquina}",
     "Corner flat", "fields.name.placeholder 'Corner flat'"),
    ("roles.yaml", "{en: Agent, zh: 经纪人, es: Agente}", "Agent",
     "roles.agent.label 'Agent' has no zh, es translation"),
    ("roles.yaml", "{en: Lead agent, zh: 首席经纪人, es: Agente principal}",
     "{en: Lead agent, es: Agente principal}", "roles.lead_agent.label 'Lead agent' has no zh "),
    ("roles.yaml", "    label: {en: Lead agent, zh: 首席经纪人, es: Agente principal}\n", "",
     "roles.lead_agent.label is made from a name"),
    ("roles.yaml", "      zh: 负责销售报价。\n", "",
     "roles.agent.description 'Sells the offers.' has no zh "),
]


def _pack(root: Path, change: tuple[str, str, str] | None = None) -> Path:
    files = {"entities/offer.yaml": OFFER, "roles.yaml": ROLES, "pack.yaml": PACK}
    if change:
        assert change[1] in files[change[0]]
        files[change[0]] = files[change[0]].replace(change[1], change[2])
    return write_pack(root, files, name="shop")


def _warnings(path: Path) -> list[str]:
    diags = Diagnostics()
    translations.check([path], ("zh", "es"), diags)
    return [d.format() for d in diags]


def test_a_translated_pack_has_no_warning(tmp_path: Path) -> None:
    assert _warnings(_pack(tmp_path)) == []


@pytest.mark.parametrize(("file", "old", "new", "names"), MISSING, ids=[m[3] for m in MISSING])
def test_a_help_text_placeholder_or_role_without_a_language_is_reported(
        tmp_path: Path, file: str, old: str, new: str, names: str) -> None:
    found = _warnings(_pack(tmp_path, (file, old, new)))
    assert len(found) == 1, found
    assert f"shop/{file}:" in found[0] and "W101" in found[0] and names in found[0], found


@pytest.fixture
def client(make_instance, tmp_path: Path):
    inst = make_instance(_pack(tmp_path / "packs"))
    admin = admin_actor(inst)
    app_client = make_app(inst, tmp_path).test_client()
    sign_in(app_client, inst, admin)
    return app_client


def _page(client, path: str, language: str) -> str:
    answer = client.get(path, headers={"Accept-Language": language})
    assert answer.status_code == 200
    return answer.get_data(as_text=True)


RIGHTS = {  # the rules of lead_agent (inherited from agent) as the role page writes them
    "en": ("Stage is Draft", "Amount at least 1,000", "Valid until on or after today",
           "Status is Open"),
    "zh": ("阶段为草稿", "金额至少为 1,000", "满足其一：有效期至不早于今天或金额为空",
           "状态为未结"),
    "es": ("Etapa es Borrador", "Importe mayor o igual que 1.000", "Estado es Abierta",
           "O bien Válida hasta: hoy o después o Importe sin rellenar"),
}


@pytest.mark.parametrize("language", ["en", "zh", "es"])
def test_the_rights_of_a_role_read_in_the_readers_language(client, language: str) -> None:
    page = _page(client, "/admin/roles/lead_agent", language)
    for sentence in RIGHTS[language]:
        assert sentence in page, (language, sentence)
    if language != "en":  # no English word left between the labels
        for english in (" is ", " at least ", " on or after ", "either", " today"):
            assert english not in page.lower(), (language, english)


def test_role_labels_and_descriptions_follow_the_reader(client) -> None:
    chinese = _page(client, "/admin/roles", "zh")
    assert "经纪人" in chinese and "负责销售报价。" in chinese and "首席经纪人" in chinese
    assert "管理员" in chinese and "用户管理员" in chinese  # the built-in roles too
    assert "Sells the offers." not in chinese and "May do everything" not in chinese
    role = _page(client, "/admin/roles/lead_agent", "zh")
    assert "<h1>首席经纪人" in role and "包含" in role and "经纪人" in role
    spanish = _page(client, "/admin/users/new", "es")
    assert "Agente principal" in spanish and "Vende las ofertas." in spanish
    assert "Agente principal" in _page(client, "/admin/roles", "es")
    assert "Lead agent" in _page(client, "/admin/roles", "en")
