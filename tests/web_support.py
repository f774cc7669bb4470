"""Helpers for the web page tests: an app over a test instance, signing in, CSRF tokens, and
a small realistic data set (the SPEC fixture pack: properties, contacts, offers, leads ...).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from runtime.core.instance import Actor, Instance
from runtime.http.app import create_app
from runtime.http.auth import SESSION_KEY, set_password, start_session
from runtime.write import records

PASSWORD = "correct horse battery"
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_app(inst: Instance, tmp_path: Any, **config: Any) -> Flask:
    return create_app({"INSTANCE": inst, "TESTING": True, "SECRET_KEY": "test-secret",
                       "INSTANCE_DIR": str(tmp_path), **config})


def sign_in(client: FlaskClient, inst: Instance, actor: Actor, *, form: bool = False) -> None:
    """Sign in as `actor`: through the real login form (`form=True`: sets a password, which
    takes a deliberately slow argon2 hash), or by starting a session on the server and writing
    its key into the signed cookie directly."""
    if not form:
        key = start_session(inst, actor.user_id)
        with client.session_transaction() as session:
            session[SESSION_KEY] = key
        return
    set_password(inst, actor.user_id, PASSWORD)
    page = client.get("/login")
    answer = client.post("/login", data={"username": actor.username, "password": PASSWORD,
                                         "csrf_token": csrf(page.get_data(as_text=True))})
    assert answer.status_code == 302, answer.get_data(as_text=True)[:500]


def csrf(html: str) -> str:
    match = TOKEN.search(html)
    assert match, "the page has no CSRF token"
    return match.group(1)


def token_of(client: FlaskClient, path: str = "/") -> str:
    return csrf(client.get(path).get_data(as_text=True))


def seed(inst: Instance, actor: Actor) -> dict[str, Any]:
    """A small CRM: accounts, contacts, properties, offers, viewings, leads, orders."""
    today = inst.today()
    made: dict[str, Any] = {}

    def add(entity: str, **values: Any) -> dict[str, Any]:
        return records.create(inst, actor, entity, values)

    acme = add("account", name="Acme Holdings")
    globex = add("account", name="Globex Ltd")
    anna = add("contact", first_name="Anna", last_name="Schmidt", phone="+44 20 7946 0958",
               email="anna.schmidt@example.com", birth_date="1986-04-12")
    ben = add("contact", first_name="Ben", last_name="Okafor", phone="+44 161 496 0321",
              email="ben.okafor@example.com")
    chen = add("contact", first_name="Chen", last_name="Wei", phone="+86 10 5555 0192",
               email="chen.wei@example.com")
    flat = add("property", title="Riverside flat, 2 bed", price="425000",
               listed_on=(today - timedelta(days=40)).isoformat())
    villa = add("property", title="Hillside villa with garden", price="1250000",
                listed_on=(today - timedelta(days=12)).isoformat())
    loft = add("property", title="City loft", price="610000")
    offers = [
        add("offer", property=flat["id"], buyer=anna["id"], amount="415000",
            financing="mortgage", valid_until=(today + timedelta(days=5)).isoformat(),
            notes="Buyer is pre-approved."),
        add("offer", property=villa["id"], buyer=ben["id"], amount="1180000",
            financing="cash", valid_until=(today + timedelta(days=9)).isoformat()),
        add("offer", property=loft["id"], buyer=chen["id"], amount="590000",
            financing="mixed", valid_until=(today + timedelta(days=2)).isoformat()),
        add("offer", property=flat["id"], buyer=ben["id"], amount="405000",
            financing="cash", valid_until=(today + timedelta(days=14)).isoformat()),
    ]
    add("viewing", property=flat["id"], contact=anna["id"],
        starts_at=f"{(today + timedelta(days=1)).isoformat()}T10:00")
    add("viewing", property=villa["id"], contact=ben["id"],
        starts_at=f"{(today + timedelta(days=3)).isoformat()}T15:30")
    for name, source, region, status in [
            ("Northwind Traders", "web", "north", "new"),
            ("Contoso Pharma", "referral", "south", "contacted"),
            ("Fabrikam Homes", "fair", "east", "qualified"),
            ("Tailspin Toys", "web", "west", "new"),
            ("Wide World Importers", "web", "north", "lost")]:
        add("lead", name=name, source=source, region=region, status=status,
            next_follow_up=(today - timedelta(days=1)).isoformat(),
            owner=actor.user_id)  # the seeder's own, not routed (see the lead's routing rule)
    for i, (account, total, profit) in enumerate([(acme, "1200", "300"), (globex, "860", "150"),
                                                  (acme, "2400", "610"), (globex, "310", "40")]):
        add("order", account=account["id"],
            ordered_on=(today - timedelta(days=30 * i + 3)).isoformat(), total=total,
            profit=profit, contacts=[anna["id"]] if i % 2 == 0 else [])
    for name, account, amount, stage in [("Acme renewal", acme, "48000", "proposal"),
                                         ("Globex expansion", globex, "125000", "open"),
                                         ("Acme pilot", acme, "9000", "won")]:
        add("opportunity", name=name, account=account["id"], amount=amount, stage=stage)
    made.update(acme=acme, globex=globex, anna=anna, ben=ben, chen=chen, flat=flat,
                villa=villa, loft=loft, offers=offers)
    return made
