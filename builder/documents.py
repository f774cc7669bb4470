"""Documents (`documents/*.yaml`): an HTML/Jinja template per entity, printed to PDF from a
record page (docs/documents.md).

The builder reads each template (a `template:` file next to the YAML file, or `html:`
written inline) and checks what the template reads: `record.FIELD` and `labels.FIELD` must be
fields of the entity (E310), `related.NAME` a related list the document names in `related:`,
and `row.FIELD` inside `{% for row in related.NAME %}` a field of that list's entity (E310
again). A related list that is not one of the entity's is E224, as for record kinds; a file
that is missing or a template Jinja cannot parse is E250. Every message points at the line of
the template file (or of the YAML file, for `html:`) where the problem is.

A template may `{% extends %}`, `{% include %}` or `{% import %}` another file of its pack's
`documents/` folder, named as a constant file name ("sales_base.html"): the builder reads and
checks it (over the document's entity) and keeps its text on the `Document` (`bases`), so that
the sandbox loads nothing else. Any other name is E250.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from jinja2 import Environment, TemplateSyntaxError, nodes

from .diagnostics import Mark, did_you_mean
from .link_rules import _at
from .model import Document, Entity, Text, humanize
from .packs import display_name

if TYPE_CHECKING:
    from .linker import Linker
    from .packs import PackSource

RECORD_EXTRAS = ("id", "title")  # what `record` holds besides the entity's fields
_PARSER = Environment(autoescape=True)  # parses only: templates are run in the sandbox
BASE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\.html")  # a file of documents/, no path
_LOADS = (nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)

Kind = tuple[str, Any]  # what a template expression is: ("record", entity), ("rows", entity)…


class _Base(NamedTuple):
    """A template a document's template extends or includes."""

    file: str  # where it is, for messages
    text: str
    tree: nodes.Template


def build_documents(lk: Linker, entities: Mapping[str, Entity]) -> dict[str, Document]:
    """Every valid document of every pack, by name (E200 for a name used twice)."""
    result: dict[str, Document] = {}
    for source in lk.sources:
        for doc in source.of_kind("documents"):
            for name, raw in doc.data["documents"].items():
                loc = (doc, ("documents", name))
                if name in result:
                    lk.error("E200", f"document '{name}' is already defined by pack "
                             f"'{result[name].pack}'", loc, "choose another name", key=True)
                    continue
                if not lk.entity_ref(raw["entity"], _at(loc, "entity"), f"document '{name}': "):
                    continue
                found = _document(lk, source, entities, loc, name, raw)
                if found is not None:
                    result[name] = found
    return result


def _document(lk: Linker, source: PackSource, entities: Mapping[str, Entity], loc: tuple,
              name: str, raw: dict[str, Any]) -> Document | None:
    entity = entities[raw["entity"]]
    prefix = f"document '{name}': "
    text = _source(lk, source, loc, raw, prefix)
    if text is None:
        return None
    body, file, first_line = text
    related = _related(lk, entity, loc, raw.get("related") or [], prefix)
    tree = _parse(lk, body, file, first_line, prefix)
    bases = _bases(lk, source, tree, file, first_line, prefix) if tree is not None else None
    if tree is None or bases is None:
        return None
    scope: dict[str, Kind] = {"record": ("record", entity.name),
                              "labels": ("labels", entity.name), "related": ("related", None)}
    _Checker(lk, entities, related, file, first_line, prefix).walk(tree, scope)
    for base in bases.values():
        _Checker(lk, entities, related, base.file, 1, prefix).walk(base.tree, scope)
    return Document(name, entity.name, source.name, Text.of(raw.get("label"), humanize(name)),
                    body, file, first_line,
                    tuple((key, *found) for key, found in related.items()),
                    tuple((name, base.text) for name, base in bases.items()))


def _parse(lk: Linker, body: str, file: str, first_line: int, prefix: str
           ) -> nodes.Template | None:
    """The parsed template; None (and E250 at its line) when Jinja cannot parse it."""
    try:
        return _PARSER.parse(body)
    except TemplateSyntaxError as exc:
        lk.diags.add("E250", f"{prefix}{exc.message}",
                     Mark(file, first_line + (exc.lineno or 1) - 1, 1),
                     "see https://jinja.palletsprojects.com/templates/ for the syntax")
        return None


def _bases(lk: Linker, source: PackSource, tree: nodes.Template, file: str, first_line: int,
           prefix: str) -> dict[str, _Base] | None:
    """{file name: base} of the templates `tree` extends, includes or imports,
    and theirs in turn, all files of the pack's documents/ folder; None (and E250) when one
    is named otherwise, cannot be read or cannot be parsed."""
    found: dict[str, _Base] = {}
    todo = [(tree, file, first_line)]
    while todo:
        node, at_file, at_line = todo.pop()
        for name, line in _loaded(node):
            if name in found:
                continue
            mark = Mark(at_file, at_line + line - 1, 1)
            base = _base(lk, source, name, mark, prefix)
            if base is None:
                return None
            found[name] = base
            todo.append((base.tree, base.file, 1))
    return found


def _loaded(tree: nodes.Template) -> Iterator[tuple[str, int]]:
    """(file name, line) of each `extends`, `include` and `import` in `tree`; the name is ""
    when it is not one constant string."""
    for node in tree.find_all(_LOADS):
        name = node.template
        constant = isinstance(name, nodes.Const) and isinstance(name.value, str)
        yield (name.value if constant else ""), node.lineno


def _base(lk: Linker, source: PackSource, name: str, mark: Mark, prefix: str) -> _Base | None:
    """The template `name` of the pack's documents/ folder, read and parsed."""
    if not BASE_NAME.fullmatch(name):
        lk.diags.add("E250", f"{prefix}a template extends or includes only another file of "
                     "its pack's documents/ folder, by its name", mark,
                     'write the file\'s name, like {% extends "sales_base.html" %}')
        return None
    path = Path(source.path) / "documents" / name
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        lk.diags.add("E250", f"{prefix}cannot read the template '{name}' ({exc})", mark,
                     "put the file next to this one, in documents/")
        return None
    tree = _parse(lk, text, display_name(path), 1, prefix)
    return None if tree is None else _Base(display_name(path), text, tree)


def _source(lk: Linker, source: PackSource, loc: tuple, raw: dict[str, Any], prefix: str
            ) -> tuple[str, str, int] | None:
    """(template text, file it is in, line of its first line); None (and E250) when the
    template file cannot be read."""
    doc = loc[0]
    if "html" in raw:
        at = (*loc[1], "html")
        block = doc.scalar_style(at) in ("|", ">")  # a block's text starts on the next line
        return raw["html"], doc.file, doc.mark(at).line + block
    path = Path(source.path) / "documents" / raw["template"]
    try:
        return path.read_text(encoding="utf-8"), display_name(path), 1
    except (OSError, UnicodeDecodeError) as exc:
        lk.error("E250", f"{prefix}cannot read the template '{raw['template']}' ({exc})",
                 _at(loc, "template"), "put the file next to this one, in documents/")
        return None


def _related(lk: Linker, entity: Entity, loc: tuple, items: list[str], prefix: str
             ) -> dict[str, tuple[str, str, str | None]]:
    """{name in the template: (child entity, link field, through)} of the related lists named."""
    lists = {f"{r.entity}.{r.field}": (r.entity, r.field, r.through)
             for r in entity.views.related}
    result = {}
    for index, item in enumerate(items):
        matches = [key for key in lists if key == item or key.split(".")[0] == item]
        if len(matches) == 1:
            result[item] = lists[matches[0]]
        elif matches:
            lk.error("E224", f"{prefix}related: '{item}' is several related lists",
                     _at(loc, "related", index), f"write ENTITY.FIELD, like '{matches[0]}'")
        else:
            lk.error("E224", f"{prefix}related: '{item}' is not a related list of "
                     f"'{entity.name}'", _at(loc, "related", index),
                     did_you_mean(item, [k.split(".")[0] for k in lists])
                     or "name one of the entity's views.related")
    return result


class _Checker:
    """Walks a parsed template and reports every name it reads that does not exist."""

    def __init__(self, lk: Linker, entities: Mapping[str, Entity],
                 related: dict[str, tuple[str, str, str | None]], file: str, first_line: int,
                 prefix: str) -> None:
        self.lk, self.entities, self.related = lk, entities, related
        self.file, self.first_line, self.prefix = file, first_line, prefix

    def walk(self, node: nodes.Node, scope: dict[str, Kind]) -> None:
        if isinstance(node, nodes.For):
            self.walk(node.iter, scope)
            kind = self.kind(node.iter, scope)
            inner = dict(scope)
            if isinstance(node.target, nodes.Name):
                inner[node.target.name] = ("record", kind[1]) if kind and kind[0] == "rows" \
                    else ("other", None)
            for child in (*node.body, *node.else_, *([node.test] if node.test else [])):
                self.walk(child, inner)
            return
        if isinstance(node, nodes.Getattr | nodes.Getitem):
            self.kind(node, scope)  # reports an unknown name
        for child in node.iter_child_nodes():
            self.walk(child, scope)

    def kind(self, node: nodes.Node, scope: dict[str, Kind]) -> Kind | None:
        """What `node` is, when it is one of the names a document reads; reports an unknown
        field or related list on the way."""
        if isinstance(node, nodes.Name):
            return scope.get(node.name)
        name = _attribute(node)
        if name is None:
            return None
        base = self.kind(node.node, scope)  # type: ignore[attr-defined]
        if base is None:
            return None
        what, of = base
        if what in ("record", "labels"):
            known = [*self.entities[of].fields, *(RECORD_EXTRAS if what == "record" else ())]
            if name not in known:
                self.report("E310", f"unknown field '{name}' of '{of}'",
                            node, did_you_mean(name, known))
            return None
        if what == "related":
            if name not in self.related:
                self.report("E224", f"'{name}' is not one of the document's related lists",
                            node, did_you_mean(name, self.related)
                            or "add it to the document's related:")
                return None
            return ("rows", self.related[name][0])
        if what == "rows" and name == "labels":
            return ("labels", of)
        return None

    def report(self, code: str, message: str, node: nodes.Node, hint: str | None) -> None:
        mark = Mark(self.file, self.first_line + node.lineno - 1, 1)
        self.lk.diags.add(code, self.prefix + message, mark, hint)


def _attribute(node: nodes.Node) -> str | None:
    """The name `a.b` or `a['b']` reads; None for anything else."""
    if isinstance(node, nodes.Getattr):
        return node.attr
    if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const) \
            and isinstance(node.arg.value, str):
        return node.arg.value
    return None
