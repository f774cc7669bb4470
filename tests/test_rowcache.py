"""Rows kept on a connection during a bulk write (runtime/core/rowcache.py): a row read by
id is served again without a query, and never after the connection wrote to it (an UPDATE
by id: those rows; another UPDATE: its table; an INSERT: the ids known to have no row),
deleted anything, ran raw SQL or rolled back — on SQLite and PostgreSQL. A locking read
(PostgreSQL) is served only a row the transaction holds locked."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from runtime.core import rowcache
from runtime.core.context import Fetcher
from runtime.core.db import insert_many
from runtime.core.instance import Actor, Instance
from runtime.read.queries import load
from runtime.write import bulk, records

SYSTEM = Actor.system_actor("test")
FILES = {
    "entities/club.yaml": """
entity: club
title_field: name
fields:
  name: {type: text, required: true}
  city: {type: text}
""",
    "entities/member.yaml": """
entity: member
title_field: name
fields:
  name: {type: text, required: true}
  club: {type: link, to: club}
  club_city: {type: text, formula: "club.city"}
""",
}


@pytest.fixture
def inst(make_instance, pack) -> Instance:
    inst = make_instance(pack(FILES))
    records.create(inst, SYSTEM, "club", {"name": "Red", "city": "Leeds"})
    records.create(inst, SYSTEM, "club", {"name": "Blue", "city": "York"})
    return inst


class Selects:
    """The SELECTs a connection runs, counted."""

    def __init__(self, conn: sa.Connection) -> None:
        self.count = 0
        sa.event.listen(conn, "before_cursor_execute", self.seen)

    def seen(self, conn, cursor, statement: str, *args) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            self.count += 1


@pytest.fixture
def kept(inst: Instance) -> Iterator[tuple[sa.Connection, Selects]]:
    with inst.engine.begin() as conn, rowcache.kept(conn):
        yield conn, Selects(conn)


def test_a_row_read_by_id_is_read_once(inst, kept) -> None:
    conn, selects = kept
    assert load(inst, conn, "club", 1)["city"] == "Leeds"
    assert Fetcher(inst, conn)("club", 1)["city"] == "Leeds"  # another operation's reader
    assert load(inst, conn, "club", 1)["name"] == "Red"
    assert load(inst, conn, "club", 99) is None
    assert load(inst, conn, "club", 99) is None
    assert selects.count == 2


def test_a_write_to_the_table_is_read_again(inst, kept) -> None:
    conn, selects = kept
    load(inst, conn, "club", 1)
    records.update(inst, SYSTEM, "club", 1, {"city": "Hull"}, version=None, conn=conn)
    assert Fetcher(inst, conn)("club", 1)["city"] == "Hull"
    assert load(inst, conn, "club", 1)["city"] == "Hull"


def test_a_write_to_another_table_keeps_the_rows(inst, kept) -> None:
    conn, selects = kept
    load(inst, conn, "club", 2)
    records.create(inst, SYSTEM, "member", {"name": "Ann", "club": 2}, conn=conn)
    before = selects.count
    assert load(inst, conn, "club", 2)["city"] == "York"
    assert selects.count == before


@pytest.mark.parametrize("statement", [
    "UPDATE club SET city = 'Ely' WHERE id = 1",   # raw SQL: nothing is known of it
    "DELETE FROM member WHERE id = 12345",         # a delete: the database may cascade
])
def test_raw_sql_and_deletes_forget_every_row(inst, kept, statement: str) -> None:
    conn, selects = kept
    load(inst, conn, "club", 1)
    conn.execute(sa.text(statement))
    before = selects.count
    load(inst, conn, "club", 1)
    assert selects.count == before + 1


def test_a_rolled_back_savepoint_forgets_what_it_wrote(inst, kept) -> None:
    conn, _ = kept
    with pytest.raises(RuntimeError), conn.begin_nested():
        records.update(inst, SYSTEM, "club", 1, {"city": "Hull"}, version=None, conn=conn)
        assert load(inst, conn, "club", 1)["city"] == "Hull"
        raise RuntimeError("roll it back")
    assert load(inst, conn, "club", 1)["city"] == "Leeds"
    assert Fetcher(inst, conn)("club", 1)["city"] == "Leeds"


def test_a_locking_read_is_served_only_a_row_the_transaction_holds_locked(inst, kept) -> None:
    conn, selects = kept
    postgres = conn.dialect.name == "postgresql"  # SQLite's write transaction locks it all
    load(inst, conn, "club", 1)
    load(inst, conn, "club", 1, for_update=True)  # kept, but not locked: asked again
    assert selects.count == (2 if postgres else 1)
    load(inst, conn, "club", 1, for_update=True)  # locked by the read before
    assert selects.count == (2 if postgres else 1)
    with pytest.raises(RuntimeError), conn.begin_nested():
        load(inst, conn, "club", 2, for_update=True)
        raise RuntimeError("roll it back")  # and with it the savepoint's lock
    load(inst, conn, "club", 2, for_update=True)
    load(inst, conn, "club", 1, for_update=True)  # a rollback forgets every row
    assert selects.count == (5 if postgres else 4)


def test_a_locking_read_sees_what_another_transaction_committed(inst, kept) -> None:
    conn, _ = kept
    assert load(inst, conn, "club", 1)["city"] == "Leeds"  # kept, not locked
    with inst.engine.begin() as other:
        records.update(inst, SYSTEM, "club", 1, {"city": "Hull"}, version=None, conn=other)
    # PostgreSQL locks the row as it is now; SQLite's transaction sees its own snapshot
    expected = "Hull" if conn.dialect.name == "postgresql" else "Leeds"
    assert load(inst, conn, "club", 1, for_update=True)["city"] == expected


def test_a_batch_s_automations_read_its_rows_without_locking_them_again(make_instance,
                                                                        pack) -> None:
    inst = make_instance(pack({**FILES, "automations/city.yaml": """
automations:
  settle:
    entity: club
    on: create
    do:
      - set: {city: Ely}
"""}))
    locking: list[str] = []

    def seen(conn, cursor, statement: str, *args) -> None:
        if "FOR NO KEY UPDATE" in statement or "FOR UPDATE" in statement:
            locking.append(statement)

    sa.event.listen(inst.engine, "before_cursor_execute", seen)
    try:
        outcomes = bulk.upsert_many(inst, SYSTEM, "club",
                                    [(n, {"name": f"C{n}"}, None) for n in range(3)])
    finally:
        sa.event.remove(inst.engine, "before_cursor_execute", seen)
    assert [o.error for o in outcomes] == [None] * 3
    with inst.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT DISTINCT city FROM club")).scalars().all() == ["Ely"]
    assert locking == []  # the batch wrote them: this transaction holds them locked


def test_outside_a_bulk_write_nothing_is_kept(inst) -> None:
    with inst.engine.begin() as conn:
        selects = Selects(conn)
        load(inst, conn, "club", 1)
        load(inst, conn, "club", 1)
        assert selects.count == 2
        assert rowcache.rows_of(conn) is None


def test_a_batch_sees_a_parent_changed_by_an_earlier_batch_on_the_connection(inst) -> None:
    """Formulas over a linked record follow its changes between two bulk writes, and
    within one the rows are kept only until the write to their table."""
    with inst.engine.begin() as conn:
        first = bulk.create_many(inst, SYSTEM, "member", [(1, {"name": "Ann", "club": 1})],
                                 conn=conn)
        records.update(inst, SYSTEM, "club", 1, {"city": "Hull"}, version=None, conn=conn)
        second = bulk.create_many(inst, SYSTEM, "member", [(2, {"name": "Bo", "club": 1})],
                                  conn=conn)
    assert records.get(inst, SYSTEM, "member", first[0].id)["club_city"] == "Leeds"
    assert records.get(inst, SYSTEM, "member", second[0].id)["club_city"] == "Hull"


def test_an_update_by_id_forgets_only_its_rows(inst, kept) -> None:
    conn, selects = kept
    load(inst, conn, "club", 1)
    load(inst, conn, "club", 2)
    records.update(inst, SYSTEM, "club", 1, {"city": "Hull"}, version=None, conn=conn)
    before = selects.count
    assert load(inst, conn, "club", 2)["city"] == "York"  # still kept
    assert selects.count == before
    assert load(inst, conn, "club", 1)["city"] == "Hull"  # read again
    assert selects.count == before + 1


def test_an_update_of_many_rows_by_id_forgets_each(inst, kept) -> None:
    conn, selects = kept
    for rid in (1, 2):
        load(inst, conn, "club", rid)
    conn.execute(records.update_statement(inst.schema.table("club")), [
        {"city": city, "_crm_id": rid, "_crm_version": 1}
        for rid, city in ((1, "Hull"), (2, "Ely"))])
    assert [load(inst, conn, "club", rid)["city"] for rid in (1, 2)] == ["Hull", "Ely"]


def test_another_update_forgets_its_table(inst, kept) -> None:
    conn, _ = kept
    load(inst, conn, "club", 2)
    table = inst.schema.table("club")
    conn.execute(table.update().where(table.c.name == "Blue").values(city="Ely"))
    assert load(inst, conn, "club", 2)["city"] == "Ely"


def test_an_insert_forgets_only_the_ids_known_to_have_no_row(inst, kept) -> None:
    """An INSERT changes no row there is; the id it takes may have been read as missing."""
    conn, selects = kept
    assert load(inst, conn, "club", 3) is None
    load(inst, conn, "club", 1)
    records.create(inst, SYSTEM, "club", {"name": "Green"}, conn=conn)
    before = selects.count
    assert load(inst, conn, "club", 1)["name"] == "Red"
    assert selects.count == before
    assert load(inst, conn, "club", 3)["name"] == "Green"


def test_an_insert_of_many_rows_forgets_only_its_table(inst, kept) -> None:
    """`db.insert_many` runs its own SQL on SQLite: the cache still knows its table."""
    conn, selects = kept
    load(inst, conn, "club", 1)
    assert load(inst, conn, "club", 3) is None
    now = inst.now()
    member = {"name": "Cy", "club": 1, "club_city": None, "created_at": now,
              "updated_at": now, "version": 1, "created_by": None, "updated_by": None,
              "owner": None}
    member = {k: v for k, v in member.items() if k in inst.schema.table("member").c}
    insert_many(conn, inst.schema.table("member"), [member])
    before = selects.count
    load(inst, conn, "club", 1)
    assert selects.count == before
    club = {k: v for k, v in {**member, "name": "Green", "city": "Ely"}.items()
            if k in inst.schema.table("club").c}
    insert_many(conn, inst.schema.table("club"), [club])
    load(inst, conn, "club", 1)
    assert selects.count == before  # an INSERT changes no row there is
    assert load(inst, conn, "club", 3)["name"] == "Green"
    assert selects.count == before + 1


def test_whether_an_entity_awaits_approval_is_kept_until_a_request_is_written(inst, kept
                                                                              ) -> None:
    """On SQLite a bulk write asks once whether any club awaits approval (its transaction
    holds the database); a request inserted, or changed — by id too —, is asked about
    again. PostgreSQL asks about each record every time."""
    from runtime.process.approvals import pending_request

    conn, selects = kept
    requests = inst.schema.system("approval_request")
    by_id = requests.update().where(requests.c.id == sa.bindparam("_crm_id")).values(
        status=sa.bindparam("status")).execution_options(**{rowcache.BY_ID: True})
    once = conn.dialect.name == "sqlite"
    assert pending_request(inst, conn, "club", 1) is None
    before = selects.count
    assert pending_request(inst, conn, "club", 2) is None
    assert selects.count == before + (0 if once else 1)
    conn.execute(requests.insert().values(
        entity="club", record_id=2, approval="a", transition="t", from_state="x",
        status="approved", step_index=0, submitted_by=None, submitted_at=inst.now(),
        version=1))
    assert pending_request(inst, conn, "club", 2) is None
    conn.execute(by_id, {"_crm_id": 1, "status": "pending"})
    assert pending_request(inst, conn, "club", 2)["record_id"] == 2
    assert pending_request(inst, conn, "club", 1) is None
    conn.execute(by_id, {"_crm_id": 1, "status": "approved"})
    assert pending_request(inst, conn, "club", 2) is None
    conn.execute(requests.insert().values(
        entity="club", record_id=1, approval="a", transition="t", from_state="x",
        status="pending", step_index=0, submitted_by=None, submitted_at=inst.now(),
        version=1))
    assert pending_request(inst, conn, "club", 1)["record_id"] == 1
