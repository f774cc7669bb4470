"""Accent- and case-insensitive quick search (core/searchindex.py `fold`, read/search.py) on
SQLite and PostgreSQL: "Jose" finds "José" and back, "Muller" "Müller", Chinese substrings
still match, exact and prefix matches still come first, row filters still hold, the global
search page folds too, and a database indexed before folding is refolded by `migrate`."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import sqlalchemy as sa
from support import admin_actor, insert_user, write_pack
from web_support import make_app, sign_in

from runtime.core import searchindex
from runtime.core.instance import Instance
from runtime.process import migrate
from runtime.write import records

PERSON = """\
entity: person
fields:
  first_name: {type: text}
  last_name: {type: text, required: true}
  city: {type: text}
search: [first_name, last_name]
views:
  list: {columns: [first_name, last_name, city], sort: [last_name], filters: [city]}
permissions:
  clerk: {read: "city == 'Madrid'", create: true, update: true, delete: true}
"""
ROLES = "roles:\n  clerk: {label: Clerk}\n"
PEOPLE = [
    ("José", "García", "Madrid"), ("Jose", "Pérez", "Sevilla"), ("Josefina", "Núñez", "Madrid"),
    ("Ana", "Müller", "Madrid"), ("Karl", "Muller", "Berlin"), ("北京市", "王北京人", "Madrid"),
    ("Ángel", "JOSÉ", "Madrid"),
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


def test_fold() -> None:
    assert searchindex.fold("José MÜLLER Ñandú") == "jose muller nandu"
    assert searchindex.fold("北京市朝阳区") == "北京市朝阳区"  # Chinese is left as it is
    assert searchindex.fold("ＡＢＣ１２３") == "abc123"  # full-width forms too
    assert searchindex.fold(None) is None


@pytest.mark.parametrize(("q", "names"), [
    ("Jose", {"García", "Pérez", "Núñez", "JOSÉ"}),  # Josefina, and JOSÉ as a last name
    ("José", {"García", "Pérez", "Núñez", "JOSÉ"}),
    ("jose garcia", {"García"}),
    ("Muller", {"Müller", "Muller"}),
    ("Müller", {"Müller", "Muller"}),
    ("nunez", {"Núñez"}),
    ("NÚÑ", {"Núñez"}),
    ("北京", {"王北京人"}),  # two characters, in the middle of both names: LIKE
    ("京人", {"王北京人"}),
    ("北京人", {"王北京人"}),  # three: through the index
    ("angel", {"JOSÉ"}),
    ("an", {"Müller", "JOSÉ"}),  # short words fold too (Ana, Ángel)
    ("josé%", set()),
])
def test_accents_and_case_aside(people, q, names) -> None:
    inst, ids = people
    assert set(found(inst, q)) == {ids[n] for n in names}


def test_exact_and_prefix_first(people) -> None:
    inst, ids = people
    order = found(inst, "jose")
    # exact (JOSÉ, García, Pérez: first names José/Jose; last name JOSÉ), in the list's sort
    # (last name), then the prefix (Josefina Núñez)
    assert order == [ids["García"], ids["JOSÉ"], ids["Pérez"], ids["Núñez"]]


def test_row_filters_still_apply(people) -> None:
    inst, ids = people
    clerk = insert_user(inst, "clerk", roles=["clerk"])
    assert set(found(inst, "jose", clerk)) == {ids["García"], ids["Núñez"], ids["JOSÉ"]}
    assert set(found(inst, "muller", clerk)) == {ids["Müller"]}
    assert records.count(inst, clerk, "person", q="jose") == (3, True)


def test_updates_are_refolded(people) -> None:
    inst, ids = people
    actor = admin_actor(inst)
    records.update(inst, actor, "person", ids["Pérez"], {"last_name": "Peña"}, version=1)
    assert found(inst, "pena") == [ids["Pérez"]] and found(inst, "perez") == []
    records.delete(inst, actor, "person", ids["Pérez"])
    assert found(inst, "pena") == []


def test_the_search_page_folds(people, tmp_path) -> None:
    inst, ids = people
    client = make_app(inst, tmp_path).test_client()
    sign_in(client, inst, admin_actor(inst))
    page = client.get("/search", query_string={"q": "muller"}).get_data(as_text=True)
    assert f"/e/person/{ids['Müller']}" in page and f"/e/person/{ids['Muller']}" in page
    page = client.get("/search", query_string={"q": "García"}).get_data(as_text=True)
    assert f"/e/person/{ids['García']}" in page and f"/e/person/{ids['Pérez']}" not in page


def test_migrate_refolds_an_index_from_before_folding(people) -> None:
    inst, ids = people
    table = inst.schema.table("person")
    with inst.engine.begin() as conn:  # the index as it was built before folding
        if conn.dialect.name == "sqlite":
            for name in searchindex.present(conn):
                kind = ("INDEX" if name.startswith(searchindex.PREFIX_PREFIX) else
                        "TRIGGER" if name.endswith(("_ai", "_ad", "_au")) else "TABLE")
                conn.exec_driver_sql(f'DROP {kind} "{name}"')
            conn.exec_driver_sql(
                "CREATE VIRTUAL TABLE crm_search__person USING fts5(first_name, last_name, "
                "content=person, content_rowid='id', tokenize='trigram')")
            conn.exec_driver_sql("INSERT INTO crm_search__person(crm_search__person) "
                                 "VALUES ('rebuild')")
        else:
            schema, have = searchindex.trgm_schema(conn), searchindex.present(conn)
            for name in [n for n in have if n.startswith("person.")]:  # (and their indexes)
                conn.exec_driver_sql(f'ALTER TABLE person DROP COLUMN "{name[7:]}"')
            for name in [n for n in have if n.startswith("ix_trgm_person_")]:
                column = name.removeprefix("ix_trgm_person_")
                conn.exec_driver_sql(f'DROP INDEX IF EXISTS "{name}"')
                conn.exec_driver_sql(f'CREATE INDEX "{name}" ON person USING gin '
                                     f'("{column}" "{schema}".gin_trgm_ops)')
    plan = migrate.plan(inst.model, inst.engine)
    assert [op.kind for op in plan] == ["search_index"]
    migrate.apply(plan, inst.engine)
    assert migrate.plan(inst.model, inst.engine).empty
    assert set(found(inst, "muller")) == {ids["Müller"], ids["Muller"]}
    with inst.engine.connect() as conn:
        made = {name: sql for name, sql in searchindex.present(conn).items()
                if "person" in name and not sql.startswith("CREATE VIRTUAL")}
        if conn.dialect.name == "sqlite":
            assert made and all("crm_fold(" in sql for sql in made.values())
        else:  # the folded copies, and the indexes on them
            assert {n: "normalize(" in sql.lower() for n, sql in made.items() if "." in n} \
                == {"person._fold_first_name": True, "person._fold_last_name": True}
            assert sorted(sql.split("USING gin (")[1].split()[0]
                          for n, sql in made.items() if n.startswith("ix_trgm_")) \
                == ["_fold_first_name", "_fold_last_name"]
            assert sorted(sql.split("USING btree (")[1].split()[0]  # and the prefix indexes
                          for n, sql in made.items() if n.startswith("ix_prefix_person_")
                          and not n.endswith(("__long", "__sizes"))) \
                == ["_fold_first_name", "_fold_last_name"]
        assert conn.execute(sa.select(sa.func.count()).select_from(table)).scalar() == 7
