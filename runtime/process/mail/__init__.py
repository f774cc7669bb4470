"""Outgoing e-mail (docs/mail.md): `server` (CRMFORGE_MAIL_URL and the SMTP conversation),
`compose` (a message template rendered over a record, the addresses), `outbox` (the queue in
`crm_mail`: queue, send due, retries with backoff, the timeline) and `consent` (signed
unsubscribe links)."""
