"""Outgoing e-mail (docs/mail.md): `server` (CRMFORGE_MAIL_URL and the SMTP conversation),
`compose` (a message template rendered over a record, the addresses), `outbox` (the queue in
`crm_mail`: queue, send due, retries with backoff, bounces, the timeline), `files` (the
attachments a message carries), `consent` (signed unsubscribe links) and `replies` (reply
addresses, our Message-IDs). Incoming e-mail: `imap`, `lmtp`, `received`, `inbound`,
`bounces`."""
