"""The studio (`/admin/studio`, docs/admin.md): an admin changes the model in the browser, and
every change is written to the instance's customisation layer — one `extends:` file per
entity in `CRMFORGE_CUSTOM_DIR/entities/` — never into a pack's files.

- `layer`: the customisation files; checking a candidate text with the builder (its own
  diagnostic codes, file:line:col) without touching the real files.
- `origins`: which file, line and column each part of an entity comes from.
- `edits`: the form changes (add a field, relabel, add an option, a section, a list column or
  filter, a validation) as edits of the file's data — decided, not done.
- `versions`: applying a text (write, migrate, record the version and the audit entry), the
  history with its diffs, and the text to revert to.
"""
