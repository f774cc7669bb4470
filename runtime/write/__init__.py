"""Changing records: `records` is the one write path (create, update, delete) — coercion,
rules, permissions, audit and the after-write hooks — with `checks` (links, unique values,
duplicates), `derived` (autonumbers, formulas, rollups), `timeline` (notes, activities,
follow-ups), `attachments` and saved `views`.
"""
