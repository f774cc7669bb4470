"""A small, real IMAP4rev1 server on 127.0.0.1 for the inbound mail tests (Python's standard
library has none): one folder, INBOX, of the messages a test puts in it, served over TCP to
`imaplib`.

It speaks only what `imaplib` and `runtime.process.mail.imap` use: CAPABILITY, LOGIN, SELECT,
UID SEARCH (ALL / UNSEEN), UID FETCH of RFC822.SIZE, RFC822, BODY[] and BODY.PEEK[], UID STORE
+FLAGS (\\Seen), NOOP and LOGOUT; anything else answers BAD. Client literals are not read.

    with imap_server(user="crm", password="pw") as (mailbox, url):
        mailbox.add(raw_bytes)
        ...   # url is imap://crm:pw@127.0.0.1:PORT/INBOX
"""

from __future__ import annotations

import re
import shlex
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Mailbox:
    """The folder's messages by UID, the UIDs flagged \\Seen, and every command received."""

    user: str
    password: str
    messages: dict[int, bytes] = field(default_factory=dict)
    seen: set[int] = field(default_factory=set)
    commands: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, raw: bytes) -> int:
        with self.lock:
            uid = max(self.messages, default=0) + 1
            self.messages[uid] = raw
            return uid


class _Handler(socketserver.StreamRequestHandler):
    mailbox: Mailbox

    def handle(self) -> None:
        self.send(b"* OK [CAPABILITY IMAP4rev1] test server ready")
        self.logged_in = self.selected = False
        while line := self.rfile.readline(65536):
            tag, _, rest = line.decode("utf-8", "replace").rstrip("\r\n").partition(" ")
            command, _, args = rest.partition(" ")
            self.mailbox.commands.append(f"{command.upper()} {args}".strip())
            if not self.answer(tag, command.upper(), args):
                return

    def send(self, data: bytes) -> None:
        self.wfile.write(data + b"\r\n")

    def answer(self, tag: str, command: str, args: str) -> bool:
        """Answer one command; False after LOGOUT."""
        if command == "CAPABILITY":
            self.send(b"* CAPABILITY IMAP4rev1")
        elif command == "NOOP":
            pass
        elif command == "LOGOUT":
            self.send(b"* BYE logging out")
            self.send(f"{tag} OK LOGOUT completed".encode())
            return False
        elif command == "LOGIN":
            return self.login(tag, args)
        elif command == "SELECT" and self.logged_in:
            return self.select(tag, args)
        elif command == "UID" and self.selected:
            return self.uid(tag, args)
        else:
            self.send(f"{tag} BAD {command} is not understood here".encode())
            return True
        self.send(f"{tag} OK {command} completed".encode())
        return True

    def login(self, tag: str, args: str) -> bool:
        words = shlex.split(args)
        self.logged_in = words == [self.mailbox.user, self.mailbox.password]
        self.send(f"{tag} {'OK' if self.logged_in else 'NO'} LOGIN".encode())
        return True

    def select(self, tag: str, args: str) -> bool:
        if shlex.split(args) != ["INBOX"]:
            self.send(f"{tag} NO no such folder".encode())
            return True
        self.selected = True
        self.send(f"* {len(self.mailbox.messages)} EXISTS".encode())
        self.send(b"* OK [UIDVALIDITY 1] UIDs valid")
        self.send(f"{tag} OK [READ-WRITE] SELECT completed".encode())
        return True

    def uid(self, tag: str, args: str) -> bool:
        command, _, rest = args.partition(" ")
        command = command.upper()
        uids = sorted(self.mailbox.messages)
        if command == "SEARCH":
            found = [u for u in uids if "UNSEEN" not in rest.upper() or u not in self.mailbox.seen]
            self.send(("* SEARCH " + " ".join(map(str, found))).strip().encode())
        elif command in ("FETCH", "STORE"):
            number, _, items = rest.partition(" ")
            uid = int(number) if number.isdigit() else 0
            if uid in self.mailbox.messages:
                (self.fetch if command == "FETCH" else self.store)(uids.index(uid) + 1, uid,
                                                                    items.upper())
        else:
            self.send(f"{tag} BAD UID {command} is not understood here".encode())
            return True
        self.send(f"{tag} OK UID {command} completed".encode())
        return True

    def fetch(self, seq: int, uid: int, items: str) -> None:
        raw = self.mailbox.messages[uid]
        if "RFC822.SIZE" in items:
            self.send(f"* {seq} FETCH (UID {uid} RFC822.SIZE {len(raw)})".encode())
            return
        name = "RFC822" if re.search(r"\bRFC822\b(?!\.)", items) else "BODY[]"
        self.wfile.write(f"* {seq} FETCH (UID {uid} {name} {{{len(raw)}}}\r\n".encode())
        self.wfile.write(raw)
        self.send(b")")
        if "PEEK" not in items:
            self.mailbox.seen.add(uid)

    def store(self, seq: int, uid: int, items: str) -> None:
        if items.startswith("+FLAGS") and "\\SEEN" in items:
            self.mailbox.seen.add(uid)
        flags = "\\Seen" if uid in self.mailbox.seen else ""
        self.send(f"* {seq} FETCH (UID {uid} FLAGS ({flags}))".encode())


@contextmanager
def imap_server(user: str = "crm", password: str = "secret pw") -> Iterator[tuple[Mailbox, str]]:
    """(mailbox, imap:// URL) of a real IMAP server on a free port of 127.0.0.1."""
    mailbox = Mailbox(user, password)
    handler = type("Handler", (_Handler,), {"mailbox": mailbox})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield mailbox, f"imap://{user}:{password.replace(' ', '%20')}@127.0.0.1:{port}/INBOX"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
