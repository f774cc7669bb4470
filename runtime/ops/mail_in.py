"""`crmforge mail-in`: read the inbound mailbox once, keep reading it (`--watch`), or take mail
as the mail server delivers it over LMTP (`--lmtp HOST:PORT`, `runtime.process.mail.lmtp`)
(`runtime.process.mail.inbound` routes each message; docs/mail.md "Inbound mail")."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from runtime.core.db import database_url
from runtime.core.instance import Instance
from runtime.ops.commands import UserError, guarded
from runtime.process.mail.imap import MailboxError
from runtime.process.mail.inbound import read_mailbox
from runtime.process.mail.lmtp import listen, parse_listen
from runtime.process.setup import open_instance

log = logging.getLogger("crmforge.mail_in")


def add_mail_in_commands(sub: argparse._SubParsersAction,
                         command: Callable[[str], Callable]) -> None:
    """Add `crmforge mail-in` to the CLI (`runtime/ops/cli.py` calls this)."""
    p = sub.add_parser("mail-in", help="read the inbound mailbox (CRMFORGE_MAIL_IN_URL) once, "
                       "or keep reading it with --watch")
    p.add_argument("--watch", action="store_true", help="keep reading, every --interval s")
    p.add_argument("--lmtp", metavar="HOST:PORT",
                   help="instead of reading a mailbox, listen for LMTP deliveries from the "
                   "mail server on HOST:PORT until stopped")
    p.add_argument("--interval", type=float, default=60.0, metavar="SECONDS",
                   help="how long --watch waits between reads (default 60)")
    p.add_argument("--instance-dir", type=Path, default=Path("instance"), metavar="DIR",
                   help="the instance folder (default: instance)")
    p.add_argument("--upload-dir", type=Path, metavar="DIR",
                   help="where attachments are kept (default: INSTANCE_DIR/uploads)")
    command("mail-in")(cmd_mail_in)


@guarded
def cmd_mail_in(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    inst = open_instance(database_url(getattr(args, "database_url", None)))
    uploads = args.upload_dir or args.instance_dir / "uploads"
    if args.lmtp:
        return _serve_lmtp(inst, uploads, args.lmtp)
    while True:
        try:
            outcomes = read_mailbox(inst, uploads)
        except (MailboxError, ValueError) as exc:
            if not args.watch:
                raise UserError(str(exc)) from exc
            log.warning("mail-in: %s; trying again in %s s", exc, args.interval)
        else:
            counts = Counter(o.outcome for o in outcomes)
            print(f"read {len(outcomes)} message(s)" + "".join(
                f", {n} {kind}" for kind, n in sorted(counts.items())), flush=True)
        if not args.watch:
            return 0
        time.sleep(args.interval)


def _serve_lmtp(inst: Instance, uploads: Path, where: str) -> int:
    """Listen for LMTP deliveries until interrupted (Ctrl-C, SIGTERM)."""
    try:
        host, port = parse_listen(where)
        controller = listen(inst, uploads, host, port)
    except (ValueError, OSError) as exc:
        raise UserError(f"cannot listen for LMTP on {where}: {exc}") from exc
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"listening for LMTP deliveries on {host}:{port}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()
    return 0
