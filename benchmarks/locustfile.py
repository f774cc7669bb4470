"""The users `benchmarks/load.py --client locust` plays with locust (the default is
`benchmarks/loadclient.py`, the same mix): sales reps signed in through the login
form, each doing the mix of the issue — 40% list and search, 25% record page, 10% dashboard
(web pages, as a browser asks for them), 15% update, 5% create, 5% workflow transition (the JSON
API, with the rep's token, as a form's save or an integration would).

Set by load.py in the environment: `LOAD_USERS` (a JSON file of the reps: username, password,
token, the ids of the deals only they move through the workflow), `LOAD_HOT` (the deal ids
every rep updates: the contention), `LOAD_SECONDS` (how long to measure), `LOAD_RESULT`
(where to write the results) and `LOAD_SERVER_PID` (the server whose CPU time is measured,
`loadclient.cpu_marks`). The measurement starts when the last rep has signed in (the
statistics are reset then) and stops `LOAD_SECONDS` later.

An update reads the deal and sends its counter plus one with the version it read; a 409 (another
rep saved first) is not an error: the rep reads again and retries, and only the saves that
succeeded are counted — load.py compares their number with the counters in the database.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import time
from typing import Any

import gevent
from locust import FastHttpUser, events, task
from locust.env import Environment

from benchmarks.loadclient import cpu_marks

USERS = json.loads(open(os.environ["LOAD_USERS"], encoding="utf-8").read())  # noqa: SIM115
HOT = json.loads(os.environ.get("LOAD_HOT", "[1]"))
SECONDS = float(os.environ.get("LOAD_SECONDS", "30"))
RESULT = os.environ.get("LOAD_RESULT", "load-result.json")
MAX_ID = int(os.environ.get("LOAD_MAX_ID", "1000"))
SERVER_PID = int(os.environ.get("LOAD_SERVER_PID", "0"))
WORDS = ("north", "river", "solar", "harbor", "maple", "granite", "cedar", "orbit")
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
RETRIES = 20
KINDS = ("list", "search", "record", "dashboard", "update", "create", "transition")

_next_user = itertools.count()
STATE: dict[str, Any] = {"signed_in": 0, "started": None, "stopped": None,
                         "updates": 0, "conflicts": 0, "gave_up": 0, "cpu": {}}


class Rep(FastHttpUser):
    """One signed-in sales rep."""

    wait_time = staticmethod(lambda: 0)  # closed loop: the next action when one is answered

    def on_start(self) -> None:
        me = USERS[next(_next_user) % len(USERS)]
        self.auth = {"Authorization": f"Bearer {me['token']}"}
        self.own = {record_id: "open" for record_id in me["own"]}
        page = self.client.get("/login", name="sign-in")
        token = CSRF.search(page.text or "")
        with self.client.post("/login", name="sign-in", catch_response=True, data={
                "username": me["username"], "password": me["password"],
                "csrf_token": token.group(1) if token else ""}) as answer:
            if "/login" in str(answer.url) or answer.status_code != 200:
                answer.failure(f"sign-in failed ({answer.status_code} at {answer.url})")
        STATE["signed_in"] += 1
        if STATE["signed_in"] == self.environment.runner.target_user_count:
            _start_measuring(self.environment)

    @task(20)
    def list_page(self) -> None:
        sort = random.choice(("", "?sort=-amount", "?sort=name", "?stage=open"))
        self.client.get(f"/e/deal{sort}", name="list")

    @task(20)
    def search(self) -> None:
        self.client.get(f"/e/deal?q={random.choice(WORDS)}", name="search")

    @task(25)
    def record_page(self) -> None:
        self.client.get(f"/e/deal/{random.randint(1, MAX_ID)}", name="record")

    @task(10)
    def dashboard(self) -> None:
        self.client.get("/dashboards/pipeline", name="dashboard")

    @task(15)
    def update(self) -> None:
        record_id = random.choice(HOT)
        for _attempt in range(RETRIES):
            deal = self.client.get(f"/api/v1/deal/{record_id}", name="update (read)",
                                   headers=self.auth).json()
            with self.client.patch(f"/api/v1/deal/{record_id}", name="update",
                                   headers=self.auth, catch_response=True,
                                   json={"hits": (deal.get("hits") or 0) + 1,
                                         "version": deal["version"]}) as answer:
                if answer.status_code == 200:
                    STATE["updates"] += 1
                    return
                if answer.status_code == 409:  # saved by another rep first: read, try again
                    answer.success()
                    STATE["conflicts"] += 1
                    continue
                answer.failure(f"{answer.status_code}: {(answer.text or '')[:200]}")
                return
        STATE["gave_up"] += 1

    @task(5)
    def create(self) -> None:
        self.client.post("/api/v1/deal", name="create", headers=self.auth, json={
            "name": f"{random.choice(WORDS).title()} deal {random.randint(1, 10**6)}",
            "company": f"{random.choice(WORDS).title()} Ltd", "amount": random.randint(1, 9999)})

    @task(5)
    def transition(self) -> None:
        if not self.own:
            return
        record_id = random.choice(list(self.own))
        name, after = ("start", "working") if self.own[record_id] == "open" else ("pause", "open")
        with self.client.post(f"/api/v1/deal/{record_id}/transitions/{name}",
                              name="transition", headers=self.auth, json={},
                              catch_response=True) as answer:
            if answer.status_code == 200:
                self.own[record_id] = after
            elif answer.status_code == 409:  # another rep moved it first: a refusal, not an error
                answer.success()
                STATE["conflicts"] += 1
                deal = self.client.get(f"/api/v1/deal/{record_id}", name="transition (read)",
                                       headers=self.auth).json()
                self.own[record_id] = deal.get("stage", self.own[record_id])


def _start_measuring(environment: Environment) -> None:
    """Every rep is signed in: count from now, and stop SECONDS later."""
    environment.runner.stats.reset_all()
    STATE["started"] = time.time()
    STATE["cpu"] = {"client": time.process_time(), **cpu_marks(SERVER_PID)}
    gevent.spawn_later(SECONDS, _stop, environment)


def _stop(environment: Environment) -> None:
    STATE["stopped"] = time.time()
    before = STATE["cpu"]
    after = {"client": time.process_time(), **cpu_marks(SERVER_PID)}
    STATE["cpu"] = {name: after[name] - before.get(name, 0.0) for name in after}
    environment.runner.quit()


@events.quitting.add_listener
def _write_result(environment: Environment, **_kwargs: Any) -> None:
    stats = environment.runner.stats
    stopped = STATE["stopped"] or time.time()
    window = stopped - STATE["started"] if STATE["started"] else 0.0
    kinds = {}
    for entry in stats.entries.values():
        kinds[entry.name] = {
            "requests": entry.num_requests, "failures": entry.num_failures,
            "p50": entry.get_response_time_percentile(0.5),
            "p95": entry.get_response_time_percentile(0.95),
            "p99": entry.get_response_time_percentile(0.99)}
    errors = [{"name": e.name, "error": str(e.error)[:300], "count": e.occurrences}
              for e in stats.errors.values()]
    result = {"seconds": window, "signed_in": STATE["signed_in"],
              "measured": STATE["started"] is not None, "kinds": kinds, "errors": errors,
              "requests": stats.total.num_requests, "failures": stats.total.num_failures,
              "updates": STATE["updates"], "conflicts": STATE["conflicts"],
              "gave_up": STATE["gave_up"], "cpu": STATE["cpu"] if STATE["stopped"] else {}}
    with open(RESULT, "w", encoding="utf-8") as out:
        json.dump(result, out, indent=1)
