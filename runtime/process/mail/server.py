"""The mail server: `CRMFORGE_MAIL_URL` parsed, and one message handed over by SMTP.

    smtp://[user:password@]host[:port][?starttls=auto|always|never&timeout=SECONDS]
    smtps://[user:password@]host[:port]          (TLS from the first byte, port 465)

`starttls=auto` (the default) upgrades the connection when the server offers STARTTLS;
`always` refuses a server that does not; `never` stays in plain text. The sender is
`CRMFORGE_MAIL_FROM` (or the instance setting `MAIL_FROM`).
"""

from __future__ import annotations

import os
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from runtime.core.instance import Instance

STARTTLS = ("auto", "always", "never")


class SendFailed(Exception):
    """The server did not take the message; `answer` is what it said (or why it could not).
    `permanent`: the server refused the recipient or the message for good (a 5xx answer to
    RCPT or DATA), so trying again cannot help: the message bounced."""

    def __init__(self, answer: str, *, permanent: bool = False):
        super().__init__(answer)
        self.answer = answer
        self.permanent = permanent


@dataclass(frozen=True)
class MailServer:
    host: str
    port: int
    secure: bool = False  # smtps://
    starttls: str = "auto"
    user: str | None = None
    password: str | None = None
    timeout: float = 30.0


def parse_url(url: str) -> MailServer:
    """A `MailServer` from `smtp://…` or `smtps://…`; ValueError says what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
        raise ValueError(f"CRMFORGE_MAIL_URL must look like smtp://host:port or "
                         f"smtps://host:port, not {url!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    starttls = query.get("starttls", "auto")
    if starttls not in STARTTLS:
        raise ValueError(f"starttls= must be one of {', '.join(STARTTLS)}, not {starttls!r}")
    secure = parts.scheme == "smtps"
    return MailServer(parts.hostname, parts.port or (465 if secure else 25), secure,
                      "never" if secure else starttls,
                      unquote(parts.username) if parts.username else None,
                      unquote(parts.password) if parts.password else None,
                      float(query.get("timeout", 30)))


def setting(inst: Instance, name: str, default: Any = None) -> Any:
    """An instance setting (`MAIL_URL`, `MAIL_FROM`, `BASE_URL`), then $CRMFORGE_<NAME>, then
    the default."""
    if name in inst.settings:
        return inst.settings[name]
    return os.environ.get(f"CRMFORGE_{name}", default)


def server_of(inst: Instance) -> MailServer | None:
    """The instance's mail server (setting `MAIL_URL`, else $CRMFORGE_MAIL_URL); None when
    none is set: messages then wait in the queue."""
    url = setting(inst, "MAIL_URL")
    return parse_url(url) if url else None


def sender_of(inst: Instance) -> str:
    return str(setting(inst, "MAIL_FROM", "crmforge@localhost"))


def send(server: MailServer, message: EmailMessage) -> None:
    """Hand `message` to the server; SendFailed with the server's answer when it does not
    take it (refused, timed out, unreachable)."""
    try:
        _conversation(server, message)
    except smtplib.SMTPRecipientsRefused as exc:
        answers = list(exc.recipients.values())
        raise SendFailed("; ".join(f"{code} {_text(msg)}" for code, msg in answers),
                         permanent=all(_permanent(code) for code, _ in answers)) from exc
    except smtplib.SMTPDataError as exc:
        raise SendFailed(f"{exc.smtp_code} {_text(exc.smtp_error)}",
                         permanent=_permanent(exc.smtp_code)) from exc
    except smtplib.SMTPResponseException as exc:
        raise SendFailed(f"{exc.smtp_code} {_text(exc.smtp_error)}") from exc
    except (TimeoutError, smtplib.SMTPServerDisconnected) as exc:
        if isinstance(exc, TimeoutError) or "timed out" in str(exc):  # smtplib's wording
            raise SendFailed(f"no answer from {server.host}:{server.port} within "
                             f"{server.timeout:g} s") from exc
        raise SendFailed(f"{server.host}:{server.port} closed the connection") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise SendFailed(f"{type(exc).__name__}: {exc}"[:500]) from exc


def _conversation(server: MailServer, message: EmailMessage) -> None:
    context = ssl.create_default_context()
    if server.secure:
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(server.host, server.port,
                                              timeout=server.timeout, context=context)
    else:
        smtp = smtplib.SMTP(server.host, server.port, timeout=server.timeout)
    with smtp:
        smtp.ehlo_or_helo_if_needed()
        offered = smtp.has_extn("starttls")
        if server.starttls == "always" and not offered:
            raise SendFailed(f"{server.host} does not offer STARTTLS (starttls=always)")
        if offered and server.starttls != "never":
            smtp.starttls(context=context)
            smtp.ehlo()
        if server.user:
            smtp.login(server.user, server.password or "")
        smtp.send_message(message)


def _permanent(code: int) -> bool:
    """A 5xx reply: a permanent refusal (RFC 5321 4.2.1); 4xx asks to try again later."""
    return 500 <= code < 600


def _text(answer: bytes | str) -> str:
    return answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
