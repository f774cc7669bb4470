"""System timeline entries in the reader's language (issue 17): an entry the system writes keeps
its sentence as a key and parameters (`data.i18n`) beside its English `body`, and the record
page renders it through the catalogs with the model's labels in the reader's language — owner
changes, transitions, approval requests and recalls, automations, merges, withdrawn consent,
calls. An old row with only a body shows it; the API still returns `body`. Real app (Flask test
client), real database."""

from __future__ import annotations

import html as html_lib
import re
from typing import Any

import pytest
import sqlalchemy as sa
from support import admin_actor, insert_user
from web_support import make_app, sign_in

from runtime.core.errors import ValidationFailed
from runtime.http.auth import create_token
from runtime.process import calls, workflow
from runtime.process.approvals import actions
from runtime.process.mail import consent
from runtime.write import merge, records, timeline
from runtime.write.timeline import record_event

ROLES = """
roles:
  rep: {label: {en: Rep, zh: 销售代表, es: Comercial}}
  boss: {label: {en: Boss, zh: 主管, es: Jefe}}
"""
DEAL = """
entity: deal
label: {en: Deal, zh: 交易, es: Trato}
plural: {en: Deals, zh: 交易, es: Tratos}
title_field: name
fields:
  name: {type: text, required: true}
  phone: {type: phone}
  newsletter: {type: boolean, label: {en: Newsletter, zh: 订阅通讯, es: Boletín}}
workflow:
  field: stage
  initial: open
  states:
    open: {label: {en: Open, zh: 进行中, es: Abierto}}
    won: {label: {en: Won, zh: 已赢单, es: Ganado}}
  transitions:
    quick: {label: {en: Close quickly, zh: 快速成交, es: Cerrar rápido}, from: open, to: won}
    win:
      label: {en: Win, zh: 赢单, es: Ganar}
      from: open
      to: won
      approval: big
approvals:
  big:
    label: {en: Big deal, zh: 大额交易, es: Trato grande}
    steps:
      - name: boss
        approvers: {role: boss}
permissions:
  rep: {read: true, create: true, update: true, delete: true}
  boss: {read: true, create: true, update: true, delete: true}
automations:
  route:
    label: {en: Route to a rep, zh: 分配给销售代表, es: Asignar a un comercial}
    on: create
    do:
      - assign: {field: owner, among: {role: rep}}
"""
CONTACT = """
entity: contact
label: {en: Contact, zh: 联系人, es: Contacto}
plural: {en: Contacts, zh: 联系人, es: Contactos}
title_field: name
fields:
  name: {type: text, required: true}
  deal: {type: link, to: deal, label: {en: Deal, zh: 交易, es: Trato}}
permissions:
  rep: {read: true, create: true, update: true}
"""

# what each reader reads on the page, for each kind of system entry (the page escapes quotes)
EXPECTED = {
    "zh": {
        "owner head": "负责人",
        "owner": "负责人：无人 → Bea",
        "owner change": '负责人: <span class="muted">—</span> → Bea',
        "transition": '快速成交: <span class="muted">进行中</span> → 已赢单',
        "requested": "申请审批“大额交易”以赢单：&lt;b&gt;please&lt;/b&gt;",
        "recalled": "撤回了审批申请“大额交易”",
        "automation": "分配给销售代表：无人可分配——没有属于角色“销售代表”的在职用户。",
        "merge head": "合并",
        "merged": "已将交易 #{gone} 合并到此记录；移到这里的有：",
        "moved": "1 条联系人（按交易）",
        "consent": "订阅通讯：已于 ",
        "call": "来自 +44 117 496 0320 的来电，由 admin 接听。",
    },
    "es": {
        "owner head": "Responsable",
        "owner": "Responsable: nadie → Bea",
        "owner change": 'Responsable: <span class="muted">—</span> → Bea',
        "transition": 'Cerrar rápido: <span class="muted">Abierto</span> → Ganado',
        "requested": "Pidió la aprobación «Trato grande» para ganar: &lt;b&gt;please&lt;/b&gt;",
        "recalled": "Retiró la solicitud de aprobación «Trato grande»",
        "automation": "Asignar a un comercial: nadie a quien asignar — ningún usuario activo con "
                      "el rol «Comercial».",
        "merge head": "Fusión",
        "merged": "Se fusionó trato #{gone} en este registro; se trasladó aquí: ",
        "moved": "1 contactos (por trato)",
        "consent": "Boletín: retirado mediante el enlace para darse de baja el ",
        "call": "Llamada entrante de +44 117 496 0320, atendida por admin.",
    },
}
ENGLISH = ("Owner:", "Asked for approval", "Recalled the approval", "nobody to assign",
           "Merged ", "moved here", "withdrawn through", "Incoming call", "Close quickly")


@pytest.fixture
def crm(make_instance, pack, tmp_path) -> dict[str, Any]:
    inst = make_instance(pack({"roles.yaml": ROLES, "entities/deal.yaml": DEAL,
                               "entities/contact.yaml": CONTACT}))
    admin = admin_actor(inst)
    bea = insert_user(inst, "bea", full_name="Bea", roles=["boss"])
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == admin.user_id).values(
            full_name="Admin"))
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin)
    return {"inst": inst, "admin": admin, "bea": bea, "client": client}


def _deal(crm: dict[str, Any], name: str, **values: Any) -> dict[str, Any]:
    return records.create(crm["inst"], crm["admin"], "deal", {"name": name, **values})


def _history(crm: dict[str, Any]) -> tuple[int, int]:
    """A deal with one system entry of each kind on its timeline; (its id, the absorbed id)."""
    inst, admin = crm["inst"], crm["admin"]
    deal = _deal(crm, "Acme", phone="+44 117 496 0320", newsletter=True)
    deal = records.update(inst, admin, "deal", deal["id"], {"owner": crm["bea"].user_id},
                          version=deal["version"])
    workflow.fire(inst, admin, "deal", deal["id"], "win", comment="<b>please</b>")
    requests = inst.schema.system("approval_request")
    with inst.engine.connect() as conn:
        request_id = conn.execute(sa.select(requests.c.id)).scalar_one()
    actions.recall(inst, admin, request_id)
    workflow.fire(inst, admin, "deal", deal["id"], "quick")
    gone = _deal(crm, "ACME Ltd")
    records.create(inst, admin, "contact", {"name": "Ann", "deal": gone["id"]})
    merge.merge(inst, admin, "deal", deal["id"], [gone["id"]])
    assert consent.withdraw(inst, "deal", deal["id"], "newsletter")
    calls.log_call(inst, admin, admin, calls.decide_call({"from": "+44 117 496 0320",
                                                          "agent": "admin"}))
    return deal["id"], gone["id"]


def _timeline(client, deal_id: int, language: str) -> str:
    answer = client.get(f"/e/deal/{deal_id}", headers={"Accept-Language": language})
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    page = answer.get_data(as_text=True)
    return page[page.index('<ul class="timeline">'):page.index('<div class="card" id="files">')]


@pytest.mark.parametrize("language", ["zh", "es"])
def test_each_kind_of_system_entry_reads_in_the_readers_language(crm, language) -> None:
    deal_id, gone = _history(crm)
    timeline = _timeline(crm["client"], deal_id, language)
    for what, words in EXPECTED[language].items():
        assert words.format(gone=gone) in timeline, (what, timeline)
    for english in ENGLISH:
        assert english not in html_lib.unescape(re.sub(r"<[^>]+>", " ", timeline)), english


def test_an_english_reader_reads_what_the_body_says(crm) -> None:
    deal_id, gone = _history(crm)
    timeline = html_lib.unescape(_timeline(crm["client"], deal_id, "en"))
    for words in ("Owner: nobody → Bea", "Asked for approval “Big deal” to win: <b>please</b>",
                  "Recalled the approval request “Big deal”",
                  "Route to a rep: nobody to assign — no active user with role “Rep”.",
                  f"Merged deal #{gone} into this record; moved here: 1 contacts (by deal)",
                  "Incoming call from +44 117 496 0320, taken by admin."):
        assert words in timeline, words


def test_an_old_row_and_a_note_show_their_body(crm) -> None:
    inst, admin, client = crm["inst"], crm["admin"], crm["client"]
    deal = _deal(crm, "Old")
    with inst.engine.begin() as conn:  # a row from before the keys: body only
        conn.execute(inst.schema.system("timeline").insert().values(
            entity="deal", record_id=deal["id"], kind="owner", body="Owner: old → new",
            data={"from": 1, "to": 2}, follow_up_done=False, user_id=admin.user_id,
            created_at=inst.now()))
    timeline.add_entry(inst, admin, "deal", deal["id"], "note", "Owner: written by hand",
                       data={"x": 1})
    shown = _timeline(client, deal["id"], "zh")
    assert "Owner: old → new" in shown
    assert "Owner: written by hand" in shown


def test_a_note_may_not_pass_for_a_system_entry(crm) -> None:
    deal = _deal(crm, "Forged")
    with pytest.raises(ValidationFailed) as refused:
        timeline.add_entry(crm["inst"], crm["admin"], "deal", deal["id"], "note", "x", data={
            "i18n": {"key": "owner", "params": {"before": "a", "after": "b"}}})
    assert "i18n" in refused.value.errors["data"][0]


def test_the_api_still_returns_the_english_body_and_the_key(crm) -> None:
    deal_id, _gone = _history(crm)
    token = create_token(crm["inst"], crm["admin"].user_id)
    answer = crm["client"].get(f"/api/v1/deal/{deal_id}/timeline", headers={
        "Authorization": f"Bearer {token}", "Accept-Language": "zh"})
    assert answer.status_code == 200
    entries = answer.get_json()["data"]
    owner = next(e for e in entries if e["kind"] == "owner")
    assert owner["body"] == "Owner: nobody → Bea"
    assert owner["data"]["i18n"] == {"key": "owner",
                                     "params": {"before": None, "after": "Bea"}}
    assert owner["said"]["message"] == "Owner: %(before)s → %(after)s"
    merged = next(e for e in entries if e["kind"] == "merge")
    assert merged["body"].startswith("Merged deal #")
    assert merged["said"]["params"]["entity"] == "交易"


def test_mail_entries_read_in_the_readers_language(crm) -> None:
    """The e-mail sentences as the outbox and inbound mail write them (through
    `record_event`, as they call it), with a status word, a retry time and the message's text."""
    inst = crm["inst"]
    deal = _deal(crm, "Mail")
    with inst.engine.begin() as conn:
        for key, params, body in (
                ("mail_status", {"subject": "Offer", "to": "a@x.test", "status": "retrying",
                                 "answer": "busy", "time": "09:01"}, "E-mail …"),
                ("mail_status", {"subject": "Offer", "to": "a@x.test", "status": "bounced",
                                 "answer": None, "time": None}, "E-mail …"),
                ("mail_in", {"sender": None, "subject": "Hi"}, "E-mail from …\n\nThanks <3"),
                ("mail_not_marked", {"marked": "sent", "reason": "Stale"}, "The record …")):
            record_event(inst, conn, "deal", deal["id"], "email", body, {}, None, key=key,
                         params=params)
    shown = _timeline(crm["client"], deal["id"], "zh")
    assert "发给 a@x.test 的电子邮件“Offer”：尚未发送，将于 09:01 重试——服务器答复：busy" in shown
    assert "发给 a@x.test 的电子邮件“Offer”：已退回（被永久拒收，不再重试）。" in shown
    assert "来自 未知发件人 的电子邮件：“Hi”\n\nThanks &lt;3" in shown
    assert "无法将记录标记为已发送：Stale" in shown
    with inst.engine.begin() as conn, pytest.raises(ValueError):
        record_event(inst, conn, "deal", deal["id"], "email", "x", {}, None, key="unknown")
