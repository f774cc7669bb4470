"""Demo data of the finance pack: a UK retail bank with branches, insurance and investments.

Usage: python tools/demo_generators/finance.py [OUTPUT_DIR]   (default verticals/finance/data)

Deterministic: one random.Random with a fixed seed, no clock; dates are written relative to
the install day ("=today() - days(40)"). Standard library only. Owners, relationship managers
and underwriters are usernames of the demo users in USERS (listed in the pack's README too).
"""

from __future__ import annotations

import random
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

SEED = 20240612
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _demo import day, money, write_quoted, write_staff  # noqa: E402

PACK = "finance"
DEFAULT_OUT = Path(__file__).resolve().parents[2] / "verticals" / PACK / "data"


def write_yaml(out: Path, entity: str, records: list[dict], comment: str) -> None:
    write_quoted(out, entity, records, comment, PACK)


def dec(value: float | Decimal, places: int) -> Decimal:
    return Decimal(str(value)).quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


# -- reference data ------------------------------------------------------------------------------

# username -> (full name, role, branch or None, team)
USERS: dict[str, tuple[str, str, str | None, str]] = {
    "eleanor.hart": ("Eleanor Hart", "relationship_manager", "central", "Private and Premier"),
    "samuel.adeyemi": ("Samuel Adeyemi", "relationship_manager", "harbour", "Branches South"),
    "fiona.campbell": ("Fiona Campbell", "relationship_manager", "northgate", "Branches North"),
    "rajesh.menon": ("Rajesh Menon", "relationship_manager", "riverside", "Branches South"),
    "joe.whitfield": ("Joe Whitfield", "relationship_manager", "westfield", "Branches North"),
    "lucy.brennan": ("Lucy Brennan", "branch_officer", "old_town", "Branches North"),
    "tariq.aziz": ("Tariq Aziz", "branch_officer", "university", "Branches South"),
    "megan.ford": ("Megan Ford", "branch_officer", "airport_park", "Branches South"),
    "martin.hale": ("Martin Hale", "credit_officer", None, "Credit"),
    "joanna.wright": ("Joanna Wright", "credit_officer", None, "Credit"),
    "stuart.mcintyre": ("Stuart McIntyre", "regional_credit_manager", None, "Credit"),
    "anita.desai": ("Anita Desai", "regional_credit_manager", None, "Credit"),
    "richard.fenwick": ("Richard Fenwick", "credit_committee", None, "Head office"),
    "catherine.blake": ("Catherine Blake", "credit_committee", None, "Head office"),
    "michael.adebayo": ("Michael Adebayo", "credit_committee", None, "Head office"),
    "natalie.fox": ("Natalie Fox", "risk_officer", None, "Risk"),
    "peter.quinn": ("Peter Quinn", "loan_operations", None, "Operations"),
    "sarah.lindqvist": ("Sarah Lindqvist", "compliance_officer", None, "Compliance"),
    "yusuf.demir": ("Yusuf Demir", "compliance_officer", None, "Compliance"),
    "alan.crawford": ("Alan Crawford", "mlro", None, "Compliance"),
    "mei.chen": ("Mei Chen", "data_steward", None, "Customer data"),
    "jasmine.cole": ("Jasmine Cole", "insurance_advisor", None, "Insurance"),
    "liam.doherty": ("Liam Doherty", "insurance_advisor", None, "Insurance"),
    "victoria.sinclair": ("Victoria Sinclair", "investment_advisor", None, "Wealth"),
}
BRANCHES = {  # branch -> (city, region of core's account/contact, postcode area, RM)
    "central": ("London", "london", "EC2", "eleanor.hart"),
    "harbour": ("Bristol", "south", "BS1", "samuel.adeyemi"),
    "northgate": ("Leeds", "north", "LS1", "fiona.campbell"),
    "riverside": ("Reading", "south", "RG1", "rajesh.menon"),
    "westfield": ("Birmingham", "midlands", "B1", "joe.whitfield"),
    "old_town": ("Edinburgh", "scotland", "EH1", "fiona.campbell"),
    "university": ("Manchester", "north", "M13", "joe.whitfield"),
    "airport_park": ("Glasgow", "scotland", "G2", "samuel.adeyemi"),
}
BRANCH_WEIGHTS = [18, 14, 14, 12, 14, 10, 10, 8]
OFFICERS = {"old_town": "lucy.brennan", "university": "tariq.aziz", "airport_park": "megan.ford"}
CREDIT_OFFICERS = ["martin.hale", "joanna.wright"]
COMPLIANCE = ["sarah.lindqvist", "yusuf.demir"]
INSURANCE = ["jasmine.cole", "liam.doherty"]

FIRST_F = ["Alice", "Charlotte", "Hannah", "Sarah", "Rebecca", "Laura", "Emma", "Katie",
           "Anna", "Joanne", "Nicola", "Rachel", "Helen", "Sophie", "Harriet", "Imogen", "Nadia",
           "Fatima", "Ayesha", "Ngozi", "Agnieszka", "Elena", "Mairi", "Catriona", "Bethan",
           "Lowri", "Yasmin", "Leah", "Jessica", "Victoria"]
FIRST_M = ["David", "Michael", "Paul", "Andrew", "Mark", "Richard", "Stephen", "Peter",
           "Daniel", "Matthew", "Christopher", "Simon", "Adam", "Robert", "Edward", "Samuel",
           "Imran", "Hamza", "Tunde", "Emeka", "Piotr", "Marco", "Alasdair", "Hamish", "Gareth",
           "Owain", "Ravi", "Vikram", "Benjamin", "Nathan"]
LAST = ["Ashworth", "Barker", "Bennett", "Bradley", "Chapman", "Clayton", "Dixon", "Ellis",
        "Fletcher", "Foster", "Gibson", "Graham", "Hamilton", "Hayes", "Holmes", "Hudson",
        "Hunt", "Jenkins", "Kennedy", "Lawrence", "Marshall", "Mason", "Matthews", "Mills",
        "Newman", "Palmer", "Parker", "Pearson", "Porter", "Reynolds", "Richardson", "Russell",
        "Saunders", "Shaw", "Simpson", "Spencer", "Stevens", "Sutton", "Webb", "Wells", "West",
        "Whitehead", "Ahmed", "Chaudhry", "Iqbal", "Okafor", "Adeyemi", "Kaur", "Singh",
        "Wiśniewski", "Ferrari", "Lindqvist", "MacLeod", "Fraser", "Douglas", "Morgan",
        "Llewellyn", "Pritchard", "Doyle", "Byrne"]
STREETS = ["High Street", "Station Road", "Church Lane", "Victoria Road", "Park Avenue",
           "Mill Lane", "The Crescent", "Queen's Road", "King Street", "Orchard Way",
           "Meadow Close", "Castle Street", "Riverside Walk", "Elm Grove", "Manor Road"]
EMPLOYERS = ["NHS Trust", "County Council", "Barclay & Finch LLP", "Northern Rail",
             "Astra Engineering", "Greenfield Academy", "Harrow Retail Group", "BluePeak Software",
             "Civil Service", "Thames Water Services", "University", "Meridian Logistics"]
INSTRUMENTS = [  # name, asset class, risk class, price
    ("Global Equity Index Fund Acc", "equity_fund", 5, 3.42),
    ("UK Equity Income Fund", "equity_fund", 5, 2.18),
    ("FTSE 100 Tracker ETF", "etf", 5, 81.40),
    ("S&P 500 Tracker ETF", "etf", 5, 96.75),
    ("Emerging Markets Equity Fund", "equity_fund", 6, 1.64),
    ("Global Technology Fund", "equity_fund", 6, 5.87),
    ("Clean Energy Transition ETF", "etf", 6, 12.30),
    ("Sterling Corporate Bond Fund", "bond_fund", 3, 1.12),
    ("UK Gilt 4.25% 2034", "bond", 2, 98.60),
    ("UK Gilt 0.5% 2029", "bond", 2, 88.20),
    ("Global Aggregate Bond ETF", "etf", 3, 4.95),
    ("Cautious Managed Portfolio", "mixed_fund", 3, 1.31),
    ("Balanced Managed Portfolio", "mixed_fund", 4, 1.58),
    ("Adventurous Managed Portfolio", "mixed_fund", 5, 1.89),
    ("Sterling Money Market Fund", "money_market", 1, 1.00),
    ("FTSE Autocall Note 2027", "structured", 6, 97.00),
    ("Global Property REIT Fund", "alternative", 6, 0.86),
    ("Gold Bullion ETC", "alternative", 6, 21.35),
]


class Gen:
    def __init__(self) -> None:
        self.rng = random.Random(SEED)
        self.used: set[str] = set()
        self.keys: dict[str, int] = {}

    def next_key(self, prefix: str, width: int = 4) -> str:
        self.keys[prefix] = self.keys.get(prefix, 0) + 1
        return f"fin-{prefix}-{self.keys[prefix]:0{width}d}"

    def unique(self, kind: str, make) -> str:
        while True:
            value = make()
            if (kind, value) not in self.used:
                self.used.add((kind, value))
                return value

    def pick(self, weights: dict[str, float]) -> str:
        return self.rng.choices(list(weights), weights=list(weights.values()))[0]

    def nino(self) -> str:
        letters = "ABCEGHJKLMNPRSTWXYZ"
        return self.unique("nino", lambda: self.rng.choice(letters) + self.rng.choice(letters)
                           + f"{self.rng.randrange(1000000):06d}" + self.rng.choice("ABCD"))

    def iban(self) -> str:
        return self.unique("iban", lambda: "GB" + f"{self.rng.randrange(10, 99)}" + "CRMF"
                           + f"{self.rng.randrange(10**13, 10**14)}")

    def isin(self) -> str:
        chars = "BCDFGHJKLMNPQRSTVWXYZ0123456789"
        return self.unique("isin", lambda: "GB00" + "".join(
            self.rng.choice(chars) for _ in range(7)) + str(self.rng.randrange(10)))

    def mobile(self) -> str:
        return self.unique("mobile", lambda: "+44 7" + str(self.rng.randrange(100, 999)) + " "
                           + f"{self.rng.randrange(1000000):06d}")

    # -- customers ----------------------------------------------------------------------------

    def person(self, last: str | None = None, female: bool | None = None,
               age: int | None = None) -> dict:
        rng = self.rng
        female = rng.random() < 0.5 if female is None else female
        first = rng.choice(FIRST_F if female else FIRST_M)
        last = last or rng.choice(LAST)
        age = age or rng.randrange(19, 84)
        branch = rng.choices(list(BRANCHES), weights=BRANCH_WEIGHTS)[0]
        return {"first": first, "last": last, "female": female, "age": age, "branch": branch}

    def customer(self, spec: dict, household: str | None) -> dict:
        rng = self.rng
        key = self.next_key("cus")
        city, region, area, rm = BRANCHES[spec["branch"]]
        age = spec["age"]
        if age < 23:
            employment, income = "student", rng.randrange(4000, 16000)
        elif age >= 67:
            employment, income = "retired", rng.randrange(14000, 60000)
        else:
            employment = self.pick({"employed": 74, "self_employed": 18, "unemployed": 8})
            income = {"employed": int(rng.lognormvariate(10.6, 0.62)),
                      "self_employed": int(rng.lognormvariate(10.75, 0.7)),
                      "unemployed": rng.randrange(0, 9000)}[employment]
        if spec.get("income"):
            employment, income = "employed" if rng.random() < 0.6 else "self_employed", \
                spec["income"]
        income = max(0, min(income, 1_400_000)) // 100 * 100
        if employment == "student":
            segment = "student"
        elif employment == "self_employed" and 45000 < income < 250000:
            segment = "sme_owner"
        elif income >= 250000:
            segment = "private"
        elif income >= 90000:
            segment = "affluent"
        elif income >= 45000:
            segment = "mass_affluent"
        else:
            segment = "mass"
        since = rng.randrange(30, min(365 * (age - 17), 365 * 40))
        kyc = self.pick({"verified": 82, "review_due": 5, "expired": 6, "pending": 4,
                         "not_started": 2, "rejected": 1})
        expiry = {"verified": rng.randrange(61, 1800), "review_due": rng.randrange(1, 60),
                  "expired": -rng.randrange(1, 300)}.get(kyc)
        pep = rng.random() < 0.015
        risk = "high" if pep else self.pick({"low": 80, "medium": 15, "high": 5})
        nino = self.nino() if kyc not in ("not_started",) else None
        local = (spec["first"] + "." + spec["last"]).lower().replace("ś", "s").replace("'", "")
        consent = rng.random() < 0.45
        rm_user = rm if segment in ("affluent", "private", "sme_owner") or rng.random() < 0.5 \
            else None
        record = {
            "_key": key, "owner": rm_user or OFFICERS.get(spec["branch"], rm),
            "salutation": ("ms" if rng.random() < 0.6 else "mrs") if spec["female"] else "mr",
            "first_name": spec["first"], "last_name": spec["last"],
            "email": self.unique("email", lambda: f"{local}.{rng.randrange(100, 999)}@example.org"),
            "mobile": self.mobile(), "region": region, "street": f"{rng.randrange(1, 180)} "
            f"{rng.choice(STREETS)}", "city": city,
            "postcode": f"{area} {rng.randrange(1, 9)}{rng.choice('ABDEHJLNPRSTUWXY')}"
                        f"{rng.choice('ABDEHJLNPRSTUWXY')}",
            "country": "United Kingdom",
            "birthday": day(-(age * 365 + rng.randrange(0, 365))),
            "preferred_channel": self.pick({"email": 55, "phone": 20, "sms": 20, "post": 5}),
            "marketing_consent": consent,
            "consent_date": day(-rng.randrange(10, since + 1)) if consent else None,
            "consent_source": self.pick({"web_form": 40, "in_person": 40, "phone": 20})
            if consent else None,
            "bank_customer": True, "customer_since": day(-since),
            "national_id": nino, "national_id_last4": nino[-4:] if nino else None,
            "finance_segment": segment, "aml_risk_rating": risk,
            "kyc_status": kyc,
            "kyc_verified_on": day(expiry - 3 * 365) if expiry is not None and expiry - 3 * 365 < 0
            else None,
            "kyc_expiry": day(expiry) if expiry is not None else None,
            "pep": pep,
            "pep_details": rng.choice(["Local councillor", "Spouse of a member of parliament",
                                       "Former ambassador"]) if pep else None,
            "sanctions_checked_on": day(-rng.randrange(0, 90)) if kyc != "not_started" else None,
            "primary_branch": spec["branch"], "relationship_manager": rm_user,
            "household": household, "employment_status": employment,
            "employer": rng.choice(EMPLOYERS) if employment == "employed" else None,
            "annual_income": money(income),
            "__age": age, "__since": since, "__income": income, "__segment": segment,
            "__expiry": expiry,
        }
        return record

    def customers(self) -> None:
        rng = self.rng
        self.customer_rows: list[dict] = []
        self.household_rows: list[dict] = []
        self.spouse: dict[str, str] = {}
        for _ in range(125):
            hkey = self.next_key("hh", 3)
            last = rng.choice(LAST)
            kind = self.pick({"couple": 40, "family": 35, "single_parent": 10,
                              "multi_generation": 8, "single": 7})
            adult_age = rng.randrange(26, 78)
            members = [self.person(last, female=False, age=adult_age)]
            if kind in ("couple", "family", "multi_generation"):
                members.append(self.person(last, female=True,
                                           age=max(20, adult_age + rng.randrange(-6, 5))))
            if kind in ("family", "single_parent") and adult_age > 40:
                members.append(self.person(last, age=rng.randrange(18, 24)))
            if kind == "multi_generation":
                members.append(self.person(last, age=min(90, adult_age + 28)))
            branch = members[0]["branch"]
            city, _region, area, _rm = BRANCHES[branch]
            records = []
            for member in members:
                member["branch"] = branch
                records.append(self.customer(member, hkey))
            self.customer_rows.extend(records)
            if len(records) >= 2:
                self.spouse[records[0]["_key"]] = records[1]["_key"]
                self.spouse[records[1]["_key"]] = records[0]["_key"]
            self.household_rows.append({
                "_key": hkey, "name": f"{last} household", "household_type": kind,
                "address": records[0]["street"],
                "postcode": records[0]["postcode"], "city": city, "primary_branch": branch,
                "owner": records[0]["owner"],
            })
            for record in records[1:]:
                for field in ("street", "postcode", "city", "region"):
                    record[field] = records[0][field]
        for _ in range(150):
            self.customer_rows.append(self.customer(self.person(), None))
        for _ in range(14):  # private banking clients of the central branch
            spec = self.person(age=rng.randrange(38, 78))
            spec["branch"] = "central"
            spec["income"] = rng.randrange(250, 1200) * 1000
            self.customer_rows.append(self.customer(spec, None))

    # -- accounts, policies, investments --------------------------------------------------------

    def account(self, customer: dict, product_type: str, name: str, balance: Decimal,
                rate: float | None, opened: int, **extra) -> dict:
        rng = self.rng
        record = {
            "_key": self.next_key("fa"), "owner": customer["owner"],
            "iban": self.iban() if product_type in ("checking", "savings", "term_deposit")
            else None,
            "product_type": product_type, "product_name": name,
            "primary_holder": customer["_key"], "branch": customer["primary_branch"],
            "balance": money(balance), "interest_rate": dec(rate, 3) if rate is not None else None,
            "opened_on": day(-opened), "status": "active",
            "last_transaction_on": day(-rng.randrange(0, 25)),
        }
        record.update(extra)
        self.account_rows.append(record)
        return record

    def accounts(self) -> None:
        rng = self.rng
        self.account_rows: list[dict] = []
        self.holder_rows: list[dict] = []
        self.checking: dict[str, dict] = {}
        self.investment_customers: list[tuple[dict, dict]] = []
        for cust in self.customer_rows:
            if cust["kyc_status"] in ("not_started", "rejected"):
                continue
            since, segment = cust["__since"], cust["__segment"]
            scale = {"student": 0.3, "mass": 1, "mass_affluent": 2.5, "affluent": 6,
                     "private": 25, "sme_owner": 5}[segment]
            if cust["kyc_status"] == "pending":
                self.account(cust, "checking", "Everyday Current Account", Decimal(0), 0.5,
                             rng.randrange(1, 10), status="pending_opening",
                             last_transaction_on=None)
                continue
            name = {"student": "Student Current Account", "private": "Private Current Account",
                    "affluent": "Premier Current Account"}.get(segment, "Everyday Current Account")
            checking = self.account(cust, "checking", name,
                                    money(rng.uniform(-300, 4000) * scale), 0.5, since,
                                    credit_limit=money(rng.choice([250, 500, 1000, 2500]) * (
                                        2 if scale > 2 else 1)))
            self.checking[cust["_key"]] = checking
            spouse = self.spouse.get(cust["_key"])
            if spouse and rng.random() < 0.45 and cust["_key"] < spouse:
                self.holder_rows.append({"financial_account": checking["_key"],
                                         "customer": spouse, "holder_role": "joint",
                                         "since": day(-rng.randrange(30, since + 1)),
                                         "share_pct": 50})
            if rng.random() < 0.55:
                opened = rng.randrange(1, since + 1)
                status = "dormant" if rng.random() < 0.06 else "active"
                self.account(cust, "savings", rng.choice(["Instant Saver", "Easy Access ISA",
                                                          "Regular Saver"]),
                             money(rng.uniform(200, 15000) * scale), rng.choice([2.9, 3.2, 3.6]),
                             opened, status=status,
                             last_transaction_on=day(-rng.randrange(380, 900))
                             if status == "dormant" else day(-rng.randrange(0, 60)))
            if rng.random() < (0.35 if scale >= 2.5 else 0.1):
                matures = rng.randrange(-200, 365)
                term = rng.choice([365, 730])
                opened = max(1, min(since, term - matures))
                closed = matures < 0
                self.account(cust, "term_deposit", f"{term // 365}-Year Fixed Rate Bond",
                             Decimal(0) if closed else money(rng.choice(
                                 [5000, 10000, 20000, 25000, 50000]) * max(1, scale / 2)),
                             rng.choice([4.1, 4.35, 4.6]), opened, maturity_date=day(matures),
                             status="closed" if closed else "active",
                             closure_reason="Matured and paid out" if closed else None)
            if rng.random() < 0.45 and segment != "student":
                self.account(cust, "card", rng.choice(["Platinum Credit Card",
                                                       "Cashback Credit Card"]),
                             money(rng.uniform(0, 3500)), 22.9, rng.randrange(1, since + 1),
                             credit_limit=money(rng.choice([1500, 3000, 5000, 8000])),
                             days_past_due=rng.choice([0] * 18 + [12, 35]))
            age = cust["__age"]
            if 28 <= age <= 66 and rng.random() < 0.22 and segment != "student":
                original = rng.randrange(120, 700) * 1000
                opened = rng.randrange(200, min(since, 365 * 20) + 200)
                self.account(cust, "mortgage", rng.choice(["2-Year Fixed Mortgage",
                                                           "5-Year Fixed Mortgage",
                                                           "Tracker Mortgage"]),
                             money(original * rng.uniform(0.45, 0.97)),
                             rng.choice([4.19, 4.49, 4.89, 5.24]), opened,
                             original_amount=money(original),
                             maturity_date=day(25 * 365 - opened),
                             collateral_value=money(original * rng.uniform(1.15, 1.9)),
                             days_past_due=0)
            if rng.random() < 0.08 and segment != "student":
                original = rng.randrange(3, 30) * 1000
                opened = rng.randrange(30, 1500)
                self.account(cust, "loan", "Personal Loan",
                             money(original * rng.uniform(0.1, 0.95)), 8.9, opened,
                             original_amount=money(original),
                             maturity_date=day(60 * 30 - opened), days_past_due=0)
            wants_investments = segment in ("affluent", "private") and rng.random() < 0.75 or \
                segment in ("mass_affluent", "sme_owner") and rng.random() < 0.3 or \
                segment == "mass" and rng.random() < 0.03
            if wants_investments and cust["kyc_status"] != "expired":
                investment = self.account(cust, "investment",
                                          rng.choice(["Stocks and Shares ISA",
                                                      "General Investment Account",
                                                      "Discretionary Portfolio"]),
                                          Decimal(0), None, rng.randrange(60, since + 60))
                self.investment_customers.append((cust, investment))
            if rng.random() < 0.03:
                self.account(cust, "savings", "Easy Access ISA", Decimal(0), 3.2,
                             rng.randrange(200, since + 200), status="closed",
                             closure_reason="Moved the money to another provider")

    def risk_and_holdings(self) -> None:
        rng = self.rng
        self.profile_rows: list[dict] = []
        self.holding_rows: list[dict] = []
        for cust, investment in self.investment_customers:
            score = rng.randrange(15, 96)
            horizon = "long" if score > 70 else rng.choice(["medium", "long"])
            if score >= 80 and horizon != "long":
                horizon = "long"
            assessed = rng.randrange(10, 760)
            if rng.random() < 0.25:
                self.profile_rows.append({
                    "_key": self.next_key("rp", 3), "owner": "victoria.sinclair",
                    "customer": cust["_key"], "assessed_on": day(-assessed - 730),
                    "questionnaire_score": max(5, score - rng.randrange(5, 20)),
                    "investment_horizon": "medium", "knowledge": "basic",
                    "loss_capacity": "limited", "valid_until": day(-assessed),
                    "status": "superseded",
                })
            status = "expired" if assessed > 730 else "current"
            profile = {
                "_key": self.next_key("rp", 3), "owner": "victoria.sinclair",
                "customer": cust["_key"], "assessed_on": day(-assessed),
                "questionnaire_score": score, "investment_horizon": horizon,
                "knowledge": self.pick({"basic": 30, "informed": 50, "advanced": 20}),
                "loss_capacity": "none" if score < 18 else self.pick(
                    {"limited": 35, "moderate": 45, "high": 20}),
                "esg_preference": rng.random() < 0.3, "valid_until": day(730 - assessed),
                "status": status,
                "advisor_notes": rng.choice([
                    "Saving for retirement; comfortable with market swings.",
                    "Wants income and capital preservation.",
                    "Inheritance received; long horizon, moderate experience.", None]),
            }
            self.profile_rows.append(profile)
            investment["risk_profile"] = profile["_key"]
            max_class = 2 if score < 20 or profile["loss_capacity"] == "none" else (
                3 if score < 40 else (4 if score < 60 else (5 if score < 80 else 7)))
            suitable = [i for i in INSTRUMENTS if i[2] <= max_class]
            picks = rng.sample(suitable, min(len(suitable), rng.randrange(2, 7)))
            if rng.random() < 0.08:
                picks.append(rng.choice([i for i in INSTRUMENTS if i[2] > max_class] or
                                        INSTRUMENTS))
            total = Decimal(0)
            scale = 40000 if cust["__segment"] in ("affluent", "private") else 9000
            for name, asset, risk, price in picks:
                price_now = price * rng.uniform(0.9, 1.15)
                value = rng.uniform(0.3, 1.7) * scale * (3 if cust["__segment"] == "private"
                                                         else 1)
                quantity = dec(value / price_now, 4)
                market_value = money(quantity * dec(price_now, 4))
                total += market_value
                self.holding_rows.append({
                    "financial_account": investment["_key"], "customer": cust["_key"],
                    "instrument_name": name, "isin": self.isin(),
                    "asset_class": asset, "risk_class": risk, "quantity": quantity,
                    "average_cost": dec(price * rng.uniform(0.8, 1.05), 4),
                    "market_price": dec(price_now, 4), "price_date": day(-1),
                    "owner": "victoria.sinclair",
                })
            investment["balance"] = money(total)

    def policies(self) -> None:
        rng = self.rng
        self.policy_rows: list[dict] = []
        has_mortgage = {a["primary_holder"] for a in self.account_rows
                        if a["product_type"] == "mortgage"}
        for cust in self.customer_rows:
            if cust["kyc_status"] in ("not_started", "rejected", "pending"):
                continue
            wanted = []
            if cust["_key"] in has_mortgage and rng.random() < 0.7:
                wanted.append("home")
            if cust["_key"] in has_mortgage and rng.random() < 0.35:
                wanted.append("life")
            if rng.random() < 0.18:
                wanted.append("motor")
            if rng.random() < 0.08:
                wanted.append("travel")
            if rng.random() < 0.05:
                wanted.append("health")
            if cust["__segment"] in ("sme_owner",) and rng.random() < 0.4:
                wanted.append("income_protection")
            for kind in wanted:
                self.policy(cust, kind)

    def policy(self, cust: dict, kind: str) -> None:
        rng = self.rng
        name, premium, frequency, insured, deductible = {
            "home": ("Home and Contents Cover", rng.uniform(18, 45), "monthly",
                     rng.randrange(150, 900) * 1000, 250),
            "life": ("Level Term Life Cover", rng.uniform(12, 60), "monthly",
                     rng.randrange(100, 500) * 1000, None),
            "motor": ("Comprehensive Car Insurance", rng.uniform(380, 1100), "annual",
                      rng.randrange(8, 45) * 1000, 350),
            "travel": ("Annual Multi-Trip Travel", rng.uniform(45, 160), "annual",
                       10_000_000 // 1000, 100),
            "health": ("Private Medical Cover", rng.uniform(55, 140), "monthly",
                       rng.randrange(50, 250) * 1000, 150),
            "income_protection": ("Income Protection Plus", rng.uniform(35, 90), "monthly",
                                  rng.randrange(20, 80) * 1000, None),
        }[kind]
        status = self.pick({"in_force": 68, "renewal_due": 10, "lapsed": 6, "cancelled": 6,
                            "quoted": 10})
        term = 365 if kind != "life" else 365 * rng.choice([10, 20, 25])
        renewals = rng.randrange(0, 6) if kind != "life" else 0
        record = {
            "_key": self.next_key("pol"), "owner": rng.choice(INSURANCE),
            "policyholder": cust["_key"], "household": cust["household"],
            "policy_type": kind, "product_name": name, "premium": money(premium),
            "premium_frequency": frequency, "sum_insured": money(insured),
            "deductible": money(deductible) if deductible else None,
            "payment_method": "direct_debit" if cust["_key"] in self.checking else "card",
            "paid_from": self.checking[cust["_key"]]["_key"] if cust["_key"] in self.checking
            else None,
            "beneficiaries": "Spouse 100%" if kind == "life" else None,
            "renewal_count": renewals, "status": status,
        }
        if status == "in_force":
            expiry = rng.randrange(61, term)
        elif status == "renewal_due":
            expiry = rng.randrange(-25, 61)
        elif status == "lapsed":
            expiry = -rng.randrange(31, 300)
        elif status == "cancelled":
            expiry = rng.randrange(-200, term)
        else:
            expiry = term + rng.randrange(3, 30)
        record["expiry_date"] = day(expiry)
        record["effective_date"] = day(expiry - term)
        if status == "renewal_due":
            record["renewal_premium"] = money(premium * rng.uniform(1.02, 1.12)) \
                if rng.random() < 0.5 else None
        if renewals and status in ("in_force", "renewal_due"):
            record["renewal_outcome"] = "renewed"
            record["status_changed_on"] = day(expiry - term)
        elif status == "lapsed":
            record["renewal_outcome"] = "lapsed"
            record["status_changed_on"] = day(expiry + 30)
            record["cancellation_reason"] = "non_payment" if rng.random() < 0.3 else None
        elif status == "cancelled":
            record["cancellation_reason"] = self.pick({"customer_request": 40,
                                                       "sold_asset": 25, "replaced": 20,
                                                       "non_payment": 15})
            changed = min(-1, expiry - rng.randrange(30, 200))
            record["status_changed_on"] = day(changed)
            if renewals:
                record["renewal_outcome"] = "cancelled"
        elif status == "quoted":
            record["renewal_count"] = 0
            if rng.random() < 0.4:
                record["status"] = "cancelled"
                record["cancellation_reason"] = "not_taken_up"
        self.policy_rows.append(record)

    # -- credit ---------------------------------------------------------------------------------

    def loans(self) -> None:
        rng = self.rng
        self.loan_rows: list[dict] = []
        self.rate_rows: list[dict] = []
        eligible = [c for c in self.customer_rows if c["kyc_status"] in ("verified", "review_due")
                    and c["__segment"] != "student" and c["_key"] in self.checking]
        for cust in rng.sample(eligible, 130):
            product = self.pick({"personal_loan": 33, "auto_loan": 20, "mortgage": 30,
                                 "home_equity": 5, "sme_loan": 8, "credit_line": 4})
            if product == "sme_loan" and cust["employment_status"] != "self_employed":
                product = "personal_loan"
            status = self.pick({"draft": 8, "submitted": 6, "underwriting": 11, "approved": 6,
                                "conditional": 5, "rejected": 16, "offer_signed": 5,
                                "disbursed": 36, "withdrawn": 7})
            yearly = max(18000, cust["__income"])
            amount, term, base, purpose = {
                "personal_loan": (min(35000, max(2000, yearly * rng.uniform(0.05, 0.45))),
                                  rng.choice([24, 36, 48, 60, 84]), 9.9,
                                  self.pick({"debt_consolidation": 40, "renovation": 25,
                                             "car": 10, "education": 10, "other": 15})),
                "auto_loan": (min(45000, max(6000, yearly * rng.uniform(0.15, 0.6))),
                              rng.choice([36, 48, 60, 72]), 7.9, "car"),
                "mortgage": (min(1500000, max(60000, yearly * rng.uniform(2.5, 5.2))),
                             rng.choice([240, 300, 360]), rng.choice([4.59, 4.89, 5.19]),
                             self.pick({"home_purchase": 70, "refinance": 30})),
                "home_equity": (max(15000, yearly * rng.uniform(0.4, 1.4)),
                                rng.choice([60, 84, 120]), 6.5, "renovation"),
                "sme_loan": (rng.randrange(25, 650) * 1000, rng.choice([36, 60, 84, 120]), 8.5,
                             self.pick({"business_investment": 60, "working_capital": 40})),
                "credit_line": (min(50000, max(5000, yearly * rng.uniform(0.1, 0.3))), 12, 11.0,
                                "working_capital"),
            }[product]
            amount = int(round(amount, -3))
            collateral, value = "none", None
            if product in ("mortgage", "home_equity"):
                collateral = "property"
                value = amount / rng.uniform(0.45, 0.9) if product == "mortgage" else \
                    amount * rng.uniform(3, 8)
            elif product == "auto_loan":
                collateral, value = "vehicle", amount * rng.uniform(1.15, 1.6)
            elif product == "sme_loan":
                collateral = self.pick({"guarantee": 50, "property": 30, "none": 20})
                value = amount * rng.uniform(1.0, 2.0) if collateral == "property" else None
            income = max(1500, cust["__income"] * 0.72 / 12)
            if product == "sme_loan":
                income = max(income, amount / rng.uniform(18, 40))
            submitted = rng.randrange(3, 360) if status != "draft" else None
            decided_statuses = ("approved", "conditional", "rejected", "offer_signed",
                                "disbursed")
            if status == "withdrawn":
                decided = None
            elif status in decided_statuses:
                slow = amount > 500000
                decided = max(0, submitted - rng.randrange(8 if slow else 1, 30 if slow else 15))
            else:
                decided = None
            if status in ("submitted", "underwriting"):
                submitted = rng.randrange(1, 25)
            if status in ("approved", "conditional"):
                submitted = rng.randrange(6, 40)
                decided = rng.randrange(0, min(submitted - 1, 25))
            record = {
                "_key": self.next_key("la", 3), "owner": cust["relationship_manager"] or
                cust["owner"], "applicant": cust["_key"],
                "co_applicant": self.spouse.get(cust["_key"])
                if product == "mortgage" and rng.random() < 0.5 else None,
                "branch": cust["primary_branch"], "product": product, "purpose": purpose,
                "amount": money(amount), "term_months": term, "base_rate": dec(base, 3),
                "collateral_type": collateral,
                "collateral_value": money(round(value, -3)) if value else None,
                "monthly_income": money(round(income, -1)),
                "existing_monthly_debt": money(rng.choice([0, 0, 0, 90, 150, 220, 320, 540])),
                "documents_complete": status != "draft" or rng.random() < 0.3,
                "status": status,
            }
            if status != "draft":
                record.update(
                    credit_score=rng.randrange(560, 845) if status != "rejected"
                    else rng.randrange(480, 700),
                    bureau_checked_on=day(-submitted + 1 if submitted else 0),
                    underwriter=rng.choice(CREDIT_OFFICERS),
                    submitted_on=day(-submitted))
                if status == "submitted":
                    record.pop("credit_score")
                    record.pop("bureau_checked_on")
            if decided is not None:
                record["decided_on"] = day(-decided)
            if status == "conditional":
                record["conditions"] = rng.choice([
                    "Valuation report of the property before the offer.",
                    "Proof of the last three months' income.",
                    "Life cover assigned to the bank."])
                record["conditions_met"] = rng.random() < 0.3
            if status in ("approved", "conditional"):
                record["offer_expires_on"] = day(30 - decided)
            if status == "rejected":
                record["rejection_reason"] = self.pick({"affordability": 40, "credit_history": 30,
                                                        "collateral": 15, "policy": 15})
            if status == "withdrawn":
                record["rejection_reason"] = "customer_withdrew"
            if status in ("offer_signed", "disbursed"):
                record["offer_signed_on"] = day(-max(0, decided - rng.randrange(1, 10)))
                record["disbursement_account"] = self.checking[cust["_key"]]["_key"]
            if status == "disbursed":
                record["disbursed_on"] = day(-max(0, decided - rng.randrange(10, 25)))
            self.loan_rows.append(record)
            if product in ("mortgage", "home_equity", "sme_loan") and status not in (
                    "draft", "submitted") and rng.random() < 0.3:
                bp = rng.choice([10, 15, 20, 25, 35, 50, 60, 75, 90, 120])
                reason = self.pick({"competitor_offer": 50, "relationship_value": 35,
                                    "collateral_quality": 15})
                outcome = "requested" if status == "underwriting" else self.pick(
                    {"approved": 70, "rejected": 20, "withdrawn": 10})
                self.rate_rows.append({
                    "owner": record["owner"], "loan_application": record["_key"],
                    "requested_bp": bp, "reason": reason,
                    "competitor_rate": dec(base - bp / 100 - rng.uniform(0, 0.2), 3)
                    if reason == "competitor_offer" else None,
                    "justification": {
                        "competitor_offer": "The customer holds a written offer from another "
                                            "lender; matching it keeps the relationship.",
                        "relationship_value": "Long-standing customer with deposits and "
                                              "investments well above the loan.",
                        "collateral_quality": "Low loan-to-value on a prime property."}[reason],
                    "status": outcome,
                })

    # -- compliance and customer data -----------------------------------------------------------

    def compliance(self) -> None:
        rng = self.rng
        self.case_rows: list[dict] = []

        def case(cust: dict, kind: str, status: str, opened: int, **extra) -> None:
            record = {
                "owner": rng.choice(COMPLIANCE) if kind != "kyc_review" or status != "open"
                else "sarah.lindqvist",
                "case_type": kind, "customer": cust["_key"], "severity": "medium",
                "summary": "", "due_on": day(-opened + 15), "status": status,
            }
            record.update(extra)
            self.case_rows.append(record)

        for cust in self.customer_rows:
            if cust["kyc_status"] == "review_due":
                case(cust, "kyc_review", self.pick({"open": 60, "in_review": 40}),
                     rng.randrange(0, 50), source="periodic_review", severity="low",
                     due_on=day(cust["__expiry"]),
                     summary=f"KYC review: {cust['first_name']} {cust['last_name']}")
            elif cust["kyc_status"] == "expired" and rng.random() < 0.5:
                case(cust, "kyc_review", "in_review", -cust["__expiry"] + 60,
                     source="periodic_review", severity="medium",
                     due_on=day(cust["__expiry"]),
                     summary=f"KYC review overdue: {cust['first_name']} {cust['last_name']}")
            elif cust["kyc_status"] == "verified" and rng.random() < 0.1:
                closed = rng.randrange(5, 300)
                case(cust, "kyc_review", "closed", closed + 20, source="periodic_review",
                     severity="low", outcome="kyc_updated", closed_on=day(-closed),
                     findings="Fresh ID and proof of address collected; risk rating unchanged.",
                     summary=f"KYC review: {cust['first_name']} {cust['last_name']}")
            if cust["pep"]:
                case(cust, "pep_review", self.pick({"in_review": 50, "closed": 50}),
                     rng.randrange(10, 200), source="onboarding", severity="high",
                     summary=f"PEP review: {cust['pep_details']}",
                     findings="Source of wealth documented; enhanced monitoring in place.",
                     outcome="edd_completed")
        banked = [c for c in self.customer_rows if c["_key"] in self.checking]
        alerts = [("aml_alert", "transaction_monitoring", "TM-07 Structured cash deposits"),
                  ("aml_alert", "transaction_monitoring", "TM-12 Rapid movement of funds"),
                  ("aml_alert", "transaction_monitoring", "TM-21 High-risk jurisdiction"),
                  ("sanctions_hit", "sanctions_screening", "Name match on a sanctions list"),
                  ("fraud_alert", "branch_referral", "Suspected authorised push payment scam"),
                  ("adverse_media", "periodic_review", "Negative news screening hit")]
        for _ in range(42):
            cust = rng.choice(banked)
            kind, source, rule = rng.choice(alerts)
            status = self.pick({"open": 15, "in_review": 20, "escalated": 8, "closed": 57})
            opened = rng.randrange(1, 25) if status != "closed" else rng.randrange(20, 360)
            outcome = None
            if status == "closed":
                outcome = self.pick({"false_positive": 60, "no_issue": 25, "sar_filed": 8,
                                     "account_frozen": 4, "relationship_exited": 3})
            severity = "critical" if kind == "sanctions_hit" else self.pick(
                {"low": 20, "medium": 45, "high": 30, "critical": 5})
            case(cust, kind, status, opened, source=source, alert_rule=rule,
                 alert_score=rng.randrange(35, 99),
                 amount_involved=money(rng.randrange(2, 400) * 250),
                 financial_account=self.checking[cust["_key"]]["_key"], severity=severity,
                 summary=f"{rule} on {self.checking[cust['_key']]['product_name']}",
                 findings="Reviewed statements and the customer's explanation."
                 if status in ("escalated", "closed") else None,
                 outcome=outcome,
                 sar_reference=f"SAR-{rng.randrange(100000, 999999)}"
                 if outcome == "sar_filed" else None,
                 closed_on=day(-opened + rng.randrange(3, 19)) if status == "closed" else None,
                 due_on=day(-opened + (3 if severity in ("high", "critical") else 15)))

    def sources(self) -> None:
        rng = self.rng
        self.source_rows: list[dict] = []
        systems_for = {}
        for account in self.account_rows:
            systems_for.setdefault(account["primary_holder"], set()).add(
                {"card": "cards", "mortgage": "mortgage", "investment": "brokerage"}.get(
                    account["product_type"], "core_banking"))
        for policy in self.policy_rows:
            systems_for.setdefault(policy["policyholder"], set()).add("insurance")
        nicknames = {"David": "Dave", "Michael": "Mike", "Andrew": "Andy", "Richard": "Rick",
                     "Stephen": "Steve", "Christopher": "Chris", "Robert": "Rob",
                     "Benjamin": "Ben", "Matthew": "Matt", "Samuel": "Sam",
                     "Rebecca": "Becky", "Victoria": "Vicky", "Jessica": "Jess",
                     "Charlotte": "Charlie", "Katie": "Kate", "Nicola": "Nicky"}
        for cust in self.customer_rows:
            systems = sorted(systems_for.get(cust["_key"], set()) | {"core_banking"})
            if rng.random() < 0.6:
                systems.append("mobile_app")
            if rng.random() < 0.25:
                systems.append("branch_crm")
            for system in systems:
                fuzzy = system in ("branch_crm", "insurance") and rng.random() < 0.6 or \
                    rng.random() < 0.08
                first = cust["first_name"]
                if fuzzy and first in nicknames and rng.random() < 0.6:
                    first = nicknames[first]
                record = {
                    "source_system": system,
                    "source_branch": cust["primary_branch"] if system in (
                        "core_banking", "branch_crm") else None,
                    "source_ref": self.unique("ref", lambda s=system: {
                        "core_banking": "CB", "cards": "CRD", "mortgage": "MTG",
                        "insurance": "INS", "brokerage": "BRK", "mobile_app": "APP",
                        "branch_crm": "BR"}[s] + f"{rng.randrange(10**6, 10**7)}"),
                    "first_name": first, "last_name": cust["last_name"],
                    "birth_date": cust["birthday"], "phone": cust["mobile"],
                    "email": cust["email"] if not fuzzy or rng.random() < 0.5 else None,
                    "address": cust["street"] if not fuzzy or rng.random() < 0.5 else
                    f"{rng.randrange(1, 180)} {rng.choice(STREETS)}",
                    "owner": "mei.chen",
                }
                if not fuzzy and cust["national_id"]:
                    record.update(national_id=cust["national_id"], customer=cust["_key"],
                                  match_score=100, match_method="exact_national_id",
                                  status="matched")
                else:
                    score = rng.randrange(55, 99)
                    state = self.pick({"matched": 55, "pending_review": 30, "distinct": 5,
                                       "unmatched": 10})
                    if state == "unmatched":
                        record.update(match_score=rng.randrange(20, 55), match_method="none",
                                      status="unmatched")
                    elif state == "distinct":
                        record.update(match_score=score, match_method="fuzzy",
                                      status="distinct", reviewed_on=day(-rng.randrange(1, 90)),
                                      match_notes="Different birth date on the ID document.")
                    else:
                        record.update(customer=cust["_key"], match_score=max(score, 60),
                                      match_method="fuzzy" if state == "pending_review"
                                      else self.pick({"fuzzy": 70, "manual": 30}),
                                      status=state)
                        if state == "matched":
                            record["reviewed_on"] = day(-rng.randrange(1, 400))
                self.source_rows.append(record)

    # -- writing ----------------------------------------------------------------------------------

    def run(self, out: Path) -> None:
        self.customers()
        self.accounts()
        self.risk_and_holdings()
        self.policies()
        self.loans()
        self.compliance()
        self.sources()
        out.mkdir(parents=True, exist_ok=True)
        write_yaml(out, "household", self.household_rows, "Households of the bank's customers.")
        write_yaml(out, "contact", self.customer_rows,
                   "The bank's customers (core contacts with the finance fields).")
        write_yaml(out, "financial_account", self.account_rows,
                   "Checking, savings, deposits, cards, loans, mortgages and investments.")
        write_yaml(out, "account_holder", self.holder_rows,
                   "Joint holders and signatories (primary holders are added automatically).")
        write_yaml(out, "risk_profile", self.profile_rows, "Investment risk profiles.")
        write_yaml(out, "holding", self.holding_rows, "Positions in the investment accounts.")
        write_yaml(out, "insurance_policy", self.policy_rows, "Insurance policies.")
        write_yaml(out, "loan_application", self.loan_rows,
                   "Loan applications across the credit pipeline.")
        write_yaml(out, "rate_exception", self.rate_rows, "Rate exceptions on loans.")
        write_yaml(out, "compliance_case", self.case_rows, "KYC reviews and AML alerts.")
        write_yaml(out, "source_identity", self.source_rows,
                   "The customers as each branch and system knows them.")


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else DEFAULT_OUT
    Gen().run(out)
    write_staff(out, PACK, [{"username": u, "full_name": name, "role": role, "team": team}
                            for u, (name, role, place, team) in USERS.items()])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
