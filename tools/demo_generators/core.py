"""Demo data of the core pack: a UK business IT supplier and two years of its customers.

Run `python tools/demo_generators/core.py [OUTPUT_DIR]` (default: verticals/core/data). The
output is deterministic (a fixed seed, dates relative to the install day) and committed; see
README.md in this folder.

Records link to each other by `_key`; owners, reps, reviewers and assignees are usernames of
the demo users listed in USERS (and in verticals/core/README.md).
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _demo import day, moment, money, output_dir, slug, write_records, write_staff  # noqa: E402

PACK = "core"
SEED = 20240917

# username -> (full name, role, region or None, team)
USERS: dict[str, tuple[str, str, str | None, str]] = {
    "olivia.bennett": ("Olivia Bennett", "sales_rep", "london", "Sales South"),
    "james.carter": ("James Carter", "sales_rep", "london", "Sales South"),
    "amelia.hughes": ("Amelia Hughes", "sales_rep", "south", "Sales South"),
    "harry.patel": ("Harry Patel", "sales_rep", "south", "Sales South"),
    "sophie.turner": ("Sophie Turner", "sales_rep", "midlands", "Sales North"),
    "mohammed.khan": ("Mohammed Khan", "sales_rep", "midlands", "Sales North"),
    "emily.walsh": ("Emily Walsh", "sales_rep", "north", "Sales North"),
    "jack.robinson": ("Jack Robinson", "sales_rep", "north", "Sales North"),
    "isla.mackenzie": ("Isla Mackenzie", "sales_rep", "scotland", "Sales North"),
    "callum.fraser": ("Callum Fraser", "sales_rep", "scotland", "Sales North"),
    "claire.dawson": ("Claire Dawson", "sales_manager", None, "Sales South"),
    "andrew.mcleod": ("Andrew McLeod", "sales_manager", None, "Sales North"),
    "helen.ashworth": ("Helen Ashworth", "director", None, "Management"),
    "priya.sharma": ("Priya Sharma", "support_agent", None, "Service desk"),
    "tom.griffiths": ("Tom Griffiths", "support_agent", None, "Service desk"),
    "laura.kowalski": ("Laura Kowalski", "support_agent", None, "Service desk"),
    "daniel.osei": ("Daniel Osei", "support_manager", None, "Service desk"),
    "margaret.lloyd": ("Margaret Lloyd", "finance", None, "Finance"),
    "ben.whitaker": ("Ben Whitaker", "finance", None, "Finance"),
    "chloe.adams": ("Chloe Adams", "marketing", None, "Marketing"),
}
REGIONS = ["london", "south", "midlands", "north", "scotland"]
REGION_WEIGHTS = [26, 18, 20, 24, 12]
REPS = {r: [u for u, v in USERS.items() if v[1] == "sales_rep" and v[2] == r] for r in REGIONS}
MANAGER = {u: ("claire.dawson" if v[3] == "Sales South" else "andrew.mcleod")
           for u, v in USERS.items() if v[1] == "sales_rep"}
SUPPORT = ["priya.sharma", "tom.griffiths", "laura.kowalski"]
FINANCE = ["margaret.lloyd", "ben.whitaker"]

# City, region, phone prefix (Ofcom's numbers reserved for drama), postcode areas.
CITIES = [
    ("London", "london", "+44 20 7946 ",
     ["EC1A", "EC2M", "SE1", "N1", "W1T", "E14", "SW1P", "WC2H"]),
    ("Bristol", "south", "+44 117 496 ", ["BS1", "BS2", "BS8", "BS16"]),
    ("Cardiff", "south", "+44 29 2018 ", ["CF10", "CF11", "CF24"]),
    ("Reading", "south", "+44 118 496 ", ["RG1", "RG2", "RG30"]),
    ("Birmingham", "midlands", "+44 121 496 ", ["B1", "B3", "B15", "B24"]),
    ("Nottingham", "midlands", "+44 115 496 ", ["NG1", "NG2", "NG7"]),
    ("Leicester", "midlands", "+44 116 496 ", ["LE1", "LE2", "LE4"]),
    ("Leeds", "north", "+44 113 496 ", ["LS1", "LS2", "LS11", "LS27"]),
    ("Manchester", "north", "+44 161 496 ", ["M1", "M3", "M15", "M50"]),
    ("Sheffield", "north", "+44 114 496 ", ["S1", "S3", "S9"]),
    ("Liverpool", "north", "+44 151 496 ", ["L1", "L3", "L24"]),
    ("Newcastle upon Tyne", "north", "+44 191 498 ", ["NE1", "NE4", "NE12"]),
    ("Glasgow", "scotland", "+44 141 496 ", ["G1", "G2", "G51"]),
    ("Edinburgh", "scotland", "+44 131 496 ", ["EH1", "EH3", "EH12"]),
    ("Belfast", "scotland", "+44 28 9018 ", ["BT1", "BT2", "BT7"]),
]
STREETS = ["Victoria", "Albert", "Station", "Church", "Mill", "Park", "High", "King", "Queen",
           "Market", "Bridge", "Canal", "Castle", "Orchard", "Meadow", "Wellington", "York",
           "Commercial", "Harbour", "Riverside", "Chapel", "Hope", "Union", "Clarence"]
STREET_KINDS = ["Road", "Street", "Lane", "Way", "Business Park", "Trading Estate", "Court",
                "Place", "Quay", "Square"]

FIRST_NAMES = [
    "Olivia", "Amelia", "Isla", "Ava", "Emily", "Sophia", "Grace", "Mia", "Poppy", "Ella",
    "Lily", "Evie", "Freya", "Charlotte", "Hannah", "Chloe", "Jessica", "Lucy", "Sarah",
    "Rebecca", "Laura", "Emma", "Katie", "Rachel", "Helen", "Claire", "Nicola", "Joanne",
    "Victoria", "Zara", "Aisha", "Priya", "Fatima", "Anika", "Mei", "Niamh", "Siobhan",
    "Eilidh", "Catrin", "Megan", "Oliver", "George", "Harry", "Jack", "Jacob", "Noah",
    "Charlie", "Thomas", "Oscar", "William", "James", "Henry", "Leo", "Alfie", "Joshua",
    "Daniel", "Samuel", "Matthew", "Luke", "Adam", "Ryan", "Michael", "David", "Paul", "Mark",
    "Andrew", "Stephen", "Richard", "Simon", "Peter", "Mohammed", "Ali", "Arjun", "Rohan",
    "Kwame", "Tomasz", "Piotr", "Callum", "Euan", "Rhys", "Owen", "Dylan", "Ciaran", "Sean",
]
LAST_NAMES = [
    "Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies", "Robinson",
    "Wright", "Thompson", "Evans", "Walker", "White", "Roberts", "Green", "Hall", "Wood",
    "Jackson", "Clarke", "Patel", "Khan", "Lewis", "James", "Phillips", "Mason", "Mitchell",
    "Rose", "Cox", "Morgan", "Moore", "Hughes", "Edwards", "Hill", "Ward", "Turner", "Parker",
    "Cooper", "Harris", "Martin", "King", "Lee", "Baker", "Harrison", "Morris", "Cook", "Bell",
    "Murphy", "Campbell", "Stewart", "Anderson", "Scott", "Reid", "Ross", "Murray", "Kennedy",
    "Fraser", "Kaur", "Singh", "Shah", "Begum", "Ahmed", "Hussain", "Chen", "Wong", "Nowak",
    "Kowalski", "O'Brien", "O'Connor", "Doyle", "Byrne", "Kelly", "Quinn", "Lloyd", "Price",
    "Jenkins", "Owen", "Powell", "Barnes", "Fletcher", "Holmes", "Chapman", "Palmer", "Gray",
    "Webb", "Marshall", "Ellis", "Dixon", "Bailey", "Knight", "Shaw", "Hunt", "Foster",
    "Gibson", "Lawrence", "Pearson", "Okafor", "Mensah", "Adeyemi",
]
FEMALE = set(FIRST_NAMES[:40])

COMPANY_WORDS = [
    "Harbourline", "Northgate", "Ashford", "Bramley", "Caledon", "Kestrel", "Meridian",
    "Oakfield", "Pennine", "Redbridge", "Severn", "Thameside", "Westbury", "Yardley",
    "Brookside", "Castleton", "Dunmore", "Elmstead", "Fernhill", "Glenmore", "Highfield",
    "Ironbridge", "Juniper", "Kingsway", "Langley", "Millbrook", "Newhaven", "Orchard",
    "Parkside", "Queensgate", "Riverside", "Stanton", "Tamar", "Upton", "Valeview", "Whitmore",
    "Ashgrove", "Beacon", "Clearwater", "Dalton", "Eastwood", "Foxley", "Granite", "Hawthorn",
    "Kingfisher", "Lakeland", "Marlow", "Nettleton", "Oldfield", "Penrose", "Quayside", "Rowan",
    "Silverdale", "Trent", "Wharfedale", "Avonmore", "Cheviot", "Cotswold", "Mersey", "Tweedside",
    "Clydebank", "Forthview", "Lomond", "Tynedale", "Wessex", "Mercia", "Albion", "Pinnacle",
    "Summit", "Keystone", "Cornerstone", "Lighthouse", "Bluebell", "Heather", "Thistle",
    "Anchor", "Compass", "Horizon", "Sterling", "Bridgewater", "Calder", "Derwent", "Exmoor",
]
INDUSTRY_NAMES = {
    "manufacturing": ["Engineering", "Precision Components", "Plastics", "Fabrications"],
    "retail": ["Home Stores", "Garden Centres", "Outfitters", "Pharmacy"],
    "wholesale": ["Distribution", "Trade Supplies", "Wholesale"],
    "construction": ["Builders", "Construction", "Roofing", "Civil Engineering"],
    "healthcare": ["Dental Care", "Medical Practice", "Care Homes", "Veterinary Group"],
    "education": ["Academy", "College", "Prep School", "Learning Trust"],
    "hospitality": ["Hotels", "Inns", "Catering"],
    "logistics": ["Logistics", "Freight", "Haulage", "Couriers"],
    "technology": ["Software", "Digital", "Data Systems"],
    "professional_services": ["Accountants", "Solicitors", "Architects", "Surveyors",
                              "Recruitment"],
    "public_sector": ["Housing Association", "Parish Council", "Fire and Rescue Trust"],
    "financial_services": ["Financial Planning", "Insurance Brokers", "Credit Union"],
    "energy": ["Energy", "Solar", "Utilities"],
    "agriculture": ["Farms", "Dairies", "Growers", "Foods"],
}
INDUSTRY_WEIGHTS = {"manufacturing": 14, "retail": 9, "wholesale": 8, "construction": 8,
                    "healthcare": 9, "education": 7, "hospitality": 6, "logistics": 8,
                    "technology": 6, "professional_services": 12, "public_sector": 3,
                    "financial_services": 5, "energy": 3, "agriculture": 4}
NO_SUFFIX = {"Academy", "College", "Prep School", "Learning Trust", "Housing Association",
             "Parish Council", "Fire and Rescue Trust", "Credit Union"}
LLP = {"Solicitors", "Accountants", "Architects", "Surveyors"}

JOB_TITLES = {
    "management": ["Managing Director", "Operations Director", "General Manager", "Owner",
                   "Practice Manager", "Head Teacher"],
    "purchasing": ["Purchasing Manager", "Procurement Lead", "Buyer"],
    "finance": ["Finance Director", "Financial Controller", "Accounts Manager"],
    "operations": ["Operations Manager", "Office Manager", "Site Manager"],
    "it": ["IT Manager", "Head of IT", "Systems Administrator", "IT Support Lead"],
    "sales": ["Sales Director", "Sales Manager"],
    "marketing": ["Marketing Manager"],
    "facilities": ["Facilities Manager"],
}
DEPARTMENT_ROLE = {"management": "decision_maker", "finance": "finance", "purchasing":
                   "influencer", "it": "influencer", "operations": "user", "sales": "user",
                   "marketing": "user", "facilities": "gatekeeper"}

# code, name, category, unit, list price, unit cost, active
PRODUCTS = [
    ("HW-LT13", "Ultralight 13 laptop (discontinued)", "hardware", "each", 1099, 960, False),
    ("HW-LT14", "ProBook 14 business laptop", "hardware", "each", 899, 781, True),
    ("HW-LT16", "ProBook 16 performance laptop", "hardware", "each", 1249, 1075, True),
    ("HW-DT01", "Compact desktop PC", "hardware", "each", 649, 560, True),
    ("HW-TB10", "10-inch rugged tablet", "hardware", "each", 749, 655, True),
    ("HW-MN24", "24-inch office monitor", "hardware", "each", 179, 151, True),
    ("HW-MN27", "27-inch QHD monitor", "hardware", "each", 289, 238, True),
    ("HW-DK01", "USB-C docking station", "hardware", "each", 189, 139, True),
    ("HW-HS01", "Wireless office headset", "hardware", "each", 129, 79, True),
    ("HW-SV01", "Rack server, 2U", "hardware", "each", 6450, 5480, True),
    ("HW-NS01", "Network storage, 8 bays", "hardware", "each", 2890, 2390, True),
    ("HW-UPS3", "Rack UPS, 3 kVA", "hardware", "each", 1390, 1090, True),
    ("HW-FW01", "Next-generation firewall", "hardware", "each", 2450, 1890, True),
    ("HW-SW48", "48-port managed switch", "hardware", "each", 1890, 1560, True),
    ("HW-AP06", "Wi-Fi 6 access point", "hardware", "each", 329, 248, True),
    ("HW-PR01", "A3 colour multifunction printer", "hardware", "each", 2190, 1850, True),
    ("HW-CAM1", "Meeting room camera kit", "hardware", "each", 1190, 905, True),
    ("SW-OFF", "Office suite, per user per year", "software", "licence", 150, 118, True),
    ("SW-SEC", "Endpoint security, per device per year", "software", "licence", 45, 27, True),
    ("SW-BCK", "Cloud backup, per server per year", "software", "licence", 480, 300, True),
    ("SW-CRM", "Cloud CRM, per user per year", "software", "licence", 540, 410, True),
    ("SW-ERP", "Finance and ERP suite, per user per year", "software", "licence", 1200, 870,
     True),
    ("SW-MDM", "Device management, per device per year", "software", "licence", 36, 21, True),
    ("SW-VPN", "Secure remote access, per user per year", "software", "licence", 60, 33, True),
    ("SV-INST", "Installation engineer, per day", "services", "day", 650, 290, True),
    ("SV-CONS", "IT consultant, per day", "services", "day", 950, 420, True),
    ("SV-PM", "Project manager, per day", "services", "day", 850, 410, True),
    ("SV-MIG", "Mailbox migration, per mailbox", "services", "each", 35, 14, True),
    ("SV-NET", "Network survey", "services", "each", 1450, 620, True),
    ("SV-CYB", "Cyber security assessment", "services", "each", 3900, 1650, True),
    ("SP-BRZ", "Bronze support plan, per month", "support", "month", 350, 215, True),
    ("SP-SLV", "Silver support plan, per month", "support", "month", 750, 410, True),
    ("SP-GLD", "Gold support plan, per month", "support", "month", 1450, 720, True),
    ("SP-MIT", "Managed IT, per user per month", "support", "month", 45, 24, True),
    ("SP-HW3", "Three-year hardware warranty extension", "support", "each", 149, 98, True),
    ("TR-ESS", "IT essentials course, per day", "training", "day", 1200, 520, True),
    ("TR-SEC", "Security awareness e-learning, per user", "training", "each", 25, 8, True),
    ("TR-ADM", "Administrator training, per person", "training", "each", 1650, 940, True),
    ("TR-CRM", "CRM user training, per day", "training", "day", 1100, 650, True),
]
# Typical quantity range per product code prefix / unit.
QUANTITY = {"each": (1, 15), "licence": (5, 80), "day": (1, 8), "month": (12, 12)}

KB_ARTICLES = [
    ("Laptop does not wake from sleep when docked", "troubleshooting", "HW-DK01",
     "docking station, sleep, black screen, USB-C",
     "The laptop stays on a black screen after sleep while connected to the docking station.",
     "Outdated docking station firmware and the laptop's USB selective suspend setting.",
     "<p>Update the dock firmware to the latest release, then turn off USB selective suspend "
     "in the power plan. Reconnect the dock with the laptop awake.</p>"),
    ("Second monitor flickers on the docking station", "troubleshooting", "HW-DK01",
     "monitor, flicker, dock, HDMI", "An external monitor flickers or drops out every few "
     "minutes.", "A cable that does not carry the refresh rate, or HDMI 1.4 on a QHD screen.",
     "<p>Use the DisplayPort cable supplied with the monitor and set 60 Hz. Replace HDMI 1.4 "
     "cables with certified high-speed cables.</p>"),
    ("Printer shows 'scan to e-mail failed'", "configuration", "HW-PR01",
     "printer, scan, email, SMTP, authentication",
     "Scanning to e-mail stopped working after a password change or mail migration.",
     "The printer still uses the old SMTP password or basic authentication.",
     "<p>Create an app password for the scanner mailbox and enter it under SMTP settings; use "
     "port 587 with STARTTLS.</p>"),
    ("Wi-Fi drops in meeting rooms", "troubleshooting", "HW-AP06",
     "wifi, wireless, disconnect, roaming", "Laptops lose the wireless network when people "
     "move between rooms.", "Access points on the same channel and fast roaming turned off.",
     "<p>Run the channel plan from the network survey, enable 802.11r fast roaming and set "
     "minimum data rates to 12 Mbps.</p>"),
    ("Backup job reports 'snapshot timeout'", "troubleshooting", "SW-BCK",
     "backup, snapshot, VSS, timeout", "Nightly cloud backup of a server fails with a snapshot "
     "timeout.", "A stuck volume shadow copy writer, usually the database's.",
     "<p>Restart the database writer service, check writers are stable, and move the backup "
     "window outside database maintenance.</p>"),
    ("How to add a user to the office suite", "how_to", "SW-OFF",
     "new starter, licence, user, mailbox", "A new colleague needs e-mail and office apps.",
     "", "<p>In the admin portal add the user, assign one office suite licence and add them "
     "to their department's groups. Licences are billed from the next month.</p>"),
    ("Remote access prompts for the code twice", "configuration", "SW-VPN",
     "vpn, remote, two-factor, MFA", "Users are asked for their sign-in code twice when "
     "connecting from home.", "Two-factor rules apply both on the gateway and on the "
     "identity provider.", "<p>Turn off the gateway's own second factor and rely on the "
     "identity provider's conditional access policy.</p>"),
    ("Returning faulty hardware under warranty", "returns", None,
     "return, RMA, warranty, faulty", "A device is faulty within its warranty period.", "",
     "<p>Raise a return ticket with the order number and serial number. We issue a return "
     "authorisation (RMA) within one working day and collect the device.</p>"),
    ("Invoice shows a licence we cancelled", "billing", "SW-OFF",
     "invoice, licence, cancel, credit", "An invoice still charges for cancelled licences.",
     "Licences are cancelled at the end of the billing month.", "<p>Check the cancellation "
     "date; we credit licences charged after that month on the next invoice.</p>"),
    ("Delivery tracking number not working", "delivery", None, "delivery, courier, tracking",
     "The courier's site does not recognise the tracking number.", "Tracking activates when "
     "the courier scans the parcel at the depot.", "<p>Wait until the evening of dispatch "
     "day. If it still fails, the service desk checks with the courier.</p>"),
    ("Server fans run loud after a firmware update", "troubleshooting", "HW-SV01",
     "server, fan, noise, firmware", "The rack server fans run at full speed after updating "
     "the firmware.", "The new firmware does not recognise third-party drives.",
     "<p>Apply the thermal profile update from the support site, or set the fan profile to "
     "'acoustic' in the management console.</p>"),
    ("UPS beeps every few minutes", "troubleshooting", "HW-UPS3", "ups, battery, alarm, beep",
     "The UPS sounds an alarm at regular intervals.", "The battery failed its self test.",
     "<p>Run a manual battery test. If it fails again, raise a repair ticket; batteries are "
     "covered for two years.</p>"),
    ("Firewall blocks the payment terminal", "configuration", "HW-FW01",
     "firewall, card terminal, payments, blocked", "Card payments fail since the new "
     "firewall was installed.", "The terminal's provider hosts are not allowed out.",
     "<p>Add the payment provider's address list to the 'payments' rule and exempt it from "
     "TLS inspection.</p>"),
    ("Setting up a new CRM user", "how_to", "SW-CRM", "crm, user, licence, role",
     "A new colleague needs access to the cloud CRM.", "", "<p>Assign a CRM licence, choose "
     "their role and team, and send the welcome e-mail from the admin page.</p>"),
    ("ERP month-end close runs slowly", "troubleshooting", "SW-ERP",
     "erp, month end, slow, reports", "Month-end reports take hours.", "Reports run during "
     "the nightly backup window.", "<p>Schedule the month-end batch after 02:00 and archive "
     "closed periods older than three years.</p>"),
    ("Tablet screen does not respond to gloves", "how_to", "HW-TB10",
     "tablet, touch, gloves, rugged", "Field staff cannot use the rugged tablet with gloves.",
     "Glove mode is off by default.", "<p>Turn on glove mode under Display settings; it "
     "survives restarts.</p>"),
    ("Headset microphone too quiet in calls", "configuration", "HW-HS01",
     "headset, microphone, volume, calls", "Callers say they can hardly hear the user.",
     "The communications app lowers the input level automatically.", "<p>Turn off automatic "
     "microphone adjustment and set the input level to 80%.</p>"),
    ("Booking an engineer for an on-site visit", "how_to", "SV-INST",
     "engineer, visit, on-site, booking", "How to get an engineer on site.", "",
     "<p>Raise an on-site service ticket with the address and preferred date; visits are "
     "confirmed within two working days.</p>"),
    ("Security awareness course completion missing", "troubleshooting", "TR-SEC",
     "training, e-learning, completion, certificate", "A learner finished the course but it "
     "shows as incomplete.", "The final quiz was closed before it was submitted.",
     "<p>Ask the learner to reopen the last module and press Submit; certificates appear "
     "within an hour.</p>"),
    ("Meeting room camera not detected", "troubleshooting", "HW-CAM1",
     "camera, meeting room, USB, video", "The meeting room PC does not see the camera.",
     "The camera hub needs its own power supply.", "<p>Connect the hub's power supply and "
     "use the blue USB 3 port.</p>"),
    ("Device enrolment fails for new phones", "troubleshooting", "SW-MDM",
     "mdm, enrolment, phone, device management", "New phones fail to enrol in device "
     "management.", "The enrolment token expired.", "<p>Renew the enrolment token in the "
     "console; tokens last one year.</p>"),
    ("Support plan response times", "how_to", "SP-GLD", "support plan, SLA, response time",
     "What response time each support plan includes.", "", "<p>Bronze: next working day. "
     "Silver: 8 working hours. Gold: 4 hours, every day.</p>"),
    ("Storage shows a degraded volume", "troubleshooting", "HW-NS01",
     "nas, storage, degraded, disk", "The network storage reports a degraded volume.",
     "One disk failed.", "<p>Do not restart. Raise a repair ticket with the disk bay number; "
     "we ship a replacement disk the same day.</p>"),
    ("Laptop battery drains overnight", "troubleshooting", "HW-LT14",
     "battery, laptop, sleep, drain", "A laptop in sleep is empty the next morning.",
     "Modern standby keeps network connections on.", "<p>Set the lid action to hibernate and "
     "turn off network connectivity in standby.</p>"),
    ("Switch port stuck in error-disabled", "troubleshooting", "HW-SW48",
     "switch, port, error disabled, loop", "A network port stops working and its light is "
     "amber.", "Loop protection shut the port.", "<p>Remove the loop (often a desk switch "
     "with both cables plugged in), then re-enable the port.</p>"),
    ("Old laptop model parts availability", "returns", "HW-LT13",
     "discontinued, parts, repair", "Can the discontinued Ultralight 13 still be repaired?",
     "", "<p>Parts are stocked until three years after the last sale; after that we offer a "
     "trade-in.</p>"),
]


@dataclass
class Data:
    rng: random.Random
    records: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    used: dict[str, set[str]] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)
    when: dict[str, int] = field(default_factory=dict)  # record key -> day or hour offset

    def add(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        self.records.setdefault(entity, []).append(record)
        return record

    def unique(self, kind: str, value: str) -> bool:
        bucket = self.used.setdefault(kind, set())
        if value in bucket:
            return False
        bucket.add(value)
        return True

    def next(self, name: str) -> int:
        self.counters[name] = self.counters.get(name, 0) + 1
        return self.counters[name]


class Phones:
    """Deterministic numbers from the ranges reserved for drama; core uses 0000-0499."""

    def __init__(self, rng: random.Random):
        self.free: dict[str, list[int]] = {}
        for _city, _region, prefix, _areas in CITIES:
            numbers = list(range(0, 500))
            rng.shuffle(numbers)
            self.free[prefix] = numbers
        mobiles = list(range(0, 500))
        rng.shuffle(mobiles)
        self.free["+44 7700 900"] = mobiles

    def landline(self, prefix: str) -> str:
        return f"{prefix}{self.free[prefix].pop():04d}"

    def mobile(self) -> str | None:
        if not self.free["+44 7700 900"]:
            return None
        return f"+44 7700 900{self.free['+44 7700 900'].pop():03d}"


def pick(rng: random.Random, weights: dict[str, int]) -> str:
    names = list(weights)
    return rng.choices(names, weights=[weights[n] for n in names])[0]


def postcode(rng: random.Random, area: str) -> str:
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return f"{area} {rng.randint(1, 9)}{rng.choice(letters)}{rng.choice(letters)}"


def street(rng: random.Random) -> str:
    return f"{rng.randint(1, 240)} {rng.choice(STREETS)} {rng.choice(STREET_KINDS)}"


def margin_tier(price: float, cost: float) -> tuple[str, int]:
    margin = round((price - cost) / price * 100, 1)
    if margin >= 40:
        return "high", 6
    if margin >= 20:
        return "medium", 4
    return "low", 2


# -- generation ---------------------------------------------------------------------------


def gen_products(d: Data) -> None:
    descriptions = {
        "hardware": "Supplied, configured and delivered; standard warranty one year.",
        "software": "Subscription billed yearly in advance; cancel at the end of any year.",
        "services": "Delivered by our certified engineers; travel within the region included.",
        "support": "Covers the customer's users and devices as listed in the plan schedule.",
        "training": "Instructor-led or online; certificates for every participant.",
    }
    for code, name, category, unit, price, cost, active in PRODUCTS:
        d.add("product", {"_key": "prd_" + slug(code), "code": code, "name": name,
                          "category": category, "unit": unit, "unit_price": money(price),
                          "unit_cost": money(cost), "active": active,
                          "description": descriptions[category]})


def gen_campaigns(d: Data) -> None:
    rng = d.rng
    plans = [
        ("Spring security roadshow", "event", -420, 3, 18500, "IT managers, 50-500 staff"),
        ("Windows refresh webinar series", "webinar", -380, 60, 4200, "Existing customers"),
        ("Education buying season mailer", "direct_mail", -330, 45, 6800, "Schools and colleges"),
        ("Northern business tech expo", "trade_fair", -300, 2, 26500, "North and Scotland"),
        ("Managed IT launch", "email", -260, 30, 2500, "Customers without a support plan"),
        ("Cyber essentials awareness ads", "advertising", -220, 56, 14000, "Small businesses"),
        ("Partner referral programme", "partner", -200, 180, 9000, "Accountancy partners"),
        ("Autumn hardware promotion", "email", -150, 30, 3200, "All consenting contacts"),
        ("Healthcare IT breakfast briefings", "event", -120, 21, 7600, "Practices and care homes"),
        ("LinkedIn cloud CRM campaign", "social", -95, 45, 5400, "Sales directors"),
        ("Year-end licence renewal drive", "email", -60, 30, 1800, "Licence customers"),
        ("London tech week stand", "trade_fair", -35, 4, 32000, "London and South"),
        ("Spring backup check-up webinar", "webinar", -10, 40, 2200, "Customers with servers"),
        ("Midlands manufacturing roadshow", "event", 25, 3, 21000, "Manufacturers"),
        ("Summer device trade-in offer", "email", 55, 30, 3500, "Customers with old laptops"),
    ]
    for index, (name, kind, start, length, budget, audience) in enumerate(plans, 1):
        end = start + length
        if end < 0:
            status = "completed"
        elif start <= 0:
            status = "active"
        else:
            status = "planned"
        if index == 4:
            status = "completed"
        actual = None
        if status == "completed":
            actual = money(budget * rng.uniform(0.82, 1.12))
        elif status == "active":
            actual = money(budget * rng.uniform(0.3, 0.7))
        expected = max(10, int(budget / rng.uniform(120, 260)))
        d.when[f"cmp{index:02d}"] = start
        d.add("campaign", {"_key": f"cmp{index:02d}", "name": name, "campaign_type": kind,
                           "start_date": day(start), "end_date": day(end),
                           "target_audience": audience, "budget": money(budget),
                           "actual_cost": actual, "expected_leads": expected,
                           "status": status, "owner": "chloe.adams",
                           "description": f"{name}: aimed at {audience.lower()}."})


@dataclass
class Account:
    key: str
    name: str
    domain: str
    region: str
    city: tuple
    owner: str
    industry: str
    kind: str
    size: int  # employees
    key_account: bool
    contacts: list[str] = field(default_factory=list)
    trend: float = 1.0  # this year's buying against last year's
    orders: list[dict] = field(default_factory=list)
    person: str | None = None  # a private customer's contact key (then `key` is unused)

    @property
    def account(self) -> str | None:
        return None if self.person else self.key


def gen_accounts(d: Data, phones: Phones) -> list[Account]:
    rng = d.rng
    accounts: list[Account] = []
    names: list[tuple[str, str]] = []
    words = COMPANY_WORDS[:]
    rng.shuffle(words)
    while len(names) < 200:
        industry = pick(rng, INDUSTRY_WEIGHTS)
        word = rng.choice(words)
        kind = rng.choice(INDUSTRY_NAMES[industry])
        name = f"{word} {kind}"
        if kind not in NO_SUFFIX:
            name += " LLP" if kind in LLP else (" plc" if rng.random() < 0.05 else " Ltd")
        if d.unique("company", f"{word} {kind}") and d.unique("company_word_industry",
                                                             f"{word}|{industry}"):
            names.append((name, industry))
    for index, (name, industry) in enumerate(names, 1):
        region = rng.choices(REGIONS, weights=REGION_WEIGHTS)[0]
        city = rng.choice([c for c in CITIES if c[1] == region])
        kind = rng.choices(["customer", "prospect", "partner", "former_customer"],
                           weights=[62, 28, 4, 6])[0]
        size = int(rng.choice([8, 12, 18, 25, 35, 50, 75, 120, 180, 250, 400, 650]) *
                   rng.uniform(0.8, 1.2))
        key_account = kind == "customer" and ((size >= 250 and rng.random() < 0.5) or
                                                rng.random() < 0.04)
        owner = rng.choice(REPS[region])
        domain = slug(name.replace(" Ltd", "").replace(" plc", "").replace(" LLP", "")) + ".co.uk"
        acc = Account(f"acc{index:03d}", name, domain, region, city, owner, industry, kind,
                      size, key_account)
        acc.trend = rng.choices([1.15, 1.0, 0.85, 0.45, 0.0], weights=[35, 40, 10, 10, 5])[0]
        accounts.append(acc)
        revenue = size * rng.randint(55, 140) * 1000
        d.add("account", {
            "_key": acc.key, "name": name, "account_type": kind, "industry": industry,
            "region": region, "key_account": key_account,
            "phone": phones.landline(city[2]), "email": f"info@{domain}",
            "website": f"https://www.{domain}", "street": street(rng), "city": city[0],
            "postcode": postcode(rng, rng.choice(city[3])), "country": "United Kingdom",
            "employees": size, "annual_revenue": money(round(revenue, -4)),
            "vat_number": f"GB{rng.randint(100000000, 999999999)}",
            "next_follow_up": day(rng.randint(-6, 30)) if rng.random() < 0.3 else None,
            "owner": owner,
            "notes": "Key account: quarterly business review with the director." if key_account
            else None})
    # A few subsidiaries, to show the parent company link.
    customers = [a for a in accounts if a.kind == "customer"]
    for child, parent in zip(customers[40:46], customers[:6], strict=True):
        for rec in d.records["account"]:
            if rec["_key"] == child.key:
                rec["parent_account"] = parent.key
    return accounts


def person(rng: random.Random) -> tuple[str, str, str]:
    first = rng.choice(FIRST_NAMES)
    last = rng.choice(LAST_NAMES)
    salutation = rng.choice(["ms", "mrs", "miss"]) if first in FEMALE else "mr"
    if rng.random() < 0.04:
        salutation = "dr"
    return salutation, first, last


def local_part(first: str, last: str) -> str:
    return f"{first}.{last}".lower().replace("'", "").replace(" ", "")


def gen_contacts(d: Data, phones: Phones, accounts: list[Account]) -> list[dict]:
    rng = d.rng
    contacts: list[dict] = []
    index = 0
    for acc in accounts:
        count = 1 + min(3, acc.size // 120) + (1 if rng.random() < 0.45 else 0)
        if acc.key_account:
            count += 1
        departments = ["management", "it", "finance", "purchasing", "operations",
                       "facilities", "sales", "marketing"]
        for n in range(count):
            index += 1
            salutation, first, last = person(rng)
            if not d.unique("account_person", f"{acc.key}|{first}|{last}"):
                continue
            email = f"{local_part(first, last)}@{acc.domain}"
            if not d.unique("email", email):
                email = f"{first[0].lower()}{local_part('', last).strip('.')}@{acc.domain}"
                if not d.unique("email", email):
                    continue
            dept = departments[n] if n < 3 else rng.choice(departments[3:])
            rec = {"_key": f"con{index:03d}", "salutation": salutation, "first_name": first,
                   "last_name": last, "account": acc.key,
                   "job_title": rng.choice(JOB_TITLES[dept]), "department": dept,
                   "decision_role": DEPARTMENT_ROLE[dept], "email": email,
                   "phone": phones.landline(acc.city[2]),
                   "mobile": phones.mobile() if rng.random() < 0.55 else None,
                   "region": acc.region, "city": acc.city[0]}
            contacts.append(rec)
            acc.contacts.append(rec["_key"])
            rec["owner"] = acc.owner
    private_domains = ["example.com", "example.net", "example.org"]
    while index < 500:
        index += 1
        salutation, first, last = person(rng)
        email = f"{local_part(first, last)}{rng.randint(10, 99)}@{rng.choice(private_domains)}"
        if not d.unique("email", email):
            index -= 1
            continue
        region = rng.choices(REGIONS, weights=REGION_WEIGHTS)[0]
        city = rng.choice([c for c in CITIES if c[1] == region])
        contacts.append({"_key": f"con{index:03d}", "salutation": salutation,
                         "first_name": first, "last_name": last, "email": email,
                         "mobile": phones.mobile() or phones.landline(city[2]),
                         "region": region, "street": street(rng), "city": city[0],
                         "postcode": postcode(rng, rng.choice(city[3])),
                         "owner": rng.choice(REPS[region]), "job_title": None})
    for rec in contacts:
        if rng.random() < 0.7:
            rec["birthday"] = day(-rng.randint(24 * 365, 64 * 365))
        consent = rng.random() < 0.55
        rec["preferred_channel"] = rng.choices(["email", "phone", "sms", "post"],
                                               weights=[60, 28, 8, 4])[0]
        rec["marketing_consent"] = consent
        if consent:
            rec["consent_date"] = day(-rng.randint(20, 900))
            rec["consent_source"] = rng.choice(["web_form", "event", "phone", "email",
                                                "contract", "in_person"])
        if rng.random() < 0.05:
            rec["do_not_call"] = True
        if rng.random() < 0.12:
            rec["next_follow_up"] = day(rng.randint(-5, 25))
    # Birthdays today and this week, so the greeting automation has something to do.
    for rec, offset in zip(contacts[5:300:60], [0, 0, 1, 3, 6], strict=True):
        years = rng.randint(30, 58)
        rec["birthday"] = day(-(years * 365 + years // 4) + offset)
        rec["marketing_consent"] = True
        rec["consent_date"] = day(-rng.randint(60, 400))
        rec["consent_source"] = "web_form"
    for rec in contacts:
        d.add("contact", rec)
    return contacts


def line_items(rng: random.Random, acc: Account, big: bool) -> list[tuple[str, float, float]]:
    """(product key, quantity, unit price) for one order or quote."""
    active = [p for p in PRODUCTS if p[6]]
    weights = []
    for code, _name, category, *_rest in active:
        w = {"hardware": 5, "software": 4, "services": 3, "support": 2, "training": 1}[category]
        if code in ("HW-SV01", "HW-NS01", "HW-FW01", "HW-SW48") and (acc.size < 40 or
                                                                     not big):
            w = 0.4
        weights.append(w)
    count = rng.choices([1, 2, 3, 4, 5], weights=[34, 34, 20, 8, 4])[0] + (1 if big else 0)
    chosen: list[tuple] = []
    while len(chosen) < count:
        product = rng.choices(active, weights=weights)[0]
        if product not in chosen:
            chosen.append(product)
    users = max(5, int(acc.size * rng.uniform(0.1, 0.4)))
    lines = []
    discount_pool = [0, 0, 0, 0, 3, 5, 5, 8, 10, 10, 12, 15]
    deal_discount = rng.choice(discount_pool)
    if rng.random() < 0.05:
        deal_discount = rng.choice([18, 22, 28])
    for code, _name, category, unit, price, _cost, _active in chosen:
        low, high = QUANTITY[unit]
        if unit == "licence":
            qty = min(users, rng.randint(low, high))
        elif unit == "each" and category == "hardware" and price > 1000:
            qty = rng.randint(1, 3 if big else 2)
        elif unit == "each" and category == "hardware":
            qty = min(users, rng.randint(low, high))
        elif code == "SV-MIG":
            qty = users
        elif code == "SP-MIT":
            qty = 12 * min(users, 20)
        elif code in ("SV-NET", "SV-CYB"):
            qty = 1
        elif code == "TR-SEC":
            qty = users
        else:
            qty = rng.randint(low, high)
        unit_price = float(money(price * (100 - deal_discount) / 100))
        lines.append(("prd_" + slug(code), qty, unit_price))
    return lines


def totals(lines: list[tuple[str, float, float]]) -> tuple[Decimal, Decimal, Decimal]:
    """(list total, total, cost) of lines, as the formulas and rollups compute them."""
    by_key = {"prd_" + slug(p[0]): p for p in PRODUCTS}
    list_total = total = cost = Decimal(0)
    for key, qty, price in lines:
        product = by_key[key]
        list_total += money(qty * product[4])
        total += money(Decimal(str(qty)) * Decimal(str(price)))
        cost += money(qty * product[5])
    return list_total, total, cost


def add_lines(d: Data, entity: str, parent_field: str, parent: str,
              lines: list[tuple[str, float, float]]) -> list[dict]:
    result = []
    for key, qty, price in lines:
        n = d.next(entity)
        rec = d.add(entity, {"_key": f"{'ql' if entity == 'quote_line' else 'ol'}{n:04d}",
                             parent_field: parent, "product": key, "quantity": qty,
                             "unit_price": money(price)})
        result.append(rec)
    return result


def gen_sales(d: Data, accounts: list[Account], contacts: list[dict]) -> None:
    """Two years of orders (some from won deals with accepted quotes), open and lost deals,
    and the leads the newer deals came from."""
    rng = d.rng
    by_key = {"prd_" + slug(p[0]): p for p in PRODUCTS}
    campaign_keys = [f"cmp{i:02d}" for i in range(1, 14)]
    orders: list[dict] = []

    def reviewer(owner: str) -> str:
        return MANAGER.get(owner, "claire.dawson")

    def new_opportunity(acc: Account, status: str, close: int, amount: Decimal | None,
                        lines: list | None = None) -> dict:
        n = d.next("opportunity")
        contact = rng.choice(acc.contacts) if acc.contacts else None
        main = by_key[lines[0][0]][1] if lines else rng.choice(PRODUCTS[1:])[1]
        topic = rng.choice(["refresh", "rollout", "upgrade", "project", "renewal", "expansion"])
        d.when[f"opp{n:03d}"] = close
        rec = {"_key": f"opp{n:03d}", "name": f"{acc.name.split(' ')[0]} — "
               f"{main.split(',')[0].lower()} {topic}", "account": acc.key,
               "contact": contact, "opportunity_type": rng.choices(
                   ["new_business", "upsell", "renewal", "replacement"],
                   weights=[40, 30, 18, 12])[0] if acc.kind == "customer" else "new_business",
               "amount": amount if amount is not None else money(rng.randint(20, 900) * 100),
               "expected_close": day(close), "stage": status, "owner": acc.owner}
        started = [k for k in campaign_keys if d.when[k] < close - 14]
        if started and rng.random() < 0.25:
            rec["campaign"] = rng.choice(started)
        if status in ("won", "lost"):
            rec["closed_on"] = day(close)
        if status == "lost":
            rec["loss_reason"] = rng.choices(["price", "competitor", "no_decision", "timing",
                                              "product_fit", "other"],
                                             weights=[30, 28, 18, 12, 8, 4])[0]
            if rec["loss_reason"] == "competitor":
                rec["competitor"] = rng.choice(["Brightwire IT", "Northern Computer Services",
                                                "Capital Tech Partners", "a local reseller"])
        if status not in ("won", "lost"):
            rec["next_step"] = rng.choice(["Send revised proposal", "Book a site survey",
                                           "Demo to the finance team", "Agree delivery dates",
                                           "Meet the decision maker", "Call about budget"])
            if rng.random() < 0.6:
                rec["next_follow_up"] = day(rng.randint(-4, 14))
        if rng.random() < 0.3:
            rec["description"] = f"{acc.name} ({acc.size} staff) asked about "\
                f"{main.split(',')[0].lower()}."
        return d.add("opportunity", rec)

    def new_quote(acc: Account, opp: dict | None, status: str, created: int,
                  lines: list) -> dict:
        n = d.next("quote")
        rec = {"_key": f"quo{n:03d}", "opportunity": opp["_key"] if opp else None,
               "account": acc.key, "contact": opp.get("contact") if opp else None,
               "reviewer": reviewer(acc.owner),
               "valid_until": day(created + 30 if status != "draft" else max(created + 30, 7)),
               "payment_terms": rng.choice(["net_30", "net_30", "net_14", "net_60"]),
               "status": status, "owner": acc.owner}
        if status in ("sent", "accepted", "declined", "expired"):
            rec["sent_on"] = day(created + 2)
        if status == "accepted":
            rec["accepted_on"] = day(min(created + rng.randint(5, 20), 0))
        if opp is not None and "proposed_on" not in opp:
            opp["proposed_on"] = day(created)
        if status == "sent":
            rec["valid_until"] = day(max(created + 30, 3))
        if status == "declined":
            rec["decline_reason"] = rng.choice(["Went with a cheaper offer", "Budget frozen",
                                                "Project postponed to next year"])
        if rec["contact"] is None and acc.contacts:
            rec["contact"] = acc.contacts[0]
        d.add("quote", rec)
        add_lines(d, "quote_line", "quote", rec["_key"], lines)
        return rec

    def new_order(acc: Account, when: int, lines: list, quote: dict | None,
                  opp: dict | None) -> dict:
        n = d.next("order")
        age = -when
        if age > 75:
            status = "closed"
        elif age > 25:
            status = rng.choices(["fulfilled", "closed"], weights=[60, 40])[0]
        elif age > 5:
            status = rng.choices(["confirmed", "fulfilled"], weights=[55, 45])[0]
        else:
            status = rng.choices(["draft", "confirmed"], weights=[40, 60])[0]
        if rng.random() < 0.03 and age > 10:
            status = "cancelled"
        list_total, total, cost = totals(lines)
        rec = {"_key": f"ord{n:03d}", "quote": quote["_key"] if quote else None,
               "opportunity": opp["_key"] if opp else None, "account": acc.account,
               "contact": acc.person or (quote or {}).get("contact") or (
                   rng.choice(acc.contacts) if acc.contacts else None),
               "customer_reference": f"PO-{rng.randint(10000, 99999)}"
               if rng.random() < 0.6 else None,
               "ordered_on": day(when), "reviewer": reviewer(acc.owner),
               "payment_terms": "instalments" if total >= 20000 and rng.random() < 0.5
               else rng.choice(["net_30", "net_30", "net_14", "net_60", "prepayment"]),
               "contract_required": total >= 20000 and not acc.person, "status": status,
               "owner": acc.owner}
        if status != "draft":
            rec["confirmed_on"] = day(min(when + rng.randint(0, 2), 0))
        if status in ("fulfilled", "closed"):
            rec["delivery_date"] = day(when + rng.randint(2, min(20, age)))
        elif status == "confirmed":
            rec["delivery_date"] = day(when + rng.randint(age + 1, age + 15))
        if status == "cancelled":
            rec["cancel_reason"] = rng.choice(["Customer cancelled the project",
                                               "Ordered twice by mistake",
                                               "Stock not available in time"])
        d.add("order", rec)
        order_lines = add_lines(d, "order_line", "order", rec["_key"], lines)
        orders.append({"rec": rec, "lines": order_lines, "total": total, "cost": cost,
                       "list_total": list_total, "acc": acc, "age": age})
        acc.orders.append(rec)
        return rec

    # Order history of customers (and the former customers' last year).
    for acc in accounts:
        if acc.kind not in ("customer", "former_customer", "partner"):
            continue
        yearly = 1 + (1 if acc.size >= 250 else 0) + (1 if acc.key_account else 0)
        yearly += 1 if rng.random() < 0.1 else 0
        bought = {1: Decimal(0), 0: Decimal(0)}
        for year in (1, 0):  # 1 = the 12 months before, 0 = the last 12 months
            count = yearly
            if year == 0:
                count = 0 if acc.kind == "former_customer" else round(yearly * acc.trend)
            for _ in range(count):
                when = -(year * 365 + rng.randint(1, 364))
                big = rng.random() < 0.35
                lines = line_items(rng, acc, big)
                bought[year] += totals(lines)[1]
                opp = quote = None
                if year == 0 and rng.random() < 0.45:
                    list_total, total, _cost = totals(lines)
                    opp = new_opportunity(acc, "won", when, total, lines)
                    quote = new_quote(acc, opp, "accepted", when - rng.randint(7, 30), lines)
                new_order(acc, when, lines, quote, opp)
        if acc.trend >= 0.85 and acc.kind != "former_customer" and \
                bought[0] < bought[1] * Decimal("0.9"):
            # A steady customer keeps buying about as much as before: a consulting project.
            days = int((bought[1] * Decimal("0.95") - bought[0]) / 950) + 1
            new_order(acc, -rng.randint(20, 300), [("prd_svcons", days, 950.0)], None, None)

    # Private customers: small orders of laptops, monitors, training and support.
    private = [c for c in contacts if "account" not in c]
    for contact in private[::3]:
        acc = Account(contact["_key"], contact["last_name"], "", contact["region"],
                      next(c for c in CITIES if c[0] == contact["city"]), contact["owner"],
                      "retail", "customer", 1, False, person=contact["_key"])
        for _ in range(rng.choice([1, 1, 2, 3])):
            lines = [("prd_" + slug(code), qty, float(money(price * rng.choice([1, 1, 0.95]))))
                     for code, qty, price in rng.sample(
                         [("HW-LT14", 1, 899), ("HW-LT16", 1, 1249), ("HW-MN27", 2, 289),
                          ("HW-DK01", 1, 189), ("HW-HS01", 1, 129), ("TR-ESS", 1, 1200),
                          ("SP-HW3", 1, 149), ("SW-OFF", 1, 150), ("SW-SEC", 3, 45)],
                         rng.choice([1, 2, 3]))]
            new_order(acc, -rng.randint(3, 700), lines, None, None)

    # This week's orders, waiting for their reviewer or just confirmed.
    recent = [a for a in accounts if a.kind == "customer"]
    for acc in rng.sample(recent, 14):
        new_order(acc, -rng.randint(0, 4), line_items(rng, acc, rng.random() < 0.3), None, None)

    # Open and lost deals, some with quotes.
    prospects = [a for a in accounts if a.kind in ("prospect", "customer")]
    open_stages = ["prospecting", "qualification", "needs_analysis", "proposal", "negotiation"]
    converted_deals: list[tuple[dict, Account]] = []
    for _ in range(125):
        acc = rng.choice(prospects)
        status = rng.choices(open_stages, weights=[18, 22, 20, 24, 16])[0]
        lines = line_items(rng, acc, rng.random() < 0.3)
        _list_total, total, _cost = totals(lines)
        close = rng.randint(-20, 120) if status in ("proposal", "negotiation") else \
            rng.randint(10, 150)
        opp = new_opportunity(acc, status, close, total, lines)
        if status in ("proposal", "negotiation"):
            quote_status = "sent" if status == "negotiation" else rng.choice(
                ["draft", "approved", "sent"])
            new_quote(acc, opp, quote_status, -rng.randint(3, 20), lines)
        if acc.kind == "prospect":
            converted_deals.append((opp, acc))
    for _ in range(70):
        acc = rng.choice(prospects)
        lines = line_items(rng, acc, rng.random() < 0.3)
        _list_total, total, _cost = totals(lines)
        close = -rng.randint(5, 330)
        opp = new_opportunity(acc, "lost", close, total, lines)
        if rng.random() < 0.5:
            new_quote(acc, opp, rng.choice(["declined", "declined", "expired"]),
                      close - rng.randint(20, 40), lines)
        if acc.kind == "prospect":
            converted_deals.append((opp, acc))

    gen_contracts_and_payments(d, orders)
    gen_commissions(d, orders)
    gen_leads(d, accounts, contacts, converted_deals)
    gen_invoices_for_orders(d, orders)


def gen_contracts_and_payments(d: Data, orders: list[dict]) -> None:
    rng = d.rng
    for order in orders:
        rec, acc, age = order["rec"], order["acc"], order["age"]
        if not rec["contract_required"] or rec["status"] in ("draft", "cancelled"):
            continue
        n = d.next("contract")
        start = -age + rng.randint(5, 14)
        length = rng.choice([365, 365, 730, 1095])
        end = start + length
        if age < 12:
            status = rng.choice(["draft", "approved"])
        elif end < 0:
            status = "completed"
        else:
            status = "signed"
        if status == "signed" and rng.random() < 0.03:
            status = "terminated"
        value = order["total"]
        contract = {"_key": f"ctr{n:03d}", "title": f"Supply and support agreement — "
                    f"{acc.name}", "order": rec["_key"], "account": acc.key,
                    "contact": rec["contact"], "value": value, "start_date": day(start),
                    "end_date": day(end), "renewal": rng.choice(["manual", "automatic",
                                                                  "none"]),
                    "notice_days": rng.choice([30, 60, 90]), "reviewer": rec["reviewer"],
                    "status": status, "owner": acc.owner}
        if status in ("signed", "completed", "terminated"):
            contract["signed_on"] = day(min(start - 1, -1))
        if status == "terminated":
            contract["termination_reason"] = "Customer sold the business; agreed early exit."
        d.add("contract", contract)
        if status not in ("signed", "completed", "terminated") or \
                rec["payment_terms"] != "instalments":
            continue
        contract["billing_started"] = True
        gen_payment_plan(d, contract, acc, start, status)


def gen_payment_plan(d: Data, contract: dict, acc: Account, start: int, status: str) -> None:
    rng = d.rng
    n = d.next("payment_plan")
    frequency = rng.choice(["monthly", "monthly", "quarterly"])
    count = 12 if frequency == "monthly" else 4
    interval = 30 if frequency == "monthly" else 91
    total = contract["value"]
    instalment = money(total / count)
    first_due = start + 30
    scheduled = 0
    due = first_due
    key = f"pp{n:03d}"
    paid_total = Decimal(0)
    instalments = []
    while scheduled < count and due <= 14:
        scheduled += 1
        amount = total - instalment * (count - 1) if scheduled == count else instalment
        if due < -35:
            state = "paid" if rng.random() > 0.03 else "overdue"
        elif due < 0:
            state = rng.choices(["paid", "overdue", "invoiced"], weights=[70, 15, 15])[0]
        else:
            state = "invoiced" if due < 7 else "scheduled"
        if status == "terminated" and due > -60:
            break
        d.when[f"{key}_{scheduled:02d}"] = due
        inst = {"_key": f"{key}_{scheduled:02d}", "payment_plan": key, "sequence": scheduled,
                "due_on": day(due), "amount": amount, "status": state, "owner": acc.owner}
        if state == "paid":
            inst["paid_on"] = day(min(due + rng.randint(-3, 12), 0))
            paid_total += amount
        if state == "overdue":
            inst["reminder_count"] = rng.randint(1, 2)
        instalments.append(inst)
        due += interval
    plan_status = "active"
    if scheduled == count and paid_total == total:
        plan_status = "completed"
    elif any(i["status"] == "overdue" for i in instalments) and rng.random() < 0.3:
        plan_status = "defaulted"
    if status == "terminated":
        plan_status = "cancelled"
    d.add("payment_plan", {"_key": key, "contract": contract["_key"], "account": acc.key,
                           "total_amount": total, "instalment_count": count,
                           "frequency": frequency, "first_due_on": day(first_due),
                           "next_due_on": day(due) if scheduled < count else None,
                           "instalments_scheduled": scheduled,
                           "reviewer": contract["reviewer"], "status": plan_status,
                           "owner": acc.owner})
    for inst in instalments:
        d.add("instalment", inst)
        if d.when[inst["_key"]] >= 0:
            continue  # the instalment's own automation asks for this invoice
        state = inst["status"]
        ir_status = {"paid": "paid", "overdue": "invoiced", "invoiced": "invoiced",
                     "scheduled": "approved"}[state]
        invoice_request(d, acc, ir_status, inst["amount"],
                        f"Instalment {inst['sequence']} of {count}, plan PP-{n:05d}",
                        d.when[inst["_key"]], contract["reviewer"], paid=inst.get("paid_on"),
                        contract=contract["_key"], payment_plan=key, instalment=inst["_key"])


def invoice_request(d: Data, acc: Account, status: str, amount: Decimal, description: str,
                    due: int, reviewer: str, paid: str | None = None, **links: str) -> None:
    n = d.next("invoice_request")
    rec: dict[str, Any] = {"_key": f"ir{n:04d}", "account": acc.account,
                           "contact": acc.person, **links,
                           "description": description, "amount": amount, "due_on": day(due),
                           "reviewer": reviewer, "status": status, "owner": acc.owner}
    if status in ("invoiced", "paid"):
        rec["invoice_number"] = f"INV-{40000 + n}"
        rec["invoiced_on"] = day(min(due - 30, 0))
    if status == "paid":
        rec["paid_on"] = paid or day(min(due + 5, 0))
    d.add("invoice_request", rec)


def gen_invoices_for_orders(d: Data, orders: list[dict]) -> None:
    rng = d.rng
    for order in orders:
        rec, acc, age = order["rec"], order["acc"], order["age"]
        if rec["contract_required"] or rec["status"] not in ("fulfilled", "closed") or \
                age > 150 + (400 if acc.person else 0):
            continue
        due = -age + 30
        if rec["status"] == "closed" or due < -10:
            status = "paid"
        else:
            status = rng.choices(["invoiced", "approved", "draft"], weights=[60, 25, 15])[0]
        reference = rec.get("customer_reference")
        rec["invoice_requested_on"] = day(min(due - 30, 0))
        invoice_request(d, acc, status, order["total"],
                        f"Delivered order, customer PO {reference}" if reference
                        else "Delivered order", due, rec["reviewer"], order=rec["_key"])


def gen_commissions(d: Data, orders: list[dict]) -> None:
    rng = d.rng
    by_key = {"prd_" + slug(p[0]): p for p in PRODUCTS}
    for order in orders:
        rec, age = order["rec"], order["age"]
        if age > 270 or rec["status"] == "draft":
            continue
        for line in order["lines"]:
            product = by_key[line["product"]]
            tier, rate = margin_tier(product[4], product[5])
            basis = money(Decimal(str(line["quantity"])) * line["unit_price"])
            com: dict[str, Any] = {
                "_key": "cm_" + line["_key"], "rep": rec["owner"], "order": rec["_key"],
                "order_line": line["_key"], "product": line["product"], "profit_tier": tier,
                "basis": basis, "standard_rate_pct": rate, "rate_pct": rate,
                "accrued_on": rec["ordered_on"], "owner": rec["owner"]}
            if rng.random() < 0.04:
                com["rate_pct"] = rate + rng.choice([1, 2])
                com["override_reason"] = rng.choice([
                    "Strategic new logo agreed with the director",
                    "Rep carried the installation project as well",
                    "Compensates a split with a colleague's territory"])
            if rec["status"] == "cancelled":
                com["status"] = "cancelled"
                com["cancel_reason"] = "The order was cancelled."
            elif age > 60:
                com["status"] = "paid"
                month_end = -((age - 45) // 30 * 30)
                com["paid_on"] = day(min(month_end, -1))
                com["payroll_reference"] = f"PAYROLL-{(age - 45) // 30:02d}M"
            elif age > 25:
                com["status"] = "approved"
            else:
                com["status"] = "accrued"
            d.add("commission", com)


def gen_leads(d: Data, accounts: list[Account], contacts: list[dict],
              converted_deals: list[tuple[dict, Account]]) -> None:
    rng = d.rng
    campaign_keys = [f"cmp{i:02d}" for i in range(1, 14)]
    sources = {"web": 30, "referral": 14, "trade_fair": 9, "campaign": 14, "cold_call": 10,
               "partner": 7, "social": 7, "advertisement": 6, "other": 3}
    interests = ["hardware", "software", "services", "support", "training"]
    words = COMPANY_WORDS[:]
    lead_phones: dict[str, list[int]] = {}
    for _city, _region, prefix, _areas in CITIES:
        numbers = list(range(500, 750))  # real_estate's leads use 0750-0999
        rng.shuffle(numbers)
        lead_phones[prefix] = numbers
    index = 0

    def base(first: str, last: str, company: str, region: str, domain: str) -> dict:
        nonlocal index
        index += 1
        city = rng.choice([c for c in CITIES if c[1] == region])
        email = f"{local_part(first, last)}@{domain}"
        if not d.unique("lead_email", email):
            email = f"{local_part(first, last)}{index}@{domain}"
            d.unique("lead_email", email)
        source = pick(rng, sources)
        rec = {"_key": f"ld{index:04d}", "first_name": first, "last_name": last,
               "company": company, "job_title": rng.choice(
                   JOB_TITLES[rng.choice(["management", "it", "purchasing", "finance",
                                          "operations"])]),
               "email": email, "phone": f"{city[2]}{lead_phones[city[2]].pop():04d}"
               if rng.random() < 0.8 else None, "source": source, "region": region,
               "interest": rng.choice(interests), "rating": rng.choices(
                   ["hot", "warm", "cold"], weights=[20, 50, 30])[0]}
        if source in ("campaign", "trade_fair", "advertisement", "social"):
            rec["campaign"] = rng.choice(campaign_keys)
        return rec

    # Leads that became the prospects' deals (the first deal of each prospect).
    seen: set[str] = set()
    for opp, acc in converted_deals:
        contact = next((c for c in contacts if c["_key"] in acc.contacts[:1]), None)
        if contact is None or acc.key in seen:
            continue
        seen.add(acc.key)
        received = min(d.when[opp["_key"]], 0) - rng.randint(30, 120)
        rec = base(contact["first_name"], contact["last_name"], acc.name, acc.region,
                   acc.domain)
        rec["email"] = contact["email"]
        rec.update({"received_on": day(received), "estimated_value": opp["amount"],
                    "status": "converted", "converted_on": day(received + rng.randint(5, 25)),
                    "owner": acc.owner, "claimed_at": moment(received * 24 + 2)})
        opp["lead"] = rec["_key"]
        contact["source_lead"] = rec["_key"]
        d.add("lead", rec)
    # Everybody else who asked.
    while index < 600:
        region = rng.choices(REGIONS, weights=REGION_WEIGHTS)[0]
        _salutation, first, last = person(rng)
        company = f"{rng.choice(words)} {rng.choice(INDUSTRY_NAMES[pick(rng, INDUSTRY_WEIGHTS)])}"
        if not d.unique("lead_company", company):
            continue
        domain = slug(company) + ".co.uk"
        rec = base(first, last, company + " Ltd", region, domain)
        age = int(rng.triangular(0, 365, 20))
        rec["received_on"] = day(-age)
        if age > 120:
            status = rng.choices(["converted", "lost", "qualified", "contacted"],
                                 weights=[18, 70, 6, 6])[0]
        elif age > 30:
            status = rng.choices(["lost", "qualified", "contacted", "new", "converted"],
                                 weights=[35, 22, 28, 8, 7])[0]
        else:
            status = rng.choices(["new", "contacted", "qualified", "lost"],
                                 weights=[45, 32, 15, 8])[0]
        rec["status"] = status
        rec["estimated_value"] = money(rng.randint(8, 400) * 250) if status != "new" or \
            rng.random() < 0.4 else None
        owner = rng.choice(REPS[region])
        in_pool = status in ("new", "contacted") and rng.random() < 0.14
        if in_pool:  # returned to the pool by an earlier owner
            rec["previous_owner"] = owner
            rec["returned_to_pool_at"] = moment(-rng.randint(2, 200))
        else:
            rec["owner"] = owner
            rec["claimed_at"] = moment(-age * 24 + rng.randint(1, 20))
        if status in ("new", "contacted", "qualified") and not in_pool:
            # Owned open leads have a follow-up planned (the pool rule takes back the others
            # after 7 days); only recently claimed ones may be overdue.
            rec["next_follow_up"] = day(rng.randint(-3, 10) if age <= 6 else rng.randint(0, 12))
        if status == "lost":
            rec["lost_reason"] = rng.choices(
                ["no_budget", "no_need", "competitor", "no_response", "bad_timing",
                 "duplicate", "other"], weights=[20, 18, 16, 26, 12, 4, 4])[0]
        if status == "converted":
            rec["converted_on"] = day(min(-age + rng.randint(5, 25), 0))
        if rng.random() < 0.3:
            rec["description"] = rng.choice([
                "Asked for a quote for new laptops for the office.",
                "Wants to move e-mail to the cloud before their server contract ends.",
                "Looking for a support partner; current provider is slow to respond.",
                "Interested in security training for all staff after a phishing incident.",
                "Needs Wi-Fi in a new warehouse extension.",
                "Opening a second site in the spring; needs network and phones.",
            ])
        d.add("lead", rec)


def gen_tickets(d: Data, accounts: list[Account], contacts: list[dict]) -> None:
    rng = d.rng
    customers = [a for a in accounts if a.orders]
    kb_keys = [f"kb{i:02d}" for i in range(1, len(KB_ARTICLES) + 1)]
    product_keys = ["prd_" + slug(p[0]) for p in PRODUCTS]
    subjects = {
        "question": ["How do I add a new starter's licence?", "Which support plan covers weekends?",
                     "Can we move our renewal date?", "Question about the last invoice",
                     "How do we reset the admin password?"],
        "return": ["Return of a damaged monitor", "Wrong docking stations delivered",
                   "Return surplus headsets", "Laptop arrived with a cracked screen"],
        "repair": ["Laptop will not charge", "Server disk failure", "Printer paper jams daily",
                   "UPS battery alarm", "Storage volume degraded"],
        "onsite_service": ["Install new meeting room camera", "Network cabinet tidy-up",
                           "Set up laptops for new starters", "Wi-Fi survey of the warehouse"],
        "complaint": ["Engineer arrived two hours late", "Invoice charged the wrong price",
                      "Delivery left outside in the rain", "Repeated backup failures",
                      "Nobody called back as promised"],
    }
    for index in range(1, 251):
        acc = rng.choice(customers)
        kind = rng.choices(list(subjects), weights=[34, 14, 24, 14, 14])[0]
        if acc.key_account and rng.random() < 0.25:
            kind = "complaint"
        priority = rng.choices(["low", "normal", "high", "urgent"], weights=[18, 52, 22, 8])[0]
        hours_ago = rng.randint(1, 24 * 7) if rng.random() < 0.22 else \
            int(rng.triangular(1, 180 * 24, 100))
        sla = {"urgent": 4, "high": 8, "normal": 24, "low": 72}[priority]
        if hours_ago > 24 * 14:
            status = rng.choices(["closed", "cancelled"], weights=[96, 4])[0]
        elif hours_ago > 24 * 5:
            status = rng.choices(["closed", "resolved", "waiting_on_customer", "in_progress"],
                                 weights=[60, 20, 10, 10])[0]
        else:
            status = rng.choices(["new", "in_progress", "waiting_on_customer", "resolved"],
                                 weights=[30, 40, 15, 15])[0]
        if status == "cancelled" and kind in ("complaint", "return"):
            status = "closed"
        contact = rng.choice(acc.contacts) if acc.contacts else None
        order = rng.choice(acc.orders)
        rec: dict[str, Any] = {
            "_key": f"tck{index:03d}", "subject": rng.choice(subjects[kind]),
            "ticket_type": kind, "priority": priority,
            "channel": rng.choices(["phone", "email", "web", "chat", "visit"],
                                   weights=[40, 30, 18, 10, 2])[0],
            "account": acc.key, "contact": contact,
            "order": order["_key"] if kind in ("return", "repair", "complaint") else None,
            "product": rng.choice(product_keys) if kind in ("return", "repair",
                                                             "onsite_service") else None,
            "description": "Reported by the customer: " + rng.choice([
                "it started this morning and affects several people.",
                "the problem comes back every few days.",
                "they need it fixed before a visit from their own customer.",
                "it is the second time this month.",
                "they would like a call back before noon."]),
            "opened_at": moment(-hours_ago), "status": status,
            "owner": rng.choice(SUPPORT)}
        if kind in ("return", "repair", "onsite_service"):
            rec["serial_number"] = f"SN{rng.randint(10000000, 99999999)}"
        if kind == "return":
            rec["return_authorisation"] = f"RMA-{rng.randint(20000, 29999)}"
        if kind == "onsite_service":
            rec["visit_on"] = day(-(hours_ago // 24) + rng.randint(1, 6))
            rec["visit_address"] = f"{street(rng)}, {acc.city[0]}"
        if kind == "complaint" and rng.random() < 0.4:
            rec["compensation"] = money(rng.choice([50, 100, 150, 250, 400]))
        if rng.random() < 0.4 and kind in ("question", "repair", "return"):
            rec["kb_article"] = rng.choice(kb_keys)
        open_now = status in ("new", "in_progress", "waiting_on_customer")
        if status != "new":
            rec["first_response_at"] = moment(-hours_ago + rng.randint(0, min(sla, 4)))
        if status in ("resolved", "closed"):
            took = rng.randint(1, max(2, int(sla * rng.uniform(0.3, 1.6))))
            took = min(took, hours_ago - 1)
            resolved = -hours_ago + took
            rec["resolution"] = rng.choice([
                "Fixed remotely; the customer confirmed it works.",
                "Replacement shipped and the faulty unit collected.",
                "Explained the setting; sent the knowledge base article.",
                "Engineer visited and replaced the part.",
                "Credit note issued and apology sent by the service manager."])
            if took > sla:
                rec["sla_breached"] = True
                rec["escalation_level"] = "1"
            if status == "resolved" and hours_ago - took > 24 * 5:
                resolved = -rng.randint(24, 24 * 4)
            rec["resolved_at"] = moment(resolved)
        if status == "closed":
            closed = min(resolved + rng.randint(24, 120), -1)
            rec["closed_at"] = moment(closed)
            d.when[rec["_key"]] = closed
        if open_now and hours_ago > sla:
            rec["sla_breached"] = True
            rec["escalation_level"] = "2" if hours_ago > sla + 24 else "1"
        d.add("ticket", rec)


def gen_surveys(d: Data) -> None:
    rng = d.rng
    comments = {5: ["Quick and friendly, thank you.", "Sorted in one call.",
                    "Engineer was excellent."],
                4: ["Good, but it took a couple of days.", "Happy with the outcome."],
                3: ["Fine in the end, but we had to chase.", "Average."],
                2: ["Took far too long.", "Had to explain the problem three times."],
                1: ["Still not working properly.", "Very disappointed with the service."]}
    n = 0
    for ticket in d.records["ticket"]:
        if ticket["status"] != "closed" or ticket.get("contact") is None or rng.random() < 0.15:
            continue
        n += 1
        sent = -(-d.when[ticket["_key"]] // 24)
        rec: dict[str, Any] = {"_key": f"srv{n:03d}", "ticket": ticket["_key"],
                               "contact": ticket["contact"], "account": ticket["account"],
                               "sent_on": day(sent), "owner": ticket["owner"]}
        if rng.random() < 0.62 and sent < -1:
            score = rng.choices([5, 4, 3, 2, 1], weights=[42, 30, 14, 9, 5])[0]
            if ticket.get("sla_breached"):
                score = max(1, score - 1)
            if ticket["ticket_type"] == "complaint":
                score = max(1, score - 1)
            rec.update({"responded_on": day(min(sent + rng.randint(0, 3), 0)), "score": score,
                        "would_recommend": max(0, min(10, score * 2 + rng.randint(-2, 1))),
                        "solved_first_time": score >= 4 and rng.random() < 0.8,
                        "comment": rng.choice(comments[score])
                        if rng.random() < 0.6 else None,
                        "follow_up_done": score <= 2 and rng.random() < 0.7})
            ticket["satisfaction_score"] = score
        d.add("satisfaction_survey", rec)


def gen_kb(d: Data) -> None:
    rng = d.rng
    for index, (title, category, product, keywords, symptoms, cause, solution) in enumerate(
            KB_ARTICLES, 1):
        status = "published"
        if index in (7, 19):
            status = "draft"
        if index == 25:
            status = "archived"
        d.add("kb_article", {"_key": f"kb{index:02d}", "title": title, "category": category,
                             "product": "prd_" + slug(product) if product else None,
                             "keywords": keywords, "symptoms": symptoms,
                             "cause": cause or None, "solution": solution,
                             "internal_only": index in (15, 23),
                             "reviewed_on": day(-rng.randint(10, 420)), "status": status,
                             "owner": rng.choice(SUPPORT + ["daniel.osei"])})


def gen_tasks_and_activities(d: Data, accounts: list[Account]) -> None:
    rng = d.rng
    leads = [r for r in d.records["lead"] if r.get("owner") and
             r["status"] in ("new", "contacted", "qualified")]
    opps = [r for r in d.records["opportunity"] if r["stage"] not in ("won", "lost")]
    customers = [a for a in accounts if a.contacts]
    task_subjects = ["Call back about the renewal", "Send the revised proposal",
                     "Book the site survey", "Chase the signed contract",
                     "Confirm delivery date with the warehouse", "Prepare quarterly review",
                     "Introduce the new support plan", "Check the customer received the invoice"]
    for index in range(1, 141):
        acc = rng.choice(customers)
        owner = acc.owner
        due = rng.randint(-10, 21)
        status = "open" if due >= -3 or rng.random() < 0.3 else rng.choice(["done", "done",
                                                                            "cancelled"])
        rec = {"_key": f"tsk{index:03d}", "subject": rng.choice(task_subjects),
               "task_type": rng.choice(["call", "email", "meeting", "visit", "follow_up",
                                        "to_do"]), "assignee": owner, "due_on": day(due),
               "priority": rng.choices(["low", "normal", "high"], weights=[20, 60, 20])[0],
               "account": acc.key, "contact": rng.choice(acc.contacts), "status": status,
               "owner": owner}
        if status == "done":
            rec["done_on"] = day(min(due + rng.randint(-2, 2), 0))
        d.add("task", rec)
    outcomes = ["reached", "no_answer", "left_message", "meeting_booked", "not_interested",
                "rescheduled"]
    for index in range(1, 251):
        kind = rng.choices(["call", "meeting", "visit", "email", "note"],
                           weights=[40, 18, 14, 18, 10])[0]
        future = kind in ("call", "meeting", "visit") and rng.random() < 0.18
        hours = rng.randint(2, 24 * 14) if future else -rng.randint(2, 24 * 120)
        rec: dict[str, Any] = {"_key": f"act{index:03d}", "activity_type": kind,
                               "direction": rng.choices(["outbound", "inbound"],
                                                        weights=[75, 25])[0],
                               "starts_at": moment(hours), "done": not future}
        target = rng.random()
        if target < 0.3 and leads:
            lead = rng.choice(leads)
            rec["lead"] = lead["_key"]
            rec["owner"] = lead["owner"]
            who = f"{lead['first_name']} {lead['last_name']}"
        elif target < 0.55 and opps:
            opp = rng.choice(opps)
            rec["opportunity"] = opp["_key"]
            rec["account"] = opp["account"]
            rec["contact"] = opp.get("contact")
            rec["owner"] = opp["owner"]
            who = opp["name"]
        else:
            acc = rng.choice(customers)
            rec["account"] = acc.key
            rec["contact"] = rng.choice(acc.contacts)
            rec["owner"] = acc.owner
            who = acc.name
        rec["subject"] = {"call": f"Call with {who}", "meeting": f"Meeting: {who}",
                          "visit": f"Visit to {who}", "email": f"E-mail to {who}",
                          "note": f"Note on {who}"}[kind]
        if kind in ("meeting", "visit"):
            rec["ends_at"] = moment(hours + rng.choice([1, 1, 2, 3]))
            rec["location"] = rng.choice(["Customer's office", "Our showroom",
                                          "Video call", "Customer's warehouse"])
        if not future:
            rec["outcome"] = rng.choice(outcomes) if kind in ("call", "meeting", "visit") \
                else None
            rec["summary"] = rng.choice([
                "Discussed next year's budget; they expect to order in the spring.",
                "They are happy with the service; asked about extra licences.",
                "Decision maker away; call again next week.",
                "Walked through the proposal line by line; price is the open point.",
                "Agreed the delivery plan with the office manager."])
            if rng.random() < 0.2:
                rec["next_follow_up"] = day(rng.randint(-2, 20))
        if future and hours <= 24:
            rec["reminder_sent"] = True
        d.add("activity", rec)


def gen_messages(d: Data, contacts: list[dict]) -> None:
    rng = d.rng
    consenting = [c for c in contacts if c.get("marketing_consent") and c.get("email")]
    n = 0
    for contact in consenting[:40]:
        n += 1
        sent = -rng.randint(1, 200)
        d.add("customer_message", {
            "_key": f"msg{n:03d}", "contact": contact["_key"], "account": contact.get("account"),
            "channel": "email", "purpose": "holiday" if n % 3 else "birthday",
            "subject": "Season's greetings" if n % 3
            else f"Happy birthday, {contact['first_name']}!",
            "body": f"Dear {contact['first_name']}, warm wishes from all of us.",
            "scheduled_for": day(sent), "sent_at": moment(sent * 24 + 9),
            "delivery": "sent" if rng.random() < 0.95 else "failed",
            "owner": contact["owner"]})
    for survey in d.records["satisfaction_survey"][:30]:
        contact = next(c for c in contacts if c["_key"] == survey["contact"])
        n += 1
        d.add("customer_message", {
            "_key": f"msg{n:03d}", "contact": contact["_key"], "account": survey.get("account"),
            "channel": "email", "purpose": "survey",
            "subject": "How did we do?",
            "body": f"Dear {contact['first_name']}, your request is closed. How satisfied are you?",
            "scheduled_for": survey["sent_on"], "delivery": "sent", "owner": survey["owner"]})


def main() -> None:
    out = output_dir(PACK)
    d = Data(random.Random(SEED))
    phones = Phones(d.rng)
    gen_products(d)
    gen_campaigns(d)
    accounts = gen_accounts(d, phones)
    contacts = gen_contacts(d, phones, accounts)
    gen_kb(d)
    gen_sales(d, accounts, contacts)
    gen_tickets(d, accounts, contacts)
    gen_surveys(d)
    gen_tasks_and_activities(d, accounts)
    gen_messages(d, contacts)
    counts = {entity: write_records(out, entity, records, PACK)
              for entity, records in sorted(d.records.items())}
    counts["user"] = write_staff(out, PACK, [
        {"username": u, "full_name": name, "role": role, "team": team, "region": region,
         "manager": MANAGER.get(u)} for u, (name, role, region, team) in USERS.items()])
    print(", ".join(f"{entity}: {n}" for entity, n in counts.items()),
          f"(total {sum(counts.values())})")


if __name__ == "__main__":
    main()
