"""Phone numbers compared as numbers: each `phone` field keeps what the user typed (shown as
typed) and, beside it, a shadow column `_e164_<field>` holding the number in E.164
(`+441174960320`), made with the `phonenumbers` library and the instance's default region
(`CRMFORGE_PHONE_REGION`, default `GB`: the region a number written without a country code is
read in). Search, duplicate rules and the `?phone=` filter compare the shadow column, so
"0117 496 0320", "01174960320", "+44 117 496 0320" and "0044 117 496 0320" are one number.

A value that is no valid number in that region (an extension, a short code) is kept in the
shadow column as its digits (with `+` when it was written internationally), so it still
matches itself.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import phonenumbers

from builder.fieldtypes import phone_digits
from builder.model import Entity

DEFAULT_REGION = "GB"
SHADOW_PREFIX = "_e164_"  # field names start with a letter: no field can take this name
MAX_NAME = 63  # PostgreSQL's identifier length


def region() -> str:
    """The instance's default region (`CRMFORGE_PHONE_REGION`, else GB): read at each call,
    so the web app, the worker and `crmforge migrate` (which fills the shadow columns of the
    records already there) read numbers alike."""
    return (os.environ.get("CRMFORGE_PHONE_REGION") or DEFAULT_REGION).strip().upper()


def shadow(field_name: str) -> str:
    """The name of the column that holds a phone field's E.164 form."""
    return (SHADOW_PREFIX + field_name)[:MAX_NAME]


def phone_fields(ent: Entity) -> list[str]:
    return [name for name, f in ent.fields.items() if f.type == "phone"]


# A pure function of its text and region (no model in it), so a plain lru_cache: imports and
# searches repeat the same few numbers.
@lru_cache(maxsize=4096)
def e164(text: str | None, default_region: str) -> str | None:
    """The stored form of a phone number: E.164 when it is a valid number (read in
    `default_region` when written without a country code), else its digits (with `+` when
    written internationally); None for no digits at all."""
    digits = phone_digits(text)
    if not digits:
        return None
    return _valid(str(text), default_region) or _international(str(text)) + digits


def normalized(text: str | None) -> str | None:
    """`e164` in the instance's default region: what a phone field's shadow column holds."""
    return e164(text, region())


def fragment(text: str, default_region: str) -> str:
    """What a stored E.164 value must contain to match a searched (maybe partial) number:
    the whole number when `text` is a valid one, else its digits, with the international
    ("0044 117…") or national ("0117 496") prefix turned into the country code."""
    digits = phone_digits(text)
    valid = _valid(text, default_region)
    if valid is not None or _international(text):
        return valid or "+" + digits
    meta = phonenumbers.PhoneMetadata.metadata_for_region(default_region)
    if meta is None:
        return digits
    international = meta.preferred_international_prefix or "00"
    if international.isdigit() and digits.startswith(international):
        return "+" + digits[len(international):]
    national = meta.national_prefix
    if national and digits.startswith(national) and len(digits) > len(national):
        return f"+{meta.country_code}{digits[len(national):]}"
    return digits


def shadow_values(ent: Entity, values: Mapping[str, Any]) -> dict[str, str | None]:
    """The shadow columns to write beside `values` (the phone fields among them): what the
    write path adds to the columns it inserts or updates."""
    if not any(f.type == "phone" for f in ent.fields.values()):
        return {}
    return {shadow(name): normalized(values[name]) for name in phone_fields(ent)
            if name in values}


def _valid(text: str, default_region: str) -> str | None:
    """`text` in E.164 when it is a valid number, else None."""
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _international(text: str) -> str:
    return "+" if text.strip().startswith("+") else ""
