"""Who may write on a record's timeline (issue 12, defects 12 and 15), on SQLite and
PostgreSQL:

- the `comment` right of an entity's permissions (true, false or an expression; when absent,
  the role's `update` rule) decides who adds notes and logs activities — in Python, on the
  record page (no form where not allowed, 403 for a forged post) and in the API (403 in the
  one error shape); the built-in users and teams take notes from admins only;
- marking done a follow-up of a record the user may not read answers exactly as for a
  follow-up that does not exist: the answer names no record.
"""

from __future__ import annotations

import pytest
from api_support import assert_error_shape, bearer
from web_support import make_app, sign_in, token_of

from builder.diagnostics import DefinitionError
from builder.linker import build_model
from runtime.core.errors import Forbidden, NotFound
from runtime.http.auth import create_token
from runtime.read import timeline as read_timeline
from runtime.read.permissions import can
from runtime.write import records, timeline

ROLES = """
roles:
  editor:   {label: Editor}
  owner_ed: {label: Owner editor}
  reader:   {label: Reader}
  talker:   {label: Talker}
  picky:    {label: Picky}
  mute:     {label: Mute}
  private:  {label: Private}
"""
CASE = """
entity: case
label: Case
title_field: subject
fields:
  subject:  {type: text, required: true}
  priority: {type: choice, options: [low, high], default: low}
permissions:
  editor:   {read: true, update: true}
  owner_ed: {read: true, update: "owner == user.id"}
  reader:   {read: true}
  talker:   {read: true, update: false, comment: true}
  picky:    {read: true, update: true, comment: "priority == 'high'"}
  mute:     {read: true, update: true, comment: false}
  private:  {read: "owner == user.id", create: true, update: true}
"""
FILES = {"roles.yaml": ROLES, "entities/case.yaml": CASE}

# role, the case is the user's own, its priority -> may comment
RIGHTS = [
    ("editor", False, "low", True),  # absent: `update: true`
    ("owner_ed", True, "low", True),  # absent: the update expression, which holds
    ("owner_ed", False, "low", False),  # ... and does not
    ("reader", False, "low", False),  # absent, and no update: no notes
    ("talker", False, "low", True),  # comment without update
    ("picky", False, "high", True),  # an expression of its own, holding
    ("picky", False, "low", False),  # ... not holding, although update is true
    ("mute", True, "low", False),  # comment: false beats update: true
]


@pytest.fixture
def env(make_instance, pack, make_user, admin, tmp_path):
    inst = make_instance(pack(FILES))
    users = {role: make_user(inst, role, roles=[role]) for role in (
        "editor", "owner_ed", "reader", "talker", "picky", "mute", "private")}
    return inst, users, admin(inst), tmp_path


def case_for(inst, boss, owner, priority: str = "low") -> dict:
    return records.create(inst, boss, "case", {"subject": "Boiler", "priority": priority,
                                               "owner": owner.user_id})


@pytest.mark.parametrize(("role", "own", "priority", "allowed"), RIGHTS)
def test_the_comment_right(env, role, own, priority, allowed):
    inst, users, boss, _ = env
    actor = users[role]
    case = case_for(inst, boss, actor if own else boss, priority)
    assert can(inst, actor, "case", "comment", case) is allowed
    for kind in ("note", "call"):
        if allowed:
            entry = timeline.add_entry(inst, actor, "case", case["id"], kind, "Called")
            assert entry["kind"] == kind and entry["user_id"] == actor.user_id
        else:
            with pytest.raises(Forbidden) as info:
                timeline.add_entry(inst, actor, "case", case["id"], kind, "Called")
            assert "may not add notes" in info.value.message


def test_the_linker_copies_update_and_checks_the_expression(pack):
    model = build_model([pack(FILES)])
    perms = model.entities["case"].permissions
    assert perms["editor"].comment is True and perms["reader"].comment is False
    assert perms["owner_ed"].comment is perms["owner_ed"].update
    assert perms["picky"].comment.source == "priority == 'high'"
    broken = CASE.replace("comment: true}", "comment: \"colour == 'red'\"}")
    with pytest.raises(DefinitionError) as info:
        build_model([pack({**FILES, "entities/case.yaml": broken})])
    assert "comment" in str(info.value) and "colour" in str(info.value)
    wrong = CASE.replace("comment: true}", "comment: 3}")
    with pytest.raises(DefinitionError):
        build_model([pack({**FILES, "entities/case.yaml": wrong})])


def test_users_and_teams_take_notes_from_admins_only(env, make_team):
    inst, users, boss, _ = env
    me = users["editor"]
    team = make_team(inst, "north")
    for entity, record_id in (("user", me.user_id), ("team", team)):
        assert not can(inst, me, entity, "comment", {"id": record_id})
        with pytest.raises(Forbidden):
            timeline.add_entry(inst, me, entity, record_id, "note", "about them")
        assert timeline.add_entry(inst, boss, entity, record_id, "note", "ok")["kind"] == "note"


def test_the_api_refuses_with_403(env):
    inst, users, boss, tmp_path = env
    client = make_app(inst, tmp_path).test_client()
    case = case_for(inst, boss, boss)
    body = {"kind": "note", "body": "hello"}
    for role, status in (("reader", 403), ("talker", 201), ("editor", 201)):
        headers = bearer(create_token(inst, users[role].user_id))
        response = client.post(f"/api/v1/case/{case['id']}/timeline", json=body,
                               headers=headers)
        if status == 403:
            answer = assert_error_shape(response, 403)
            assert "may not add notes" in answer["error"]["message"]
        else:
            assert response.status_code == 201, response.get_json()
    headers = bearer(create_token(inst, users["editor"].user_id))
    me = users["editor"].user_id
    assert_error_shape(client.post(f"/api/v1/user/{me}/timeline", json=body, headers=headers),
                       403)
    # an unreadable record stays a 404, before any talk of rights
    private = case_for(inst, boss, boss)
    headers = bearer(create_token(inst, users["private"].user_id))
    assert_error_shape(client.post(f"/api/v1/case/{private['id']}/timeline", json=body,
                                   headers=headers), 404)


def test_the_record_page_offers_the_form_only_to_those_allowed(env):
    inst, users, boss, tmp_path = env
    app = make_app(inst, tmp_path)
    case = case_for(inst, boss, boss)
    path = f"/e/case/{case['id']}"
    for role, offered in (("reader", False), ("talker", True), ("editor", True)):
        client = app.test_client()
        sign_in(client, inst, users[role])
        html = client.get(path).get_data(as_text=True)
        assert (f'action="{path}/timeline"' in html) is offered, role
        answer = client.post(f"{path}/timeline", data={
            "csrf_token": token_of(client, path), "kind": "note", "body": f"by {role}"})
        assert answer.status_code == (302 if offered else 403), role
    client = app.test_client()
    sign_in(client, inst, users["reader"])
    me = f"/e/user/{users['reader'].user_id}"
    assert f'action="{me}/timeline"' not in client.get(me).get_data(as_text=True)
    assert client.post(f"{me}/timeline", data={
        "csrf_token": token_of(client, me), "kind": "note", "body": "x"}).status_code == 403
    notes = [e["body"] for e in timeline_notes(inst, boss, case["id"])]
    assert sorted(notes) == ["by editor", "by talker"]


def timeline_notes(inst, actor, case_id: int) -> list[dict]:
    return [e for e in read_timeline.entries(inst, actor, "case", case_id)
            if e["kind"] == "note"]


# -- completing a follow-up -------------------------------------------------------------------


def test_a_follow_up_of_an_unreadable_record_is_answered_as_a_missing_one(env):
    inst, users, boss, _ = env
    stranger = users["private"]
    hidden = case_for(inst, boss, boss)
    entry = timeline.add_entry(inst, boss, "case", hidden["id"], "call", "x",
                               follow_up_on="2026-03-05")
    answers = {}
    for entry_id in (entry["id"], entry["id"] + 1000):
        with pytest.raises(NotFound) as info:
            timeline.complete_follow_up(inst, stranger, entry_id)
        answers[entry_id] = info.value.message.replace(str(entry_id), "N")
    assert answers[entry["id"]] == answers[entry["id"] + 1000]
    assert "Case" not in answers[entry["id"]] and str(hidden["id"]) not in answers[entry["id"]]


def test_the_done_button_answers_the_same_for_an_unreadable_record(env):
    inst, users, boss, tmp_path = env
    stranger = users["private"]
    hidden = case_for(inst, boss, boss)
    own = case_for(inst, boss, stranger)
    entry = timeline.add_entry(inst, boss, "case", hidden["id"], "call", "x",
                               follow_up_on="2026-03-05")
    mine = timeline.add_entry(inst, boss, "case", own["id"], "call", "y",
                              follow_up_on="2026-03-05")
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, stranger)
    path = f"/e/case/{own['id']}"
    flashes = {}
    for entry_id in (entry["id"], 987654):
        answer = client.post(f"{path}/follow-ups/{entry_id}/done", data={
            "csrf_token": token_of(client, path)}, follow_redirects=True)
        html = answer.get_data(as_text=True)
        assert answer.status_code == 200
        flashes[entry_id] = html.replace(str(entry_id), "N")
        assert f"with id {entry_id}" in html and "There is no Case" not in html
    # a follow-up of another (readable) record than the page's is not done from this page
    other = case_for(inst, boss, stranger)
    theirs = timeline.add_entry(inst, boss, "case", other["id"], "call", "z",
                                follow_up_on="2026-03-05")
    client.post(f"{path}/follow-ups/{theirs['id']}/done", data={
        "csrf_token": token_of(client, path)})
    client.post(f"{path}/follow-ups/{mine['id']}/done", data={
        "csrf_token": token_of(client, path)})
    done = {e["id"]: e["follow_up_done"] for e in
            [*timeline_entries(inst, boss, own["id"]), *timeline_entries(inst, boss, other["id"])]}
    assert done == {mine["id"]: True, theirs["id"]: False}


def timeline_entries(inst, actor, case_id: int) -> list[dict]:
    return [e for e in read_timeline.entries(inst, actor, "case", case_id)
            if e.get("follow_up_on")]
