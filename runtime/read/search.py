"""Quick search (`?q=` on a list, `/search`): which records a search finds, and in what order.

Every word must match one of the entity's `search` fields the reader may see: anywhere inside
a text value, a phone number by its E.164 shadow column (core/phones.py), a link by the
`search` fields of the linked record (among those the reader may read), and a record's id
finds it. Words are looked up in the search index (core/searchindex.py): on SQLite the FTS5
trigram table, restricted to the visible columns (`{col col} : "word"`); on PostgreSQL
`LIKE` on the stored folded copy of each visible column (`_fold_<column>`), which pg_trgm's
GIN indexes serve, and which the rank reads too. A word of one or two
characters has no trigram and is matched with LIKE. Words and values are compared folded
(`searchindex.fold`: accents and case aside), so "Jose" finds "José" and "muller" "Müller".

The clause goes into the list's own query, beside the row filter and the filters, so what
the reader may not see is never found. `rank` orders what is found: a field equal to the
whole search first, then one that starts with it, then the rest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from builder.fieldtypes import phone_digits
from builder.model import Entity
from runtime.core import phones, searchindex
from runtime.core.values import as_id
from runtime.read.permissions import hidden_fields, read_filter

if TYPE_CHECKING:
    from runtime.core.instance import Actor, Instance

MAX_WORDS = 8
RANK = "_rank"  # the pseudo sort key of a ranked search (never NULL)
LIKE_ESCAPE = "/"


def cleaned(q: str | None) -> str:
    """The search as it is looked up: a NUL character (which no stored value holds, and
    neither database takes in a query) separates words like a space."""
    return (q or "").replace("\x00", " ")


def search_clause(inst: Instance, actor: Actor, ent: Entity, table: Any, q: str | None,
                  hidden: frozenset[str], dialect: str) -> ColumnElement | None:
    """The records of `table` that the search `q` finds (None: no search)."""
    text = cleaned(q).strip()
    if not text:
        return None
    cols = _Columns(ent, hidden)
    words = text.split()[:MAX_WORDS]
    per_word = []
    for word in words:
        options = [*cols.matches(table, word, dialect)]
        for field in (f for f in cols.links if f.to in inst.model.entities):
            linked = _linked_matches(inst, actor, str(field.to), word, dialect)
            if linked is not None:
                options.append(table.c[field.name].in_(linked))
        record_id = as_id(word)  # a record's id finds it ("²" is a digit, but no number)
        if record_id is not None:
            options.append(table.c.id == record_id)
        per_word.append(sa.or_(sa.false(), *options))
    clause = sa.and_(*per_word)
    if (len(words) > 1 and _numeric(text) and len(phone_digits(text)) >= searchindex.MIN_TRIGRAM
            and cols.phones):
        # "0117 496 0320" is one number, not three words
        whole = phones.fragment(text, phones.region())
        clause = sa.or_(clause, cols.phone_match(table, [whole], dialect))
    return clause


def rank(ent: Entity, table: Any, q: str, hidden: frozenset[str],
         dialect: str) -> ColumnElement:
    """0 when a visible search field equals the whole search, 1 when one starts with it,
    else 2 (accents and case aside; a phone number as a number)."""
    q = cleaned(q)
    text = searchindex.fold(q.strip())
    cols = _Columns(ent, hidden)
    values = [searchindex.folded(table.c[c], dialect) for c in cols.text]
    exact = [value == text for value in values]
    prefix = [value.startswith(text, autoescape=True) for value in values]
    number = phones.e164(q, phones.region()) if len(phone_digits(q)) >= 3 else None
    if number is not None:
        exact += [table.c[c] == number for c in cols.phones]
    if not exact:
        return sa.literal(2, sa.Integer())
    return sa.case((sa.or_(*exact), 0), (sa.or_(*prefix, sa.false()), 1), else_=2)


def best_matches(ent: Entity, q: str | None, hidden: frozenset[str],
                 dialect: str) -> tuple[str, list[str]] | None:
    """(the folded search, the visible text columns) when a ranked first page may be read
    from the exact and prefix matches alone, else None. The prefix indexes
    (core/searchindex.py) find those without the trigram lookups; that is enough when every
    visible text column has one, when no phone number ranks (rank 0 by a phone is not a text
    prefix), and when every such match is found by the whole search too: each word lies
    inside the folded search, so a value starting with the search contains every word."""
    q = cleaned(q)
    text = searchindex.fold(q.strip())
    cols = _Columns(ent, hidden)
    if dialect not in ("postgresql", "sqlite") or not text:
        return None
    if not cols.text or not set(cols.text) <= set(searchindex.prefixed(ent)):
        return None  # a long text to rank as well
    if cols.phones and len(phone_digits(q)) >= 3 and phones.e164(
            q, phones.region()) is not None:
        return None
    words = q.split()[:MAX_WORDS]
    if not all((searchindex.fold(w) or "") in text for w in words):
        return None
    return text, cols.text


class _Columns:
    """The columns a reader's search looks at: indexed text, phone shadows, links."""

    def __init__(self, ent: Entity, hidden: frozenset[str]):
        visible = [ent.fields[n] for n in ent.search if n in ent.fields and n not in hidden]
        self.table_name = ent.table
        self.text = [f.name for f in visible if f.type in searchindex.SEARCH_TYPES]
        self.phones = [phones.shadow(f.name) for f in visible if f.type == "phone"]
        self.links = [f for f in visible if f.type == "link"]
        self.indexed = bool(searchindex.columns(ent))

    def matches(self, table: Any, word: str, dialect: str) -> list[ColumnElement]:
        """The conditions under which `word` matches a text or phone column."""
        found = []
        digits = phone_digits(word) if _numeric(word) else ""
        numbers = [digits, phones.fragment(word, phones.region())] if (
            len(digits) >= searchindex.MIN_TRIGRAM and self.phones) else []
        term = searchindex.fold(word)
        trigram = len(term) >= searchindex.MIN_TRIGRAM
        if dialect == "sqlite" and self.indexed and (trigram or numbers):
            expression = " OR ".join(
                ([_fts_term(self.text, term)] if trigram and self.text else [])
                + [_fts_term(self.phones, n) for n in dict.fromkeys(numbers)])
            if expression:
                found.append(table.c.id.in_(_fts_rowids(self.table_name, expression)))
            if not trigram:  # "张伟" is two characters: the index cannot look it up
                found += [text_match(table.c[c], word, dialect) for c in self.text]
            return found
        found += [text_match(table.c[c], word, dialect) for c in self.text]
        if numbers:
            found.append(self.phone_match(table, numbers, dialect))
        return found

    def phone_match(self, table: Any, numbers: list[str], dialect: str) -> ColumnElement:
        """A phone shadow column holds one of `numbers` (fragments of E.164)."""
        if dialect == "sqlite" and self.indexed:
            expression = " OR ".join(_fts_term(self.phones, n) for n in dict.fromkeys(numbers))
            return table.c.id.in_(_fts_rowids(self.table_name, expression))
        return sa.or_(*[table.c[c].contains(n, autoescape=True)
                        for c in self.phones for n in numbers])


def _numeric(text: str) -> bool:
    """Whether `text` may be (part of) a phone number: no letters ("ZQ014X" is a code, and
    searching phones for its "014" would find records by what the reader did not type)."""
    return not any(character.isalpha() for character in text)


def _fts_term(columns: list[str], term: str) -> str:
    """`{a b} : "term"`: the term as one quoted string, looked up in those columns only."""
    return "{" + " ".join(columns) + "} : \"" + term.replace('"', '""') + '"'


def _fts_rowids(table_name: str, expression: str) -> Any:
    fts = searchindex.fts_name(table_name)
    source = sa.table(fts, sa.column("rowid"))
    return sa.select(source.c.rowid).where(
        sa.literal_column(f'"{fts}"').op("MATCH")(sa.literal(expression, sa.String())))


def text_match(column: Any, word: str, dialect: str) -> ColumnElement:
    """`word` anywhere in an indexed text column, accents and case aside: LIKE on its folded
    text (PostgreSQL: the stored copy, which the trigram index serves; on SQLite a scan, for
    words too short for FTS5)."""
    return searchindex.folded(column, dialect).contains(searchindex.fold(word), autoescape=True)


def _linked_matches(inst: Instance, actor: Actor, entity: str, word: str,
                    dialect: str) -> Any:
    """The ids of the `entity` records whose text search fields match `word`, among those the
    actor may read and on the fields they may see (None: no field to match on). Which records
    a search finds through a link must not tell an unreadable record's values, nor a hidden
    field's, any more than a title or a filter may."""
    target = inst.model.entity(entity)
    ttable = inst.schema.table(entity).alias()
    cols = _Columns(target, hidden_fields(inst, actor, entity))
    cols.phones = []  # a link is found by its record's words, not by its phone number
    inner = cols.matches(ttable, word, dialect) if cols.text else []
    if not inner:
        return None
    stmt = sa.select(ttable.c.id).where(sa.or_(*inner))
    row_filter = read_filter(inst, actor, entity, ttable)
    return stmt if row_filter is None else stmt.where(row_filter)
