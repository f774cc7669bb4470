"""Tables from the AppModel: one real table per entity, join tables for `links`, the `crm_*`
system tables. Built once per model hash and cached.

Constraint and index names are deterministic (a naming convention), so integrity errors map
back to fields by name and the migration planner compares like with like.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from builder.model import AppModel, Entity, Field
from runtime.core import caches, searchindex
from runtime.core.fieldtypes import Id, column_type
from runtime.core.phones import shadow

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s",
    "pk": "pk_%(table_name)s",
}
ON_DELETE = {"restrict": "RESTRICT", "set_null": "SET NULL", "cascade": "CASCADE"}
USER_TABLE, TEAM_TABLE = "crm_user", "crm_team"
PENDING_APPROVAL_INDEX = "uq_crm_approval_request_pending"
PENDING_APPROVAL_WHERE = "status = 'pending'"
PENDING_APPROVAL_DUPLICATES = (  # what `crmforge migrate` says when a database breaks it
    "these records (entity, id) have more than one pending approval request: recall all but "
    "one of each (as an admin: 'Recall this request' on the record page, or POST "
    "/api/v1/approvals/<id>/recall), then run the migration again")


def link_table_name(entity: Entity, field_name: str) -> str:
    return f"{entity.table}__{field_name}"


@dataclass
class Schema:
    """The SQLAlchemy tables of one model version."""

    model: AppModel
    metadata: sa.MetaData
    tables: dict[str, sa.Table] = field(default_factory=dict)  # entity name -> table
    link_tables: dict[tuple[str, str], sa.Table] = field(default_factory=dict)

    def table(self, entity: str) -> sa.Table:
        return self.tables[entity]

    def link_table(self, entity: str, field_name: str) -> sa.Table:
        """The join table of a `links` field: columns `source_id`, `target_id`."""
        return self.link_tables[(entity, field_name)]

    def system(self, name: str) -> sa.Table:
        """A system table by its name without the prefix: `system("audit")`."""
        return self.metadata.tables[f"crm_{name}"]

    def private_metadata(self) -> sa.MetaData:
        """A copy of the tables to emit DDL from. The shared tables must not be handed to
        DDL: SQLAlchemy marks use_alter foreign keys "never inline" on the constraint objects
        while creating them on PostgreSQL, which would leave them out on SQLite later."""
        copy = sa.MetaData(naming_convention=NAMING_CONVENTION)
        for table in self.metadata.tables.values():
            table.to_metadata(copy)
        for table in copy.tables.values():
            for constraint in table.constraints:
                constraint._create_rule = None  # undo a mark copied from the shared table
        return copy

    def create_all(self, bind: sa.Engine | sa.Connection) -> None:
        """Create every table and the search index (tests and benchmarks; instances are
        built by `migrate`)."""
        self.private_metadata().create_all(bind)
        if isinstance(bind, sa.Engine):
            with bind.begin() as conn:
                searchindex.create_all(conn, self.model)
        else:
            searchindex.create_all(bind, self.model)


def build_schema(model: AppModel) -> Schema:
    """The tables of `model`, built once per model hash."""
    return caches.SCHEMAS.get(model.hash, lambda: _build(model))


def by_id(table: sa.Table, lock: bool = False) -> Any:
    """SELECT * FROM table WHERE id = :_crm_id (FOR KEY SHARE with `lock`), built once."""
    def build() -> Any:
        built = sa.select(table).where(table.c.id == sa.bindparam("_crm_id"))
        return built.with_for_update(key_share=True, of=table) if lock else built
    return caches.STATEMENTS.get(table, ("by_id", lock), build)


def rows_by_id(conn: Any, table: sa.Table, ids: Iterable[int], *columns: Any,
               where: Any = None, lock: bool = False) -> dict[int, dict[str, Any]]:
    """{id: row} of the rows of `table` with those ids (every column, or `columns` beside
    the id; `where` narrows them; `lock`: FOR KEY SHARE, in id order), 500 ids a query."""
    wanted = sorted(set(ids))
    found: dict[int, dict[str, Any]] = {}
    for start in range(0, len(wanted), 500):
        stmt = (sa.select(table.c.id, *columns) if columns else sa.select(table)).where(
            table.c.id.in_(wanted[start:start + 500]))
        if where is not None:
            stmt = stmt.where(where)
        if lock:
            stmt = stmt.order_by(table.c.id).with_for_update(key_share=True, of=table)
        result = conn.execute(stmt)
        keys = list(result.keys())  # a dict of each row's zip: twice dict(row._mapping)'s speed
        at = keys.index("id")
        found.update((int(row[at]), dict(zip(keys, row, strict=True))) for row in result)
    return found


def _build(model: AppModel) -> Schema:
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
    schema = Schema(model, metadata)
    for entity in model.entities.values():
        schema.tables[entity.name] = _entity_table(metadata, model, entity)
    for entity in model.entities.values():
        for f in entity.fields.values():
            if f.type == "links":
                schema.link_tables[(entity.name, f.name)] = _join_table(metadata, model,
                                                                        entity, f)
    _system_tables(metadata)
    return schema


def _foreign_key(model: AppModel, f: Field) -> sa.ForeignKey:
    target = model.entities[f.to].table if f.to in model.entities else USER_TABLE
    # use_alter: entities link to each other in cycles (account <-> contact); PostgreSQL adds
    # these constraints after the tables, and the tables can be dropped in any order.
    return sa.ForeignKey(f"{target}.id", ondelete=ON_DELETE.get(f.on_delete or "set_null"),
                         use_alter=True)


def _entity_table(metadata: sa.MetaData, model: AppModel, entity: Entity) -> sa.Table:
    columns: list[sa.Column] = []
    indexed: list[str] = []
    for f in entity.fields.values():
        if f.type == "links":
            continue
        args: list = []
        kwargs: dict = {"nullable": True}
        if f.name == "id":
            columns.append(sa.Column("id", Id, primary_key=True, autoincrement=True))
            continue
        if f.type == "link":
            args.append(_foreign_key(model, f))
            indexed.append(f.name)
        if f.name == "version":
            kwargs.update(nullable=False, server_default="1")
        if f.name in ("created_at", "updated_at"):
            kwargs["nullable"] = False
        if f.unique or f.type == "autonumber":
            kwargs["unique"] = True
        elif f.index or f.name in ("created_at", "updated_at"):
            indexed.append(f.name)
        columns.append(sa.Column(f.name, column_type(f), *args, **kwargs))
        if f.type == "phone":  # the number as E.164, beside what was typed (core/phones.py)
            columns.append(sa.Column(shadow(f.name), sa.String(40), nullable=True))
            indexed.append(shadow(f.name))
    if entity.name == "user":
        columns += [
            sa.Column("password_hash", sa.String(255)),
            sa.Column("is_admin", sa.Boolean(create_constraint=False), nullable=False,
                      server_default=sa.false()),
            sa.Column("language", sa.String(16)),
            sa.Column("time_zone", sa.String(64)),
            sa.Column("away_from", sa.Date()),
            sa.Column("away_until", sa.Date()),
            sa.Column("delegate", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="SET NULL",
                                                    use_alter=True)),
        ]
    view = entity.views.list
    sort = [n for n in dict.fromkeys(s.lstrip("-+") for s in view.sort) if _indexable(entity, n)]
    indexed += sort
    # a list filtered by a field reads its rows in the list's sort from one index, as an
    # unfiltered page reads the sort's own: (filter, sort…, id)
    composite = [n for n in dict.fromkeys(view.filters)
                 if _indexable(entity, n) and n not in sort]
    table = sa.Table(entity.table, metadata, *columns)
    for name in dict.fromkeys(indexed):
        sa.Index(None, table.c[name], _table=table)
    for name in composite:
        sa.Index(None, table.c[name], *(table.c[s] for s in sort if s != "id"), table.c.id,
                 _table=table)
    if "owner" in table.c and "id" in table.c:
        sa.Index(None, table.c.owner, table.c.id, _table=table)
    return table


def _indexable(entity: Entity, name: str) -> bool:
    """Whether a list filter or sort field gets an index (unique ones have theirs)."""
    field = entity.fields.get(name)
    return field is not None and not field.unique and field.type not in (
        "links", "multichoice", "longtext", "richtext")


def _join_table(metadata: sa.MetaData, model: AppModel, entity: Entity, f: Field) -> sa.Table:
    target = model.entities[f.to].table
    return sa.Table(
        link_table_name(entity, f.name), metadata,
        sa.Column("source_id", Id, sa.ForeignKey(f"{entity.table}.id", ondelete="CASCADE"),
                  primary_key=True),
        sa.Column("target_id", Id, sa.ForeignKey(f"{target}.id", ondelete="CASCADE"),
                  primary_key=True, index=True),
    )


def _system_tables(metadata: sa.MetaData) -> None:
    user_fk = {"ondelete": "SET NULL", "use_alter": True}

    def user_ref(name: str, **kwargs) -> sa.Column:
        return sa.Column(name, Id, sa.ForeignKey(f"{USER_TABLE}.id", **user_fk), **kwargs)

    sa.Table("crm_user_role", metadata,
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       primary_key=True),
             sa.Column("role", sa.String(63), primary_key=True))
    sa.Table("crm_token", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       nullable=False, index=True),
             sa.Column("token_hash", sa.String(128), nullable=False, unique=True),
             sa.Column("label", sa.String(255)),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("last_used_at", sa.DateTime()))
    sa.Table("crm_audit", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("action", sa.String(16), nullable=False),
             sa.Column("field", sa.String(63)),
             sa.Column("old_value", sa.Text()),
             sa.Column("new_value", sa.Text()),
             user_ref("user_id"),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.Index(None, "entity", "record_id", "id"))
    sa.Table("crm_timeline", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("kind", sa.String(16), nullable=False),
             sa.Column("body", sa.Text()),
             sa.Column("data", sa.JSON()),
             sa.Column("follow_up_on", sa.Date(), index=True),
             sa.Column("follow_up_done", sa.Boolean(create_constraint=False), nullable=False,
                       server_default=sa.false()),
             user_ref("user_id"),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Index(None, "entity", "record_id", "id"))
    sa.Table("crm_attachment", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("filename", sa.String(255), nullable=False),
             sa.Column("content_type", sa.String(127), nullable=False),
             sa.Column("size", sa.BigInteger(), nullable=False),
             sa.Column("storage_key", sa.String(255), nullable=False, unique=True),
             user_ref("user_id"),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Index(None, "entity", "record_id"))
    sa.Table("crm_installed", metadata,
             sa.Column("pack", sa.String(63), primary_key=True),
             sa.Column("version", sa.String(63), nullable=False),
             sa.Column("path", sa.String(1024)),
             sa.Column("demo", sa.Boolean(create_constraint=False), nullable=False,
                       server_default=sa.false()),
             sa.Column("installed_at", sa.DateTime(), nullable=False))
    sa.Table("crm_model", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("hash", sa.String(64), nullable=False),
             sa.Column("packs", sa.JSON(), nullable=False),
             sa.Column("applied_at", sa.DateTime(), nullable=False))
    sa.Table("crm_autonumber", metadata,
             sa.Column("entity", sa.String(63), primary_key=True),
             sa.Column("field", sa.String(63), primary_key=True),
             sa.Column("next_value", sa.BigInteger(), nullable=False))
    sa.Table("crm_saved_view", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       nullable=False),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("name", sa.String(255), nullable=False),
             sa.Column("settings", sa.JSON(), nullable=False),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.UniqueConstraint("user_id", "entity", "name"))
    sa.Table("crm_notification", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       nullable=False),
             sa.Column("subject", sa.String(255), nullable=False),
             sa.Column("body", sa.Text()),
             sa.Column("link", sa.String(1024)),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("read_at", sa.DateTime()),
             sa.Index(None, "user_id", "read_at"))
    sa.Table("crm_approval_request", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("approval", sa.String(63), nullable=False),
             sa.Column("transition", sa.String(63), nullable=False),
             sa.Column("from_state", sa.String(63)),
             sa.Column("status", sa.String(16), nullable=False),  # pending, approved, ...
             sa.Column("step_index", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("step_started_at", sa.DateTime()),
             user_ref("submitted_by"),
             sa.Column("submitted_at", sa.DateTime(), nullable=False),
             sa.Column("decided_at", sa.DateTime()),
             sa.Column("comment", sa.Text()),
             sa.Column("version", sa.Integer(), nullable=False, server_default="1"),
             sa.Index(None, "entity", "record_id", "status"),
             sa.Index(None, "status"),
             # one pending request per record, held by the database: a second one fails to
             # insert even when two transitions race (process.approvals.actions.open_request)
             sa.Index(PENDING_APPROVAL_INDEX, "entity", "record_id", unique=True,
                      sqlite_where=sa.text(PENDING_APPROVAL_WHERE),
                      postgresql_where=sa.text(PENDING_APPROVAL_WHERE),
                      info={"on_duplicates": PENDING_APPROVAL_DUPLICATES}))
    sa.Table("crm_approval_assignee", metadata,
             sa.Column("request_id", Id, sa.ForeignKey("crm_approval_request.id",
                                                       ondelete="CASCADE"), primary_key=True),
             sa.Column("step_index", sa.Integer(), primary_key=True),
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       primary_key=True, index=True),
             sa.Column("escalated", sa.Boolean(create_constraint=False), nullable=False,
                       server_default=sa.false()))
    sa.Table("crm_approval_decision", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("request_id", Id, sa.ForeignKey("crm_approval_request.id",
                                                       ondelete="CASCADE"), nullable=False,
                       index=True),
             sa.Column("step_index", sa.Integer(), nullable=False),
             sa.Column("step", sa.String(63), nullable=False),
             user_ref("user_id"),
             user_ref("on_behalf_of"),
             sa.Column("decision", sa.String(16), nullable=False),
             sa.Column("comment", sa.Text()),
             sa.Column("at", sa.DateTime(), nullable=False),
             sa.UniqueConstraint("request_id", "step_index", "user_id"))
    sa.Table("crm_schedule_run", metadata,
             sa.Column("automation", sa.String(127), primary_key=True),
             sa.Column("period", sa.String(32), primary_key=True),
             sa.Column("record_id", sa.BigInteger(), primary_key=True),
             sa.Column("at", sa.DateTime(), nullable=False))
    # jobs of the worker that failed at least once (process.jobs): one row per queued job,
    # kept across its retries, so `crmforge worker --status` and /metrics can say what failed
    sa.Table("crm_job_failure", metadata,
             sa.Column("task_id", sa.String(64), primary_key=True),
             sa.Column("job", sa.String(255), nullable=False),
             sa.Column("status", sa.String(16), nullable=False),  # retrying, failed, recovered
             sa.Column("attempts", sa.Integer(), nullable=False),
             sa.Column("last_error", sa.Text(), nullable=False),
             sa.Column("worker", sa.String(255), nullable=False),
             sa.Column("first_failed_at", sa.DateTime(), nullable=False),
             sa.Column("updated_at", sa.DateTime(), nullable=False, index=True))
    # outgoing e-mail, sent by the worker (process.mail.outbox): one row per message, retried
    # with backoff; `once_key` keeps a message that must go once from being queued twice
    sa.Table("crm_mail", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("template", sa.String(63)),
             sa.Column("to_address", sa.String(320), nullable=False),
             sa.Column("subject", sa.String(255), nullable=False),
             sa.Column("body_text", sa.Text(), nullable=False),
             sa.Column("body_html", sa.Text()),
             sa.Column("status", sa.String(16), nullable=False),  # queued, ..., bounced
             sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
             sa.Column("last_error", sa.Text()),
             sa.Column("once_key", sa.String(255), unique=True),
             sa.Column("follow", sa.JSON()),  # the record's fields that follow the status
             sa.Column("consent", sa.JSON()),  # {entity, id, field} the unsubscribe link ends
             sa.Column("attachments", sa.JSON()),  # ids of crm_attachment rows it carries
             user_ref("user_id"),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("sent_at", sa.DateTime()),
             sa.Index(None, "status", "next_attempt_at"),
             sa.Index(None, "entity", "record_id"))
    # inbound e-mail read by `crmforge mail-in` (process.mail.inbound): one row per message,
    # by its Message-ID, so a message read twice is routed once
    sa.Table("crm_mail_in", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("message_id", sa.String(255), nullable=False, unique=True),
             sa.Column("outcome", sa.String(16), nullable=False),  # created, replied, dropped..
             sa.Column("reason", sa.Text()),
             sa.Column("entity", sa.String(63)),
             sa.Column("record_id", sa.BigInteger()),
             sa.Column("from_address", sa.String(320)),
             sa.Column("received_at", sa.DateTime(), nullable=False),
             sa.Index(None, "entity", "record_id"))
    # outbound webhooks, delivered by the worker (process.webhooks): one row per event and hook,
    # the signed body kept as sent, retried with backoff; the last attempt's answer is kept
    sa.Table("crm_webhook_delivery", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("hook", sa.String(63), nullable=False),
             sa.Column("event", sa.String(16), nullable=False),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             sa.Column("body", sa.Text(), nullable=False),
             sa.Column("status", sa.String(16), nullable=False),  # queued, sending, ...
             sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
             sa.Column("response_code", sa.Integer()),
             sa.Column("response_ms", sa.Integer()),
             sa.Column("last_error", sa.Text()),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("attempted_at", sa.DateTime()),
             sa.Column("delivered_at", sa.DateTime()),
             sa.Index(None, "status", "next_attempt_at"),
             sa.Index(None, "hook", "id"))
    # imports from the web (process.import_jobs): the job, its progress as every process sees
    # it, its problems; and the records it created with their version then, for "Undo"
    sa.Table("crm_import", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False),
             sa.Column("filename", sa.String(255), nullable=False),
             sa.Column("path", sa.String(1024), nullable=False),
             sa.Column("mapping", sa.Text()),  # JSON {column: field}
             sa.Column("state", sa.String(16), nullable=False),  # uploaded, checking, ...
             sa.Column("rows_done", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("fraction", sa.Float(), nullable=False, server_default="0"),
             sa.Column("created", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("rejected", sa.Integer(), nullable=False, server_default="0"),
             sa.Column("problems", sa.Text()),  # JSON [[line, message], ...]
             sa.Column("message", sa.Text()),
             user_ref("user_id"),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("started_at", sa.DateTime()),
             sa.Column("updated_at", sa.DateTime()))
    sa.Table("crm_import_record", metadata,
             sa.Column("import_id", Id, sa.ForeignKey("crm_import.id", ondelete="CASCADE"),
                       primary_key=True),
             sa.Column("record_id", sa.BigInteger(), primary_key=True),
             sa.Column("version", sa.Integer(), nullable=False))
    # secrets every process of an instance shares (the key that signs unsubscribe links)
    sa.Table("crm_secret", metadata,
             sa.Column("name", sa.String(63), primary_key=True),
             sa.Column("value", sa.String(255), nullable=False))
    sa.Table("crm_assign_cursor", metadata,
             sa.Column("key", sa.String(255), primary_key=True),
             sa.Column("last_user_id", sa.BigInteger()))
    # sign-in attempts per username and client address, and per username from every address
    # (address ""), counted in one UPSERT each to slow down password guessing (http.auth)
    sa.Table("crm_login_throttle", metadata,
             sa.Column("username", sa.String(255), primary_key=True),
             sa.Column("address", sa.String(64), primary_key=True),
             sa.Column("attempts", sa.Integer(), nullable=False),
             sa.Column("window_start", sa.DateTime(), nullable=False, index=True))
    # web sessions: the signed cookie holds a random key, the table its sha256, so that a
    # session can be ended on the server (sign out, everywhere, password change, deactivation)
    sa.Table("crm_session", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
             sa.Column("user_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       nullable=False, index=True),
             sa.Column("password_fp", sa.String(16), nullable=False),
             sa.Column("created_at", sa.DateTime(), nullable=False, index=True),
             sa.Column("last_seen_at", sa.DateTime(), nullable=False),
             sa.Column("revoked_at", sa.DateTime()))
    # the ids of records merged into another (runtime.write.merge): an old address answers
    # with a redirect to the record that absorbed it (runtime.read.aliases)
    sa.Table("crm_record_alias", metadata,
             sa.Column("entity", sa.String(63), primary_key=True),
             sa.Column("old_id", sa.BigInteger(), primary_key=True),
             sa.Column("record_id", sa.BigInteger(), nullable=False),
             user_ref("merged_by"),
             sa.Column("merged_at", sa.DateTime(), nullable=False),
             sa.Index(None, "entity", "record_id"))
    # incoming calls reported by a telephone system (process.calls): what matched, and when
    # the agent's browser took the screen-pop (`shown_at`: each call pops up once)
    sa.Table("crm_call", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("agent_id", Id, sa.ForeignKey(f"{USER_TABLE}.id", ondelete="CASCADE"),
                       nullable=False),
             sa.Column("caller", sa.String(64), nullable=False),
             sa.Column("caller_e164", sa.String(64)),
             sa.Column("called", sa.String(64)),
             sa.Column("matches", sa.JSON(), nullable=False),  # [{"entity", "id"}]
             user_ref("reported_by"),
             sa.Column("created_at", sa.DateTime(), nullable=False),
             sa.Column("shown_at", sa.DateTime()),
             sa.Index(None, "agent_id", "shown_at"))
    # customisations applied in the studio (runtime.process.studio): one row per applied version of
    # an entity's `extends:` file, its text before and after, for the history and "revert"
    sa.Table("crm_studio_version", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("entity", sa.String(63), nullable=False, index=True),
             sa.Column("file", sa.String(1024), nullable=False),
             sa.Column("before_text", sa.Text(), nullable=False),
             sa.Column("after_text", sa.Text(), nullable=False),
             sa.Column("summary", sa.String(255), nullable=False),
             sa.Column("model_hash", sa.String(64), nullable=False),
             sa.Column("reverted_to", sa.BigInteger()),  # the version this one went back to
             user_ref("user_id"),
             sa.Column("created_at", sa.DateTime(), nullable=False))
    # pack installs and upgrades from /admin/packs (runtime.process.pack_jobs): the job's state as
    # every process sees it, and who runs it (host, pid, heartbeat) to tell a dead one
    sa.Table("crm_pack_job", metadata,
             sa.Column("id", Id, primary_key=True, autoincrement=True),
             sa.Column("action", sa.String(16), nullable=False),  # install, upgrade
             sa.Column("pack", sa.String(63), nullable=False),
             sa.Column("state", sa.String(16), nullable=False),  # running, done, failed
             sa.Column("steps", sa.Integer(), nullable=False),
             sa.Column("moves", sa.JSON(), nullable=False),  # [[pack, old, new], ...]
             sa.Column("notes", sa.JSON()),  # what the migration said
             sa.Column("message", sa.Text()),
             sa.Column("host", sa.String(255), nullable=False),
             sa.Column("pid", sa.Integer(), nullable=False),
             user_ref("user_id"),
             sa.Column("started_at", sa.DateTime(), nullable=False),
             sa.Column("updated_at", sa.DateTime(), nullable=False),  # the heartbeat
             sa.Column("finished_at", sa.DateTime()))
    # demo records by their `_key`, so that a pack's demo data loaded later can link to them
    sa.Table("crm_demo_key", metadata,
             sa.Column("entity", sa.String(63), primary_key=True),
             sa.Column("key", sa.String(255), primary_key=True),
             sa.Column("record_id", sa.BigInteger(), nullable=False))
