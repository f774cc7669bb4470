"""Record timelines: notes and activities, follow-ups, and the merged history of changes,
transitions, approval decisions and attachments — on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date

import pytest
from record_packs import DESK

from runtime.core.errors import Forbidden, NotFound, ValidationFailed
from runtime.read import timeline as read_timeline
from runtime.write import records, timeline


@pytest.fixture
def desk(make_instance, pack, admin, make_user, make_team):
    inst = make_instance(pack(DESK))
    team = make_team(inst, "one")
    clerk = make_user(inst, "clerk", roles=["clerk"], team=team)
    other = make_user(inst, "other", roles=["clerk"])
    case = records.create(inst, admin(inst), "case", {"subject": "Boiler", "secret": "x",
                                                      "owner": clerk.user_id})
    return inst, admin(inst), clerk, other, case


def test_notes_and_activities_set_last_activity_at(desk, clock):
    inst, boss, clerk, _, case = desk
    clock.advance(hours=3)
    entry = timeline.add_entry(inst, clerk, "case", case["id"], "call", "Called the client",
                               follow_up_on="2026-03-05", data={"minutes": 12})
    assert entry["kind"] == "call" and entry["follow_up_on"] == "2026-03-05"
    assert entry["data"] == {"minutes": 12} and entry["user_id"] == clerk.user_id
    got = records.get(inst, clerk, "case", case["id"])
    assert got["last_activity_at"] == "2026-03-02T12:00:00Z"
    assert got["version"] == case["version"]  # an activity is not an edit
    for kind in ("note", "meeting", "email", "visit"):
        timeline.add_entry(inst, clerk, "case", case["id"], kind, f"a {kind}")


BAD_ENTRIES = [
    ({"kind": "tweet", "body": "x"}, "kind"),
    ({"kind": "note", "body": "  "}, "body"),
    ({"kind": "note", "body": None}, "body"),
    ({"kind": "call", "body": "x", "follow_up_on": "next week"}, "follow_up_on"),
    ({"kind": "call", "body": "x", "data": ["not", "an", "object"]}, "data"),
    ({"kind": "call", "body": "x" * 100_001}, "body"),
]


@pytest.mark.parametrize(("entry", "field"), BAD_ENTRIES, ids=[f for _, f in BAD_ENTRIES])
def test_bad_entries_are_refused(desk, entry, field):
    inst, _, clerk, _, case = desk
    entry = dict(entry)
    with pytest.raises(ValidationFailed) as info:
        timeline.add_entry(inst, clerk, "case", case["id"], entry.pop("kind"),
                           entry.pop("body"), **entry)
    assert field in info.value.errors


def test_the_timeline_merges_everything_newest_first(desk, clock):
    inst, boss, clerk, _, case = desk
    clock.advance(minutes=1)
    timeline.add_entry(inst, clerk, "case", case["id"], "note", "<b>first</b> note")
    clock.advance(minutes=1)
    changed = records.update(inst, clerk, "case", case["id"],
                             {"subject": "Boiler 2", "priority": "high", "reason": "leak"},
                             version=1)
    clock.advance(minutes=1)
    records.update(inst, clerk, "case", case["id"], {}, version=changed["version"],
                   transition="close", comment="Fixed")
    clock.advance(minutes=1)
    requests = inst.schema.system("approval_request")
    decisions = inst.schema.system("approval_decision")
    files = inst.schema.system("attachment")
    with inst.engine.begin() as conn:
        request_id = conn.execute(requests.insert().values(
            entity="case", record_id=case["id"], approval="big", transition="close",
            status="approved", submitted_by=clerk.user_id, submitted_at=inst.now()).returning(
            requests.c.id)).scalar_one()
        conn.execute(decisions.insert().values(
            request_id=request_id, step_index=0, step="manager", user_id=boss.user_id,
            decision="approve", comment="fine", at=inst.now()))
        clock.advance(minutes=1)
        conn.execute(files.insert().values(
            entity="case", record_id=case["id"], filename="photo.jpg",
            content_type="image/jpeg", size=1234, storage_key="k1", user_id=clerk.user_id,
            created_at=inst.now()))
    got = read_timeline.entries(inst, clerk, "case", case["id"])
    assert [e["kind"] for e in got] == ["attachment", "approval", "transition", "change",
                                        "note", "change"]
    attachment, approval, transition, change, note, created = got
    assert attachment["filename"] == "photo.jpg" and attachment["user"] == "Clerk"
    assert (approval["decision"], approval["comment"], approval["user"]) == (
        "approve", "fine", "Administrator")
    assert transition["data"] == {"transition": "close", "from": "open", "to": "closed"}
    assert transition["body"] == "Fixed"
    assert {c["field"]: (c["old"], c["new"]) for c in change["changes"]} == {
        "subject": ("Boiler", "Boiler 2"), "priority": ("low", "high"),
        "reason": (None, "leak")}
    assert note["body"] == "<b>first</b> note"  # stored verbatim; the page escapes it
    assert created["action"] == "create"
    ats = [e["at"] for e in got]
    assert ats == sorted(ats, reverse=True)
    assert len(read_timeline.entries(inst, clerk, "case", case["id"], limit=2)) == 2


def test_changes_to_hidden_fields_stay_hidden(desk):
    inst, boss, clerk, _, case = desk
    records.update(inst, boss, "case", case["id"], {"secret": "y", "subject": "S"}, version=1)
    seen_by_clerk = [c["field"] for e in read_timeline.entries(inst, clerk, "case", case["id"])
                     if e["kind"] == "change" for c in e["changes"]]
    seen_by_admin = [c["field"] for e in read_timeline.entries(inst, boss, "case", case["id"])
                     if e["kind"] == "change" for c in e["changes"]]
    assert seen_by_clerk == ["subject"]
    assert sorted(seen_by_admin) == ["secret", "subject"]


def test_a_record_you_cannot_read_has_no_timeline_for_you(desk):
    inst, _, _, other, case = desk
    with pytest.raises(NotFound):
        read_timeline.entries(inst, other, "case", case["id"])
    with pytest.raises(NotFound):
        timeline.add_entry(inst, other, "case", case["id"], "note", "sneaky")


def test_due_follow_ups_and_completing_them(desk, clock):
    inst, boss, clerk, other, case = desk
    soon = timeline.add_entry(inst, clerk, "case", case["id"], "call", "a",
                              follow_up_on=date(2026, 3, 3))
    later = timeline.add_entry(inst, clerk, "case", case["id"], "visit", "b",
                               follow_up_on="2026-03-20")
    timeline.add_entry(inst, clerk, "case", case["id"], "note", "no follow-up")
    theirs = records.create(inst, other, "case", {"subject": "Theirs"})
    timeline.add_entry(inst, other, "case", theirs["id"], "call", "c",
                       follow_up_on="2026-03-01")
    due = read_timeline.due_follow_ups(inst, clerk, until=date(2026, 3, 4))
    assert [(d["id"], d["title"], d["entity"], d["record_id"]) for d in due] == [
        (soon["id"], "Boiler", "case", case["id"])]
    assert [d["id"] for d in read_timeline.due_follow_ups(inst, clerk, until=date(2026, 4, 1))] == [
        soon["id"], later["id"]]
    with pytest.raises(NotFound):  # other may not even read the case
        timeline.complete_follow_up(inst, other, soon["id"])
    mate = records.create(inst, boss, "case", {"subject": "Mate's", "owner": clerk.user_id})
    records.update(inst, boss, "case", mate["id"], {"owner": boss.user_id}, version=1)
    boss_entry = timeline.add_entry(inst, boss, "case", mate["id"], "call", "x",
                                    follow_up_on="2026-03-02")
    with pytest.raises(NotFound):  # the clerk no longer sees the case at all
        timeline.complete_follow_up(inst, clerk, boss_entry["id"])
    records.update(inst, boss, "case", mate["id"], {"owner": clerk.user_id}, version=2)
    assert timeline.complete_follow_up(inst, clerk, boss_entry["id"])["follow_up_done"]
    done = timeline.complete_follow_up(inst, clerk, soon["id"])
    assert done["follow_up_done"] is True
    assert [d["id"] for d in read_timeline.due_follow_ups(inst, clerk, until=date(2026, 4, 1))] == [
        later["id"]]
    with pytest.raises(NotFound):
        timeline.complete_follow_up(inst, clerk, 987654)


def test_only_the_author_or_an_updater_completes_a_follow_up(desk, make_user):
    inst, boss, clerk, _, case = desk
    teammate = make_user(inst, "teammate", roles=["clerk"], team=clerk.team)
    entry = timeline.add_entry(inst, clerk, "case", case["id"], "call", "x",
                               follow_up_on="2026-03-02")
    assert records.get(inst, teammate, "case", case["id"])  # readable: same team
    with pytest.raises(Forbidden):  # but not theirs to update, and not their follow-up
        timeline.complete_follow_up(inst, teammate, entry["id"])
    assert timeline.complete_follow_up(inst, boss, entry["id"])["follow_up_done"]
    reopened = timeline.complete_follow_up(inst, clerk, f"timeline:{entry['id']}", done=False)
    assert reopened["follow_up_done"] is False
