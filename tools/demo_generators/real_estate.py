"""Demo data of the real_estate pack: a London estate agency with three branches.

Run `python tools/demo_generators/real_estate.py [OUTPUT_DIR]` (default:
verticals/real_estate/data). Deterministic (a fixed seed, dates relative to the install day);
the output is committed. See README.md in this folder.

Every listing tells a consistent story: instructed, put on the market, viewed, offered on;
properties under offer, reserved or sold have exactly one accepted offer and the contract
that goes with their stage, and completed deals carry their agents' commissions and the fee
invoice. Owners, agents and reviewers are usernames of the demo users in USERS (listed in
verticals/real_estate/README.md).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from decimal import ROUND_DOWN, Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo import day, moment, money, output_dir, write_records, write_staff  # noqa: E402

PACK = "real_estate"
SEED = 20240918

BRANCHES = {
    "North London branch": ["camden", "islington", "hackney", "tower_hamlets"],
    "South London branch": ["southwark", "lambeth", "lewisham", "greenwich"],
    "West London branch": ["wandsworth", "hammersmith", "kensington", "westminster"],
}
BRANCH_MANAGERS = {"North London branch": "marcus.webb", "South London branch": "joanna.pike",
                   "West London branch": "victoria.ames"}
# username -> (full name, role, district, team, manager)
USERS: dict[str, tuple[str, str, str | None, str, str | None]] = {
    "ruby.clarke": ("Ruby Clarke", "agent", "camden", "North London branch", "marcus.webb"),
    "sam.okafor": ("Sam Okafor", "agent", "islington", "North London branch", "marcus.webb"),
    "nadia.rahman": ("Nadia Rahman", "agent", "hackney", "North London branch", "marcus.webb"),
    "luke.brennan": ("Luke Brennan", "agent", "tower_hamlets", "North London branch",
                     "marcus.webb"),
    "grace.adeyemi": ("Grace Adeyemi", "agent", "southwark", "South London branch",
                      "joanna.pike"),
    "ethan.morris": ("Ethan Morris", "agent", "lambeth", "South London branch", "joanna.pike"),
    "hannah.prentice": ("Hannah Prentice", "agent", "lewisham", "South London branch",
                        "joanna.pike"),
    "owen.hart": ("Owen Hart", "agent", "greenwich", "South London branch", "joanna.pike"),
    "lucy.kemp": ("Lucy Kemp", "agent", "wandsworth", "West London branch",
                  "victoria.ames"),
    "max.ferreira": ("Max Ferreira", "agent", "hammersmith", "West London branch",
                     "victoria.ames"),
    "isabel.laurent": ("Isabel Laurent", "agent", "kensington", "West London branch",
                       "victoria.ames"),
    "freddie.hale": ("Freddie Hale", "agent", "westminster", "West London branch",
                     "victoria.ames"),
    "marcus.webb": ("Marcus Webb", "branch_manager", None, "North London branch",
                    "helen.ashworth"),
    "joanna.pike": ("Joanna Pike", "branch_manager", None, "South London branch",
                    "helen.ashworth"),
    "victoria.ames": ("Victoria Ames", "branch_manager", None, "West London branch",
                          "helen.ashworth"),
    "dev.mistry": ("Dev Mistry", "mortgage_advisor", None, "Mortgage desk", "helen.ashworth"),
    "alice.burton": ("Alice Burton", "mortgage_advisor", None, "Mortgage desk",
                     "helen.ashworth"),
}
DISTRICTS = [d for ds in BRANCHES.values() for d in ds]
BRANCH_OF = {d: b for b, ds in BRANCHES.items() for d in ds}
AGENT_OF = {v[2]: u for u, v in USERS.items() if v[1] == "agent"}
BRANCH_AGENTS = {b: [AGENT_OF[d] for d in ds] for b, ds in BRANCHES.items()}
ADVISERS = ["dev.mistry", "alice.burton"]

# Price per m² for sales, postcodes and typical stock per district.
DISTRICT_INFO = {
    "camden": (11200, ["NW1", "NW3", "NW5", "WC1H"], "Camden"),
    "islington": (10600, ["N1", "N5", "N7", "EC1V"], "Islington"),
    "hackney": (8100, ["E8", "E9", "N16", "E5"], "Hackney"),
    "tower_hamlets": (7600, ["E1", "E3", "E14", "E2"], "Tower Hamlets"),
    "southwark": (8700, ["SE1", "SE15", "SE22", "SE16"], "Southwark"),
    "lambeth": (7900, ["SE11", "SW2", "SW9", "SE27"], "Lambeth"),
    "lewisham": (5900, ["SE4", "SE13", "SE23", "SE6"], "Lewisham"),
    "greenwich": (6600, ["SE10", "SE3", "SE18", "SE7"], "Greenwich"),
    "wandsworth": (8600, ["SW11", "SW18", "SW17", "SW15"], "Wandsworth"),
    "hammersmith": (9600, ["W6", "W12", "SW6", "W14"], "Hammersmith and Fulham"),
    "kensington": (16500, ["W8", "W11", "SW3", "SW7"], "Kensington and Chelsea"),
    "westminster": (15200, ["W1U", "W2", "SW1V", "NW8"], "Westminster"),
}
CENTRAL = {"kensington", "westminster", "camden", "islington", "tower_hamlets", "southwark"}
STREETS = ["Albion", "Amhurst", "Barnsbury", "Belsize", "Bramshill", "Brockley", "Calabria",
           "Canonbury", "Chesterton", "Clarendon", "Coldharbour", "Cranbrook", "Dalston",
           "Dartmouth", "Elgin", "Elsworthy", "Fernhead", "Gaskell", "Glenarm", "Grosvenor",
           "Hartington", "Highbury", "Ladbroke", "Lavender", "Leander", "Lordship", "Malvern",
           "Marlborough", "Mildmay", "Northcote", "Oakley", "Ormiston", "Pembroke", "Queensdown",
           "Rectory", "Ridgmount", "Royal Hill", "St Mark's", "Shandon", "Stockwell Park",
           "Tanza", "Thurleigh", "Trinity", "Upper Park", "Vanbrugh", "Wandle", "Westbourne",
           "Whitehall Park", "Wickham", "Wyndham"]
STREET_KINDS = ["Road", "Street", "Gardens", "Avenue", "Grove", "Terrace", "Square", "Place",
                "Crescent", "Villas", "Mews"]
BUILDINGS = ["Wharf House", "Riverside Court", "The Printworks", "Canal Building",
             "Observatory House", "Albion Mansions", "Gasholder Park", "Station Yard",
             "Dockside Apartments", "Library Building", "Chapel Court", "Ropeworks"]
FIRST_NAMES = [
    "Amara", "Beatrice", "Chiara", "Daisy", "Elena", "Farah", "Georgia", "Harriet", "Imogen",
    "Jasmine", "Keira", "Leila", "Maya", "Naomi", "Ophelia", "Phoebe", "Rosa", "Saskia",
    "Tara", "Yasmin", "Adaeze", "Ingrid", "Lena", "Marta", "Noor", "Aditya", "Benedict",
    "Cormac", "Dominic", "Elliot", "Felix", "Gabriel", "Hugo", "Idris", "Jonah", "Kieran",
    "Laurence", "Milo", "Nathaniel", "Orlando", "Patrick", "Rafael", "Sebastian", "Theo",
    "Vikram", "Wilfred", "Yusuf", "Zachary", "Mateo", "Nikhil", "Kofi", "Anton", "Bruno",
]
FEMALE = set(FIRST_NAMES[:25])
LAST_NAMES = [
    "Abbott", "Ashdown", "Barker", "Blackwood", "Carrington", "Chaudhry", "Dalgleish",
    "Devereux", "Eastwood", "Ferreira", "Fitzgerald", "Goldberg", "Greenaway", "Hargreaves",
    "Hendry", "Iqbal", "Jovanovic", "Kaplan", "Lindqvist", "Lucas", "Mahmood", "Mercer",
    "Nakamura", "Novak", "Okonkwo", "Osei", "Papadopoulos", "Pemberton", "Quinlan", "Ramsay",
    "Rossi", "Sadler", "Sandhu", "Thornton", "Varga", "Villiers", "Whitfield", "Wolff",
    "Yilmaz", "Zielinski", "Ahmed", "Bianchi", "Castellano", "Dubois", "Eriksen", "Fontaine",
    "Garcia", "Huang", "Ivanova", "Jensen", "Kowalczyk", "Lambert", "Moreau", "Nguyen",
    "O'Sullivan", "Petrov", "Russo", "Schmidt", "Tanaka", "Walsh",
]
SOLICITORS = ["Harcourt & Lane LLP", "Bramwell Conveyancing", "Kings Cross Legal",
              "Fenwick Shaw Solicitors", "Thames Property Law", "Oakridge & Partners",
              "Marylebone Conveyancing Ltd", "Bridgewell Solicitors"]
INTEREST = {"buy": "buying", "rent": "renting", "sell": "selling", "let": "letting",
            "valuation": "valuation"}
FEATURES = ["garden", "balcony", "roof_terrace", "parking", "garage", "lift", "concierge",
            "period_features", "new_build", "step_free", "pets_allowed", "bills_included"]


@dataclass
class Buyer:
    key: str
    contact: dict
    listing_type: str  # sale or rent
    budget: int
    districts: list[str]
    bedrooms: int
    agent: str
    financing: str
    requirement: dict | None = None
    deal: str | None = None  # the property they bought or rented
    viewed: list[str] = field(default_factory=list)


@dataclass
class Data:
    rng: random.Random
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    used: set[str] = field(default_factory=set)
    counters: dict[str, int] = field(default_factory=dict)

    def add(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records.setdefault(entity, []).append(record)
        return record

    def next(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]

    def unique(self, value: str) -> bool:
        if value in self.used:
            return False
        self.used.add(value)
        return True


def postcode(rng: random.Random, district: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    area = rng.choice(DISTRICT_INFO[district][1])
    return f"{area} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"


class People:
    """Private people: names, unique e-mails, mobiles (07700 900500-900999) and London
    landlines (020 7946 0750-0999); core uses the lower halves of both ranges."""

    def __init__(self, d: Data):
        self.d = d
        mobiles = list(range(500, 1000))
        d.rng.shuffle(mobiles)
        self.mobiles = mobiles
        landlines = list(range(750, 1000))  # core uses 0000-0749 of the London range
        d.rng.shuffle(landlines)
        self.landlines = landlines

    def name(self) -> tuple[str, str, str]:
        rng = self.d.rng
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        salutation = rng.choice(["ms", "mrs", "miss"]) if first in FEMALE else "mr"
        return salutation, first, last

    def email(self, first: str, last: str) -> str:
        rng = self.d.rng
        while True:
            local = f"{first}{last}".lower().replace("'", "")
            domain = rng.choice(["example.com", "example.net", "example.org"])
            email = f"{local}{rng.randint(1, 999)}@{domain}"
            if self.d.unique(email):
                return email

    def mobile(self) -> str:
        return f"+44 7700 900{self.mobiles.pop():03d}"

    def landline(self) -> str:
        return f"+44 20 7946 {self.landlines.pop():04d}"


def new_contact(d: Data, people: People, roles: list[str], agent: str,
                aml: bool) -> dict:
    rng = d.rng
    n = d.next("contact")
    salutation, first, last = people.name()
    rec: dict[str, Any] = {
        "_key": f"rc{n:03d}", "salutation": salutation, "first_name": first, "last_name": last,
        "email": people.email(first, last), "mobile": people.mobile(), "region": "london",
        "city": "London", "preferred_channel": rng.choice(["phone", "email", "sms"]),
        "client_roles": roles, "aml_checked": aml, "owner": agent}
    if aml:
        rec["aml_checked_on"] = day(-rng.randint(20, 500))
    if rng.random() < 0.5:
        rec["marketing_consent"] = True
        rec["consent_date"] = day(-rng.randint(10, 600))
        rec["consent_source"] = rng.choice(["web_form", "in_person", "email"])
    if any(r in roles for r in ("seller", "buyer")) and rng.random() < 0.6:
        rec["solicitor"] = rng.choice(SOLICITORS)
    if rng.random() < 0.4:
        rec["birthday"] = day(-rng.randint(25 * 365, 70 * 365))
    return d.add("contact", rec)


def property_shape(rng: random.Random, district: str, listing_type: str
                   ) -> tuple[str, int, float]:
    """Type, bedrooms and floor area."""
    central = district in CENTRAL
    weights = {"studio": 8, "flat": 45 if central else 32, "maisonette": 8,
               "terraced": 8 if central else 20, "semi_detached": 2 if central else 8,
               "detached": 1 if central else 3, "townhouse": 6, "bungalow": 0 if central else 1,
               "commercial": 3 if listing_type == "rent" else 2}
    kind = rng.choices(list(weights), weights=list(weights.values()))[0]
    if kind == "studio":
        beds = 0
    elif kind in ("flat", "maisonette"):
        beds = rng.choices([1, 2, 3, 4], weights=[35, 42, 18, 5])[0]
    elif kind == "commercial":
        beds = 0
    else:
        beds = rng.choices([2, 3, 4, 5], weights=[15, 45, 30, 10])[0]
    base = {0: 34, 1: 50, 2: 72, 3: 98, 4: 135, 5: 185}[beds]
    if kind == "commercial":
        base = rng.choice([60, 90, 140, 220])
    area = round(base * rng.uniform(0.85, 1.25), 1)
    return kind, beds, area


def sale_price(rng: random.Random, district: str, area: float, kind: str) -> int:
    per_m2 = DISTRICT_INFO[district][0] * rng.uniform(0.85, 1.15)
    if kind in ("detached", "semi_detached", "townhouse"):
        per_m2 *= 1.08
    price = area * per_m2
    step = 5000 if price < 1_000_000 else 25000
    return int(round(price / step) * step)


def monthly_rent(rng: random.Random, district: str, area: float, kind: str) -> int:
    price = sale_price(rng, district, area, kind)
    rent = price * rng.uniform(0.0031, 0.0040)
    return int(round(rent / 25) * 25)


def address(rng: random.Random, kind: str) -> str:
    street = f"{rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"
    if kind in ("flat", "studio", "maisonette"):
        if rng.random() < 0.3:
            return f"Flat {rng.randint(1, 60)}, {rng.choice(BUILDINGS)}, {street}"
        return f"Flat {rng.choice('ABCD')}, {rng.randint(2, 180)} {street}"
    if kind == "commercial":
        return f"Unit {rng.randint(1, 12)}, {rng.randint(2, 200)} {street}"
    return f"{rng.randint(1, 220)} {street}"


HEADLINES = {
    "studio": "Compact studio close to the station",
    "flat": "{beds}-bedroom flat{extra}",
    "maisonette": "Split-level {beds}-bedroom maisonette{extra}",
    "terraced": "{beds}-bedroom Victorian terrace{extra}",
    "semi_detached": "{beds}-bedroom semi-detached family home{extra}",
    "detached": "Detached {beds}-bedroom house{extra}",
    "townhouse": "{beds}-bedroom townhouse{extra}",
    "bungalow": "{beds}-bedroom bungalow{extra}",
    "commercial": "Ground-floor commercial unit with shopfront",
}
EXTRAS = {"garden": " with a south-facing garden", "balcony": " with a balcony",
          "roof_terrace": " with a roof terrace", "parking": " with off-street parking",
          "period_features": " full of period features", "new_build": " in a new development",
          "concierge": " with a 24-hour concierge"}


def gen_listings(d: Data, people: People) -> list[dict]:
    rng = d.rng
    listings = []
    landlords: list[dict] = []
    for index in range(1, 301):
        district = DISTRICTS[(index * 7) % 12] if rng.random() < 0.5 else rng.choice(DISTRICTS)
        listing_type = "sale" if rng.random() < 0.6 else "rent"
        kind, beds, area = property_shape(rng, district, listing_type)
        agent = AGENT_OF[district] if rng.random() < 0.85 else rng.choice(
            BRANCH_AGENTS[BRANCH_OF[district]])
        status = rng.choices(["draft", "available", "under_offer", "reserved", "sold",
                              "withdrawn"], weights=[5, 44, 10, 6, 29, 6])[0]
        if listing_type == "rent" and landlords and rng.random() < 0.35:
            owner = rng.choice(landlords)
        else:
            roles = ["seller"] if listing_type == "sale" else ["landlord"]
            owner = new_contact(d, people, roles, agent, aml=status != "draft" or
                                rng.random() < 0.5)
            if listing_type == "rent":
                landlords.append(owner)
        features = sorted(set(rng.sample(FEATURES[:11], rng.choice([0, 1, 2, 2, 3]))),
                          key=FEATURES.index)
        if kind in ("terraced", "semi_detached", "detached", "bungalow") and \
                "garden" not in features and rng.random() < 0.7:
            features = sorted({*features, "garden"}, key=FEATURES.index)
        if listing_type == "sale":
            price = sale_price(rng, district, area, kind)
        else:
            price = monthly_rent(rng, district, area, kind)
        extra = next((EXTRAS[f] for f in features if f in EXTRAS), "")
        headline = HEADLINES[kind].format(beds=beds, extra=extra)
        rec: dict[str, Any] = {
            "_key": f"p{index:03d}", "headline": headline, "listing_type": listing_type,
            "property_type": kind, "address": address(rng, kind), "district": district,
            "postcode": postcode(rng, district), "area_m2": area, "bedrooms": beds,
            "bathrooms": max(1, beds // 2 + (1 if beds >= 3 and rng.random() < 0.5 else 0)),
            "reception_rooms": 0 if kind in ("studio", "commercial") else
            (1 if beds < 3 else rng.choice([1, 2, 2])),
            "features": features or None, "epc_rating": rng.choices(
                list("BCDEF"), weights=[12, 38, 34, 12, 4])[0],
            "council_tax_band": rng.choice(list("CDEFG") if beds >= 3 else list("ABCDE")),
            "price": money(price), "property_owner": owner["_key"], "listing_agent": agent,
            "agency_fee_pct": Decimal(rng.choice(["1.2", "1.5", "1.5", "1.75"]))
            if listing_type == "sale" else Decimal(rng.choice(["10", "10", "12"])),
            "status": status, "owner": agent}
        if kind in ("studio", "flat", "maisonette", "commercial"):
            rec["floor"] = rng.choice([0, 1, 1, 2, 3, 4, 6, 9]) if kind != "commercial" else 0
        if listing_type == "sale":
            rec["price_qualifier"] = rng.choices(
                ["asking", "guide", "offers_over", "offers_in_region"],
                weights=[55, 25, 15, 5])[0]
            if kind in ("flat", "studio", "maisonette"):
                rec["tenure"] = "leasehold" if rng.random() < 0.8 else "share_of_freehold"
                if rec["tenure"] == "leasehold":
                    rec["lease_years_left"] = rng.choice([82, 95, 99, 110, 120, 125, 150, 999])
                rec["service_charge"] = money(rng.randint(8, 45) * 100)
            else:
                rec["tenure"] = "freehold"
        else:
            rec["furnishing"] = rng.choice(["unfurnished", "part_furnished", "furnished"])
        listings.append(rec)
    return listings


def describe(rec: dict) -> str:
    name = DISTRICT_INFO[rec["district"]][2]
    size = f"{rec['area_m2']} m²"
    if rec["property_type"] == "commercial":
        return (f"<p>A flexible commercial unit of {size} in {name}, with a glazed shopfront "
                "and a rear store. Suitable for retail, café or studio use.</p>")
    rooms = "a studio room" if rec["bedrooms"] == 0 else f"{rec['bedrooms']} bedrooms"
    return (f"<p>{rec['headline']} in {name}: {rooms}, {rec['bathrooms']} bathroom(s) and "
            f"{size} of living space, a short walk from shops, parks and the station.</p>")


def gen_buyers(d: Data, people: People) -> list[Buyer]:
    rng = d.rng
    buyers = []
    for _ in range(230):
        listing_type = "sale" if rng.random() < 0.58 else "rent"
        home = rng.choice(DISTRICTS)
        branch = BRANCH_OF[home]
        districts = sorted({home, *rng.sample(BRANCHES[branch], rng.choice([0, 1, 2]))},
                           key=DISTRICTS.index)
        beds = rng.choices([0, 1, 2, 3, 4], weights=[6, 30, 36, 20, 8])[0]
        area = {0: 34, 1: 50, 2: 72, 3: 98, 4: 135}[beds]
        if listing_type == "sale":
            budget = sale_price(rng, home, area * rng.uniform(0.95, 1.25), "flat")
            financing = rng.choices(["mortgage", "cash", "mixed"], weights=[68, 18, 14])[0]
        else:
            budget = monthly_rent(rng, home, area * rng.uniform(1.0, 1.3), "flat")
            financing = "not_needed"
        agent = AGENT_OF[home]
        roles = ["buyer"] if listing_type == "sale" else ["tenant"]
        if listing_type == "sale" and rng.random() < 0.1:
            roles.append("investor")
        contact = new_contact(d, people, roles, agent, aml=rng.random() < 0.55)
        buyers.append(Buyer(contact["_key"], contact, listing_type, budget, districts, beds,
                            agent, financing))
    return buyers


def pick_buyers(rng: random.Random, buyers: list[Buyer], prop: dict, count: int
                ) -> list[Buyer]:
    kind = prop["listing_type"]
    price = float(prop["price"])
    fitting = [b for b in buyers if b.listing_type == kind and b.deal is None and
               prop["district"] in b.districts and b.budget >= price * 0.85]
    if len(fitting) < count:
        fitting += [b for b in buyers if b.listing_type == kind and b.deal is None and
                    b not in fitting and BRANCH_OF[b.districts[0]] == BRANCH_OF[
                        prop["district"]]]
    rng.shuffle(fitting)
    return fitting[:count]


@dataclass
class Story:
    prop: dict
    listed: int | None = None  # day offset
    accepted: int | None = None  # day the accepted offer was made
    closed: int | None = None  # sold/let day
    winner: Buyer | None = None
    accepted_offer: dict | None = None


def gen_market(d: Data, listings: list[dict], buyers: list[Buyer]) -> list[Story]:
    rng = d.rng
    stories = []
    for prop in listings:
        status = prop["status"]
        story = Story(prop)
        stories.append(story)
        prop["instructed_on"] = None
        if status == "draft":
            prop["instructed_on"] = day(-rng.randint(1, 12))
            continue
        sale = prop["listing_type"] == "sale"
        to_offer = int(rng.triangular(10, 120, 30)) if sale else int(rng.triangular(3, 45, 10))
        if status == "available":
            listed = -int(rng.triangular(1, 200, 20))
        elif status == "under_offer":
            story.accepted = -rng.randint(2, 30 if sale else 8)
            listed = story.accepted - to_offer
        elif status == "reserved":
            story.accepted = -rng.randint(30 if sale else 8, 60 if sale else 20)
            listed = story.accepted - to_offer
        elif status == "sold":
            story.closed = -rng.randint(5, 480)
            story.accepted = story.closed - (rng.randint(45, 110) if sale else rng.randint(8, 21))
            listed = story.accepted - to_offer
        else:
            listed = -rng.randint(40, 300)
        story.listed = listed
        prop["instructed_on"] = day(listed - rng.randint(3, 14))
        prop["listed_on"] = day(listed)
        prop["description"] = describe(prop)
        end = story.accepted if story.accepted is not None else 0
        if status == "withdrawn":
            end = listed + rng.randint(20, min(200, -listed - 1))
            prop["withdrawal_reason"] = rng.choice([
                "Owner decided not to sell", "Owner moved to another agent",
                "Owner decided to let instead", "Waiting for a better market"])
        end_day = end if story.closed is None else story.accepted
        days = (end_day if end_day is not None else 0) - story.listed
        prop["days_on_market"] = (story.closed - story.listed) if story.closed is not None \
            else (-story.listed if status != "withdrawn" else end - story.listed)
        if story.closed is not None:
            prop["sold_on"] = day(story.closed)
        original = float(prop["price"])
        if days > 45 and rng.random() < 0.35:
            cut = rng.choice([0.95, 0.96, 0.975])
            step = 5000 if prop["listing_type"] == "sale" else 25
            reduced = int(round(original * cut / step) * step)
            prop["original_price"] = prop["price"]
            prop["price"] = money(reduced)
            prop["price_reduced_on"] = day(story.listed + rng.randint(30, max(31, days - 5)))
        else:
            prop["original_price"] = prop["price"]
        gen_viewings_and_offers(d, story, buyers, end)
    return stories


def gen_viewings_and_offers(d: Data, story: Story, buyers: list[Buyer], end: int) -> None:
    rng = d.rng
    prop = story.prop
    status = prop["status"]
    length = max(1, end - story.listed)
    count = min(6, max(1, int(length / rng.uniform(10, 20)) + rng.randint(0, 1)))
    if prop["listing_type"] == "rent":
        count = min(count + 1, 7)
    chosen = pick_buyers(rng, buyers, prop, count)
    if not chosen:
        return
    decided = status in ("under_offer", "reserved", "sold")
    winner = chosen[-1] if decided else None
    story.winner = winner
    for index, buyer in enumerate(chosen):
        when_day = story.listed + int(length * (index + rng.uniform(0.2, 0.9)) / len(chosen))
        if winner is buyer:
            when_day = min(when_day, story.accepted - 1)
        when = when_day * 24 + rng.choice([-14, -13, -12, -10, -8, -6, -5])
        n = d.next("viewing")
        agent = buyer.agent if BRANCH_OF[buyer.districts[0]] == BRANCH_OF[prop["district"]] \
            else prop["listing_agent"]
        viewing: dict[str, Any] = {
            "_key": f"vw{n:03d}", "property": prop["_key"], "buyer": buyer.key,
            "agent": agent, "scheduled_at": moment(when), "duration_min": rng.choice([20, 30,
                                                                                      30, 45]),
            "viewing_type": rng.choices(["in_person", "virtual", "second", "open_house"],
                                        weights=[70, 10, 12, 8])[0], "owner": agent}
        outcome = None
        if when >= -12:
            viewing["status"] = "scheduled"
        else:
            viewing["status"] = rng.choices(["completed", "cancelled", "no_show"],
                                            weights=[86, 8, 6])[0]
        if winner is buyer:
            viewing["status"] = "completed"
            outcome = "will_offer"
        if viewing["status"] == "completed":
            outcome = outcome or rng.choices(["will_offer", "interested", "second_viewing",
                                              "not_for_them"], weights=[14, 30, 16, 40])[0]
            interest = {"will_offer": rng.choice([4, 5]), "interested": rng.choice([3, 4]),
                        "second_viewing": rng.choice([3, 4]),
                        "not_for_them": rng.choice([1, 2, 2])}[outcome]
            viewing.update({"outcome": outcome, "interest": interest,
                            "feedback": rng.choice(FEEDBACK[outcome]),
                            "feedback_to_owner": when < -72})
        elif viewing["status"] == "cancelled":
            viewing["cancel_reason"] = rng.choice(["Buyer found somewhere else",
                                                   "Buyer ill", "Owner not available"])
        elif viewing["status"] == "scheduled" and when <= 24:
            viewing["reminder_sent"] = True
        buyer.viewed.append(prop["_key"])
        d.add("viewing", viewing)
        if outcome in ("will_offer", "interested") and (winner is buyer or rng.random() <
                                                       (0.55 if outcome == "will_offer"
                                                        else 0.12)):
            make_offer(d, story, buyer, viewing, when_day, winner is buyer)
    if not decided and status == "available" and rng.random() < 0.2:
        # A fresh offer, waiting for the owner's answer (or for a manager's approval).
        fresh = [b for b in chosen if b.deal is None]
        if fresh:
            buyer = fresh[0]
            n = d.next("viewing")
            hours = -rng.randint(20, 60)
            viewing = d.add("viewing", {
                "_key": f"vw{n:03d}", "property": prop["_key"], "buyer": buyer.key,
                "agent": buyer.agent, "scheduled_at": moment(hours), "duration_min": 30,
                "viewing_type": "second", "status": "completed", "outcome": "will_offer",
                "interest": 5, "feedback": "Second viewing went well; offer to follow.",
                "owner": buyer.agent})
            make_offer(d, story, buyer, viewing, -1, False, fresh=True)
    if not decided and status == "available" and rng.random() < 0.35:
        # Viewings booked for the coming days.
        for buyer in pick_buyers(rng, buyers, prop, rng.randint(1, 2)):
            n = d.next("viewing")
            hours = rng.randint(3, 24 * 12)
            d.add("viewing", {"_key": f"vw{n:03d}", "property": prop["_key"],
                              "buyer": buyer.key, "agent": buyer.agent,
                              "scheduled_at": moment(hours), "duration_min": 30,
                              "viewing_type": "in_person", "status": "scheduled",
                              "reminder_sent": hours <= 24, "owner": buyer.agent})


FEEDBACK = {
    "will_offer": ["Loved the light and the layout; will offer today.",
                   "Exactly what they were looking for; discussing the figure with their broker.",
                   "Second visit confirmed it; an offer is coming."],
    "interested": ["Liked it, but wants to see two others first.",
                   "Good space; worried about the service charge.",
                   "Likes the area; the kitchen needs work."],
    "second_viewing": ["Wants to come back with their partner.",
                       "Would like to see it in daylight at the weekend."],
    "not_for_them": ["Too small for their furniture.", "Too much traffic noise.",
                     "Needs more outside space.", "Bedrooms smaller than expected."],
}


def make_offer(d: Data, story: Story, buyer: Buyer, viewing: dict, when_day: int,
               wins: bool, fresh: bool = False) -> None:
    rng = d.rng
    prop = story.prop
    asking = float(prop["price"])
    sale = prop["listing_type"] == "sale"
    if wins:
        below = rng.choices([0, 1, 2, 3, 4, 6, 8, 11], weights=[12, 14, 20, 18, 14, 10, 8, 4])[0]
        made = story.accepted
    else:
        below = rng.choices([2, 4, 6, 8, 10, 13, 16], weights=[10, 16, 20, 18, 14, 12, 10])[0]
        made = when_day + rng.randint(1, 3)
        if made > -1:
            made = -1
    if fresh:
        below = rng.choice([1, 3, 4, 6, 7, 9, 12, 14])
        made = 0
    if not sale:
        below = rng.choice([0, 0, 2, 4, 5, 7]) if wins else rng.choice([3, 5, 8, 10])
    step = 1000 if sale else 5
    amount = int(round(asking * (100 - below) / 100 / step) * step)
    n = d.next("offer")
    deadline_hours = made * 24 + rng.choice([48, 72, 72, 96])
    financing = ("rent" if not sale else (buyer.financing if buyer.financing != "not_needed"
                                          else "mortgage"))
    offer: dict[str, Any] = {
        "_key": f"of{n:03d}", "property": prop["_key"], "buyer": buyer.key,
        "viewing": viewing["_key"], "amount": money(amount), "financing": financing,
        "mortgage_in_principle": financing in ("mortgage", "mixed") and rng.random() < 0.7,
        "chain_free": rng.random() < 0.45, "deadline": moment(deadline_hours),
        "proposed_completion": day(made + (rng.randint(60, 100) if sale else
                                           rng.randint(10, 30))),
        "owner": viewing["agent"]}
    status_now = prop["status"]
    if wins:
        offer["status"] = "accepted"
        offer["decided_at"] = moment(made * 24 + rng.randint(4, 40))
        buyer.deal = prop["_key"]
        story.accepted_offer = offer
        buyer.contact["aml_checked"] = True
        buyer.contact.setdefault("aml_checked_on", day(made))
        if sale:
            buyer.contact.setdefault("solicitor", rng.choice(SOLICITORS))
    elif status_now == "available" and deadline_hours > 0:
        offer["status"] = "pending"
    else:
        offer["status"] = rng.choices(["refused", "countered", "expired", "withdrawn",
                                       "fallen_through"],
                                      weights=[45, 25, 15, 7, 8 if status_now == "available"
                                               else 0])[0]
        if offer["status"] == "fallen_through":
            offer["fall_through_reason"] = rng.choice([
                "mortgage_declined", "survey", "chain_broke", "buyer_withdrew"]) if sale \
                else "referencing"
        if offer["status"] == "refused":
            offer["refusal_reason"] = rng.choice(["Too far below the asking price",
                                                  "Owner accepted another offer",
                                                  "Buyer needs to sell first"])
        if offer["status"] == "countered":
            offer["counter_amount"] = money(int(round(asking * (100 - below / 3) / 100 / step)
                                                * step))
        if offer["status"] != "expired":
            offer["decided_at"] = moment(made * 24 + rng.randint(2, 30))
    d.add("offer", offer)


def gen_deals(d: Data, stories: list[Story]) -> None:
    rng = d.rng
    for story in stories:
        prop, offer = story.prop, story.accepted_offer
        if offer is None:
            continue
        buyer = story.winner
        assert buyer is not None
        manager = USERS[prop["listing_agent"]][4]
        status = prop["status"]
        if prop["listing_type"] == "sale":
            n = d.next("sales_contract")
            price = offer["amount"]
            contract: dict[str, Any] = {
                "_key": f"sc{n:03d}", "property": prop["_key"], "offer": offer["_key"],
                "buyer": buyer.key, "seller": prop["property_owner"], "price": price,
                "deposit": money(price * Decimal("0.1")),
                "buyer_solicitor": buyer.contact.get("solicitor") or SOLICITORS[0],
                "seller_solicitor": rng.choice(SOLICITORS),
                "agency_fee_pct": prop["agency_fee_pct"], "listing_agent":
                prop["listing_agent"], "selling_agent": offer["owner"], "reviewer": manager,
                "owner": offer["owner"]}
            if status == "under_offer":
                contract["status"] = rng.choice(["draft", "draft", "approved"])
                contract["target_completion"] = offer["proposed_completion"]
            elif status == "reserved":
                contract["status"] = "exchanged"
                contract["exchanged_on"] = day(story.accepted + rng.randint(15, 20))
                contract["target_completion"] = day(rng.randint(5, 40))
            else:
                exchanged = story.accepted + (story.closed - story.accepted) * 2 // 3
                contract.update({"status": "completed", "exchanged_on": day(exchanged),
                                 "target_completion": day(story.closed),
                                 "completed_on": day(story.closed)})
            seller = next(c for c in d.records["contact"] if c["_key"] == prop["property_owner"])
            seller["aml_checked"] = True
            seller.setdefault("aml_checked_on", day(story.listed - 5))
            seller.setdefault("solicitor", contract["seller_solicitor"])
            d.add("sales_contract", contract)
            fee = money(price * prop["agency_fee_pct"] / 100)
            if offer["financing"] in ("mortgage", "mixed"):
                gen_mortgage(d, story, offer, buyer)
            if contract["status"] == "completed":
                contract["fee_invoiced_on"] = day(story.closed)
                sale_commissions(d, story, contract, fee)
                fee_invoice(d, story, prop["property_owner"], fee, story.closed,
                            sales_contract=contract["_key"], what="sale", reviewer=manager)
        else:
            n = d.next("lease_contract")
            rent = offer["amount"]
            cap = (rent * 12 / 52 * 5).quantize(Decimal("0.01"), rounding=ROUND_DOWN)
            start = (story.closed if story.closed is not None else story.accepted + 14)
            term = rng.choice([12, 12, 12, 24, 6])
            lease: dict[str, Any] = {
                "_key": f"lc{n:03d}", "property": prop["_key"], "offer": offer["_key"],
                "tenant": buyer.key, "landlord": prop["property_owner"], "rent": rent,
                "rent_frequency": "monthly", "deposit": min(cap, money(rent * 5 * 12 / 52)),
                "deposit_scheme": rng.choice(["dps", "mydeposits", "tds"]),
                "start_date": day(start), "term_months": term,
                "end_date": day(start + term * 30 + (term // 12) * 5),
                "break_clause_months": 6 if term >= 12 and rng.random() < 0.6 else None,
                "yearly_increase_pct": Decimal(rng.choice(["0", "2.5", "3", "3.5"])),
                "increase_basis": "fixed", "managed": rng.random() < 0.4,
                "agency_fee_pct": prop["agency_fee_pct"], "letting_agent": offer["owner"],
                "owner": offer["owner"]}
            if lease["yearly_increase_pct"] == 0:
                lease["increase_basis"] = "none"
            if status == "under_offer":
                lease["status"] = "draft"
            else:
                lease["signed_on"] = day(story.accepted + rng.randint(2, 6))
                if status == "reserved":
                    lease["status"] = "signed"
                    lease["start_date"] = day(rng.randint(2, 20))
                    lease["end_date"] = day(rng.randint(2, 20) + term * 30)
                else:
                    end = start + term * 30
                    lease["status"] = "active" if end > 0 else "ended"
            d.add("lease_contract", lease)
            annual = rent * 12
            fee = money(annual * prop["agency_fee_pct"] / 100)
            if lease["status"] != "draft":
                signed = story.accepted + 4
                lease["fee_invoiced_on"] = day(signed)
                letting_commission(d, story, lease, fee, signed)
                fee_invoice(d, story, prop["property_owner"], fee, signed,
                            lease_contract=lease["_key"], what="letting",
                            reviewer=manager)
        if buyer.requirement is not None and status in ("reserved", "sold"):
            buyer.requirement["status"] = "found"


def gen_mortgage(d: Data, story: Story, offer: dict, buyer: Buyer) -> None:
    rng = d.rng
    prop = story.prop
    n = d.next("financing_application")
    price = offer["amount"]
    ltv = Decimal(rng.choice(["60", "70", "75", "80", "85", "90"]))
    loan = money(int(price * ltv / 100 / 1000) * 1000)
    started = story.accepted + rng.randint(1, 4)
    if prop["status"] == "sold":
        status = "completed"
    elif prop["status"] == "reserved":
        status = "approved"
    else:
        status = rng.choice(["preparing", "submitted", "valuation", "approved"])
    rec: dict[str, Any] = {
        "_key": f"mtg{n:03d}", "offer": offer["_key"], "buyer": buyer.key,
        "property": prop["_key"], "advisor": rng.choice(ADVISERS),
        "lender": rng.choice(["nationwide", "halifax", "barclays", "natwest", "santander",
                              "hsbc", "lloyds", "coventry", "virgin", "metro"]),
        "product_type": rng.choices(["fixed_2", "fixed_5", "tracker", "variable"],
                                    weights=[35, 45, 15, 5])[0],
        "property_value": price, "loan_amount": loan, "term_years": rng.choice([20, 25, 30,
                                                                                 35]),
        "status": status, "owner": offer["owner"]}
    if status != "preparing":
        rec["submitted_on"] = day(min(started + 3, -1))
        rec["lender_reference"] = f"{rng.choice('ABCDEFGH')}{rng.randint(1000000, 9999999)}"
    if status in ("valuation", "approved", "completed"):
        rec["valuation_on"] = day(min(started + 10, -1))
    if status in ("approved", "completed"):
        rec["decision_on"] = day(min(started + 21, 0))
        rec["interest_rate_pct"] = Decimal(rng.choice(["4.09", "4.29", "4.49", "4.64", "4.89",
                                                       "5.19"]))
        rec["offer_expires_on"] = day(started + 21 + 180)
    d.add("financing_application", rec)


def sale_commissions(d: Data, story: Story, contract: dict, fee: Decimal) -> None:
    rng = d.rng
    sides = [("both", contract["listing_agent"], 20)] if contract["listing_agent"] == \
        contract["selling_agent"] else [("listing", contract["listing_agent"], 10),
                                        ("selling", contract["selling_agent"], 10)]
    override = rng.random() < 0.08 and len(sides) == 2
    for side, rep, rate in sides:
        n = d.next("commission")
        rec = {"_key": f"rcm{n:03d}", "rep": rep, "property": story.prop["_key"],
               "sales_contract": contract["_key"], "deal_side": side, "basis": fee,
               "standard_rate_pct": rate, "rate_pct": rate, "accrued_on": day(story.closed),
               "owner": rep}
        if override:
            rec["rate_pct"] = 14 if side == "listing" else 6
            rec["override_reason"] = "Listing agent did most of the negotiation; split 70/30."
        commission_status(rng, rec, story.closed)
        d.add("commission", rec)


def letting_commission(d: Data, story: Story, lease: dict, fee: Decimal, signed: int) -> None:
    rng = d.rng
    n = d.next("commission")
    rec = {"_key": f"rcm{n:03d}", "rep": lease["letting_agent"], "property":
           story.prop["_key"], "lease_contract": lease["_key"], "deal_side": "letting",
           "basis": fee, "standard_rate_pct": 15, "rate_pct": 15, "accrued_on": day(signed),
           "owner": lease["letting_agent"]}
    commission_status(rng, rec, signed)
    d.add("commission", rec)


def commission_status(rng: random.Random, rec: dict, accrued: int) -> None:
    if accrued < -45:
        rec["status"] = "paid"
        rec["paid_on"] = day(min(accrued + 35, -1))
        rec["payroll_reference"] = f"PAYROLL-{(-accrued - 35) // 30:02d}M"
    elif accrued < -14:
        rec["status"] = "approved"
    else:
        rec["status"] = "accrued"


def fee_invoice(d: Data, story: Story, contact: str, fee: Decimal, when: int, what: str,
                reviewer: str, **links: str) -> None:
    rng = d.rng
    n = d.next("invoice_request")
    address_text = story.prop["address"]
    rec: dict[str, Any] = {
        "_key": f"rir{n:03d}", "contact": contact, **links,
        "description": f"Agency fee for the {what} of {address_text}", "amount": fee,
        "due_on": day(when + 14), "reviewer": reviewer, "owner": story.prop["listing_agent"]}
    if when < -30:
        rec.update({"status": "paid", "invoice_number": f"INV-{60000 + n}",
                    "invoiced_on": day(when + 1), "paid_on": day(min(when + rng.randint(7,
                                                                                     25), -1))})
    elif when < -3:
        rec.update({"status": "invoiced", "invoice_number": f"INV-{60000 + n}",
                    "invoiced_on": day(when + 1)})
    else:
        rec["status"] = "approved"
    d.add("invoice_request", rec)


def gen_requirements(d: Data, buyers: list[Buyer]) -> None:
    rng = d.rng
    for index, buyer in enumerate(buyers, 1):
        if not buyer.viewed and rng.random() < 0.55:
            continue
        sale = buyer.listing_type == "sale"
        budget = buyer.budget
        rec: dict[str, Any] = {
            "_key": f"req{index:03d}", "buyer": buyer.key,
            "listing_type": buyer.listing_type,
            "budget_min": money(int(budget * 0.75 / (5000 if sale else 25)) *
                                (5000 if sale else 25)),
            "budget_max": money(budget), "districts": buyer.districts,
            "property_types": ["flat", "maisonette"] if buyer.bedrooms <= 2 else
            ["terraced", "semi_detached", "townhouse", "maisonette"],
            "bedrooms_min": buyer.bedrooms, "financing": buyer.financing,
            "timeline": rng.choices(["asap", "within_3_months", "within_6_months",
                                     "within_12_months", "browsing"],
                                    weights=[25, 35, 20, 10, 10])[0],
            "status": "active", "owner": buyer.agent}
        if buyer.bedrooms == 0:
            rec["property_types"] = ["studio", "flat"]
        if sale:
            rec["deposit_available"] = money(int(budget * rng.choice([0.1, 0.15, 0.25, 0.4])
                                                 / 1000) * 1000)
            rec["position"] = rng.choices(["first_time_buyer", "nothing_to_sell",
                                           "sold_subject_to_contract", "needs_to_sell",
                                           "investor"], weights=[35, 20, 15, 20, 10])[0]
            rec["mortgage_in_principle"] = buyer.financing != "cash" and rng.random() < 0.6
        else:
            rec["move_by"] = day(rng.randint(14, 90))
            if rng.random() < 0.3:
                rec["must_have"] = [rng.choice(["pets_allowed", "balcony", "garden", "lift"])]
        if rng.random() < 0.35:
            rec["next_follow_up"] = day(rng.randint(-3, 14))
        if buyer.deal is None and rng.random() < 0.15:
            rec["status"] = rng.choice(["on_hold", "lost"])
            if rec["status"] == "lost":
                rec["lost_reason"] = rng.choice(["Bought through another agent",
                                                 "Decided to stay put", "Moved out of London"])
        buyer.requirement = rec
        d.add("buyer_requirement", rec)


def link_viewings_to_requirements(d: Data, buyers: list[Buyer]) -> None:
    by_key = {b.key: b for b in buyers}
    for viewing in d.records.get("viewing", []):
        buyer = by_key.get(viewing["buyer"])
        if buyer is not None and buyer.requirement is not None:
            viewing["requirement"] = buyer.requirement["_key"]


def gen_leads(d: Data, people: People, listings: list[dict]) -> None:
    rng = d.rng
    available = [p for p in listings if p["status"] == "available"]
    sources = {"portal": 52, "walk_in": 9, "open_house": 7, "web": 13, "referral": 10,
               "social": 5, "other": 4}
    for index in range(1, 261):
        source = rng.choices(list(sources), weights=list(sources.values()))[0]
        prop = rng.choice(available) if source in ("portal", "open_house", "web") else None
        district = prop["district"] if prop else rng.choice(DISTRICTS)
        if prop:
            enquiry = "buy" if prop["listing_type"] == "sale" else "rent"
        else:
            enquiry = rng.choices(["buy", "rent", "sell", "let", "valuation"],
                                  weights=[25, 25, 20, 15, 15])[0]
        _salutation, first, last = people.name()
        age_hours = int(rng.triangular(0, 24 * 120, 24 * 3))
        received = -(age_hours // 24)
        rec: dict[str, Any] = {
            "_key": f"rld{index:03d}", "first_name": first, "last_name": last,
            "email": people.email(first, last), "source": source,
            "interest": INTEREST[enquiry], "district": district, "region": "london",
            "received_on": day(received),
            "rating": rng.choices(["hot", "warm", "cold"], weights=[30, 50, 20])[0]}
        if rng.random() < 0.75:
            rec["phone"] = people.mobile() if people.mobiles and rng.random() < 0.3 \
                else people.landline()
        if prop:
            rec["property"] = prop["_key"]
            rec["budget"] = prop["price"]
        elif enquiry in ("sell", "let", "valuation"):
            rec["budget"] = money(int(rng.uniform(350, 1600)) * 1000) if enquiry != "let" \
                else money(int(rng.uniform(70, 160)) * 25)
        if source == "portal":
            rec["portal"] = rng.choices(["rightmove", "zoopla", "onthemarket", "own_website"],
                                        weights=[50, 30, 12, 8])[0]
            rec["portal_reference"] = f"{rec['portal'][:2].upper()}-{rng.randint(10**7, 10**8 - 1)}"
        if age_hours < 2:
            status = "new"
        elif received > -14:
            status = rng.choices(["new", "contacted", "qualified"], weights=[15, 55, 30])[0]
        else:
            status = rng.choices(["contacted", "qualified", "converted", "lost"],
                                 weights=[20, 20, 25, 35])[0]
        rec["status"] = status
        rec["owner"] = AGENT_OF[district]
        rec["claimed_at"] = moment(-age_hours + 1)
        if source in ("portal", "walk_in", "open_house"):
            rec["first_contact_due_at"] = moment(-age_hours) if age_hours else \
                "=now() + hours(0.25)"
            if status != "new":
                late = rng.random() < 0.12
                rec["first_contacted_at"] = moment(-age_hours + (1 if late else 0))
                rec["first_contact_late"] = late
            elif age_hours >= 1:
                rec["first_contact_late"] = True
        if status in ("new", "contacted", "qualified"):
            rec["next_follow_up"] = day(rng.randint(-2, 7))
        if status in ("qualified", "converted"):
            rec["estimated_value"] = money(float(rec.get("budget") or 500000) * 0.015) \
                if enquiry in ("buy", "sell", "valuation") else money(
                    float(rec.get("budget") or 2000) * 1.2)
        if status == "converted":
            rec["converted_on"] = day(received + rng.randint(1, 10))
        if status == "lost":
            rec["lost_reason"] = rng.choice(["no_response", "competitor", "bad_timing",
                                             "duplicate", "no_need"])
        d.add("lead", rec)


def gen_tasks(d: Data) -> None:
    rng = d.rng
    n = 0
    for viewing in d.records["viewing"]:
        if viewing.get("status") != "completed" or rng.random() < 0.85:
            continue
        n += 1
        prop = next(p for p in d.records["property"] if p["_key"] == viewing["property"])
        done = rng.random() < 0.8
        rec = {"_key": f"rtsk{n:03d}",
               "subject": f"Pass the viewing feedback on {prop['address']} to the owner",
               "task_type": "call", "assignee": viewing["agent"],
               "due_on": day(rng.randint(-20, 1)) if done else day(rng.randint(-1, 2)),
               "priority": "normal", "contact": prop["property_owner"],
               "property": prop["_key"], "viewing": viewing["_key"],
               "status": "done" if done else "open", "owner": viewing["agent"]}
        if done:
            rec["done_on"] = day(-rng.randint(1, 20))
        d.add("task", rec)
    for prop in d.records["property"]:
        if prop["status"] != "available" or rng.random() < 0.8:
            continue
        n += 1
        d.add("task", {"_key": f"rtsk{n:03d}",
                       "subject": f"Call the buyers whose requirements match {prop['address']}",
                       "task_type": "call", "assignee": prop["listing_agent"],
                       "due_on": day(rng.randint(-2, 3)), "priority": "high",
                       "property": prop["_key"], "status": "open",
                       "owner": prop["listing_agent"]})


def main() -> None:
    out = output_dir(PACK)
    d = Data(random.Random(SEED))
    people = People(d)
    listings = gen_listings(d, people)
    buyers = gen_buyers(d, people)
    for prop in listings:
        d.add("property", prop)
    stories = gen_market(d, listings, buyers)
    gen_requirements(d, buyers)
    gen_deals(d, stories)
    link_viewings_to_requirements(d, buyers)
    gen_leads(d, people, listings)
    gen_tasks(d)
    counts = {entity: write_records(out, entity, records, PACK)
              for entity, records in sorted(d.records.items())}
    counts["user"] = write_staff(out, PACK, [
        {"username": u, "full_name": name, "role": role, "team": team, "district": district,
         "manager": manager} for u, (name, role, district, team, manager) in USERS.items()])
    print(", ".join(f"{entity}: {n}" for entity, n in counts.items()),
          f"(total {sum(counts.values())})")


if __name__ == "__main__":
    main()
