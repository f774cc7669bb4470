"""Demo data in each language (`crmforge demo --language zh|es`): the packs' demo records, as
written (in English, UK data), with the values of fields whose role is known — first, last and
full names, company names, streets, cities, postcodes, the country, phone numbers, e-mail and
web addresses — replaced by ones drawn from the language's lists (`demo_names/<language>.yaml`).

Everything else stays: keys, links, choices, amounts, dates, states, so the demo loads the same
records in the same states in every language. The replacement is deterministic and keeps
distinct values distinct as far as each list allows: the values of a role are ordered by how
often they occur (then by text) and the n-th takes the n-th candidate of the list, stepping by
a stride coprime to the list's size — "London", the commonest city, becomes the first city
(北京, Madrid). A person — a given name and a surname, or a full name — keeps one name
everywhere, different from every other person's while the lists last, and an e-mail address
made of its romanisation (`jose.garcianunez@...`). Phone
numbers are drawn digit by digit from a hash of the original, valid in the language's country
(`+86 138 …`, `+34 612 …`) and all different. Free text (subjects, notes) is left as written.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from math import gcd
from pathlib import Path
from typing import Any

import phonenumbers
import yaml

from builder.model import AppModel, Entity
from runtime.core.searchindex import fold

NAMES_DIR = Path(__file__).parent / "demo_names"
DEFAULT = "en"  # the language the packs' demo data is written in
STRIDE = 7919  # a prime: consecutive values land far apart in a list

# text fields whose role their name tells, in any entity
NAME_ROLES = {
    "first_name": "given", "last_name": "surname",
    "full_name": "person", "bill_to_name": "person", "line_user_name": "person",
    "company": "company", "employer": "company",
    "city": "city", "street": "street", "address": "street", "visit_address": "street",
    "postcode": "postcode", "country": "country", "msisdn": "phone",
}
ENTITY_ROLES = {("account", "name"): "company"}
TYPE_ROLES = {"phone": "phone", "email": "email", "url": "website"}
TEXT_TYPES = ("text", "longtext")


class DemoLanguageError(ValueError):
    """A language the demo data has no lists for."""


def languages() -> list[str]:
    """The languages the demo can be loaded in: English, then each `demo_names/*.yaml`."""
    return [DEFAULT, *sorted(p.stem for p in NAMES_DIR.glob("*.yaml"))]


Entry = tuple[str, str]  # (text, romanisation)


@dataclass(frozen=True)
class Names:
    """One language's lists (`demo_names/<language>.yaml`)."""

    data: Mapping[str, Any]

    def entries(self, key: str) -> list[Entry]:
        return [_entry(str(item)) for item in self.data.get(key) or []]

    def text(self, key: str, default: str = "") -> str:
        return str(self.data.get(key, default))


def _entry(item: str) -> Entry:
    """"王 wang" -> ("王", "wang"); "José" -> ("José", "jose"): a romanisation is a last word in
    small ASCII letters after text that is not ASCII."""
    text, _, roman = item.rpartition(" ")
    if text and re.fullmatch(r"[a-z]+", roman) and not text.isascii():
        return text, roman
    return item, _roman(item)


def _roman(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", fold(text) or "")


@lru_cache(maxsize=8)
def load(language: str) -> Names:
    """The lists of `language`; DemoLanguageError names the languages there are."""
    path = NAMES_DIR / f"{language}.yaml"
    if language == DEFAULT or not re.fullmatch(r"[a-z]{2,3}(-[A-Za-z]{2,4})?", language) \
            or not path.is_file():
        raise DemoLanguageError(f"no demo data in '{language}': the demo speaks "
                                + ", ".join(languages()))
    return Names(yaml.safe_load(path.read_text(encoding="utf-8")))


def check(language: str) -> str:
    """`language` when the demo can be loaded in it, else DemoLanguageError."""
    if language != DEFAULT:
        load(language)
    return language


def localise(model: AppModel, records: Sequence[tuple[str, Mapping[str, Any]]],
             language: str) -> list[dict[str, Any]]:
    """The values of `records` ((entity, values) in load order) in `language`."""
    if check(language) == DEFAULT:
        return [dict(values) for _, values in records]
    plan = _Plan(load(language))
    roles = [_roles(model.entities.get(entity), values) for entity, values in records]
    for (_, values), found in zip(records, roles, strict=True):
        plan.collect(values, found)
    plan.assign()
    return [plan.rewrite(values, found) for (_, values), found in zip(records, roles,
                                                                      strict=True)]


def _roles(ent: Entity | None, values: Mapping[str, Any]) -> dict[str, str]:
    """field -> role, for the fields of one record whose value is a plain string."""
    if ent is None:
        return {}
    found = {}
    for name, value in values.items():
        f = ent.fields.get(name)
        if f is None or not isinstance(value, str) or not value or value.startswith("="):
            continue
        role = TYPE_ROLES.get(f.type) or (
            (ENTITY_ROLES.get((ent.name, name)) or NAME_ROLES.get(name))
            if f.type in TEXT_TYPES else None)
        if role:
            found[name] = role
    return found


@dataclass
class _Pool:
    """The candidates of one role: `make(i)` for i in range(size)."""

    size: int
    make: Callable[[int], Entry]
    stride: int = STRIDE

    def assign(self, counts: Counter) -> dict[str, Entry]:
        order = sorted(counts, key=lambda v: (-counts[v], v))
        step = self.stride if gcd(self.stride, self.size) == 1 else 1
        return {value: self.make((i * step) % self.size) for i, value in enumerate(order)}


@dataclass
class _Plan:
    """One load's replacements: every value of a role counted (`collect`), each given its
    new value (`assign`), then every record rewritten (`rewrite`)."""

    names: Names
    counts: dict[str, Counter] = field(default_factory=dict)
    maps: dict[str, dict[str, Entry]] = field(default_factory=dict)
    domains: dict[str, str] = field(default_factory=dict)  # original domain -> company
    phones: dict[str, str] = field(default_factory=dict)

    # -- collecting ---------------------------------------------------------------------------

    def collect(self, values: Mapping[str, Any], roles: Mapping[str, str]) -> None:
        for name, role in roles.items():
            value = values[name]
            if role == "person":
                self.count("people", _person_key(*_split(value)))
                self.count("person", value)
            if role == "street":
                self.count(role, _street_key(value))
            elif role in ("company", "city"):
                self.count(role, value)
        key = _record_person(values, roles)
        if key is not None:
            self.count("people", key)
        company = next((values[n] for n, r in roles.items() if r == "company"), None)
        for name, role in roles.items():
            if company and role in ("email", "website"):
                self.domains.setdefault(_domain(values[name]), company)

    def count(self, role: str, value: str) -> None:
        self.counts.setdefault(role, Counter())[value] += 1

    def assign(self) -> None:
        pools = self.pools()
        for role, counts in self.counts.items():
            if role in pools:
                self.maps[role] = pools[role].assign(counts)
        people = self.counts.get("people", Counter())
        for role in ("given", "surname"):  # a name for each person, not for each word
            self.maps[role] = pools[role].assign(people)

    def pools(self) -> dict[str, _Pool]:
        n = self.names
        given, surnames = n.entries("given_parts"), n.entries("surnames")
        single = n.data.get("given_parts_max", 2) == 1  # Spanish: one given name each
        pools = {
            "given": _Pool(len(given) if single else len(given) * (len(given) + 1),
                           lambda i: _given(given, n.text("given_joiner"), i)),
            "surname": _Pool(len(surnames) * (len(surnames) - 1)
                             if n.data.get("surname_parts") == 2 else len(surnames),
                             lambda i: _surname(surnames, n.data.get("surname_parts", 1), i)),
            "city": _Pool(len(n.entries("cities")), lambda i: n.entries("cities")[i], 1),
            "street": _Pool(len(n.entries("streets")), lambda i: n.entries("streets")[i], 1),
        }
        places, stems, kinds = (n.entries("company_places") or [("", "")],
                                n.entries("company_stems"), n.entries("company_kinds"))
        pools["company"] = _Pool(len(places) * len(stems) * len(kinds),
                                 lambda i: _company(n.text("company"), places, stems, kinds, i))
        return pools

    # -- rewriting ----------------------------------------------------------------------------

    def rewrite(self, values: Mapping[str, Any], roles: Mapping[str, str]) -> dict[str, Any]:
        out = dict(values)
        person = self.person_of(values, roles)
        for name, role in roles.items():
            out[name] = self.value(role, values[name], person)
        return out

    def person_of(self, values: Mapping[str, Any], roles: Mapping[str, str]
                  ) -> tuple[Entry, Entry] | None:
        """The record's person (its new given name and surname), for its e-mail address: of
        its given name and surname fields, else of its full name (or the company's, when that
        is a person's, as a private customer's account is)."""
        key = _record_person(values, roles)
        if key is None:
            key = next((_person_key(*_split(values[name])) for name, role in roles.items()
                        if role in ("person", "company") and self.is_person(values[name])),
                       None)
        return None if key is None else self.person(key)

    def person(self, key: str) -> tuple[Entry, Entry]:
        return self.maps["given"][key], self.maps["surname"][key]

    def is_person(self, value: str) -> bool:
        return value in self.counts.get("person", {})

    def value(self, role: str, value: str, person: tuple[Entry, Entry] | None) -> str:
        if role in ("given", "surname"):
            return (person or self.person(_person_key(value, "")))[role == "surname"][0]
        if role == "city":
            return self.maps[role][value][0]
        if role == "person" or (role == "company" and self.is_person(value)):
            return self.full_name(*self.person(_person_key(*_split(value))))
        if role == "company":
            suffixes = self.names.data.get("company_suffixes") or {}
            suffix = suffixes.get(value.rsplit(" ", 1)[-1].lower(), suffixes.get("default", ""))
            return self.maps["company"][value][0].replace("{suffix}", str(suffix))
        return getattr(self, f"_{role}")(value, person)

    def full_name(self, given: Entry, surname: Entry) -> str:
        return self.names.text("person").format(given=given[0], surname=surname[0])

    def _street(self, value: str, person: Any) -> str:
        number = re.search(r"\d+", value)
        return self.names.text("street").format(
            street=self.maps["street"][_street_key(value)][0],
            number=number.group() if number else 1 + _digest(value) % 199)

    def _postcode(self, value: str, person: Any) -> str:
        return _digits(self.names.text("postcode"), "n", value)

    def _country(self, value: str, person: Any) -> str:
        return self.names.text("country") if value in self.names.data.get(
            "home_countries", []) else value

    def _phone(self, value: str, person: Any) -> str:
        if value not in self.phones:
            self.phones[value] = self._new_phone(value)
        return self.phones[value]

    def _new_phone(self, value: str) -> str:
        digits = "".join(c for c in value if c.isdigit())
        kind = "mobile" if digits.startswith(("447", "07")) else "landline"
        patterns = self.names.data["phones"][kind]
        taken = set(self.phones.values())
        for salt in range(1000):
            number = _digits(patterns[_digest(value, salt) % len(patterns)], "d", value, salt)
            if " " not in value.strip():
                number = number.replace(" ", "")
            if number not in taken and phonenumbers.is_valid_number(
                    phonenumbers.parse(number)):
                return number
        raise ValueError(f"no free phone number for {value}")  # a list too small to use

    def _email(self, value: str, person: tuple[Entry, Entry] | None) -> str:
        local, _, domain = value.rpartition("@")
        if person is not None:
            tail = re.search(r"[._-]?\d+$", local)
            joiner = "." if "." in local else ""
            local = self.names.text("email_person").format(
                given=person[0][1], surname=person[1][1]).replace(".", joiner) \
                + (tail.group() if tail else "")
        return f"{local}@{self.domain(domain)}"

    def _website(self, value: str, person: Any) -> str:
        match = re.match(r"^(\w+://(?:www\.)?)([^/]+)(.*)$", value)
        if not match:
            return value
        return match.group(1) + self.domain(match.group(2)) + match.group(3)

    def domain(self, domain: str) -> str:
        """A company's domain made of its new name's romanisation; another UK domain gets the
        language's top-level domain; example.org stays."""
        tld = self.names.text("top_level_domain")
        company = self.domains.get(domain)
        if company is not None and not self.is_person(company):
            return f"{self.maps['company'][company][1]}.{tld}"
        if re.search(r"\.uk$", domain):
            return re.sub(r"(\.(co|org|ac|gov))?\.uk$", "", domain) + "." + tld
        return domain


def _person_key(given: str, surname: str) -> str:
    return f"{given}\x1f{surname}"


def _record_person(values: Mapping[str, Any], roles: Mapping[str, str]) -> str | None:
    """The person a record's given name and surname fields make, if it has them."""
    by_role = {role: values[name] for name, role in roles.items()}
    if "given" not in by_role and "surname" not in by_role:
        return None
    return _person_key(by_role.get("given", ""), by_role.get("surname", ""))


def _split(full_name: str) -> tuple[str, str]:
    """"Andrew McLeod" -> ("Andrew", "McLeod"): the last word is the surname."""
    given, _, surname = full_name.strip().rpartition(" ")
    return (given, surname) if given else (surname, surname)


def _street_key(address: str) -> str:
    """What is left of an address without its numbers: the street it is in."""
    return re.sub(r"\s+", " ", re.sub(r"\d+[A-Za-z]?", "", address)).strip(" ,") or address


def _domain(address: str) -> str:
    if "@" in address:
        return address.rpartition("@")[2]
    match = re.match(r"^\w+://(?:www\.)?([^/]+)", address)
    return match.group(1) if match else address


def _given(parts: list[Entry], joiner: str, i: int) -> Entry:
    """The i-th given name: each part alone, then two parts together (伟, 芳, …, 伟芳, …)."""
    if i < len(parts):
        return parts[i]
    a, b = parts[(i - len(parts)) // len(parts)], parts[(i - len(parts)) % len(parts)]
    return a[0] + joiner + b[0], a[1] + b[1]


def _surname(parts: list[Entry], count: int, i: int) -> Entry:
    """The i-th surname: a single one, or (Spanish) two different ones, `García Núñez`."""
    if count != 2:
        return parts[i]
    first = parts[i % len(parts)]
    second = parts[(i % len(parts) + 1 + i // len(parts)) % len(parts)]
    return f"{first[0]} {second[0]}", first[1] + second[1]


def _company(text: str, places: list[Entry], stems: list[Entry], kinds: list[Entry],
             i: int) -> Entry:
    """The i-th company name (`{suffix}` left to fill from the original's legal form) and
    its romanisation, the domain of its e-mail and web addresses."""
    kind = kinds[i % len(kinds)]
    stem = stems[(i // len(kinds)) % len(stems)]
    place = places[i // (len(kinds) * len(stems))]
    return (text.format(place=place[0], stem=stem[0], kind=kind[0], suffix="{suffix}"),
            place[1] + stem[1] + kind[1])


def _digest(*parts: Any) -> int:
    text = "\x1f".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")


def _digits(pattern: str, slot: str, *seed: Any) -> str:
    """`pattern` with each `slot` letter replaced by a digit drawn from `seed`'s hash."""
    number = _digest(*seed)
    out = []
    for char in pattern:
        if char == slot:
            number, digit = divmod(number, 10)
            out.append(str(digit))
        else:
            out.append(char)
    return "".join(out)
