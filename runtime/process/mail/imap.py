"""Reading the inbound mailbox over IMAP (`CRMFORGE_MAIL_IN_URL`, docs/mail.md "Inbound mail"):
the unseen messages of one folder, each handed on and then flagged `\\Seen`, so the next run
does not read it again.

Only what `imaplib` needs of any IMAP4rev1 server is used: LOGIN, SELECT, UID SEARCH UNSEEN,
UID FETCH (RFC822.SIZE) and (BODY.PEEK[]), UID STORE +FLAGS (\\Seen), LOGOUT. The size is
asked first, so a message past the limit is refused without being downloaded; the message is
read with PEEK, so it is flagged seen only once it was handled.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from runtime.core.instance import Instance
from runtime.process.mail.server import setting

_SIZE = re.compile(rb"RFC822\.SIZE (\d+)")


@dataclass(frozen=True)
class Mailbox:
    """Where inbound mail is read: host, port, TLS from the first byte, login, folder."""

    host: str
    port: int
    secure: bool
    user: str
    password: str
    folder: str = "INBOX"
    timeout: float = 30.0


class MailboxError(Exception):
    """The mailbox cannot be read: unreachable, login refused, no such folder."""


def parse_url(url: str) -> Mailbox:
    """A `Mailbox` from `imap://user:pass@host:port/FOLDER` or `imaps://…`; ValueError says
    what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("imap", "imaps") or not parts.hostname:
        raise ValueError(f"CRMFORGE_MAIL_IN_URL must look like imap://user:password@host:port/"
                         f"INBOX or imaps://…, not {url!r}")
    if not parts.username or parts.password is None:
        raise ValueError("CRMFORGE_MAIL_IN_URL must name the user and password "
                         "(imap://user:password@host/INBOX)")
    secure = parts.scheme == "imaps"
    timeout = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p).get("timeout")
    return Mailbox(parts.hostname, parts.port or (993 if secure else 143), secure,
                   unquote(parts.username), unquote(parts.password),
                   unquote(parts.path.lstrip("/")) or "INBOX", float(timeout or 30))


def mailbox_of(inst: Instance) -> Mailbox | None:
    """The instance's inbound mailbox (setting `MAIL_IN_URL`, else $CRMFORGE_MAIL_IN_URL)."""
    url = setting(inst, "MAIL_IN_URL")
    return parse_url(url) if url else None


Handler = Callable[[int, bytes | None], None]  # (size, the message or None when too large)


def read_unseen(box: Mailbox, max_bytes: int, handle: Handler) -> int:
    """Hand each unseen message of the folder to `handle`, then flag it seen; how many. A
    message `handle` fails on stays unseen (the error goes up) and is read again next time."""
    try:
        client = _connect(box)
    except (OSError, imaplib.IMAP4.error) as exc:
        raise MailboxError(f"cannot read {box.user}@{box.host}:{box.port}/{box.folder}: "
                           f"{exc}") from exc
    try:
        uids = _unseen(client)
        for uid in uids:
            size = _size(client, uid)
            handle(size, None if size > max_bytes else _fetch(client, uid))
            client.uid("STORE", uid, "+FLAGS", "(\\Seen)")
        return len(uids)
    finally:
        try:
            client.logout()
        except (OSError, imaplib.IMAP4.error):
            pass  # the messages are handled; a connection that breaks at the end is no matter


def _connect(box: Mailbox) -> imaplib.IMAP4:
    if box.secure:
        client: imaplib.IMAP4 = imaplib.IMAP4_SSL(box.host, box.port, timeout=box.timeout,
                                                  ssl_context=ssl.create_default_context())
    else:
        client = imaplib.IMAP4(box.host, box.port, timeout=box.timeout)
    client.login(box.user, box.password)
    status, answer = client.select(_quoted(box.folder))
    if status != "OK":
        client.logout()
        raise imaplib.IMAP4.error(f"no folder {box.folder!r}: {answer!r}")
    return client


def _quoted(folder: str) -> str:
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _unseen(client: imaplib.IMAP4) -> list[str]:
    status, data = client.uid("SEARCH", None, "UNSEEN")
    if status != "OK":
        raise MailboxError(f"the server refused to search the folder: {data!r}")
    return [uid.decode() for uid in (data[0] or b"").split()]


def _size(client: imaplib.IMAP4, uid: str) -> int:
    _, data = client.uid("FETCH", uid, "(RFC822.SIZE)")
    found = _SIZE.search(b" ".join(d if isinstance(d, bytes) else d[0] for d in data if d))
    return int(found.group(1)) if found else 0


def _fetch(client: imaplib.IMAP4, uid: str) -> bytes:
    _, data = client.uid("FETCH", uid, "(BODY.PEEK[])")
    for item in data:
        if isinstance(item, tuple):
            return item[1]
    return b""
