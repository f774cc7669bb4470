"""Demo data of the hotel pack: two four-star hotels, 50 days of stays and five weeks ahead.

Usage: python tools/demo_generators/hotel.py [OUTPUT_DIR]   (default verticals/hotel/data)

Deterministic: one random.Random with a fixed seed, no clock; dates and times are written
relative to the install moment ("=today() - days(40)", "=now() - hours(30)"). Standard library
only. Owners and heads of department are usernames of the demo users in USERS (listed in the
pack's README too). Occupancy is simulated room by room, and the night audits are computed from
the simulated stays, so occupancy, ADR and RevPAR agree with the reservations.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from decimal import Decimal
from pathlib import Path

SEED = 20240613
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import day, moment, money, write_quoted, write_staff  # noqa: E402

PACK = "hotel"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "verticals" / PACK / "data"


def write_yaml(out: Path, entity: str, records: list[dict], comment: str) -> None:
    write_quoted(out, entity, records, comment, PACK)


PAST = 50  # days of history in the window (night audits, in-house stays)
FUTURE = 35  # days of bookings ahead


def write_csv(out: Path, entity: str, fields: list[str], records: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for record in records:
        row = []
        for name in fields:
            value = record.get(name)
            row.append("" if value is None else
                       ("true" if value is True else "false" if value is False else str(value)))
        writer.writerow(row)
    (out / f"{entity}.csv").write_text(buffer.getvalue(), encoding="utf-8")


# -- reference data ------------------------------------------------------------------------------

# username -> (full name, role, hotel code or None, team)
USERS: dict[str, tuple[str, str, str | None, str]] = {
    "ella.morgan": ("Ella Morgan", "front_desk", "LON", "Front office London"),
    "lucas.silva": ("Lucas Silva", "front_desk", "LON", "Front office London"),
    "amira.haddad": ("Amira Haddad", "front_desk", "EDI", "Front office Leith"),
    "jamie.boyd": ("Jamie Boyd", "front_desk", "EDI", "Front office Leith"),
    "nina.petrova": ("Nina Petrova", "reservations_agent", None, "Reservations"),
    "marcus.reid": ("Marcus Reid", "duty_manager", "LON", "Front office London"),
    "fiona.grant": ("Fiona Grant", "duty_manager", "EDI", "Front office Leith"),
    "daniel.harper": ("Daniel Harper", "front_office_manager", "LON", "Front office London"),
    "kirsty.munro": ("Kirsty Munro", "front_office_manager", "EDI", "Front office Leith"),
    "edward.sterling": ("Edward Sterling", "general_manager", None, "Hotel management"),
    "sanjay.kapoor": ("Sanjay Kapoor", "revenue_manager", None, "Revenue"),
    "maria.santos": ("Maria Santos", "housekeeping", "LON", "Housekeeping London"),
    "agnieszka.wojcik": ("Agnieszka Wójcik", "housekeeping", "EDI", "Housekeeping Leith"),
    "luca.bianchi": ("Luca Bianchi", "restaurant", "LON", "Restaurant London"),
    "morag.duncan": ("Morag Duncan", "restaurant", "EDI", "Restaurant Leith"),
    "olivia.park": ("Olivia Park", "guest_relations", "LON", "Guest relations"),
    "ruaridh.mackay": ("Ruaridh Mackay", "guest_relations", "EDI", "Guest relations"),
}
HOTELS = {
    "LON": {"name": "The Larchmont, Covent Garden", "city": "London",
            "address": "14 Larchmont Row, London WC2E 9LH", "stars": 4,
            "leads": ("daniel.harper", "maria.santos", "luca.bianchi", "olivia.park"),
            "desk": ["ella.morgan", "lucas.silva"], "duty": "marcus.reid",
            "types": [("STD-DBL", "Classic Double", "standard", "double", 2, 18, 189, 12),
                      ("SUP-KING", "Superior King", "superior", "king", 2, 24, 229, 13),
                      ("DLX-CITY", "Deluxe City View", "deluxe", "king", 3, 30, 279, 9),
                      ("FAM", "Family Room", "family", "king_sofa", 4, 34, 259, 4),
                      ("JR-STE", "Junior Suite", "junior_suite", "king", 3, 42, 389, 4)],
            "views": ["city", "courtyard", "park"], "floors": 6, "parking": 28},
    "EDI": {"name": "The Shore Hotel, Leith", "city": "Edinburgh",
            "address": "3 Commercial Quay, Edinburgh EH6 6LX", "stars": 4,
            "leads": ("kirsty.munro", "agnieszka.wojcik", "morag.duncan", "ruaridh.mackay"),
            "desk": ["amira.haddad", "jamie.boyd"], "duty": "fiona.grant",
            "types": [("STD-TWIN", "Classic Twin", "standard", "twin", 2, 17, 149, 8),
                      ("SUP-DBL", "Superior Double", "superior", "double", 2, 22, 179, 10),
                      ("DLX-SEA", "Deluxe Harbour View", "deluxe", "king", 2, 28, 229, 7),
                      ("SHORE-STE", "Shore Suite", "suite", "king_sofa", 4, 48, 349, 3)],
            "views": ["sea", "river", "courtyard"], "floors": 4, "parking": 15},
}
NATIONS = [  # nationality, language, weight, first names, last names
    ("gb", "en", 46, ["James", "Oliver", "Harry", "George", "Emily", "Sophie", "Charlotte",
                      "Lucy", "Thomas", "Hannah", "Jack", "Isabel", "William", "Eleanor"],
     ["Harrison", "Bennett", "Fletcher", "Holloway", "Pemberton", "Whitaker", "Cartwright",
      "Ashdown", "Kingsley", "Lambert", "Mercer", "Radcliffe", "Sheridan", "Thornton"]),
    ("us", "en", 14, ["Michael", "Jennifer", "Ashley", "Brandon", "Megan", "Tyler", "Lauren",
                      "Kevin", "Brittany", "Justin"],
     ["Anderson", "Miller", "Martinez", "Thompson", "Garcia", "Robinson", "Hernandez",
      "Sullivan", "Brooks", "Coleman"]),
    ("de", "de", 7, ["Lukas", "Anna", "Felix", "Lena", "Jonas", "Marie", "Maximilian", "Katrin"],
     ["Müller", "Schmidt", "Schneider", "Fischer", "Weber", "Becker", "Hoffmann", "Krüger"]),
    ("fr", "fr", 6, ["Camille", "Hugo", "Léa", "Louis", "Chloé", "Antoine", "Manon"],
     ["Martin", "Bernard", "Dubois", "Laurent", "Moreau", "Lefèvre", "Girard"]),
    ("es", "es", 4, ["Lucía", "Pablo", "Carmen", "Javier", "Marta", "Diego"],
     ["García", "Fernández", "López", "Sánchez", "Romero", "Navarro"]),
    ("it", "it", 4, ["Giulia", "Marco", "Francesca", "Alessandro", "Chiara", "Matteo"],
     ["Rossi", "Russo", "Ferrari", "Esposito", "Bianchi", "Romano"]),
    ("nl", "nl", 3, ["Daan", "Sanne", "Bram", "Lotte", "Thijs"],
     ["de Jong", "Jansen", "de Vries", "van Dijk", "Bakker"]),
    ("se", "en", 2, ["Erik", "Astrid", "Johan", "Ingrid"], ["Andersson", "Lindberg", "Nyström",
                                                            "Berglund"]),
    ("cn", "zh", 4, ["Wei", "Jing", "Hao", "Xiu", "Lei", "Yan"],
     ["Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao"]),
    ("jp", "ja", 3, ["Haruto", "Yui", "Sota", "Aoi", "Ren"],
     ["Sato", "Suzuki", "Takahashi", "Tanaka", "Watanabe"]),
    ("in", "en", 3, ["Aarav", "Ananya", "Rohan", "Diya", "Kabir"],
     ["Sharma", "Iyer", "Reddy", "Nair", "Gupta"]),
    ("ae", "ar", 2, ["Khalid", "Fatima", "Omar", "Mariam"],
     ["Al Mansoori", "Al Nuaimi", "Al Hashimi", "Al Suwaidi"]),
    ("au", "en", 2, ["Liam", "Chloe", "Noah", "Matilda"], ["Nguyen", "Kelly", "Walsh", "Ryan"]),
]
CHANNELS = {"direct_web": 25, "phone": 8, "email": 4, "walk_in": 3, "booking_com": 27,
            "expedia": 12, "travel_agent": 5, "corporate": 11, "gds": 3, "group": 2}
PREFERENCES = {
    "dining_table": ["Table by the window", "Quiet corner table", "Booth by the fireplace"],
    "pillow": ["Feather-free pillows", "Firm pillows", "Extra pillows"],
    "bed": ["Twin beds, not a double", "Extra blanket", "Turn-down service"],
    "room_location": ["High floor, away from the lift", "Quiet room on the courtyard side",
                      "Close to the lift (limited mobility)"],
    "view": ["Room with a view", "Harbour or park view"],
    "cuisine": ["Vegetarian breakfast", "Full Scottish breakfast", "Green tea in the room"],
    "dietary": ["Vegan", "Halal", "Gluten-free"],
    "allergy": ["Severe nut allergy", "Shellfish allergy", "Dairy intolerance"],
    "minibar": ["No alcohol in the minibar", "Sparkling water in the minibar"],
    "newspaper": ["The Times", "Financial Times", "Le Monde"],
    "amenity": ["Hypoallergenic bedding", "Iron and board on arrival", "Extra towels"],
    "leisure": ["Early swim: pool from 6:30", "Deep tissue massage on the first evening"],
}
REQUESTS = ["Late arrival around 22:00", "Quiet room away from the lift", "Cot for a baby",
            "Celebrating our anniversary", "Early check-in if possible",
            "Feather-free pillows please", "Two keys, separate invoices",
            "Parking space for one night", "Connecting rooms if possible"]
COMPLAINTS = {
    "housekeeping": ["Room not cleaned by 3 pm", "Hair in the shower", "Towels not replaced"],
    "maintenance": ["Air conditioning not working", "Shower drains slowly",
                    "TV remote broken", "No hot water in the morning"],
    "noise": ["Noisy neighbours after midnight", "Construction noise from the street",
              "Loud music from the bar below"],
    "food_beverage": ["Cold breakfast", "Waited 40 minutes for room service",
                      "Wrong order, allergy not respected"],
    "front_office": ["Long queue at check-in", "Room not ready at 4 pm", "Key card failed twice"],
    "billing": ["Charged twice for parking", "Minibar items charged but not taken"],
    "reservations": ["Booked a king bed, got a twin", "Rate differs from the confirmation"],
}


class Gen:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.used: set[tuple[str, str]] = set()
        self.counter: dict[str, int] = {}

    def key(self, prefix: str, width: int = 4) -> str:
        self.counter[prefix] = self.counter.get(prefix, 0) + 1
        return f"htl-{prefix}-{self.counter[prefix]:0{width}d}"

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def unique(self, kind: str, make) -> str:
        while True:
            value = make()
            if (kind, value) not in self.used:
                self.used.add((kind, value))
                return value

    # -- hotels and rooms -----------------------------------------------------------------------

    def hotels(self) -> None:
        rng = self.rng
        self.site_rows, self.type_rows, self.room_rows = [], [], []
        self.rooms: dict[str, list[dict]] = {}
        for code, hotel in HOTELS.items():
            front, housekeeping, restaurant, relations = hotel["leads"]
            self.site_rows.append({
                "_key": f"htl-site-{code.lower()}", "owner": "edward.sterling", "code": code,
                "name": hotel["name"], "city": hotel["city"], "address": hotel["address"],
                "star_rating": hotel["stars"], "check_in_time": "15:00",
                "check_out_time": "11:00", "front_office_lead": front,
                "housekeeping_lead": housekeeping, "restaurant_lead": restaurant,
                "guest_relations_lead": relations,
            })
            numbers = [f"{floor}{index:02d}" for floor in range(1, hotel["floors"] + 1)
                       for index in range(1, 8)]
            count = sum(t[7] for t in hotel["types"])
            numbers = numbers[:count] if len(numbers) >= count else numbers
            cursor = 0
            self.rooms[code] = []
            for (tcode, name, category, bed, occupancy, size, rate, rooms) in hotel["types"]:
                tkey = f"htl-rt-{code.lower()}-{tcode.lower()}"
                self.type_rows.append({
                    "_key": tkey, "owner": "sanjay.kapoor",
                    "hotel_site": f"htl-site-{code.lower()}", "code": tcode, "name": name,
                    "category": category,
                    "bed_configuration": bed, "max_occupancy": occupancy, "size_m2": size,
                    "base_rate": money(rate),
                    "description": f"{name}: {size} m², {bed.replace('_', ' ')} bed.",
                })
                for _ in range(rooms):
                    number = numbers[cursor]
                    cursor += 1
                    room = {
                        "_key": f"htl-room-{code.lower()}-{number}", "owner": housekeeping,
                        "hotel_site": f"htl-site-{code.lower()}", "number": number,
                        "room_type": tkey, "floor": int(number[:-2]),
                        "view": rng.choice(hotel["views"]),
                        "accessible": rng.random() < 0.07,
                        "features": sorted(rng.sample(
                            ["bathtub", "walk_in_shower", "balcony", "quiet", "near_lift"],
                            rng.randrange(0, 3))),
                        "hk_status": "inspected",
                        "__type": (tkey, rate, occupancy, category), "__busy": set(),
                    }
                    self.room_rows.append(room)
                    self.rooms[code].append(room)
            # one room out of order now, one earlier in the window
            broken = rng.choice(self.rooms[code])
            broken["hk_status"] = "out_of_order"
            broken["out_of_order_reason"] = rng.choice(["Water leak from the ceiling",
                                                        "Bathroom refit"])
            broken["out_of_order_until"] = day(rng.randrange(2, 9))
            broken["__busy"].update(range(-4, FUTURE + 1))
            earlier = rng.choice(self.rooms[code])
            earlier["__busy"].update(range(-35, -29))
            earlier["__ooo"] = (-35, -29)
            broken["__ooo"] = (-4, FUTURE + 1)

    # -- guests ---------------------------------------------------------------------------------

    def guest(self, frequent: bool = False) -> dict:
        rng = self.rng
        nation = rng.choices(NATIONS, weights=[n[2] for n in NATIONS])[0]
        code, language, _weight, firsts, lasts = nation
        first, last = rng.choice(firsts), rng.choice(lasts)
        local = "".join(ch for ch in (first + last).lower() if ch.isascii() and ch.isalpha())
        age = rng.randrange(24, 79)
        consent = rng.random() < 0.5
        record = {
            "_key": self.key("g"), "owner": "nina.petrova",
            "first_name": first, "last_name": last,
            "email": self.unique("email", lambda: f"{local}{rng.randrange(10, 9999)}@example.net"),
            "mobile": self.unique("mobile", lambda: (
                "+44 7" if code == "gb" else "+" + str(rng.choice([1, 33, 34, 39, 49, 86]))
                + " ") + f"{rng.randrange(10**8, 10**9)}"),
            "country": {"gb": "United Kingdom", "us": "United States", "de": "Germany",
                        "fr": "France", "es": "Spain", "it": "Italy", "nl": "Netherlands",
                        "se": "Sweden", "cn": "China", "jp": "Japan", "in": "India",
                        "ae": "United Arab Emirates", "au": "Australia"}[code],
            "birthday": day(-(age * 365 + rng.randrange(0, 365))) if rng.random() < 0.6
            else None,
            "marketing_consent": consent,
            "consent_date": day(-rng.randrange(5, 700)) if consent else None,
            "consent_source": self.pick({"web_form": 60, "in_person": 40}) if consent else None,
            "hotel_guest": True, "vip_level": "none", "nationality": code,
            "guest_language": language,
            "anniversary": day(-rng.randrange(400, 12000)) if rng.random() < 0.15 else None,
            "passport_number": f"{code.upper()}{rng.randrange(10**7, 10**8)}"
            if code != "gb" and rng.random() < 0.7 else None,
            "__frequent": frequent, "__stays": [],
        }
        if frequent:
            record["vip_level"] = self.pick({"none": 60, "vip1": 30, "vip2": 9, "vip3": 1})
        return record

    # -- stays ----------------------------------------------------------------------------------

    def simulate(self) -> None:
        rng = self.rng
        self.guest_rows: list[dict] = []
        self.frequent = [self.guest(frequent=True) for _ in range(110)]
        self.guest_rows.extend(self.frequent)
        self.stays: list[dict] = []
        for code in HOTELS:
            for room in self.rooms[code]:
                busy = room["__busy"]
                d = -PAST - rng.randrange(0, 4)
                while d < FUTURE:
                    pickup = 0.58 if d <= 0 else 0.58 * max(0.12, 1 - d / 48)
                    if d in busy or rng.random() > pickup:
                        d += 1
                        continue
                    nights = rng.choices([1, 2, 3, 4, 5, 6, 7],
                                         weights=[22, 30, 20, 11, 7, 5, 5])[0]
                    if any(n in busy for n in range(d, d + nights)):
                        d += 1
                        continue
                    busy.update(range(d, d + nights))
                    self.stays.append({"hotel": code, "room": room, "arrival": d,
                                       "departure": d + nights})
                    d += nights
        self.stays.sort(key=lambda s: (s["arrival"], s["hotel"], s["room"]["number"]))
        # guests: a third of the stays belong to frequent guests
        for stay in self.stays:
            if rng.random() < 0.38:
                stay["guest"] = rng.choice(self.frequent)
            else:
                guest = self.guest()
                self.guest_rows.append(guest)
                stay["guest"] = guest
        # older stays of frequent guests (history from the previous property system)
        self.history = []
        for guest in self.frequent:
            for _ in range(rng.randrange(1, 5)):
                code = rng.choice(list(HOTELS))
                room = rng.choice(self.rooms[code])
                arrival = -rng.randrange(PAST + 10, 720)
                self.history.append({"hotel": code, "room": room, "arrival": arrival,
                                     "departure": arrival + rng.randrange(1, 5),
                                     "guest": guest, "history": True})
        self.history.sort(key=lambda s: s["arrival"])
        guests_with_do_not_rent = rng.sample(self.guest_rows[110:], 2)
        for guest in guests_with_do_not_rent:
            guest["do_not_rent"] = True
            guest["do_not_rent_reason"] = rng.choice(["Damage to the room, unpaid",
                                                      "Abusive to staff"])

    def memberships(self) -> None:
        rng = self.rng
        self.member_rows = []
        self.member_of: dict[str, str] = {}
        nights: dict[str, int] = {}
        for stay in self.history + self.stays:
            if stay["departure"] <= 0:
                key = stay["guest"]["_key"]
                nights[key] = nights.get(key, 0) + stay["departure"] - stay["arrival"]
        candidates = self.frequent + rng.sample(self.guest_rows[110:], 110)
        for guest in candidates:
            total = nights.get(guest["_key"], 0)
            tier = "platinum" if total >= 50 else "gold" if total >= 25 else \
                "silver" if total >= 10 else "classic"
            key = self.key("loy", 3)
            self.member_of[guest["_key"]] = key
            self.member_rows.append({
                "_key": key, "owner": "olivia.park", "guest": guest["_key"], "tier": tier,
                "enrolled_on": day(-rng.randrange(30, 1500)),
                "enrolment_channel": self.pick({"front_desk": 55, "website": 30, "app": 15}),
                "tier_since": day(-rng.randrange(10, 300)) if tier != "classic" else None,
                "points_redeemed": 0, "active": True,
            })
            if tier in ("gold", "platinum") and guest["vip_level"] == "none":
                guest["vip_level"] = "vip1"

    def preferences(self) -> None:
        rng = self.rng
        self.pref_rows = []
        for guest in self.guest_rows:
            count = rng.randrange(1, 5) if guest["__frequent"] else (
                1 if rng.random() < 0.12 else 0)
            for category in rng.sample(list(PREFERENCES), count):
                self.pref_rows.append({
                    "owner": "olivia.park" if rng.random() < 0.5 else "maria.santos",
                    "guest": guest["_key"], "category": category,
                    "detail": rng.choice(PREFERENCES[category]),
                    "importance": "must" if category == "allergy" or rng.random() < 0.3
                    else "nice",
                    "source": self.pick({"stated": 60, "observed": 40}),
                    "last_confirmed_on": day(-rng.randrange(1, 400)),
                })
        self.has_prefs = {p["guest"] for p in self.pref_rows}

    def reservations(self) -> None:
        rng = self.rng
        self.res_rows: list[dict] = []
        checked_out_before: dict[str, list[int]] = {}
        for stay in self.history + self.stays:
            if stay.get("history") or stay["departure"] <= 0:
                checked_out_before.setdefault(stay["guest"]["_key"], []).append(
                    stay["departure"])
        # groups: a few arrival days per hotel where the stays arriving together are a group
        group_days = {("LON", -24): "Halden Pharma sales conference",
                      ("EDI", -9): "Edinburgh Festival choir tour",
                      ("LON", 12): "Aurora wedding party", ("EDI", 26): "Nordic Fintech Forum"}
        guests_by_key = {g["_key"]: g for g in self.guest_rows}
        for stay in self.history + self.stays:
            guest = stay["guest"]
            code = stay["hotel"]
            room = stay["room"]
            tkey, base, occupancy, category = room["__type"]
            arrival, departure = stay["arrival"], stay["departure"]
            history = stay.get("history", False)
            if history or departure <= 0:
                status = "checked_out"
                if not history and arrival < 0 and rng.random() < 0.02:
                    status = "no_show"
            elif arrival < 0 or (arrival == 0 and rng.random() < 0.55):
                status = "checked_in"
            elif arrival > 7 and rng.random() < 0.12:
                status = "pre_reservation"
            else:
                status = "confirmed"
            stay["status"] = status
            channel = self.pick(CHANNELS)
            plan = {"corporate": "corporate", "group": "bar"}.get(channel) or self.pick(
                {"bar": 55, "advance_purchase": 20, "bed_breakfast": 18, "package": 5,
                 "complimentary": 1, "loyalty": 1})
            member = self.member_of.get(guest["_key"])
            if plan == "loyalty" and not member:
                plan = "bar"
            factor = rng.uniform(0.88, 1.22) * {"advance_purchase": 0.82, "corporate": 0.86,
                                                "bed_breakfast": 1.12, "package": 1.25}.get(
                plan, 1.0)
            rate = Decimal(0) if plan in ("complimentary", "loyalty") else money(
                round(base * factor))
            group = group_days.get((code, arrival))
            if group and status != "no_show":
                channel, plan = "group", "group"
                rate = money(round(base * 0.78))
            adults = 1 if rng.random() < 0.35 else 2
            children = 0
            if occupancy > 2 and rng.random() < 0.45:
                children = min(occupancy - adults, rng.randrange(1, 3))
            returning = any(d <= arrival for d in checked_out_before.get(guest["_key"], [])
                            if d != departure or history)
            key = self.key("res", 5)
            stay["key"], stay["rate"] = key, rate
            in_house = status in ("checked_in", "checked_out") and not history
            record = {
                "_key": key,
                "owner": rng.choice(HOTELS[code]["desk"]) if channel == "walk_in"
                else "nina.petrova",
                "hotel_site": f"htl-site-{code.lower()}", "guest": guest["_key"],
                "membership": member, "room_type": tkey,
                "room": room["_key"] if in_house else None,
                "arrival": day(arrival), "departure": day(departure),
                "adults": adults, "children": children,
                "eta": f"{rng.choice([13, 14, 15, 16, 17, 18, 19, 21, 22])}:"
                       f"{rng.choice(['00', '30'])}" if status == "confirmed" and arrival <= 7
                else None,
                "channel": channel, "rate_plan": plan, "rate_per_night": rate,
                "group_name": group if plan == "group" else None,
                "group_rooms": sum(1 for s in self.stays if s["hotel"] == code and
                                   s["arrival"] == arrival) if plan == "group" else None,
                "special_requests": rng.choice(REQUESTS) if rng.random() < 0.2 else None,
                "returning_guest": returning,
                "preferences_sent": guest["_key"] in self.has_prefs and (
                    history or arrival <= 0),
                "survey_sent": status == "checked_out" and not history and departure <= -1,
                "checked_in_at": moment(arrival * 24 - rng.uniform(-6, 2)) if (
                    status in ("checked_in", "checked_out") and arrival < 0) else (
                    moment(-rng.uniform(0.5, 5)) if status == "checked_in" else None),
                "checked_out_at": moment(min(departure * 24 - rng.uniform(0, 3), -0.3))
                if status == "checked_out" else None,
                "status": status,
            }
            if guests_by_key[guest["_key"]].get("do_not_rent") and status not in (
                    "checked_out", "no_show"):
                record["status"] = stay["status"] = "cancelled"
                record["cancellation_reason"] = "other"
                record["cancelled_on"] = day(min(0, arrival - 1))
                record["room"] = None
            self.res_rows.append(record)
        # cancellations that never became stays
        for _ in range(140):
            code = rng.choice(list(HOTELS))
            room = rng.choice(self.rooms[code])
            arrival = rng.randrange(-PAST, FUTURE)
            guest = rng.choice(self.frequent) if rng.random() < 0.2 else self.guest()
            if guest not in self.guest_rows:
                self.guest_rows.append(guest)
            tkey, base, _occupancy, _category = room["__type"]
            self.res_rows.append({
                "_key": self.key("res", 5), "owner": "nina.petrova",
                "hotel_site": f"htl-site-{code.lower()}", "guest": guest["_key"],
                "room_type": tkey, "arrival": day(arrival),
                "departure": day(arrival + rng.randrange(1, 5)), "adults": 2,
                "channel": self.pick(CHANNELS), "rate_plan": "bar",
                "rate_per_night": money(round(base * rng.uniform(0.9, 1.2))),
                "returning_guest": False,
                "cancellation_reason": self.pick({"guest_request": 45, "changed_dates": 30,
                                                  "illness": 10, "no_payment_guarantee": 10,
                                                  "other": 5}),
                "cancelled_on": day(min(0, arrival - rng.randrange(1, 30))),
                "status": "cancelled",
            })

    def complaints(self) -> None:
        rng = self.rng
        self.complaint_rows = []
        self.adjustments: dict[str, list[tuple[Decimal, str, str]]] = {}
        self.complained: set[str] = set()
        candidates = [s for s in self.stays if s["status"] in ("checked_out", "checked_in")]
        for stay in rng.sample(candidates, 72):
            code = stay["hotel"]
            arrival, departure = stay["arrival"], stay["departure"]
            end = min(departure, 0)
            reported = -rng.uniform(max(0.3, -end * 24), max(0.5, -arrival * 24))
            department = self.pick({"housekeeping": 20, "maintenance": 22, "noise": 14,
                                    "food_beverage": 16, "front_office": 14, "billing": 8,
                                    "reservations": 6})
            severity = self.pick({"low": 30, "medium": 40, "high": 24, "critical": 6})
            age = -reported
            if stay["status"] == "checked_in" and age < 30:
                status = self.pick({"logged": 10, "acknowledged": 20, "in_progress": 35,
                                    "resolved": 35})
            else:
                status = self.pick({"closed": 82, "resolved": 8, "reopened": 5,
                                    "in_progress": 5})
            compensation = self.pick({"none": 28, "amenity": 24, "fb_credit": 14,
                                      "room_discount": 14, "points": 5, "upgrade": 6,
                                      "free_night": 6, "refund": 3})
            amount = {"none": None, "upgrade": None,
                      "amenity": money(rng.choice([25, 35, 45, 60])),
                      "fb_credit": money(rng.choice([30, 50, 75, 90])),
                      "room_discount": money(rng.choice([50, 80, 120, 180, 250, 320])),
                      "points": money(rng.choice([20, 40])),
                      "free_night": stay["rate"] or money(150),
                      "refund": money(rng.choice([120, 240, 450]))}[compensation]
            key = self.key("cmp", 3)
            acknowledged = None if status == "logged" else reported + rng.uniform(
                0.05, 0.24 if severity in ("high", "critical") else 1.5)
            minutes = round((acknowledged - reported) * 60) if acknowledged else None
            record = {
                "_key": key, "owner": rng.choice(HOTELS[code]["desk"]),
                "guest": stay["guest"]["_key"], "reservation": stay["key"],
                "hotel_site": f"htl-site-{code.lower()}", "room": stay["room"]["_key"],
                "department": department, "severity": severity,
                "channel": self.pick({"in_person": 55, "phone": 25, "email": 10, "survey": 5,
                                      "online_review": 5}),
                "description": rng.choice(COMPLAINTS[department]),
                "reported_at": moment(reported),
                "acknowledged_at": moment(acknowledged) if acknowledged else None,
                "minutes_to_acknowledge": minutes,
                "escalated": severity in ("high", "critical") and minutes is not None
                and minutes > 15,
                "status": status,
            }
            if record["escalated"]:
                record["owner"] = HOTELS[code]["duty"]
            if status in ("in_progress", "resolved", "closed", "reopened"):
                record["recovery_action"] = rng.choice([
                    "Apologised in person and moved the guest to another room.",
                    "Engineer fixed it within the hour; followed up with the guest.",
                    "Duty manager called the guest and arranged the compensation.",
                    "Housekeeping re-cleaned the room and the supervisor inspected it."])
                record["compensation_type"] = compensation
                record["compensation_amount"] = amount
                record["free_nights"] = 1 if compensation == "free_night" else None
            if status in ("resolved", "closed", "reopened"):
                resolved = min(-0.1, reported + rng.uniform(1, 20))
                record["resolved_at"] = moment(resolved)
                record["guest_satisfied"] = status != "reopened" and rng.random() < 0.8
                record["root_cause"] = rng.choice(["Staffing gap on the late shift",
                                                   "Maintenance backlog", "Guest expectation",
                                                   "System error", None])
                if status == "reopened":
                    record["reopen_reason"] = "The guest wrote again: the problem came back."
                if compensation in ("room_discount", "refund", "free_night") and \
                        stay["status"] == "checked_out":
                    self.adjustments.setdefault(stay["key"], []).append(
                        (amount, key, {"room_discount": "Goodwill discount on the room",
                                       "refund": "Refund after complaint",
                                       "free_night": "Night complimented"}[compensation]))
            self.complaint_rows.append(record)
            self.complained.add(stay["key"])
        # two fresh ones: nobody has acknowledged them yet
        for severity, minutes_ago in (("high", 9), ("low", 40)):
            stay = rng.choice([s for s in self.stays if s["status"] == "checked_in"])
            code = stay["hotel"]
            self.complaint_rows.append({
                "_key": self.key("cmp", 3), "owner": rng.choice(HOTELS[code]["desk"]),
                "guest": stay["guest"]["_key"], "reservation": stay["key"],
                "hotel_site": f"htl-site-{code.lower()}", "room": stay["room"]["_key"],
                "department": "maintenance" if severity == "high" else "housekeeping",
                "severity": severity, "channel": "phone",
                "description": "No hot water in the morning" if severity == "high"
                else "Towels not replaced",
                "reported_at": moment(-minutes_ago / 60), "status": "logged",
            })

    def folio(self) -> None:
        rng = self.rng
        self.folio_rows = []
        extras = [("restaurant", "Dinner", 35, 140), ("restaurant", "Breakfast", 16, 24),
                  ("bar", "Bar", 8, 45), ("room_service", "Room service", 18, 60),
                  ("minibar", "Minibar", 6, 25), ("spa", "Spa treatment", 60, 150),
                  ("laundry", "Laundry", 12, 40), ("transfer", "Airport transfer", 55, 95)]
        for stay in self.history + self.stays:
            if stay["status"] not in ("checked_out", "checked_in"):
                continue
            arrival, departure = stay["arrival"], stay["departure"]
            end = min(departure, 0)
            owner = rng.choice(HOTELS[stay["hotel"]]["desk"])
            total = stay["rate"] * (departure - arrival)
            for _ in range(rng.choices([0, 1, 2, 3], weights=[40, 30, 20, 10])[0]):
                department, label, low, high = rng.choice(extras)
                price = money(rng.uniform(low, high))
                total += price
                self.folio_rows.append({
                    "reservation": stay["key"], "posted_at": moment(
                        -rng.uniform(max(0.5, -end * 24), max(1, -arrival * 24))),
                    "kind": "charge", "department": department, "description": label,
                    "quantity": 1, "unit_price": price, "owner": owner})
            if rng.random() < 0.1:
                nightly = money(HOTELS[stay["hotel"]]["parking"])
                total += nightly * (departure - arrival)
                self.folio_rows.append({
                    "reservation": stay["key"], "posted_at": moment(arrival * 24 + 1),
                    "kind": "charge", "department": "parking", "description": "Parking",
                    "quantity": departure - arrival, "unit_price": nightly, "owner": owner})
            for amount, complaint, label in self.adjustments.get(stay["key"], []):
                credit = min(amount, total)
                total -= credit
                self.folio_rows.append({
                    "reservation": stay["key"], "posted_at": moment(departure * 24 - 1),
                    "kind": "adjustment", "department": "other", "description": label,
                    "quantity": 1, "unit_price": -credit, "complaint": complaint,
                    "owner": HOTELS[stay["hotel"]]["duty"]})
            if stay["status"] == "checked_out" and total > 0:
                self.folio_rows.append({
                    "reservation": stay["key"],
                    "posted_at": moment(min(departure * 24 - 1, -0.5)), "kind": "payment",
                    "department": "cashier", "description": "Settlement at check-out",
                    "quantity": 1, "unit_price": total,
                    "payment_method": self.pick({"card": 80, "company_account": 10,
                                                 "cash": 5, "voucher": 5}),
                    "owner": owner})

    def surveys(self) -> None:
        rng = self.rng
        self.survey_rows = []
        comments = {
            "promoter": ["Wonderful staff, we will be back.", "The window table at breakfast "
                         "was waiting for us — lovely touch.", "Spotless room, great location."],
            "passive": ["Good stay, breakfast could be better.", "Nice room but a bit small.",
                        "Fine, if a little pricey."],
            "detractor": ["Noisy room and slow service.", "The room was not ready on arrival.",
                          "Disappointed with the cleanliness."],
        }
        for stay in self.stays:
            if stay["status"] != "checked_out" or stay["departure"] > -1:
                continue
            sent = stay["departure"] + 1
            responded = rng.random() < 0.45
            if not responded and stay["departure"] < -14:
                continue
            record = {
                "owner": "olivia.park" if stay["hotel"] == "LON" else "ruaridh.mackay",
                "guest": stay["guest"]["_key"], "reservation": stay["key"],
                "hotel_site": f"htl-site-{stay['hotel'].lower()}", "sent_on": day(sent),
            }
            if responded:
                unhappy = stay["key"] in self.complained
                nps = rng.choices(range(11), weights=(
                    [3, 2, 3, 4, 5, 7, 9, 12, 12, 10, 6] if unhappy else
                    [1, 1, 1, 1, 2, 3, 5, 12, 18, 26, 30]))[0]
                group = "promoter" if nps >= 9 else "passive" if nps >= 7 else "detractor"
                base = 5 if nps >= 9 else 4 if nps >= 7 else 3

                def score(b: int = base) -> int:
                    return max(1, min(5, b + rng.choice([-1, 0, 0, 0, 1])))

                record.update(
                    responded_on=day(min(0, sent + rng.randrange(0, 5))), nps=nps,
                    score_room=score(), score_cleanliness=score(), score_service=score(),
                    score_food=score() if rng.random() < 0.7 else None, score_value=score(),
                    would_return=nps >= 7,
                    comments=rng.choice(comments[group]) if rng.random() < 0.5 else None,
                    recovery_opened=nps <= 6)
            self.survey_rows.append(record)

    def night_audits(self) -> list[dict]:
        rows = []
        for code in HOTELS:
            rooms = self.rooms[code]
            for d in range(-PAST, 0):
                out_of_order = sum(1 for r in rooms if r.get("__ooo") and
                                   r["__ooo"][0] <= d < r["__ooo"][1])
                sold = [s for s in self.stays if s["hotel"] == code and
                        s["status"] in ("checked_in", "checked_out") and
                        s["arrival"] <= d < s["departure"]]
                rows.append({
                    "hotel_site": f"htl-site-{code.lower()}", "business_date": day(d),
                    "rooms_available": len(rooms) - out_of_order,
                    "rooms_out_of_order": out_of_order, "rooms_sold": len(sold),
                    "room_revenue": sum((s["rate"] for s in sold), Decimal("0.00")),
                    "owner": "sanjay.kapoor",
                })
        return rows

    def run(self, out: Path) -> None:
        rng = self.rng
        self.hotels()
        self.simulate()
        self.memberships()
        self.preferences()
        self.reservations()
        self.complaints()
        self.folio()
        self.surveys()
        audits = self.night_audits()
        # the rooms' state tonight: occupied rooms are dirty until serviced, departures too
        for stay in self.stays:
            room = stay["room"]
            if room["hk_status"] == "out_of_order":
                continue
            if stay["status"] == "checked_in" or (stay["status"] == "checked_out"
                                                  and stay["departure"] == 0):
                room["hk_status"] = self.pick({"dirty": 60, "clean": 25, "inspected": 15})
        for room in self.room_rows:
            if room["hk_status"] in ("clean", "inspected"):
                room["last_cleaned_at"] = moment(-rng.uniform(0.05, 0.25))
        # guests with five stays or more are VIP 1 (the pack's nightly rule)
        stays: dict[str, int] = {}
        for stay in self.history + self.stays:
            if stay["status"] == "checked_out":
                stays[stay["guest"]["_key"]] = stays.get(stay["guest"]["_key"], 0) + 1
        for guest in self.guest_rows:
            if guest["vip_level"] == "none" and stays.get(guest["_key"], 0) >= 5:
                guest["vip_level"] = "vip1"
        out.mkdir(parents=True, exist_ok=True)
        write_yaml(out, "hotel_site", self.site_rows, "The two hotels of the group.")
        write_yaml(out, "room_type", self.type_rows, "Room types and their best available rates.")
        write_yaml(out, "room", self.room_rows, "Rooms and their housekeeping status.")
        write_yaml(out, "contact", self.guest_rows,
                   "Guests (core contacts with the guest profile).")
        write_yaml(out, "guest_preference", self.pref_rows, "What the guests like.")
        write_yaml(out, "loyalty_membership", self.member_rows, "Loyalty members.")
        write_yaml(out, "reservation", self.res_rows,
                   "Past stays, guests in house and bookings for the coming weeks.")
        write_yaml(out, "complaint", self.complaint_rows, "Guest complaints and their recovery.")
        write_csv(out, "folio_line", ["reservation", "posted_at", "kind", "department",
                                      "description", "quantity", "unit_price", "payment_method",
                                      "complaint", "owner"], self.folio_rows)
        write_yaml(out, "survey_response", self.survey_rows, "Post-stay surveys.")
        write_yaml(out, "night_audit", audits, "Nightly occupancy and room revenue per hotel.")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    Gen().run(out)
    write_staff(out, PACK, [{"username": u, "full_name": name, "role": role, "team": team}
                            for u, (name, role, place, team) in USERS.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
