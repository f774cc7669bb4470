"""Words, not codes (issue 13, item 5 and 6): the guard-to-words renderer (`builder.guard_words`),
choice messages that list labels, and money and dates as the reader's language writes them
(`runtime.read.titles`) — table-driven, no database."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from support import write_pack

from builder.expressions import parse
from builder.fieldtypes import coerce
from builder.guard_words import describe
from builder.linker import check_paths
from builder.model import Field, Option, Text
from runtime.read.titles import date_text, money_text


def _field(name: str, kind: str, label: str, **more) -> Field:
    return Field(name=name, type=kind, label=Text.of(label), pack="t", **more)


TEMPERATURE = _field("temperature", "choice", "Temperature", options=(
    Option("hot", Text.of({"en": "Hot", "de": "Heiß"})), Option("warm", Text.of("Warm")),
    Option("cold", Text.of("Cold"))))
FIELDS = {
    "quote": {f.name: f for f in (
        _field("total", "money", "Total"), _field("valid_until", "date", "Valid until"),
        _field("signed_at", "datetime", "Signed at"), TEMPERATURE,
        _field("account", "link", "Account", to="account"),
        _field("approved", "boolean", "Approved"), _field("owner", "link", "Owner", to="user"),
        _field("deposit", "money", "Deposit"), _field("rent", "money", "Rent per year"))},
    "account": {f.name: f for f in (
        _field("aml_checked", "boolean", "AML checked"),
        _field("open_orders", "integer", "Open orders"),
        _field("kyc", "choice", "KYC status", options=(
            Option("verified", Text.of("Verified")), Option("review_due", Text.of("Review due")),
            Option("prohibited", Text.of("Prohibited")))))},
}

WORDS = [
    ("total > 0 and valid_until >= today()",
     "Total greater than 0; Valid until on or after today"),
    ("total >= 1000", "Total at least 1,000"),
    ("total < 12.50", "Total less than 12.5"),
    ("total <= 5", "Total at most 5"),
    ("valid_until < today()", "Valid until before today"),
    ("signed_at > now()", "Signed at after now"),
    ("valid_until <= today()", "Valid until on or before today"),
    ("owner != null", "Owner is filled in"),
    ("owner == null", "Owner is empty"),
    ("approved == true", "Approved is yes"),
    ("approved != true", "Approved is no"),
    ("approved", "Approved is yes"),
    ("temperature == 'hot'", "Temperature is Hot"),
    ("temperature != 'cold'", "Temperature is not Cold"),
    ("temperature in ['hot', 'warm']", "Temperature is Hot or Warm"),
    ("temperature not in ['cold']", "Temperature is not Cold"),
    ("account.aml_checked == true", "Account's AML checked is yes"),
    ("account.open_orders == 0", "Account's open orders is 0"),
    ("account.kyc in ['verified', 'review_due']", "Account's KYC status is Verified or Review due"),
    ("total > 0 or approved == true", "Either Total greater than 0 or Approved is yes"),
    ("deposit <= rent / 52 * 5", "Deposit at most Rent per year ÷ 52 × 5"),
    ("coalesce(total, 0) <= 0", "Total at most 0"),
    ("old.total == null", "The previous total is empty"),
    ("has_role('manager')", "You have the role “manager”"),
    ("unknown_field > 3", "Unknown field greater than 3"),
]


@pytest.mark.parametrize(("source", "words"), WORDS)
def test_a_guard_in_words(source: str, words: str) -> None:
    assert describe(parse(source), FIELDS.get, "quote") == words


def test_words_follow_the_language_of_the_labels() -> None:
    assert describe(parse("temperature == 'hot'"), FIELDS.get, "quote", "de") \
        == "Temperature is Heiß"


CHOICES = [
    ("hot", "hot"),
    ("Hot", "hot"),  # the label, as people type it in bulk edit
    ("WARM", "warm"),
    ("Heiß", "hot"),  # a label in another language
]


@pytest.mark.parametrize(("typed", "stored"), CHOICES)
def test_a_choice_accepts_its_code_or_label(typed: str, stored: str) -> None:
    assert coerce(TEMPERATURE, typed) == stored


def test_a_refused_choice_lists_the_labels() -> None:
    with pytest.raises(ValueError, match=r"^must be one of: Hot, Warm, Cold$"):
        coerce(TEMPERATURE, "tepid")


PRICE = _field("price", "money", "Price")
FRANCS = _field("fee", "money", "Fee", currency="chf")
YEN = _field("yen", "money", "Yen", scale=0)

MONEY = [
    (PRICE, Decimal("415000"), "EUR", "en", "€415,000.00"),
    (PRICE, Decimal("415000"), "EUR", "de", "415.000,00 €"),
    (PRICE, Decimal("415000"), "EUR", "fr", "415\u202f000,00 €"),
    (PRICE, Decimal("1234.5"), "GBP", "en-GB", "£1,234.50"),
    (PRICE, Decimal("-12.5"), "USD", None, "-$12.50"),
    (PRICE, Decimal("-12.5"), "EUR", "de", "-12,50 €"),
    (PRICE, 7, "SEK", "en", "7.00 SEK"),  # no symbol: the code follows
    (FRANCS, Decimal("99"), "EUR", "en", "99.00 CHF"),  # the field's own currency wins
    (YEN, Decimal("1500"), "JPY", "en", "¥1,500"),
]


@pytest.mark.parametrize(("f", "value", "currency", "language", "text"), MONEY)
def test_money_shows_its_currency(f: Field, value, currency, language, text) -> None:
    assert money_text(value, f, currency, language) == text


BERLIN = ZoneInfo("Europe/Berlin")
DATES = [
    (date(2026, 3, 2), "en", None, "Mar 2, 2026"),
    (date(2026, 3, 2), "en-GB", None, "2 Mar 2026"),
    (date(2026, 3, 2), "en_GB", None, "2 Mar 2026"),
    (date(2026, 3, 2), "de", None, "2.3.2026"),
    (date(2026, 3, 2), "fr", None, "02/03/2026"),
    (date(2026, 3, 2), "xx", None, "Mar 2, 2026"),  # an unknown language reads as English
    (datetime(2026, 12, 4, 21, 13), "en", None, "Dec 4, 2026 21:13"),
    (datetime(2026, 12, 4, 21, 13), "en", BERLIN, "Dec 4, 2026 22:13"),  # stored in UTC
    (datetime(2026, 12, 31, 23, 30), "de", BERLIN, "1.1.2027 00:30"),
]


@pytest.mark.parametrize(("value", "language", "zone", "text"), DATES)
def test_dates_follow_the_language_and_time_zone(value, language, zone, text) -> None:
    assert date_text(value, language, zone) == text


BOOKING = """
entity: booking
fields:
  arrival:   {type: date}
  departure: {type: date}
validations:
  - rule: "departure > arrival"
  - rule: "departure != null"
    message: Give the departure date.
workflow:
  initial: open
  states: {open: {}, closed: {}}
  transitions:
    close: {from: open, to: closed, when: "departure != null", message: {en: Done?, de: Fertig?}}
"""


def test_messages_of_a_linked_model(tmp_path) -> None:
    model, diags = check_paths([write_pack(tmp_path, {"entities/booking.yaml": BOOKING})])
    assert model is not None, diags
    booking = model.entities["booking"]
    rules = [v.message.get() for v in booking.validations]
    assert rules == ["Needs: Departure after Arrival.", "Give the departure date."]
    message = booking.workflow.transitions["close"].message
    assert (message.get(), message.get("de")) == ("Done?", "Fertig?")
