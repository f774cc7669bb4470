"""The data of a list page, built once for every renderer (table, kanban, calendar, CSV).

The list's address is its state, in the API's own syntax: `?status=pending&amount__gte=100
&q=anna&sort=-amount&cursor=...`, so a list can be bookmarked, saved as a view, exported, or
replayed against `/api/v1/<entity>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from werkzeug.datastructures import MultiDict

from builder.model import Entity, Field
from runtime.core.errors import BadRequest
from runtime.http.web.layout import actor, field_label, hidden_fields, inst, language
from runtime.http.web.localize import zone
from runtime.http.web.widgets import WIDGETS, display
from runtime.read import listrequest, titles
from runtime.read.dashboards import list_summary
from runtime.read.permissions import native
from runtime.read.queries import as_id
from runtime.write import records

# The page's own state beside the list's (`listrequest.STATE_KEYS`): never filters. `entity`
# and `endpoint` are url_for's own names, so a list address cannot carry them as filters.
WEB_KEYS = frozenset({"view", "month", "mode", "day", "columns", "chooser", "saved", "entity",
                      "endpoint"})
PICKER_KEYS = ("__q", "__shown")  # a link picker's typed text and the title it showed
COUNT_CAP = 10_000


@dataclass
class Filter:
    """One filter control above the list."""

    field: Field
    kind: str  # choice | boolean | link | range | text
    label: str
    values: dict[str, str] = field(default_factory=dict)  # input name -> current value
    link_title: str = ""

    @property
    def active(self) -> bool:
        return any(self.values.values())


@dataclass
class Column:
    field: Field
    label: str
    sort: str | None  # "asc" / "desc" when the list is sorted by it
    numeric: bool


@dataclass
class ListData:
    entity: Entity
    columns: list[Column]
    rows: list[dict[str, Any]]
    titles: dict[str, dict[Any, str]]
    row_titles: dict[Any, str]
    filters: list[Filter]
    active_filters: dict[str, str]
    q: str
    sort: list[str]
    next_cursor: str | None
    prev_cursor: str | None
    count: int
    exact: bool
    errors: list[str] = field(default_factory=list)
    summary: list[Any] = field(default_factory=list)  # the view's report: dashboards.Point

    @property
    def count_text(self) -> str:
        return f"{self.count:,}" if self.exact else f"{self.count:,}+"


def web_key(key: str) -> bool:
    """Whether `key` is the page's own (see WEB_KEYS), never a filter."""
    return key in WEB_KEYS or key.endswith(PICKER_KEYS)


def list_request(entity: Entity, args: MultiDict) -> listrequest.ListRequest:
    """The list's state in `args`, read by the API's reader (`runtime.read.listrequest`), with
    the page's keys left out and a blank box of the filter form meaning no filter. A link
    typed without picking (`buyer__q`, JavaScript off) is looked up by title."""
    wanted = listrequest.parse_list(entity, args, hidden=hidden_fields(entity.name),
                                    me=actor().user_id, ignore=web_key, skip_blank=True,
                                    zone=zone())
    return typed_links(entity, args, wanted)


def typed_links(entity: Entity, args: MultiDict,
                wanted: listrequest.ListRequest) -> listrequest.ListRequest:
    """`wanted` with a filter for each link typed in its picker but not picked."""
    filters, problems = list(wanted.filters), list(wanted.problems)
    hidden = hidden_fields(entity.name)
    for f in entity.fields.values():
        typed = (args.get(f.name + "__q") or "").strip()
        if f.type != "link" or not typed or f.name in hidden or \
                any(flt.key == f.name for flt in filters) or \
                typed == (args.get(f.name + "__shown") or "").strip():
            continue
        match = resolve_title(f, typed)
        if match is None:
            problems.append(listrequest.Problem(
                f.name + "__q", f"No {f.to} matches “{typed}”; pick one from the list."))
        else:
            filters.append(listrequest.Filter(f.name, "eq", str(match)))
    return replace(wanted, filters=tuple(filters), problems=tuple(problems))


def warnings(wanted: listrequest.ListRequest) -> list[str]:
    """The request's problems as the page shows them: the list is shown without them."""
    return [f"'{p.key}' is not a filter of this list; it was ignored." if p.unknown
            else p.message for p in wanted.problems]


def resolve_title(f: Field, text: str) -> int | None:
    """The one record of `f.to` whose quick search finds `text`; None for none or several."""
    if not f.to or f.to not in inst().model.entities:
        return None
    page = records.query(inst(), actor(), f.to, filters={}, q=text, sort=[], limit=2,
                         cursor=None)
    rows = list(page.rows)
    return rows[0]["id"] if len(rows) == 1 else None


# fields a list cell cannot show on one line
NO_COLUMN_TYPES = ("richtext",)
# the system fields a user may add as columns, after the declared ones
SYSTEM_COLUMNS = ("owner", "created_at", "created_by", "updated_at", "updated_by",
                  "last_activity_at")


def offered_columns(entity: Entity) -> list[Field]:
    """The fields the column chooser offers: the view's columns, then the other declared
    fields, then the system fields people read (owner, created, updated); never one hidden
    from the user."""
    hidden = hidden_fields(entity.name)
    names = [*entity.views.list.columns, *(f.name for f in entity.user_fields),
             *SYSTEM_COLUMNS]
    seen: dict[str, Field] = {}
    for name in names:
        f = entity.fields.get(name)
        if f is not None and name not in hidden and name not in seen and \
                f.type not in NO_COLUMN_TYPES:
            seen[name] = f
    return list(seen.values())


def visible_columns(entity: Entity, chosen: str | None = None) -> list[Field]:
    """The columns shown: those `chosen` (`columns=a,b`, in that order) the user may read —
    a name the definition no longer has, or one hidden from the user, is left out silently —
    else the view's columns."""
    offered = {f.name: f for f in offered_columns(entity)}
    picked = [offered[n] for n in dict.fromkeys(column_names(chosen)) if n in offered]
    if picked:
        return picked
    return [offered[n] for n in entity.views.list.columns if n in offered]


def column_names(chosen: str | None) -> list[str]:
    return [n.strip() for n in (chosen or "").split(",") if n.strip()]


def column_choices(entity: Entity, chosen: str | None) -> list[tuple[Field, bool]]:
    """(field, shown) for the chooser: the shown columns in their order, then the others."""
    shown = visible_columns(entity, chosen)
    names = {f.name for f in shown}
    return [(f, True) for f in shown] + [(f, False) for f in offered_columns(entity)
                                         if f.name not in names]


def moved(names: list[str], move: str) -> list[str]:
    """`names` with the column of `move` ("up:status", "down:status") one place along."""
    direction, _, name = move.partition(":")
    if name not in names or direction not in ("up", "down"):
        return names
    at = names.index(name)
    to = at - 1 if direction == "up" else at + 1
    if not 0 <= to < len(names):
        return names
    result = list(names)
    result[at], result[to] = result[to], result[at]
    return result


def natives(entity: Entity, rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records as JSON (what `records` answers) back to Python values for formatting."""

    return [native(entity, row) for row in rows]


# -- titles: `runtime.read.titles` for the signed-in user ---------------------------------------

def page_titles(entity: Entity, rows: Sequence[dict[str, Any]], template: str | None = None
                ) -> tuple[dict[str, dict[Any, str]], dict[Any, str]]:
    """({link field: {id: title}}, {id: title}) of a page of rows, every linked record read
    once, through the user's row filter (see `titles.page_titles`)."""
    if not rows:
        return {}, {}
    with inst().primary_reader() as conn:
        return titles.page_titles(inst(), conn, entity.name, rows, actor=actor(),
                                  template=template)


def link_titles(entity: Entity, rows: Sequence[dict[str, Any]]) -> dict[str, dict[Any, str]]:
    """{link field: {id: title}} for every link on these rows; records the user may not read
    have no title (they show as "#id")."""
    return page_titles(entity, rows)[0]


def row_titles(entity: Entity, rows: Sequence[dict[str, Any]]) -> dict[Any, str]:
    """{id: title} of these rows."""
    return page_titles(entity, rows)[1]


def record_title(entity: Entity, record: dict[str, Any]) -> str:
    """One record's title."""
    return row_titles(entity, [record])[record["id"]]


def build_filters(entity: Entity, args: MultiDict) -> list[Filter]:
    hidden = hidden_fields(entity.name)
    result = []
    for name in entity.views.list.filters:
        f = entity.fields.get(name)
        if f is None or name in hidden:
            continue
        kind = WIDGETS[f.type].filter
        if kind is None:
            continue
        if kind == "range":
            keys = [f"{name}__gte", f"{name}__lte"]
        elif kind == "text":
            keys = [f"{name}__contains"]
        elif kind == "choice" and f.type == "multichoice":
            keys = [f"{name}__contains"]
        else:
            keys = [name]
        values = {k: args.get(k, "") for k in keys}
        current = Filter(f, kind, field_label(entity, name), values)
        if kind == "link":
            current.values[name + "__q"] = args.get(name + "__q", "")
            record_id = as_id(values[name])
            if record_id is not None and f.to in inst().model.entities:
                current.link_title = title_of(f.to, record_id) or ""
        result.append(current)
    return result


def title_of(entity: str, record_id: int) -> str | None:
    """The title of a record by id; None when it is missing or the user may not read it."""
    with inst().primary_reader() as conn:
        return titles.title_of(inst(), conn, entity, record_id, actor=actor())


def build(entity: Entity, wanted: listrequest.ListRequest, args: MultiDict) -> ListData:
    """The rows, columns, filters and paging of one list page: `wanted` without its problems
    (they are the page's warnings); a cursor that does not fit is one more, and the first
    page is shown."""
    errors = warnings(wanted)
    filters, q, sort = wanted.filters, wanted.q, list(wanted.sort)
    instance, who = inst(), actor()
    try:
        page = records.query(instance, who, entity.name, filters=filters, q=q, sort=sort,
                             limit=wanted.limit, cursor=wanted.cursor, count_cap=COUNT_CAP)
    except BadRequest as exc:
        errors.append(exc.message)
        page = records.query(instance, who, entity.name, filters=filters, q=q, sort=sort,
                             limit=wanted.limit, cursor=None, count_cap=COUNT_CAP)
    # a ranked search's first page counts its matches itself (read/queries.py `query`)
    count, exact = page.count or records.count(instance, who, entity.name, filters=filters,
                                               q=q, cap=COUNT_CAP)
    rows = natives(entity, page.rows)
    sorted_by = {k.lstrip("-+"): ("desc" if k.startswith("-") else "asc") for k in sort[:1]}
    columns = [Column(f, field_label(entity, f.name), sorted_by.get(f.name),
                      WIDGETS[f.type].numeric)
               for f in visible_columns(entity, args.get("columns"))]
    links, names = page_titles(entity, rows)
    summary = list_summary(instance, who, entity, wanted.filter_map(), q, language(), zone())
    return ListData(entity, columns, rows, links, names,
                    build_filters(entity, args), wanted.filter_map(), q or "", sort,
                    page.next_cursor, page.prev_cursor, count, exact, errors, summary)


def cell(data: ListData, row: dict[str, Any], column: Column) -> Any:
    return display(row.get(column.field.name), column.field, data.titles)
