"""Files attached to records: checked for size and type, stored outside the web root
(`<instance dir>/uploads/<random key>`), described in `crm_attachment`, served only to users
who may read the record.

A `file` or `image` field holds the id of its attachment (as text).
"""

from __future__ import annotations

import mimetypes
import secrets
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask import current_app
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.utils import secure_filename

from builder.model import Entity
from runtime.core.db import write_transaction
from runtime.core.errors import ValidationFailed
from runtime.http.web.layout import actor, inst

MAX_UPLOAD_BYTES = 10 * 1024 * 1024
ALLOWED_TYPES = {
    ".pdf": "application/pdf", ".png": "image/png", ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg", ".gif": "image/gif", ".webp": "image/webp",
    ".txt": "text/plain", ".csv": "text/csv", ".md": "text/plain",
    ".doc": "application/msword",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xls": "application/vnd.ms-excel",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".ppt": "application/vnd.ms-powerpoint",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".odt": "application/vnd.oasis.opendocument.text",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".zip": "application/zip", ".eml": "message/rfc822",
}
IMAGE_TYPES = {".png", ".jpg", ".jpeg", ".gif", ".webp"}
# The first bytes of the types a browser could be tricked into running or rendering.
SIGNATURES = {".pdf": (b"%PDF",), ".png": (b"\x89PNG",), ".jpg": (b"\xff\xd8",),
              ".jpeg": (b"\xff\xd8",), ".gif": (b"GIF8",), ".webp": (b"RIFF",)}


UPLOAD_ENDPOINTS = {"web.upload", "web.new", "web.edit"}


def allow_uploads(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Pages that take files accept bodies up to the upload limit, not the app's 2 MB default.
    (A URL value preprocessor, because it must run before CSRFProtect reads the form.)"""
    from flask import request

    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = MAX_UPLOAD_BYTES + 256 * 1024


def upload_dir() -> Path:
    path = Path(current_app.config.get("UPLOAD_DIR")
                or Path(current_app.config.get("INSTANCE_DIR", "instance")) / "uploads")
    path.mkdir(parents=True, exist_ok=True)
    return path


def check(upload: FileStorage, *, image: bool = False) -> tuple[str, str, bytes]:
    """(safe file name, content type, bytes) of an upload; ValueError says what is wrong."""
    name = secure_filename(upload.filename or "") or "file"
    suffix = Path(name).suffix.lower()
    allowed = IMAGE_TYPES if image else set(ALLOWED_TYPES)
    if suffix not in allowed:
        kinds = ", ".join(sorted(s.lstrip(".") for s in allowed))
        raise ValueError(f"“{upload.filename}” is not a file type we accept ({kinds})")
    data = upload.stream.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        raise ValueError(f"“{upload.filename}” is larger than "
                         f"{MAX_UPLOAD_BYTES // (1024 * 1024)} MB")
    if not data:
        raise ValueError(f"“{upload.filename}” is empty")
    signatures = SIGNATURES.get(suffix)
    if signatures and not data.startswith(signatures):
        raise ValueError(f"“{upload.filename}” is not really a {suffix.lstrip('.')} file")
    return name, ALLOWED_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or \
        "application/octet-stream", data


def store(entity: str, record_id: int, upload: FileStorage, *, image: bool = False) -> int:
    """Save one upload for a record; the id of its `crm_attachment` row."""
    name, content_type, data = check(upload, image=image)
    key = secrets.token_hex(16)
    (upload_dir() / key).write_bytes(data)
    table = inst().schema.system("attachment")
    with write_transaction(inst().engine) as conn:
        return conn.execute(table.insert().values(
            entity=entity, record_id=record_id, filename=name, content_type=content_type,
            size=len(data), storage_key=key, user_id=actor().user_id,
            created_at=inst().now()).returning(table.c.id)).scalar_one()


def form_files(entity: Entity, files: MultiDict, record_id: int | None) -> dict[str, str]:
    """Store the files posted for `file` / `image` fields; {field: attachment id}."""
    values, errors = {}, {}
    for f in entity.fields.values():
        if f.type not in ("file", "image") or not f.editable:
            continue
        upload = files.get(f.name)
        if upload is None or not upload.filename:
            continue
        try:
            values[f.name] = str(store(entity.name, record_id or 0, upload,
                                       image=f.type == "image"))
        except ValueError as exc:
            errors[f.name] = [str(exc)]
    if errors:
        raise ValidationFailed(errors)
    return values


def claim(entity: str, record_id: int, values: dict[str, Any]) -> None:
    """Attach the files uploaded with a new record's form to the record now created."""
    table = inst().schema.system("attachment")
    ids = [int(v) for k, v in values.items() if isinstance(v, str) and v.isdigit()
           and inst().model.entity(entity).fields[k].type in ("file", "image")]
    if not ids:
        return
    with write_transaction(inst().engine) as conn:
        conn.execute(table.update().where(table.c.id.in_(ids), table.c.record_id == 0,
                                          table.c.user_id == actor().user_id).values(
            record_id=record_id))


def listing(entity: str, record_id: int) -> list[dict[str, Any]]:
    table = inst().schema.system("attachment")
    users = inst().schema.table("user")
    query = (sa.select(table, users.c.full_name.label("by"))
             .select_from(table.outerjoin(users, users.c.id == table.c.user_id))
             .where(table.c.entity == entity, table.c.record_id == record_id)
             .order_by(table.c.id.desc()))
    with inst().engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def find(attachment_id: int) -> dict[str, Any] | None:
    table = inst().schema.system("attachment")
    with inst().engine.connect() as conn:
        row = conn.execute(sa.select(table).where(table.c.id == attachment_id)).mappings().first()
    return dict(row) if row is not None else None


def path_of(row: dict[str, Any]) -> Path:
    return upload_dir() / secure_filename(row["storage_key"])


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"
