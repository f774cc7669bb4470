"""The quick-search index (core/searchindex.py, read/search.py) on SQLite (FTS5 trigram) and
PostgreSQL (pg_trgm): substrings, Chinese substrings, exact and prefix matches first, row
filters, and an index that follows creates, updates, deletes and bulk writes; migrations
build it over existing rows and leave nothing to do afterwards."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from support import admin_actor, insert_user, write_pack

from builder.linker import build_model
from runtime.core import searchindex
from runtime.core.instance import Instance
from runtime.process import migrate
from runtime.process.setup import assemble
from runtime.read import search
from runtime.write import bulk, records

PERSON = """\
entity: person
fields:
  first_name: {type: text}
  last_name: {type: text, required: true}
  city: {type: text}
  phone: {type: phone}
  notes: {type: longtext}
search: [first_name, last_name, phone]
views:
  list: {columns: [first_name, last_name, city], sort: [last_name], filters: [city]}
permissions:
  clerk: {read: "city == 'Bristol'", create: true, update: true, delete: true}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"
PEOPLE = [
    ("Ann", "Smithson", "Leeds"), ("Bob", "Smith", "Bristol"), ("Cy", "Blacksmith", "Bristol"),
    ("Di", "Jones", "Bristol"), ("伟", "张伟明", "Bristol"), ("Smith", "Evans", "Leeds"),
]


@pytest.fixture
def people(make_instance: Callable[..., Instance], tmp_path) -> tuple[Instance, dict]:
    inst = make_instance(write_pack(tmp_path, {"entities/person.yaml": PERSON,
                                               "roles.yaml": ROLES}))
    actor = admin_actor(inst)
    ids = {}
    for first, last, city in PEOPLE:
        ids[last] = records.create(inst, actor, "person", {
            "first_name": first, "last_name": last, "city": city})["id"]
    return inst, ids


def found(inst: Instance, q: str, actor=None) -> list[int]:
    rows = records.query(inst, actor or admin_actor(inst), "person", q=q, limit=500).rows
    return [r["id"] for r in rows]


@pytest.mark.parametrize(("q", "names"), [
    ("mith", {"Smithson", "Smith", "Blacksmith", "Evans"}),
    ("SMITHS", {"Smithson"}),
    ("伟明", {"张伟明"}),  # two characters: no trigram, found with LIKE
    ("张伟明", {"张伟明"}),  # three: through the index
    ("jon", {"Jones"}),
    ("bob smi", {"Smith"}),
    ("zzz", set()),
    ('"sm', set()),  # a quote cannot break out of the index's query
    ("%", set()),
])
def test_search_finds_substrings(people, q, names) -> None:
    inst, ids = people
    assert set(found(inst, q)) == {ids[n] for n in names}


def test_exact_then_prefix_then_the_rest(people) -> None:
    inst, ids = people
    order = found(inst, "smith")
    # exact (Smith, last name; Evans, first name), prefix (Smithson), inside (Blacksmith);
    # each group in the list's sort (last name)
    assert order == [ids["Evans"], ids["Smith"], ids["Smithson"], ids["Blacksmith"]]


def test_ranked_pages_follow_on_with_a_cursor(people) -> None:
    inst, ids = people
    actor = admin_actor(inst)
    first = records.query(inst, actor, "person", q="smith", limit=2)
    second = records.query(inst, actor, "person", q="smith", limit=2, cursor=first.next_cursor)
    assert [r["id"] for r in first.rows + second.rows] == found(inst, "smith")
    back = records.query(inst, actor, "person", q="smith", limit=2, cursor=second.prev_cursor)
    assert back.rows == first.rows


def test_an_explicit_sort_is_kept(people) -> None:
    inst, ids = people
    rows = records.query(inst, admin_actor(inst), "person", q="smith", sort="-last_name").rows
    assert [r["last_name"] for r in rows] == ["Smithson", "Smith", "Evans", "Blacksmith"]


def test_row_filters_hold_in_the_same_query(people) -> None:
    inst, ids = people
    clerk = insert_user(inst, "clerk", roles=["clerk"])
    assert set(found(inst, "smith", clerk)) == {ids["Smith"], ids["Blacksmith"]}
    assert records.count(inst, clerk, "person", q="smith") == (2, True)


def test_the_index_follows_create_update_delete(people) -> None:
    inst, ids = people
    actor = admin_actor(inst)
    new = records.create(inst, actor, "person", {"last_name": "Quixote", "city": "Leeds"})
    assert found(inst, "uixot") == [new["id"]]
    records.update(inst, actor, "person", new["id"], {"last_name": "Panza"}, version=1)
    assert found(inst, "uixot") == [] and found(inst, "anza") == [new["id"]]
    records.update(inst, actor, "person", new["id"], {"city": "York"}, version=2)
    assert found(inst, "anza") == [new["id"]]  # a field outside the index changed
    records.delete(inst, actor, "person", new["id"])
    assert found(inst, "anza") == []


def test_the_index_follows_bulk_writes(people) -> None:
    inst, _ = people
    outcomes = bulk.create_many(inst, admin_actor(inst), "person", [
        (n, {"last_name": f"Bulkington {n}", "city": "Leeds"}) for n in range(1, 4)])
    assert sorted(found(inst, "ulkingt")) == sorted(o.id for o in outcomes)


def test_migration_builds_the_index_over_existing_rows(people, database_url) -> None:
    inst, ids = people
    with inst.engine.begin() as conn:  # as a database from before the index
        for table in [t for t in searchindex.present(conn)]:
            kind = "TRIGGER" if table.endswith(("_ai", "_ad", "_au")) else (
                "TABLE" if conn.dialect.name == "sqlite" else "INDEX")
            conn.exec_driver_sql(f'DROP {kind} IF EXISTS "{table}"')
    plan = migrate.plan(inst.model, inst.engine)
    assert [op.kind for op in plan] == ["search_index"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
    assert set(found(inst, "mith")) == {ids["Smithson"], ids["Smith"], ids["Blacksmith"],
                                        ids["Evans"]}


def test_changed_search_fields_rebuild_the_index(people, tmp_path) -> None:
    inst, ids = people
    wider = PERSON.replace("search: [first_name, last_name, phone]",
                           "search: [first_name, last_name, phone, city]")
    model = build_model([write_pack(tmp_path / "v2", {"entities/person.yaml": wider,
                                                      "roles.yaml": ROLES})])
    plan = migrate.plan(model, inst.engine)
    assert [op.kind for op in plan] == ["search_index"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(model, inst.engine).empty
    with inst.engine.connect() as conn:
        if conn.dialect.name == "postgresql":
            assert searchindex.trgm_name("person", "city") in searchindex.present(conn)
        else:
            rows = conn.exec_driver_sql(
                "SELECT rowid FROM crm_search__person WHERE crm_search__person MATCH "
                "'{city} : \"risto\"'").scalars().all()
            assert sorted(rows) == sorted(ids[n] for n in ("Smith", "Blacksmith", "Jones",
                                                           "张伟明"))


def test_postgresql_search_uses_the_trigram_index(people) -> None:
    inst, _ = people
    table = inst.schema.table("person")
    with inst.engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's planner")
        now = inst.now()
        conn.execute(table.insert(), [{"last_name": f"Name {n:05d}", "city": f"City {n % 50}",
                                       "created_at": now, "updated_at": now, "version": 1}
                                      for n in range(5000)])
        conn.exec_driver_sql("ANALYZE person")
        # new rows wait in GIN's pending list until (auto)vacuum merges them
        conn.exec_driver_sql("SELECT gin_clean_pending_list('ix_trgm_person_last_name')")
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")  # usable, not just cheaper
        stmt = sa.select(table.c.id).where(search.text_match(table.c.last_name, "mith",
                                                             "postgresql"))
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN " + sql).scalars())
    assert "ix_trgm_person_last_name" in plan, plan


def test_postgresql_search_reads_the_stored_folded_text(people) -> None:
    """The recheck of a trigram match (and the rank) read the stored folded copy: nothing is
    folded again at search time (docs/performance.md, notes on search)."""
    inst, _ = people
    table = inst.schema.table("person")
    with inst.engine.connect() as conn:
        if conn.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's stored folded columns")
        conn.exec_driver_sql("SET enable_seqscan = off")
        stmt = sa.select(table.c.id, search.rank(inst.model.entity("person"), table, "smith",
                                                 frozenset(), "postgresql")).where(
            search.text_match(table.c.last_name, "smith", "postgresql"))
        sql = str(stmt.compile(conn, compile_kwargs={"literal_binds": True}))
        plan = "\n".join(conn.exec_driver_sql("EXPLAIN VERBOSE " + sql).scalars())
    assert "ix_trgm_person_last_name" in plan and "_fold_last_name ~~" in plan, plan
    assert "normalize" not in plan, plan


def _old_layout(conn: sa.Connection, inst: Instance) -> None:
    """`person` as the code before the stored folded columns made it (PostgreSQL): the table
    without them, and trigram indexes on the folding expression of each searched column."""
    meta = inst.schema.private_metadata()
    meta.drop_all(conn, tables=[meta.tables["person"]])
    meta.create_all(conn, tables=[meta.tables["person"]])
    schema = searchindex.trgm_schema(conn)
    for column in ("first_name", "last_name", "_e164_phone"):
        conn.exec_driver_sql(
            f'CREATE INDEX "{searchindex.trgm_name("person", column)}" ON person USING gin '
            f'((lower(regexp_replace(normalize("{column}", NFKD), '
            f"'{searchindex.COMBINING_MARKS}', '', 'g'))) \"{schema}\".gin_trgm_ops)")


def test_an_instance_from_before_the_folded_columns_migrates(people) -> None:
    inst, _ = people
    with inst.engine.begin() as conn:
        if conn.dialect.name != "postgresql":
            pytest.skip("PostgreSQL's stored folded columns")
        _old_layout(conn, inst)
        assert not [n for n in searchindex.present(conn) if n.startswith("person.")]
    actor = admin_actor(inst)
    ids = {last: records.create(inst, actor, "person", {
        "first_name": first, "last_name": last, "city": "Leeds", "phone": "0117 496 0320"})["id"]
        for first, last in [("José", "García"), ("Jose", "Smith"), ("Ann", "Smithson"),
                            ("伟", "张伟明"), ("Cy", "Blacksmith")]}
    plan = migrate.plan(inst.model, inst.engine)
    assert [op.kind for op in plan] == ["search_index"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
    with inst.engine.connect() as conn:  # filled for the rows already there
        folded = dict(conn.exec_driver_sql(
            "SELECT id, _fold_first_name FROM person").all())
        have = searchindex.present(conn)
    assert folded[ids["García"]] == "jose" and folded[ids["张伟明"]] == "伟"
    assert "_e164_phone public.gin_trgm_ops" in have["ix_trgm_person__e164_phone"]
    assert set(found(inst, "JOSÉ")) == {ids["García"], ids["Smith"]}
    assert found(inst, "伟明") == [ids["张伟明"]] and found(inst, "张伟明") == [ids["张伟明"]]
    assert found(inst, "smith") == [ids["Smith"], ids["Smithson"], ids["Blacksmith"]]
    assert len(found(inst, "4960320")) == 5  # the phone shadow, through its own index


@pytest.mark.parametrize("change", ["rename", "remove", "widen", "narrow"])
def test_field_changes_keep_the_folded_columns(people, tmp_path, change) -> None:
    """A searched field renamed, removed or retyped: PostgreSQL's folded copy follows (a
    column a generated column reads cannot change type; its copy goes, and comes back)."""
    inst, ids = people
    person = {
        "rename": PERSON.replace("first_name", "given_name").replace(
            "given_name: {type: text}", "given_name: {type: text, renamed_from: first_name}"),
        "remove": PERSON.replace("  last_name: {type: text, required: true}\n", "").replace(
            "last_name, ", "").replace("[last_name]", "[first_name]"),
        "widen": PERSON.replace("last_name: {type: text, required: true}",
                                "last_name: {type: text, required: true, max_length: 500}"),
        "narrow": PERSON.replace("last_name: {type: text, required: true}",
                                 "last_name: {type: text, required: true, max_length: 20}"),
    }[change]
    model = build_model([write_pack(tmp_path / "v2", {"entities/person.yaml": person,
                                                      "roles.yaml": ROLES})])
    migrate.apply(migrate.plan(model, inst.engine), inst.engine, allow_destructive=True)
    assert migrate.plan(model, inst.engine).empty
    inst = assemble(model, inst.engine)
    expected = {"rename": {"Smithson", "Smith", "Blacksmith", "Evans"},
                "remove": {"Evans"}}.get(change, {"Smithson", "Smith", "Blacksmith", "Evans"})
    assert set(found(inst, "mith")) == {ids[n] for n in expected}
