"""The files an outgoing message carries: attachments of the record it is about
(`crm_attachment` rows), named in the outbox row by id and read from the uploads folder each
time the message is sent, so a message retried three times keeps one copy of its file.

The worker finds the uploads folder as the web server does: the `UPLOAD_DIR` setting (or
$CRMFORGE_UPLOAD_DIR), else `INSTANCE_DIR/uploads` (`instance/uploads` by default).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from email.message import EmailMessage
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from werkzeug.utils import secure_filename

from runtime.core.instance import Actor, Instance
from runtime.process.mail.server import SendFailed, setting
from runtime.write import attachments


def upload_folder(inst: Instance) -> Path:
    """Where the instance's attachment files are (see the module's docstring)."""
    folder = setting(inst, "UPLOAD_DIR")
    return Path(folder) if folder else Path(setting(inst, "INSTANCE_DIR", "instance")) / "uploads"


def store(inst: Instance, conn: Connection, actor: Actor, folder: Path, entity: str,
          record_id: int, *, filename: str, content_type: str, data: bytes
          ) -> tuple[int, Path]:
    """Keep `data` among the record's attachments (the file in `folder`, its row on the
    caller's transaction): (the new row's id, the file). The caller removes the file again
    when the transaction does not commit."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / secrets.token_hex(16)
    path.write_bytes(data)
    try:
        return attachments.stage(inst, conn, actor, entity, record_id, filename=filename,
                                 content_type=content_type, size=len(data),
                                 storage_key=path.name), path
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def attach_files(inst: Instance, message: EmailMessage, ids: Iterable[int]) -> None:
    """Add the attachments `ids` to `message`; SendFailed (tried again later) when one is
    gone or its file cannot be read."""
    ids = [int(i) for i in ids]
    if not ids:
        return
    table = inst.schema.system("attachment")
    with inst.engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(sa.select(table).where(table.c.id.in_(ids)))}
    folder = upload_folder(inst)
    for attachment_id in ids:
        row = rows.get(attachment_id)
        if row is None:
            raise SendFailed(f"attachment #{attachment_id} was deleted before the message left")
        try:
            data = (folder / secure_filename(row.storage_key)).read_bytes()
        except OSError as exc:
            raise SendFailed(f"the file of “{row.filename}” cannot be read from {folder} "
                             f"(UPLOAD_DIR): {exc.strerror}") from exc
        maintype, _, subtype = (row.content_type or "application/octet-stream").partition("/")
        message.add_attachment(data, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=row.filename)
