"""The CRMForge runtime: it takes an `AppModel` (built by `builder/`) and serves it.

Six layers, each importing only the ones above it in this list (`tests/test_layers.py`):

- `core/` — the instance, the database, tables, errors, caches, hooks, expressions to SQL;
- `read/` — row access rules, the list request, record reads, titles, timeline, dashboards;
- `write/` — the one write path and what it checks, derives and records;
- `process/` — workflows, approvals, automations, notifications; the instance assembled;
- `http/` — the Flask app: sign-in, the JSON API, the web pages;
- `ops/` — the command line, the worker, install and migrate, demo data, import and export.

`docs/architecture.md` draws the same picture with one line per module.
"""
