"""Words, not codes, on the pages (issue 13, items 5 and 6): a refused transition explains
itself with its `message` or its guard in words, bulk edit lists choice labels, the timeline
shows labels and dates in the instance's time zone, money shows its currency — with the Flask
test client on SQLite and PostgreSQL, and a Playwright journey in Chromium.

`CRMFORGE_SCREENSHOTS=1` saves the record page, desktop and phone, to docs/screenshots/
(`desktop-words.png`, `phone-words.png`) and the list (`*-words-list.png`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from browser_support import VIEWPORTS, require_browser, served, shoot
from browser_support import sign_in as browser_sign_in
from conftest import build_instance
from support import admin_actor, write_pack
from web_support import PASSWORD, make_app, sign_in, token_of

from runtime.http.auth import set_password
from runtime.process import workflow
from runtime.write import records

QUOTE = """
entity: quote
label: Quote
title_field: name
fields:
  name:        {type: text, required: true}
  total:       {type: money}
  fee:         {type: money, currency: GBP}
  valid_until: {type: date}
  signed_at:   {type: datetime}
  temperature:
    type: choice
    options: {hot: Hot, warm: Warm, cold: Cold}
workflow:
  field: status
  initial: draft
  states:
    draft:      {label: Draft}
    sent:       {label: Sent to customer}
    will_offer: {label: Will make an offer}
  transitions:
    send:
      label: Send to customer
      from: draft
      to: sent
      when: "total > 0 and valid_until >= today()"
    offer:
      label: Expect an offer
      from: sent
      to: will_offer
      when: "temperature == 'hot'"
      message: "Only a hot quote leads to an offer: set Temperature to Hot first."
    escalate: {label: Ask the boss, from: draft, to: will_offer, approval: boss}
approvals:
  boss:
    allow_self_approval: true
    steps:
      - name: boss
        approvers: {user: admin}
"""


def quote_pack(directory: Path) -> Path:
    return write_pack(directory, {"entities/quote.yaml": QUOTE}, name="words")


@pytest.fixture
def env(make_instance, tmp_path):
    inst = make_instance(quote_pack(tmp_path / "packs"))
    inst.settings["TIME_ZONE"] = "Europe/Berlin"
    admin = admin_actor(inst)
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin)
    return inst, admin, client


def _quote(inst, admin, **values: Any) -> dict[str, Any]:
    return records.create(inst, admin, "quote", {"name": "Quote for Acme", **values})


def _page(client, path: str) -> str:
    answer = client.get(path)
    assert answer.status_code == 200, answer.get_data(as_text=True)[:500]
    return answer.get_data(as_text=True)


def test_a_guard_without_message_reads_in_words(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin, total="0", valid_until=inst.today().isoformat())
    html = _page(client, f"/e/quote/{quote['id']}")
    assert ("Send to customer needs: Total greater than 0; Valid until on or after today."
            in html)
    assert "total &gt; 0" not in html and "today()" not in html


def test_a_guard_shows_its_message(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin, total="10", valid_until=inst.today().isoformat(),
                   temperature="cold")
    workflow.fire(inst, admin, "quote", quote["id"], "send")
    path = f"/e/quote/{quote['id']}"
    assert "Only a hot quote leads to an offer: set Temperature to Hot first." in _page(
        client, path)
    answer = client.post(f"{path}/transitions/offer", data={"csrf_token": token_of(
        client, path)}, follow_redirects=True)
    assert "Only a hot quote leads to an offer" in answer.get_data(as_text=True)


def test_bulk_edit_takes_a_label_and_lists_labels(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin)
    token = token_of(client, "/e/quote")
    client.post("/e/quote/bulk", data={"csrf_token": token, "action": "edit",
                                       "ids": [quote["id"]], "field": "temperature",
                                       "value": "Hot"})
    assert records.get(inst, admin, "quote", quote["id"])["temperature"] == "hot"
    answer = client.post("/e/quote/bulk", data={
        "csrf_token": token, "action": "edit", "ids": [quote["id"]], "field": "temperature",
        "value": "Tepid"}, follow_redirects=True)
    html = answer.get_data(as_text=True)
    assert "Temperature must be one of: Hot, Warm, Cold" in html
    assert "hot, warm, cold" not in html


def test_the_timeline_shows_labels_and_local_times(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin, total="10", valid_until=inst.today().isoformat())
    current = records.update(inst, admin, "quote", quote["id"], {
        "temperature": "hot", "signed_at": "2026-12-04T21:13:00Z"}, version=quote["version"])
    workflow.fire(inst, admin, "quote", quote["id"], "send")
    workflow.fire(inst, admin, "quote", quote["id"], "offer")
    assert current["temperature"] == "hot"
    html = _page(client, f"/e/quote/{quote['id']}")
    timeline = html[html.index('class="timeline"'):]
    assert "Temperature: <span class=\"muted\">—</span> → Hot" in timeline
    assert "Dec 4, 2026 22:13" in timeline  # 21:13 UTC in Berlin
    assert "2026-12-04T21:13:00Z" not in html
    assert "Expect an offer: <span class=\"muted\">Sent to customer</span> → Will make an offer" \
        in timeline
    assert "will_offer" not in timeline


def test_an_approval_request_names_the_state_by_its_label(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin)
    assert workflow.fire(inst, admin, "quote", quote["id"], "escalate").status == 202
    html = _page(client, f"/e/quote/{quote['id']}")
    assert "Ask the boss → Will make an offer" in html and "→ will_offer" not in html


def test_money_shows_its_currency(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin, total="415000", fee="25")
    html = _page(client, f"/e/quote/{quote['id']}")
    assert "€415,000.00" in html  # the instance's default currency
    assert "£25.00" in html  # the field's own `currency: GBP`
    inst.settings["CURRENCY"] = "USD"
    listing = _page(client, "/e/quote")
    assert "$415,000.00" in listing and "£25.00" in listing


def test_dates_follow_the_users_language(env) -> None:
    inst, admin, client = env
    quote = _quote(inst, admin, valid_until="2026-03-02")
    assert "Mar 2, 2026" in _page(client, f"/e/quote/{quote['id']}")
    users = inst.schema.table("user")
    with inst.engine.begin() as conn:
        conn.execute(users.update().where(users.c.id == admin.user_id).values(language="de"))
    assert "2.3.2026" in _page(client, f"/e/quote/{quote['id']}")


# -- in the browser ---------------------------------------------------------------------------

try:
    from playwright.sync_api import expect
except ImportError:  # pragma: no cover - the test extra installs it
    pass


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    require_browser()
    directory = tmp_path_factory.mktemp("words")
    inst = build_instance(quote_pack(directory / "packs"), f"sqlite:///{directory / 'crm.db'}")
    admin = admin_actor(inst)
    set_password(inst, admin.user_id, PASSWORD)
    quote = records.create(inst, admin, "quote", {
        "name": "Quote for Acme", "total": "0", "fee": "120", "temperature": "warm",
        "valid_until": (inst.today() - timedelta(days=1)).isoformat()})
    records.update(inst, admin, "quote", quote["id"], {
        "temperature": "hot", "signed_at": "2026-12-04T21:13:00Z"}, version=quote["version"])
    with served(inst, directory, quote=quote) as running:
        yield running


@pytest.mark.browser
def test_a_refused_transition_reads_as_a_sentence(browser, server) -> None:
    for device, viewport in VIEWPORTS:
        page = browser_sign_in(browser, server, "admin", viewport)
        page.goto(f"{server['url']}/e/quote/{server['quote']['id']}")
        expect(page.get_by_text(
            "Send to customer needs: Total greater than 0; Valid until on or after "
            "today.").first).to_be_visible()
        expect(page.get_by_text("£120.00").first).to_be_visible()
        assert "today()" not in page.content()
        expect(page.locator(".timeline").get_by_text("Hot").first).to_be_visible()
        shoot(page, f"{device}-words")
        page.goto(f"{server['url']}/e/quote")
        shoot(page, f"{device}-words-list", full_page=False)
        page.close()
