"""Demo data of the telecom pack: subscribers, lines, catalogue, usage, retention.

Usage: python tools/demo_generators/telecom.py [OUTPUT_DIR]   (default verticals/telecom/data)

Deterministic: one random.Random with a fixed seed, no clock; dates are written relative to
the install day ("=today() - days(40)"). Standard library only.
"""

from __future__ import annotations

import csv
import io
import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 20240611
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import day, money, write_quoted, write_staff  # noqa: E402

PACK = "telecom"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "verticals" / PACK / "data"


def write_yaml(out: Path, entity: str, records: list[dict], comment: str) -> None:
    write_quoted(out, entity, records, comment, PACK)


# -- output ------------------------------------------------------------------------------------


def one_dp(value: float | Decimal) -> Decimal:
    return Decimal(str(value)).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


def cell(value: object) -> str:
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


def write_csv(out: Path, entity: str, fields: list[str], records: list[dict]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(fields)
    for record in records:
        writer.writerow([cell(record.get(name)) for name in fields])
    (out / f"{entity}.csv").write_text(buffer.getvalue(), encoding="utf-8")


# -- reference data ------------------------------------------------------------------------------

# The demo users this pack's records name (owners): username -> (full name, role, region, team).
# They are listed in verticals/telecom/README.md too.
USERS: dict[str, tuple[str, str, str | None, str]] = {
    "nadia.hussain": ("Nadia Hussain", "store_agent", "london", "Stores South"),
    "ryan.cooper": ("Ryan Cooper", "store_agent", "south", "Stores South"),
    "grace.obi": ("Grace Obi", "store_agent", "midlands", "Stores North"),
    "liam.walker": ("Liam Walker", "store_agent", "north", "Stores North"),
    "eilidh.ross": ("Eilidh Ross", "store_agent", "scotland", "Stores North"),
    "david.okoro": ("David Okoro", "sales_rep", None, "Business Sales"),
    "rachel.kim": ("Rachel Kim", "sales_rep", None, "Business Sales"),
    "kieran.walsh": ("Kieran Walsh", "retention_agent", None, "Retention"),
    "aisha.okafor": ("Aisha Okafor", "retention_agent", None, "Retention"),
    "marek.nowak": ("Marek Nowak", "retention_agent", None, "Retention"),
    "sofia.rossi": ("Sofia Rossi", "retention_agent", None, "Retention"),
    "hannah.price": ("Hannah Price", "team_lead", None, "Retention"),
    "gareth.evans": ("Gareth Evans", "retention_manager", None, "Retention"),
    "fatima.rahman": ("Fatima Rahman", "billing_officer", None, "Billing"),
    "oliver.grant": ("Oliver Grant", "catalog_manager", None, "Products"),
}
STORE = {region: [u for u, v in USERS.items() if v[1] == "store_agent" and v[2] == region]
         for region in ("london", "south", "midlands", "north", "scotland")}
BUSINESS_REPS = [u for u, v in USERS.items() if v[1] == "sales_rep"]
RETENTION = [u for u, v in USERS.items() if v[1] == "retention_agent"]

FIRST = [
    "Oliver", "Amelia", "George", "Isla", "Harry", "Ava", "Noah", "Mia", "Jack", "Ivy", "Leo",
    "Freya", "Arthur", "Lily", "Muhammad", "Florence", "Oscar", "Grace", "Charlie", "Sophia",
    "Jacob", "Evie", "Thomas", "Poppy", "Alfie", "Rosie", "Henry", "Ella", "Theo", "Millie",
    "Joshua", "Chloe", "James", "Emily", "William", "Priya", "Arjun", "Aisha", "Omar", "Zara",
    "Ewan", "Eilidh", "Callum", "Niamh", "Rhys", "Megan", "Kwame", "Ama", "Tomasz", "Zofia",
    "Mateo", "Lucia", "Chen", "Mei", "Yusuf", "Hana", "Declan", "Siobhan", "Dylan", "Ffion",
]
LAST = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Patel",
    "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall",
    "Wood", "Jackson", "Clarke", "Khan", "Hughes", "Edwards", "Turner", "Hill", "Moore",
    "Cooper", "Ward", "Morris", "King", "Harris", "Baker", "Lewis", "Young", "Allen", "Mitchell",
    "Campbell", "Stewart", "MacDonald", "Murray", "Reid", "Shah", "Begum", "Ali", "Hussain",
    "Mensah", "Owusu", "Nowak", "Kowalski", "Garcia", "Rossi", "Wang", "Li", "O'Brien",
    "Murphy", "Kelly", "Price", "Griffiths", "Rees",
]
COMPANY_A = ["Northgate", "Riverside", "Summit", "Beacon", "Harbour", "Oakfield", "Meridian",
             "Kingsway", "Brightwater", "Ashford", "Castlegate", "Lakeside", "Pennine", "Thistle",
             "Greenway", "Highland", "Redbrick", "Silverline", "Westbury", "Foxhall"]
COMPANY_B = [("Logistics", "logistics"), ("Dental Care", "healthcare"),
             ("Builders", "construction"), ("Accountants", "professional_services"),
             ("Engineering", "manufacturing"), ("Estates", "professional_services"),
             ("Foods", "agriculture"), ("IT Services", "technology"), ("Retail", "retail"),
             ("Couriers", "logistics"), ("Hotels", "hospitality"), ("Academy", "education"),
             ("Energy", "energy"), ("Wholesale", "wholesale"), ("Clinics", "healthcare")]
REGIONS = [("london", 0.28), ("south", 0.22), ("midlands", 0.2), ("north", 0.2),
           ("scotland", 0.1)]
CITIES = {
    "london": [("London", "E1"), ("London", "SE15"), ("London", "N7"), ("Croydon", "CR0")],
    "south": [("Bristol", "BS1"), ("Brighton", "BN1"), ("Southampton", "SO14"),
              ("Exeter", "EX4")],
    "midlands": [("Birmingham", "B15"), ("Nottingham", "NG1"), ("Leicester", "LE1"),
                 ("Coventry", "CV1")],
    "north": [("Manchester", "M4"), ("Leeds", "LS1"), ("Newcastle", "NE1"),
              ("Liverpool", "L1")],
    "scotland": [("Glasgow", "G2"), ("Edinburgh", "EH1"), ("Belfast", "BT1"),
                 ("Aberdeen", "AB10")],
}
OPERATORS = ["nordlink", "vexa", "skyward", "pulse", "brightcell", "other"]

# code, name, kind, technology, segment, monthly, one_off, cost, commitment, data_gb, unlimited,
# minutes, mbps, retention_only, status
OFFERINGS = [
    ("PLAN-S5", "Essentials 5GB", "plan", "g4", "consumer", 10, None, 4.1, 12, 5, False, 500, None,
     False, "on_sale"),
    ("PLAN-M30", "Everyday 30GB", "plan", "g5", "consumer", 16, None, 6.4, 12, 30, False, None,
     None, False, "on_sale"),
    ("PLAN-L100", "Plus 100GB", "plan", "g5", "consumer", 22, None, 8.9, 24, 100, False, None,
     None, False, "on_sale"),
    ("PLAN-UNL", "Unlimited Max 5G", "plan", "g5", "consumer", 32, None, 12.5, 24, None, True,
     None, None, False, "on_sale"),
    ("PLAN-YTH", "Youth 50GB", "plan", "g5", "consumer", 12, None, 5.2, 12, 50, False, None, None,
     False, "on_sale"),
    ("PLAN-SNR", "Senior Talk 2GB", "plan", "g4", "consumer", 7, None, 2.6, 0, 2, False, None,
     None, False, "on_sale"),
    ("PLAN-OLD10", "Classic 10GB", "plan", "g4", "consumer", 15, None, 5.8, 12, 10, False, 1000,
     None, False, "retired"),
    ("PLAN-BIZ20", "Business 20GB", "plan", "g5", "business", 18, None, 7.1, 24, 20, False, None,
     None, False, "on_sale"),
    ("PLAN-BIZUNL", "Business Unlimited", "plan", "g5", "business", 28, None, 11.8, 24, None, True,
     None, None, False, "on_sale"),
    ("PLAN-FIB150", "Fibre 150", "plan", "fibre", "both", 28, 0, 13.5, 18, None, True, None, 150,
     False, "on_sale"),
    ("PLAN-FIB500", "Fibre 500", "plan", "fibre", "both", 38, 0, 17.0, 18, None, True, None, 500,
     False, "on_sale"),
    ("PLAN-FIB900", "Full Fibre 900", "plan", "fibre", "both", 52, 0, 22.0, 24, None, True, None,
     900, False, "on_sale"),
    ("PLAN-IOT1", "IoT Connect 1GB", "plan", "g4", "business", 3, None, 0.9, 12, 1, False, 0,
     None, False, "on_sale"),
    ("PLAN-RET40", "Loyalty 40GB", "plan", "g5", "consumer", 13, None, 6.6, 12, 40, False, None,
     None, True, "on_sale"),
    ("PLAN-RETUNL", "Loyalty Unlimited", "plan", "g5", "consumer", 24, None, 12.5, 24, None, True,
     None, None, True, "on_sale"),
    ("ADD-ROAMEU", "Roam EU Pass", "addon", "any", "both", 5, None, 1.5, 0, None, False, None,
     None, False, "on_sale"),
    ("ADD-DATA10", "Extra 10GB", "addon", "any", "both", 5, None, 1.2, 0, 10, False, None, None,
     False, "on_sale"),
    ("ADD-INSURE", "Device insurance", "addon", "any", "both", 9, None, 4.0, 0, None, False, None,
     None, False, "on_sale"),
    ("ADD-INTL300", "International 300 minutes", "addon", "any", "both", 6, None, 1.9, 0, None,
     False, 300, None, False, "on_sale"),
    ("ADD-MUSIC", "Music streaming", "addon", "any", "consumer", 10, None, 6.5, 0, None, False,
     None, None, False, "on_sale"),
    ("ADD-DATASIM", "Data SIM for a tablet", "addon", "any", "both", 6, None, 2.0, 0, 20, False,
     None, None, False, "on_sale"),
    ("ADD-SPORTTV", "Sports TV", "addon", "fibre", "consumer", 15, None, 9.5, 0, None, False,
     None, None, False, "on_sale"),
    ("ADD-STATICIP", "Static IP address", "addon", "fibre", "business", 5, None, 0.5, 0, None,
     False, None, None, False, "on_sale"),
    ("ADD-MESH", "Wi-Fi mesh extender", "addon", "fibre", "both", 4, None, 1.6, 0, None, False,
     None, None, False, "on_sale"),
    ("ADD-RETBOOST", "Loyalty data boost", "addon", "any", "consumer", 0, None, 0.8, 0, 20, False,
     None, None, True, "on_sale"),
    ("DEV-APL15", "iPhone 15 128GB", "device", "g5", "both", 32, 49, 30.0, 24, None, False, None,
     None, False, "on_sale"),
    ("DEV-SGS24", "Samsung Galaxy S24", "device", "g5", "both", 28, 29, 26.0, 24, None, False,
     None, None, False, "on_sale"),
    ("DEV-PIX8", "Google Pixel 8", "device", "g5", "both", 24, 0, 22.5, 24, None, False, None,
     None, False, "on_sale"),
    ("DEV-A15", "Samsung Galaxy A15", "device", "g4", "both", 9, 0, 8.1, 24, None, False, None,
     None, False, "on_sale"),
    ("DEV-ROUTER6", "Wi-Fi 6 router", "device", "fibre", "both", 0, 0, 2.0, 0, None, False, None,
     None, False, "on_sale"),
    ("BUN-HOME", "Home Duo: Fibre 500 and Unlimited", "bundle", "any", "consumer", 62, 0, 29.5,
     24, None, False, None, None, False, "on_sale"),
    ("BUN-FAMILY4", "Family of four: 4 x Everyday 30GB", "bundle", "g5", "consumer", 52, 0, 25.6,
     12, None, False, None, None, False, "on_sale"),
    ("BUN-BIZLINE", "Business line: Unlimited, insurance and static IP", "bundle", "g5",
     "business", 38, 0, 16.3, 24, None, False, None, None, False, "on_sale"),
    ("BUN-OFFICE", "Office pack: Full Fibre 900 and 5 x Business Unlimited", "bundle", "any",
     "business", 175, 0, 81.0, 36, None, False, None, None, False, "on_sale"),
    ("PROMO-PORTIN", "Port-in bonus: 50 bill credit", "promotion", "any", "both", None, 0, None,
     0, None, False, None, None, False, "on_sale"),
    ("PROMO-SPRING", "Spring: three months half price", "promotion", "any", "consumer", None, 0,
     None, 0, None, False, None, None, False, "retired"),
]
MOBILE_PLANS = ["PLAN-S5", "PLAN-M30", "PLAN-L100", "PLAN-UNL", "PLAN-YTH", "PLAN-SNR",
                "PLAN-OLD10", "PLAN-BIZ20", "PLAN-BIZUNL", "PLAN-RET40", "PLAN-RETUNL"]
FIBRE_PLANS = ["PLAN-FIB150", "PLAN-FIB500", "PLAN-FIB900"]
ELIGIBLE = {
    "ADD-ROAMEU": MOBILE_PLANS, "ADD-INSURE": MOBILE_PLANS, "ADD-INTL300": MOBILE_PLANS,
    "ADD-MUSIC": MOBILE_PLANS, "ADD-RETBOOST": ["PLAN-S5", "PLAN-M30", "PLAN-RET40", "PLAN-YTH"],
    "ADD-DATA10": ["PLAN-S5", "PLAN-M30", "PLAN-YTH", "PLAN-SNR", "PLAN-OLD10", "PLAN-BIZ20"],
    "ADD-DATASIM": ["PLAN-L100", "PLAN-UNL", "PLAN-BIZUNL", "PLAN-RETUNL"],
    "ADD-SPORTTV": FIBRE_PLANS, "ADD-STATICIP": FIBRE_PLANS + ["PLAN-BIZ20", "PLAN-BIZUNL"],
    "ADD-MESH": FIBRE_PLANS,
}
BUNDLES = {
    "BUN-HOME": [("PLAN-FIB500", 1), ("PLAN-UNL", 1), ("DEV-ROUTER6", 1)],
    "BUN-FAMILY4": [("PLAN-M30", 4)],
    "BUN-BIZLINE": [("PLAN-BIZUNL", 1), ("ADD-INSURE", 1), ("ADD-STATICIP", 1)],
    "BUN-OFFICE": [("PLAN-FIB900", 1), ("PLAN-BIZUNL", 5), ("ADD-STATICIP", 1),
                   ("ADD-MESH", 2)],
}
COMPETITOR_OFFERS = [
    ("nordlink", "Nordlink SIM Only 60GB", "mobile", "g5", 12, 8, 6, 60, False, 12, False, None,
     "website"),
    ("nordlink", "Nordlink Unlimited+", "mobile", "g5", 25, None, None, None, True, 24, False,
     None, "advertising"),
    ("nordlink", "Nordlink Fibre 500", "broadband", "fibre", 29, 20, 6, None, True, 24, False,
     None, "customer_report"),
    ("vexa", "Vexa 30GB Flex", "mobile", "g4", 9, None, None, 30, False, 1, False, None,
     "website"),
    ("vexa", "Vexa Unlimited Rolling", "mobile", "g5", 20, None, None, None, True, 1, False,
     None, "customer_report"),
    ("vexa", "Vexa Galaxy S24 bundle", "mobile", "g5", 44, None, None, 100, False, 36, True,
     "Samsung Galaxy S24", "store_visit"),
    ("skyward", "Skyward Home 900", "broadband", "fibre", 39, 25, 12, None, True, 24, False,
     None, "advertising"),
    ("skyward", "Skyward Duo (Fibre + Unlimited)", "converged", "any", 55, 45, 6, None, True, 24,
     False, None, "sales_team"),
    ("skyward", "Skyward iPhone 15 Unlimited", "mobile", "g5", 52, None, None, None, True, 24,
     True, "iPhone 15 128GB", "store_visit"),
    ("pulse", "Pulse 15GB", "mobile", "g4", 7, None, None, 15, False, 1, False, None, "website"),
    ("pulse", "Pulse 100GB", "mobile", "g5", 12, None, None, 100, False, 12, False, None,
     "customer_report"),
    ("pulse", "Pulse Student 80GB", "mobile", "g5", 10, 5, 3, 80, False, 12, False, None,
     "advertising"),
    ("brightcell", "Brightcell Business 50GB", "mobile", "g5", 14, None, None, 50, False, 24,
     False, None, "sales_team"),
    ("brightcell", "Brightcell Business Unlimited", "mobile", "g5", 21, None, None, None, True, 24,
     False, None, "sales_team"),
    ("brightcell", "Brightcell Office Fibre 1Gb", "broadband", "fibre", 45, None, None, None, True,
     36, False, None, "sales_team"),
    ("other", "FullFibre Co 500", "broadband", "fibre", 26, None, None, None, True, 18, False,
     None, "customer_report"),
    ("other", "Budget MVNO 20GB", "mobile", "g4", 6, None, None, 20, False, 1, False, None,
     "website"),
    ("nordlink", "Nordlink Pixel 8 offer", "mobile", "g5", 30, None, None, 150, False, 24, True,
     "Google Pixel 8", "store_visit"),
]


class Gen:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.used_names: set[str] = set()
        self.used_msisdn: set[str] = set()
        self.used_iccid: set[str] = set()
        self.offer = {o[0]: o for o in OFFERINGS}

    # helpers
    def pick_weighted(self, pairs: list[tuple[str, float]]) -> str:
        return self.rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]

    def person(self) -> tuple[str, str]:
        while True:
            first, last = self.rng.choice(FIRST), self.rng.choice(LAST)
            if f"{first} {last}" not in self.used_names:
                self.used_names.add(f"{first} {last}")
                return first, last

    def msisdn(self, fixed: bool = False) -> str:
        while True:
            if fixed:
                number = "+4420" + "".join(str(self.rng.randrange(10)) for _ in range(8))
            else:
                number = "+447" + str(self.rng.choice([4, 5, 7, 8, 9])) + "".join(
                    str(self.rng.randrange(10)) for _ in range(8))
            if number not in self.used_msisdn:
                self.used_msisdn.add(number)
                return number

    def iccid(self) -> str:
        while True:
            value = "894420" + "".join(str(self.rng.randrange(10)) for _ in range(13))
            if value not in self.used_iccid:
                self.used_iccid.add(value)
                return value

    def iban(self) -> str:
        bank = self.rng.choice(["NWBK", "BARC", "LOYD", "HBUK", "MIDL", "SCBL"])
        return "GB" + f"{self.rng.randrange(10, 99)}" + bank + "".join(
            str(self.rng.randrange(10)) for _ in range(14))

    # -- catalogue -----------------------------------------------------------------------------

    def catalogue(self) -> tuple[list[dict], list[dict]]:
        offerings, components = [], []
        order = [o for o in OFFERINGS if o[2] == "plan"] + [o for o in OFFERINGS if o[2] != "plan"]
        for (code, name, kind, tech, seg, monthly, one_off, cost, commit, data_gb, unlimited,
             minutes, mbps, retention, status) in order:
            rec: dict = {
                "_key": "tel-off-" + code.lower(), "code": code, "name": name, "kind": kind,
                "technology": tech, "target_segment": seg,
                "monthly_fee": money(monthly) if monthly is not None else None,
                "one_off_fee": money(one_off) if one_off is not None else None,
                "unit_cost": money(cost) if cost is not None else None,
                "commitment_months": commit,
                "data_allowance_gb": one_dp(data_gb) if data_gb is not None else None,
                "unlimited_data": unlimited, "voice_minutes": minutes, "download_mbps": mbps,
                "retention_only": retention,
                "eligible_plans": ["tel-off-" + p.lower() for p in ELIGIBLE[code]]
                if code in ELIGIBLE else None,
                "available_from": day(-self.rng.randrange(200, 900)),
                "available_until": day(-self.rng.randrange(20, 150)) if status == "retired"
                else None,
                "status": status, "owner": "oliver.grant",
            }
            offerings.append(rec)
        for bundle, parts in BUNDLES.items():
            for component, quantity in parts:
                components.append({
                    "bundle": "tel-off-" + bundle.lower(),
                    "component": "tel-off-" + component.lower(), "quantity": quantity,
                })
        return offerings, components

    def competitor_offers(self) -> list[dict]:
        records = []
        for index, (comp, name, line_type, tech, price, promo, promo_months, data_gb, unlimited,
                    commit, device, handset, source) in enumerate(COMPETITOR_OFFERS, 1):
            records.append({
                "_key": f"tel-cmp-{index:02d}", "competitor": comp, "offer_name": name,
                "line_type": line_type, "technology": tech, "monthly_price": money(price),
                "promo_price": money(promo) if promo is not None else None,
                "promo_months": promo_months,
                "data_gb": one_dp(data_gb) if data_gb is not None else None,
                "unlimited_data": unlimited, "commitment_months": commit,
                "device_included": device, "handset": handset,
                "valid_from": day(-self.rng.randrange(10, 160)),
                "valid_until": day(self.rng.randrange(-20, 120))
                if self.rng.random() < 0.6 else None,
                "source": source, "owner": self.rng.choice(RETENTION + ["oliver.grant"]),
            })
        return records

    # -- subscribers, lines, usage ---------------------------------------------------------------

    def plan_for(self, account: dict, line_type: str) -> str:
        rng = self.rng
        if line_type == "broadband":
            return rng.choices(FIBRE_PLANS, weights=[40, 45, 15])[0]
        if line_type == "iot":
            return "PLAN-IOT1"
        segment = account["subscriber_segment"]
        if account["subscriber_type"] == "business":
            return rng.choices(["PLAN-BIZ20", "PLAN-BIZUNL"], weights=[60, 40])[0]
        choices = {
            "youth": (["PLAN-YTH", "PLAN-M30", "PLAN-S5"], [70, 20, 10]),
            "mass": (["PLAN-S5", "PLAN-M30", "PLAN-L100", "PLAN-OLD10"], [25, 40, 25, 10]),
            "value": (["PLAN-S5", "PLAN-SNR", "PLAN-M30", "PLAN-OLD10"], [45, 15, 30, 10]),
            "premium": (["PLAN-UNL", "PLAN-L100", "PLAN-M30"], [60, 30, 10]),
            "senior": (["PLAN-SNR", "PLAN-S5", "PLAN-OLD10"], [60, 25, 15]),
        }[segment]
        return rng.choices(choices[0], weights=choices[1])[0]

    def accounts(self) -> None:
        rng = self.rng
        self.account_rows: list[dict] = []
        self.contact_rows: list[dict] = []
        self.billing_rows: list[dict] = []
        self.line_rows: list[dict] = []
        self.addon_rows: list[dict] = []
        self.usage_rows: list[dict] = []
        self.lines_by_account: dict[str, list[dict]] = {}
        self.bills_by_line: dict[str, list[dict]] = {}
        companies: set[str] = set()
        kinds = ["consumer"] * 240 + ["business"] * 45
        rng.shuffle(kinds)
        line_no = 0
        for index, kind in enumerate(kinds, 1):
            key = f"tel-acc-{index:03d}"
            region = self.pick_weighted(REGIONS)
            city, postcode = rng.choice(CITIES[region])
            since = rng.randrange(20, 3650) if rng.random() < 0.9 else rng.randrange(20, 330)
            account: dict = {"_key": key, "region": region, "city": city,
                             "postcode": f"{postcode} {rng.randrange(1, 9)}"
                                         f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                                         f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
                             "country": "United Kingdom", "account_type": "customer",
                             "subscriber_type": kind, "subscriber_since": day(-since),
                             "since_days": since}
            account["owner"] = rng.choice(STORE[region]) if kind == "consumer" \
                else rng.choice(BUSINESS_REPS)
            if kind == "consumer":
                first, last = self.person()
                account["name"] = f"{first} {last}"
                account["subscriber_segment"] = self.pick_weighted(
                    [("youth", 12), ("mass", 40), ("value", 20), ("premium", 18),
                     ("senior", 10)])
                slug = (first + "." + last).lower().replace("'", "")
                account["email"] = f"{slug}{rng.randrange(10, 99)}@mail.example"
                account["phone"] = None
                account["credit_class"] = self.pick_weighted([("a", 70), ("b", 22), ("c", 8)])
                account["do_not_disturb"] = rng.random() < 0.18
            else:
                while True:
                    word = rng.choice(COMPANY_A)
                    suffix, industry = rng.choice(COMPANY_B)
                    name = f"{word} {suffix} Ltd"
                    if name not in companies:
                        companies.add(name)
                        break
                account["name"] = name
                account["industry"] = industry
                account["subscriber_segment"] = self.pick_weighted(
                    [("soho", 40), ("sme", 45), ("corporate", 15)])
                slug = (word + suffix).lower().replace(" ", "")
                account["email"] = f"office@{slug}.co.uk"
                account["website"] = f"https://www.{slug}.co.uk"
                account["phone"] = "+44" + rng.choice(["20", "121", "161", "113", "131", "141"]) + \
                    "".join(str(rng.randrange(10)) for _ in range(7))
                account["employees"] = {"soho": rng.randrange(2, 10),
                                        "sme": rng.randrange(10, 120),
                                        "corporate": rng.randrange(150, 900)}[
                    account["subscriber_segment"]]
                account["credit_class"] = self.pick_weighted([("a", 80), ("b", 20)])
                account["key_account"] = account["subscriber_segment"] == "corporate"
                account["vat_number"] = f"GB{rng.randrange(100000000, 999999999)}"
                first, last = self.person()
                contact_key = f"tel-con-{len(self.contact_rows) + 1:03d}"
                account["decision_maker"] = contact_key
                self.contact_rows.append({
                    "_key": contact_key, "first_name": first, "last_name": last,
                    "account": key, "job_title": rng.choice(
                        ["Office Manager", "Managing Director", "IT Manager",
                         "Operations Director", "Finance Director", "Procurement Lead"]),
                    "department": rng.choice(["management", "it", "operations", "finance",
                                              "purchasing"]),
                    "decision_role": "decision_maker",
                    "email": f"{first.lower()}.{last.lower().replace(chr(39), '')}@{slug}.co.uk",
                    "mobile": "+447" + "".join(str(rng.randrange(10)) for _ in range(9)),
                    "region": region, "city": city, "preferred_channel": "email",
                    "owner": account["owner"],
                })
            self.account_rows.append(account)
            self.lines_by_account[key] = []
            # billing accounts
            n_billing = 2 if account["subscriber_segment"] == "corporate" else 1
            billing_keys = []
            for b in range(n_billing):
                bkey = f"tel-ba-{len(self.billing_rows) + 1:04d}"
                billing_keys.append(bkey)
                if kind == "consumer":
                    method = self.pick_weighted([("direct_debit", 70), ("card", 25), ("cash", 5)])
                else:
                    method = self.pick_weighted([("invoice", 50), ("direct_debit", 50)])
                self.billing_rows.append({
                    "_key": bkey, "account": key,
                    "bill_to_name": account["name"] + (f" (site {b + 1})" if n_billing > 1 else ""),
                    "bill_to_email": account["email"], "payment_method": method,
                    "iban": self.iban() if method == "direct_debit" else None,
                    "card_last4": f"{rng.randrange(10000):04d}" if method == "card" else None,
                    "cycle_day": rng.randrange(1, 29),
                    "bill_delivery": "e_bill" if rng.random() < 0.85 else "paper",
                    "credit_limit": money(rng.choice([150, 300, 500, 1000]) * (
                        10 if kind == "business" else 1)),
                    "shift": rng.randrange(1, 29),
                    "delinquent": rng.random() < 0.06,
                    "late_payer": rng.random() < 0.12,
                    "owner": account["owner"],
                })
            # lines
            lines: list[str] = []
            segment = account["subscriber_segment"]
            if kind == "consumer":
                n_mobile = 1 if segment == "youth" else rng.choices(
                    [1, 2, 3, 4], weights=[48, 30, 15, 7])[0]
                lines = ["mobile"] * n_mobile
                if segment != "youth" and rng.random() < 0.32:
                    lines.append("broadband")
            else:
                n_mobile = {"soho": rng.randrange(2, 6), "sme": rng.randrange(5, 13),
                            "corporate": rng.randrange(14, 26)}[segment]
                lines = ["mobile"] * n_mobile
                if rng.random() < (0.6 if segment == "soho" else 0.85):
                    lines.append("broadband")
                if segment != "soho" and rng.random() < 0.35:
                    lines += ["iot"] * rng.randrange(2, 7)
            declining = rng.random() < 0.14
            for line_type in lines:
                line_no += 1
                self.line(account, line_type, line_no, rng.choice(billing_keys), declining)

    def line(self, account: dict, line_type: str, line_no: int, billing_key: str,
             declining: bool) -> None:
        rng = self.rng
        key = f"tel-line-{line_no:05d}"
        since = account["since_days"]
        first_line = not self.lines_by_account[account["_key"]]
        activated = since if first_line else rng.randrange(1, since + 1)
        plan = self.plan_for(account, line_type)
        if plan == "PLAN-OLD10" and activated < 400:
            plan = "PLAN-M30"
        offer = self.offer[plan]
        commitment = offer[8]
        device = None
        if line_type == "mobile" and rng.random() < 0.33:
            device = rng.choices(["DEV-APL15", "DEV-SGS24", "DEV-PIX8", "DEV-A15"],
                                 weights=[35, 25, 15, 25])[0]
            commitment = 24
        if line_type == "broadband" and rng.random() < 0.5:
            device = "DEV-ROUTER6"
        commitment_end = None
        if commitment:
            length = round(commitment * 365 / 12)
            if activated < length:
                commitment_end = length - activated
            elif rng.random() < 0.62:
                commitment_end = rng.randrange(3, length)
            else:
                commitment_end = -rng.randrange(1, min(420, activated - length + 2))
        activation_type = "new"
        if line_type == "mobile":
            activation_type = self.pick_weighted([("new", 62), ("port_in", 28), ("migration", 10)])
        elif line_type == "broadband":
            activation_type = self.pick_weighted([("new", 80), ("port_in", 20)])
        donor = rng.choice(OPERATORS) if activation_type == "port_in" else None
        row: dict = {
            "_key": key, "msisdn": self.msisdn(fixed=line_type == "broadband"),
            "account": account["_key"], "billing_account": billing_key,
            "line_user_name": None, "line_type": line_type,
            "plan": "tel-off-" + plan.lower(),
            "device": "tel-off-" + device.lower() if device else None,
            "sim_iccid": self.iccid() if line_type in ("mobile", "iot") else None,
            "activation_type": activation_type, "donor_operator": donor,
            "port_in_date": day(-activated) if donor else None,
            "activated_on": day(-activated), "commitment_months": commitment,
            "commitment_end": day(commitment_end) if commitment_end is not None else None,
            "plan_fee": money(offer[5]),
            "status": "active", "owner": account["owner"],
        }
        if account["subscriber_type"] == "business" and line_type == "mobile":
            first, last = rng.choice(FIRST), rng.choice(LAST)
            row["line_user_name"] = f"{first} {last}"
        elif line_type == "mobile" and not first_line:
            row["line_user_name"] = f"{rng.choice(FIRST)} {account['name'].split(' ')[-1]}"
        meta = {"activated": activated, "ended": None, "declining": declining,
                "plan": plan, "addon_fees": Decimal(0), "discount": 0, "discount_until": None}
        # life cycle
        roll = rng.random()
        if roll < 0.085 and activated > 40:
            meta["ended"] = rng.randrange(1, min(180, activated - 5))
            ported = rng.random() < 0.38 and line_type != "iot"
            row["ended_on"] = day(-meta["ended"])
            if ported:
                row["status"] = "ported_out"
                row["recipient_operator"] = rng.choice(OPERATORS[:5])
                row["port_out_requested"] = True
                row["port_out_requested_on"] = day(-meta["ended"] - 1)
            else:
                row["status"] = "cancelled"
                row["cancellation_reason"] = self.pick_weighted(
                    [("price", 30), ("coverage", 12), ("service", 10), ("competitor", 20),
                     ("moving_abroad", 8), ("no_longer_needed", 14), ("other", 6)])
                row["cancellation_effective"] = day(-meta["ended"])
        elif roll < 0.105:
            row["status"] = "pending_cancel"
            row["cancellation_reason"] = self.pick_weighted(
                [("price", 40), ("competitor", 30), ("coverage", 15), ("no_longer_needed", 15)])
            row["cancellation_effective"] = day(rng.randrange(3, 30))
        elif roll < 0.12 and activated < 15:
            row["status"] = "pending_activation"
            row["activated_on"] = None
            row["commitment_end"] = None
            row["activation_type"] = "new"
            row["donor_operator"] = None
            row["port_in_date"] = None
        elif roll < 0.14 and line_type == "mobile":
            row["port_out_requested"] = True
            row["port_out_requested_on"] = day(-rng.randrange(0, 3))
            row["recipient_operator"] = rng.choice(OPERATORS[:5])
        elif roll < 0.145 and line_type == "mobile":
            row["status"] = "suspended"
            row["suspension_reason"] = "lost_or_stolen"
        meta["row"] = row
        meta["billing"] = billing_key
        self.line_rows.append(row)
        self.lines_by_account[account["_key"]].append(meta)

    def addons(self) -> None:
        rng = self.rng
        for account in self.account_rows:
            for meta in self.lines_by_account[account["_key"]]:
                row = meta["row"]
                if row["status"] == "pending_activation":
                    continue
                eligible = [code for code, plans in ELIGIBLE.items()
                            if meta["plan"] in plans and code != "ADD-RETBOOST"]
                count = rng.choices([0, 1, 2], weights=[60, 30, 10])[0]
                for code in rng.sample(eligible, min(count, len(eligible))):
                    start = rng.randrange(1, meta["activated"] + 1) if meta["activated"] else 1
                    rec = {"subscription": row["_key"], "account": row["account"],
                           "addon": "tel-off-" + code.lower(),
                           "activated_on": day(-start), "status": "active"}
                    if meta["ended"] is not None:
                        if start <= meta["ended"]:
                            start = meta["ended"] + rng.randrange(1, 60)
                            rec["activated_on"] = day(-start)
                        rec["status"] = "removed"
                        rec["ends_on"] = day(-meta["ended"])
                        rec["removal_reason"] = "Line ended"
                    else:
                        meta["addon_fees"] += money(self.offer[code][5])
                    self.addon_rows.append(rec)

    def usage(self) -> None:
        rng = self.rng
        billing = {b["_key"]: b for b in self.billing_rows}
        for account in self.account_rows:
            for meta in self.lines_by_account[account["_key"]]:
                row = meta["row"]
                if row["status"] == "pending_activation":
                    continue
                bill_acc = billing[meta["billing"]]
                offer = self.offer[meta["plan"]]
                allowance = offer[9]
                line_type = row["line_type"]
                if line_type == "broadband":
                    base = rng.uniform(120, 650)
                elif line_type == "iot":
                    base = rng.uniform(0.05, 0.7)
                elif allowance is None:
                    base = rng.uniform(25, 140)
                else:
                    base = allowance * rng.choice([rng.uniform(0.2, 0.7), rng.uniform(0.6, 1.05)])
                history: list[float] = []
                bills = []
                for k in range(5, -1, -1):
                    ago = 30 * k + bill_acc["shift"]
                    if meta["activated"] <= ago:
                        continue
                    if meta["ended"] is not None and ago < meta["ended"] - 29:
                        continue
                    if ago < 1:
                        continue
                    data_gb = base * rng.uniform(0.8, 1.2)
                    if meta["declining"] and k <= 1:
                        data_gb *= rng.uniform(0.35, 0.6)
                    change = None
                    if history:
                        previous = history[-3:]
                        average = sum(previous) / len(previous)
                        if average > 0:
                            change = one_dp((data_gb - average) / average * 100)
                    history.append(data_gb)
                    plan_fee = Decimal(offer[5])
                    out_of_bundle = money(rng.uniform(2, 25)) if rng.random() < 0.07 else Decimal(0)
                    roaming = money(rng.uniform(0.2, 4)) if (
                        line_type == "mobile" and rng.random() < 0.1) else None
                    bill_value = plan_fee + meta["addon_fees"] + out_of_bundle
                    due = -ago + 14
                    record = {
                        "subscription": row["_key"], "account": account["_key"],
                        "period_month": day(-ago),
                        "data_gb": money(data_gb),
                        "data_allowance_gb": one_dp(allowance) if allowance else None,
                        "data_change_pct": change,
                        "voice_minutes": rng.randrange(20, 900) if line_type == "mobile" else
                        (rng.randrange(0, 120) if line_type == "broadband" else 0),
                        "sms_count": rng.randrange(0, 250) if line_type == "mobile" else 0,
                        "roaming_gb": roaming,
                        "bill_amount": money(bill_value),
                        "out_of_bundle_amount": out_of_bundle or None,
                        "due_on": day(due), "due": due, "ago": ago,
                        "line_churned": False,
                    }
                    if allowance and data_gb >= allowance * 0.9:
                        record["upsell_flagged"] = True
                    bills.append(record)
                if meta["ended"] is not None and bills:
                    bills[-1]["line_churned"] = True
                self.bills_by_line[row["_key"]] = bills
                self.usage_rows.extend(bills)
        # payments: delinquent accounts leave the last bills unpaid; late payers pay late
        by_billing: dict[str, list[dict]] = {}
        for account in self.account_rows:
            for meta in self.lines_by_account[account["_key"]]:
                for bill in self.bills_by_line.get(meta["row"]["_key"], []):
                    by_billing.setdefault(meta["billing"], []).append(bill)
        for bill_acc in self.billing_rows:
            bills = by_billing.get(bill_acc["_key"], [])
            unpaid_from = None
            if bill_acc["delinquent"]:
                unpaid_from = rng.choice([45, 75, 105])
            balance = Decimal(0)
            oldest = None
            for bill in bills:
                due = bill["due"]
                if due > 0 and bill_acc["payment_method"] != "cash":
                    bill["paid_on"] = None
                elif unpaid_from is not None and bill["ago"] <= unpaid_from:
                    bill["paid_on"] = None
                elif bill_acc["late_payer"] and rng.random() < 0.4:
                    bill["paid_on"] = day(min(-1, due + rng.randrange(3, 21)))
                elif due > 0:
                    bill["paid_on"] = day(-rng.randrange(0, bill["ago"]) if bill["ago"] else 0)
                else:
                    bill["paid_on"] = day(due - rng.randrange(0, 6))
                if bill.get("paid_on") is None:
                    balance += bill["bill_amount"]
                    oldest = due if oldest is None else min(oldest, due)
            bill_acc["balance"] = money(balance)
            bill_acc["oldest_unpaid_due"] = day(oldest) if oldest is not None else None
            overdue = -oldest if oldest is not None and oldest < 0 else 0
            bill_acc["days_overdue"] = overdue
            level = "none"
            for limit, name in ((7, "reminder"), (14, "second_reminder"), (21, "final_notice"),
                                (30, "suspended"), (60, "collections")):
                if overdue >= limit:
                    level = name
            bill_acc["dunning_level"] = level
            if level in ("reminder", "second_reminder") and rng.random() < 0.3:
                bill_acc["promise_to_pay_on"] = day(rng.randrange(2, 14))
            paid = [b for b in bills if b.get("paid_on")]
            if paid:
                last = max(paid, key=lambda b: -b["ago"])
                bill_acc["last_payment_on"] = last["paid_on"]
                bill_acc["last_payment_amount"] = last["bill_amount"]
        # lines of accounts 30+ days overdue are suspended for debt
        overdue_30 = {b["_key"] for b in self.billing_rows if b["days_overdue"] >= 30}
        for account in self.account_rows:
            for meta in self.lines_by_account[account["_key"]]:
                row = meta["row"]
                if meta["billing"] in overdue_30 and row["status"] == "active":
                    row["status"] = "suspended"
                    row["suspension_reason"] = "non_payment"

    # -- retention ------------------------------------------------------------------------------

    def competitor_offer_for(self, competitor: str | None) -> str | None:
        if competitor is None:
            return None
        matches = [i for i, o in enumerate(COMPETITOR_OFFERS, 1) if o[0] == competitor]
        return f"tel-cmp-{self.rng.choice(matches):02d}" if matches else None

    def line_charge(self, meta: dict) -> Decimal:
        fee = Decimal(meta["row"]["plan_fee"])
        return money(fee * (100 - meta["discount"]) / 100 + meta["addon_fees"])

    def retention_history(self) -> None:
        rng = self.rng
        self.case_rows: list[dict] = []
        active = [(account, meta) for account in self.account_rows
                  for meta in self.lines_by_account[account["_key"]]
                  if meta["row"]["status"] == "active" and meta["activated"] > 90
                  and meta["row"]["line_type"] != "iot"]
        for account, meta in rng.sample(active, 80):
            row = meta["row"]
            closed = rng.randrange(3, 178)
            trigger = self.pick_weighted([("contract_ending", 35), ("cancel_request", 20),
                                          ("inbound_call", 25), ("churn_score", 20)])
            reason = self.pick_weighted([("price", 40), ("competitor_offer", 30),
                                         ("network_quality", 10), ("customer_service", 8),
                                         ("device", 12)])
            competitor = rng.choice(OPERATORS[:5]) if reason == "competitor_offer" else None
            at_risk = self.line_charge(meta)
            offer_type = self.pick_weighted([("discount", 55), ("plan_change", 18),
                                             ("free_addon", 10), ("device_upgrade", 12),
                                             ("loyalty_credit", 5)])
            if offer_type == "free_addon" and meta["plan"] not in ELIGIBLE["ADD-RETBOOST"]:
                offer_type = "discount"
            if offer_type == "plan_change" and row["line_type"] != "mobile":
                offer_type = "discount"
            case = {
                "account": account["_key"], "subscription": row["_key"], "trigger": trigger,
                "churn_score_at_open": rng.choice([70, 75, 80, 95]) if trigger == "churn_score"
                else rng.choice([20, 25, 35, 45, 55, 65]),
                "mrr_at_risk": at_risk, "reason": reason, "competitor": competitor,
                "competitor_offer": self.competitor_offer_for(competitor),
                "due_by": day(-closed - rng.randrange(0, 4)),
                "contact_attempts": rng.randrange(1, 4), "offer_type": offer_type,
                "closed_on": day(-closed), "status": "saved", "owner": rng.choice(RETENTION),
            }
            months = rng.choice([6, 12, 12, 18, 24])
            if offer_type == "discount":
                pct = rng.choices([10, 15, 20, 25, 30, 40], weights=[20, 30, 20, 12, 10, 8])[0]
                case.update(discount_pct=pct, discount_months=months)
                meta["discount"] = pct
                row["retention_discount_pct"] = pct
                row["retention_discount_until"] = day(-closed + round(months * 30.4))
            elif offer_type == "plan_change":
                new_plan = "PLAN-RETUNL" if meta["plan"] in ("PLAN-UNL", "PLAN-L100") \
                    else "PLAN-RET40"
                old_fee = Decimal(row["plan_fee"])
                new_fee = money(self.offer[new_plan][5])
                pct = max(0, round((old_fee - new_fee) / old_fee * 100))
                case.update(discount_pct=pct, discount_months=months,
                            retention_offering="tel-off-" + new_plan.lower())
                meta["plan"] = new_plan
                row["plan"] = "tel-off-" + new_plan.lower()
                row["plan_fee"] = new_fee
            elif offer_type == "free_addon":
                case["retention_offering"] = "tel-off-add-retboost"
                self.addon_rows.append({"subscription": row["_key"],
                                        "account": row["account"],
                                        "addon": "tel-off-add-retboost",
                                        "activated_on": day(-closed), "status": "active"})
            elif offer_type == "device_upgrade":
                device = rng.choice(["DEV-APL15", "DEV-SGS24", "DEV-PIX8"])
                free = rng.random() < 0.3
                case.update(device="tel-off-" + device.lower(), free_device=free)
                row["device"] = "tel-off-" + device.lower()
                months = 24
            if offer_type in ("discount", "plan_change", "device_upgrade") and \
                    row.get("commitment_months"):
                row["commitment_months"] = max(12, months)
                row["commitment_end"] = day(-closed + round(max(12, months) * 30.4))
            case["saved_mrr"] = self.line_charge(meta)
            case["notes"] = rng.choice([
                "Customer compared prices online; accepted after hearing the loyalty offer.",
                "Called to cancel; kept the line with the offer.",
                "Contract ended; re-contracted on the retention desk.",
                "Unhappy with the bill; explained roaming charges and made an offer.",
                None])
            self.case_rows.append(case)
        # lost: lines that left in the last six months
        for account in self.account_rows:
            for meta in self.lines_by_account[account["_key"]]:
                row = meta["row"]
                if meta["ended"] is None or rng.random() > 0.65:
                    continue
                ported = row["status"] == "ported_out"
                competitor = row.get("recipient_operator") if ported else (
                    rng.choice(OPERATORS[:5]) if row.get("cancellation_reason") == "competitor"
                    else None)
                reason = "competitor_offer" if competitor else {
                    "price": "price", "coverage": "network_coverage",
                    "service": "customer_service", "moving_abroad": "moving",
                    "no_longer_needed": "no_longer_needed"}.get(
                        row.get("cancellation_reason") or "", "other")
                offered = rng.random() < 0.5
                self.case_rows.append({
                    "account": account["_key"], "subscription": row["_key"],
                    "trigger": "port_out_request" if ported else "cancel_request",
                    "churn_score_at_open": 70 if ported else rng.choice([25, 35, 45, 55]),
                    "mrr_at_risk": self.line_charge(meta), "reason": reason,
                    "competitor": competitor,
                    "competitor_offer": self.competitor_offer_for(competitor),
                    "due_by": day(-meta["ended"] - 1), "contact_attempts": rng.randrange(1, 4),
                    "offer_type": "discount" if offered else "none",
                    "discount_pct": rng.choice([10, 15, 20]) if offered else None,
                    "discount_months": 12 if offered else None,
                    "lost_reason": rng.choice([
                        "Competitor price was lower even after our offer",
                        "Moving abroad", "Coverage at home is poor",
                        "Joined the partner's family plan elsewhere",
                        "Did not want a new commitment"]) if offered or competitor else
                    "Customer declined to talk",
                    "closed_on": day(-meta["ended"]), "status": "lost",
                    "owner": rng.choice(RETENTION),
                })

    def churn_scores(self) -> None:
        """The nightly churn score, computed the way automations/churn.yaml does."""
        billing = {b["_key"]: b for b in self.billing_rows}
        for account in self.account_rows:
            metas = self.lines_by_account[account["_key"]]
            live = [m for m in metas if m["row"]["status"] in ("active", "suspended",
                                                                "pending_cancel")]
            account["live"] = live
            if not live:
                account["account_type"] = "former_customer"
                account["churn_score"] = None
                continue
            ends = [m["row"]["commitment_end"] for m in live
                    if m["row"]["status"] == "active" and m["row"].get("commitment_end")]
            end_days = [int(e.split("days(")[1].rstrip(")")) * (-1 if " - " in e else 1)
                        if "days(" in e else 0 for e in ends]
            trends = [b["data_change_pct"] for m in live if m["row"]["status"] == "active"
                      for b in self.bills_by_line.get(m["row"]["_key"], [])
                      if b["ago"] <= 62 and b["data_change_pct"] is not None]
            overdue = max((billing[m["billing"]]["days_overdue"] for m in metas), default=0)
            late = sum(1 for m in metas for b in self.bills_by_line.get(m["row"]["_key"], [])
                       if b["ago"] <= 183 and (
                           (b.get("paid_on") is None and b["due"] < 0) or
                           (b.get("paid_on") is not None and self.offset(b["paid_on"]) > b["due"])))
            port_out = any(m["row"].get("port_out_requested") for m in live)
            drivers = []
            score = 0
            if end_days and min(end_days) <= 60:
                score += 25
                drivers.append("commitment ends within 60 days; ")
            if trends and min(trends) <= -30:
                score += 20
                drivers.append("data use falling; ")
            if overdue > 0 or late >= 2:
                score += 20
                drivers.append("late or overdue payments; ")
            if port_out:
                score += 70
                drivers.append("port-out requested; ")
            tenure = (Decimal(account["since_days"]) / Decimal("30.4")).quantize(
                Decimal(1), rounding=ROUND_HALF_UP)
            if tenure < 12:
                score += 10
                drivers.append("first year; ")
            account["churn_score"] = min(100, score)
            account["churn_drivers"] = "".join(drivers) or None
            account["churn_scored_on"] = day(-1)
            account["open_case"] = False

    @staticmethod
    def offset(expression: str) -> int:
        if expression == "=today()":
            return 0
        number = int(expression.split("days(")[1].rstrip(")"))
        return -number if " - " in expression else number

    def open_cases(self) -> None:
        rng = self.rng
        for account in self.account_rows:
            live = account.get("live") or []
            pending = [m for m in live if m["row"]["status"] == "pending_cancel"]
            porting = [m for m in live if m["row"].get("port_out_requested")]
            if pending or not (account.get("churn_score") or 0) >= 70:
                # a line moved to pending cancellation opens its own case (cancel_request_case)
                continue
            target = (porting or pending or live)[0]
            trigger = "port_out_request" if porting else (
                "cancel_request" if pending else "churn_score")
            status = self.pick_weighted([("open", 40), ("contacted", 35), ("offer_made", 25)])
            opened = rng.randrange(0, 8)
            case = {
                "account": account["_key"], "subscription": target["row"]["_key"],
                "trigger": trigger, "churn_score_at_open": account.get("churn_score"),
                "mrr_at_risk": self.line_charge(target) if trigger != "churn_score" else
                sum((self.line_charge(m) for m in live), Decimal(0)),
                "due_by": day(-opened + 2), "contact_attempts": 0 if status == "open" else
                rng.randrange(1, 3), "status": status, "offer_type": "none",
                "owner": rng.choice(RETENTION),
            }
            if porting:
                case["competitor"] = target["row"]["recipient_operator"]
                case["competitor_offer"] = self.competitor_offer_for(case["competitor"])
            if status != "open":
                case["reason"] = "competitor_offer" if porting else self.pick_weighted(
                    [("price", 45), ("network_quality", 15), ("billing_dispute", 15),
                     ("customer_service", 10), ("device", 15)])
            if status == "offer_made":
                case["offer_type"] = "discount"
                case["discount_pct"] = rng.choice([10, 15, 20, 25])
                case["discount_months"] = rng.choice([6, 12, 24])
            self.case_rows.append(case)

    # -- business proposals ----------------------------------------------------------------------

    def proposals(self) -> list[dict]:
        rng = self.rng
        rows = []
        business = [a for a in self.account_rows if a["subscriber_type"] == "business"]
        for account in rng.sample(business, 26):
            segment = account["subscriber_segment"]
            code = rng.choice(["BUN-BIZLINE", "PLAN-BIZUNL", "PLAN-BIZ20"]) \
                if segment != "corporate" else rng.choice(["BUN-BIZLINE", "BUN-OFFICE"])
            offer = self.offer[code]
            list_price = Decimal(offer[5])
            cost = Decimal(str(offer[7]))
            discount = Decimal(rng.choice([0, 5, 10, 15, 20, 25, 30, 35])) / 100
            price = money(list_price * (1 - discount))
            margin = (price - cost) / price * 100 if price else Decimal(0)
            status = self.pick_weighted([("draft", 15), ("approved", 12), ("sent", 23),
                                         ("won", 28), ("lost", 15), ("expired", 7)])
            lines = {"soho": rng.randrange(3, 9), "sme": rng.randrange(8, 31),
                     "corporate": rng.randrange(30, 121)}[segment]
            if code == "BUN-OFFICE":
                lines = rng.randrange(1, 4)
            past = status in ("won", "lost", "expired")
            rows.append({
                "account": account["_key"], "decision_maker": account["decision_maker"],
                "bundle": "tel-off-" + code.lower(), "lines": lines,
                "term_months": rng.choice([12, 24, 24, 36]),
                "offered_price_per_line": price,
                "devices_included": rng.randrange(0, lines + 1) if rng.random() < 0.3 else 0,
                "valid_until": day(-rng.randrange(5, 120)) if past else day(rng.randrange(5, 30)),
                "justification": rng.choice([
                    "Competing with Brightcell's business offer at a lower price per line.",
                    "Multi-site customer; volume discount agreed with the sales manager.",
                    "Strategic account: fibre for every branch follows in the next phase.",
                ]) if margin < 20 else None,
                "lost_reason": rng.choice(["Chose Brightcell", "Budget frozen",
                                           "Stayed with incumbent"]) if status == "lost" else None,
                "status": status, "owner": account["owner"],
            })
        return rows

    # -- writing ------------------------------------------------------------------------------

    def run(self, out: Path) -> None:
        offerings, components = self.catalogue()
        competitor = self.competitor_offers()
        self.accounts()
        self.addons()
        self.retention_history()
        self.usage()
        self.churn_scores()
        self.open_cases()
        proposals = self.proposals()
        out.mkdir(parents=True, exist_ok=True)
        account_fields = [
            "_key", "owner", "name", "account_type", "industry", "region", "phone", "email",
            "website", "city", "postcode", "country", "employees", "vat_number", "key_account",
            "subscriber_type", "subscriber_segment", "subscriber_since", "credit_class",
            "do_not_disturb", "churn_score", "churn_drivers", "churn_scored_on"]
        write_yaml(out, "account", [{k: a.get(k) for k in account_fields}
                                    for a in self.account_rows],
                   "Subscribers: consumer households and business customers (core accounts).")
        write_yaml(out, "contact", self.contact_rows,
                   "Decision makers of the business subscribers.")
        write_yaml(out, "offering", offerings,
                   "The catalogue: plans, add-ons, devices, bundles and promotions.")
        write_yaml(out, "bundle_component", components, "What each bundle is made of.")
        write_yaml(out, "competitor_offer", competitor, "What the other operators sell.")
        billing_fields = [
            "_key", "owner", "account", "bill_to_name", "bill_to_email", "payment_method",
            "iban", "card_last4", "cycle_day", "bill_delivery", "credit_limit", "balance",
            "oldest_unpaid_due", "days_overdue", "dunning_level", "last_payment_on",
            "last_payment_amount", "promise_to_pay_on"]
        write_yaml(out, "billing_account", [{k: b.get(k) for k in billing_fields}
                                            for b in self.billing_rows],
                   "Billing accounts with balances and dunning levels.")
        write_yaml(out, "subscription", self.line_rows, "Lines, from pending to ported out.")
        write_yaml(out, "subscription_addon", self.addon_rows, "Add-ons on lines.")
        usage_fields = ["subscription", "account", "period_month", "data_gb",
                        "data_allowance_gb", "data_change_pct", "voice_minutes", "sms_count",
                        "roaming_gb", "bill_amount", "out_of_bundle_amount", "due_on", "paid_on",
                        "line_churned", "upsell_flagged"]
        write_csv(out, "usage_snapshot", usage_fields, self.usage_rows)
        write_yaml(out, "retention_case", self.case_rows,
                   "Retention cases: saved, lost and open.")
        write_yaml(out, "b2b_proposal", proposals, "Business bundle proposals.")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    Gen().run(out)
    write_staff(out, PACK, [{"username": u, "full_name": name, "role": role, "team": team,
                             "region": place} for u, (name, role, place, team) in USERS.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
