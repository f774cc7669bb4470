"""Files attached to records: checked for size and type, stored outside the web root
(`<instance dir>/uploads/<random key>`; the instance folder is made absolute once, by
`create_app`), described in `crm_attachment` (rows written and read by
`runtime.write.attachments`), served only to users who may read the record.

A `file` or `image` field holds the id of an attachment of its own record (as text), uploaded
through the record's form: the form's files are stored on the transaction that creates or
updates the record (`saving`), so a form that fails stores nothing.
"""

from __future__ import annotations

import errno
import mimetypes
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from flask import current_app, request
from werkzeug.datastructures import FileStorage, MultiDict
from werkzeug.utils import secure_filename

from builder.model import Field
from runtime.core.errors import N_, RecordError, ValidationFailed
from runtime.core.values import FILE_TYPES
from runtime.http.web.layout import actor, inst
from runtime.write import attachments as rows

T = TypeVar("T")

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


class StorageFull(RecordError):
    """The upload folder's disk (or quota) is full: nothing was stored, and no row written."""

    status = 507

    def __init__(self) -> None:
        super().__init__(N_("The file could not be stored because the attachment storage is "
                            "full; nothing was saved. Ask an administrator to free space, then "
                            "send it again."))


UPLOAD_ENDPOINTS = {"web.upload", "web.new", "web.edit", "admin.imports"}


def allow_uploads(endpoint: str | None, values: dict[str, Any] | None) -> None:
    """Pages that take files accept bodies up to the upload limit, not the app's 2 MB default.
    (A URL value preprocessor, because it must run before CSRFProtect reads the form.)"""
    if endpoint in UPLOAD_ENDPOINTS:
        request.max_content_length = MAX_UPLOAD_BYTES + 256 * 1024


def upload_dir() -> Path:
    path = Path(current_app.config.get("UPLOAD_DIR")
                or Path(current_app.config["INSTANCE_DIR"]) / "uploads")
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
    """Save one upload for an existing record; the id of its `crm_attachment` row."""
    name, content_type, data = check(upload, image=image)
    key = secrets.token_hex(16)
    path = upload_dir() / key
    write_file(path, data)
    try:
        return rows.add(inst(), actor(), entity, record_id, filename=name,
                        content_type=content_type, size=len(data), storage_key=key)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Upload:
    """A checked file posted for a `file` / `image` field, not stored yet."""

    field: str
    filename: str
    content_type: str
    data: bytes
    key: str


def form_uploads(files: MultiDict, fields: Iterable[Field]) -> list[Upload]:
    """The files posted for those of `fields` that are `file` / `image` fields, checked
    (ValidationFailed names each refused one); nothing is stored."""
    uploads, errors = [], {}
    for f in fields:
        if f.type not in FILE_TYPES:
            continue
        upload = files.get(f.name)
        if upload is None or not upload.filename:
            continue
        try:
            name, content_type, data = check(upload, image=f.type == "image")
        except ValueError as exc:
            errors[f.name] = [str(exc)]
            continue
        uploads.append(Upload(f.name, name, content_type, data, secrets.token_hex(16)))
    if errors:
        raise ValidationFailed(errors)
    return uploads


def saving(entity: str, record_id: int | None, uploads: list[Upload],
           write: Callable[[Any, dict[str, str]], T]) -> T:
    """Run `write(conn, {field: attachment id})`, the record's create (`record_id` None) or
    update on `conn`, with the uploads stored for it on that same transaction: the bytes are
    written first and removed again unless the transaction commits, so nothing is stored
    unless the record is. (A retried transaction stages the same files again.)"""
    written: list[Path] = []
    files = [rows.NewFile(u.field, u.filename, u.content_type, len(u.data), u.key)
             for u in uploads]
    try:
        for upload in uploads:
            path = upload_dir() / upload.key
            write_file(path, upload.data)
            written.append(path)
        return rows.saving(inst(), actor(), entity, record_id, files, write)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise


def write_file(path: Path, data: bytes) -> None:
    """Store `data` at `path` whole or not at all: a write that fails half-way leaves no
    partial file, and a full disk is a `StorageFull` (507), not an internal error."""
    try:
        path.write_bytes(data)
    except OSError as exc:
        path.unlink(missing_ok=True)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise StorageFull() from exc
        raise


def listing(entity: str, record_id: int) -> list[dict[str, Any]]:
    return rows.listing(inst(), entity, record_id)


def find(attachment_id: int) -> dict[str, Any] | None:
    return rows.find(inst(), attachment_id)


def path_of(row: dict[str, Any]) -> Path:
    return upload_dir() / secure_filename(row["storage_key"])


def human_size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.1f} MB"
    if size >= 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size} B"
