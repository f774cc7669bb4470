"""Fill a pack's missing translations from a glossary, editing its files in place.

    python tools/translate_pack.py GLOSSARY.yaml PACK_DIR... [--languages zh,es]

The glossary maps English text to its translations (`Offer: {zh: 报价, es: Oferta}`). Every
text `crmforge validate --languages` reports (builder/translations.py) whose English is in the
glossary is rewritten where it stands — `label: Offer` becomes `label: {en: Offer, zh: 报价,
es: Oferta}`, a label made from a field's name is added after the field's first key, options
written as a list become a map — so comments and layout stay as they are. What the glossary
lacks is printed, to be added to it; a multi-line text (a message body) is left for a person.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script from anywhere in the checkout

from builder.diagnostics import Diagnostics  # noqa: E402
from builder.model import humanize  # noqa: E402
from builder.packs import resolve  # noqa: E402
from builder.translations import Missing, missing, parse_languages  # noqa: E402

Edit = tuple[int, int, str]  # replace text[start:end] with the string


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("glossary", type=Path)
    parser.add_argument("packs", nargs="+", type=Path)
    parser.add_argument("--languages", type=parse_languages, default=("zh", "es"))
    args = parser.parse_args(argv)
    glossary = yaml.safe_load(args.glossary.read_text(encoding="utf-8")) or {}
    unknown: set[str] = set()
    for source in resolve(args.packs, Diagnostics(), demo=False):
        if not any(source.path.resolve() == p.resolve() for p in args.packs):
            continue
        docs = [("pack", source.manifest)] if source.manifest else []
        for kind, doc in [*docs, *source.docs]:
            items = list(missing(doc, kind, args.languages))
            if items:
                unknown |= translate_file(Path(doc.file), items, glossary, args.languages)
    for text in sorted(unknown):
        print(json.dumps(text, ensure_ascii=False) + ": {zh: , es: }")
    return 1 if unknown else 0


def translate_file(path: Path, items: list[Missing], glossary: dict,
                   languages: tuple[str, ...]) -> set[str]:
    """Apply what the glossary knows to one file; the English texts it does not know."""
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    edits: dict[int, Edit] = {}
    unknown: set[str] = set()
    for item in items:
        for edit in _edits(root, item, glossary, languages, text, unknown):
            edits[edit[0]] = edit
    for start, end, new in sorted(edits.values(), reverse=True):
        text = text[:start] + new + text[end:]
    if edits:
        path.write_text(text, encoding="utf-8")
    return unknown


def _edits(root: yaml.Node, item: Missing, glossary: dict, languages: tuple[str, ...],
           text: str, unknown: set[str]) -> list[Edit]:
    if isinstance(item.path[-1], int):  # options written as a list
        return _options_edit(_node(root, item.path[:-1]), glossary, languages, text, unknown)
    if item.key:
        english = humanize(str(item.path[-2]))
        holder = _node(root, item.path[:-1])
        label = _map(english, glossary, languages, unknown)
        return [_add_key(holder, "label", label, text)] if label and holder else []
    node = _node(root, item.path)
    if item.english is None or "\n" in item.english.strip() or node is None:
        unknown.add(item.english or "/".join(map(str, item.path)))
        return []
    current = _value(node)
    label = _map(item.english, glossary, languages, unknown, current)
    return [(node.start_mark.index, node.end_mark.index, label)] if label else []


def _options_edit(node: yaml.Node | None, glossary: dict, languages: tuple[str, ...],
                  text: str, unknown: set[str]) -> list[Edit]:
    if not isinstance(node, yaml.SequenceNode) or not node.flow_style:
        return []
    pairs = []
    for item in node.value:
        label = _map(humanize(item.value), glossary, languages, unknown)
        if not label:
            return []
        pairs.append(f"{item.value}: {label}")
    return [(node.start_mark.index, node.end_mark.index, "{" + ", ".join(pairs) + "}")]


def _add_key(holder: yaml.Node, key: str, value: str, text: str) -> Edit:
    """Add `key: value` to a mapping: after its first pair (flow), or on the next line."""
    if not isinstance(holder, yaml.MappingNode) or not holder.value:
        start = holder.start_mark.index
        return (start, holder.end_mark.index, f"{{{key}: {value}}}")
    first_key, first_value = holder.value[0]
    end = first_value.end_mark.index
    if holder.flow_style:
        return (end, end, f", {key}: {value}")
    line_end = text.index("\n", end - 1) + 1 if "\n" in text[end - 1:] else len(text)
    indent = " " * first_key.start_mark.column
    return (line_end, line_end, f"{indent}{key}: {value}\n")


def _map(english: str, glossary: dict, languages: tuple[str, ...], unknown: set[str],
         current: dict | None = None) -> str | None:
    """`{en: Offer, zh: 报价, es: Oferta}`, or None (and `english` noted) when not known."""
    known = {**(glossary.get(english) or {}), **(current or {})}
    texts = {"en": english, **known}
    if any(not str(texts.get(lang) or "").strip() for lang in languages):
        unknown.add(english)
        return None
    order = ["en", *languages, *(k for k in texts if k not in languages and k != "en")]
    return "{" + ", ".join(f"{lang}: {_scalar(str(texts[lang]))}" for lang in
                           dict.fromkeys(order) if lang in texts) + "}"


def _scalar(value: str) -> str:
    """The value as a plain flow scalar when it reads back the same, else double-quoted."""
    try:
        if yaml.safe_load(f"{{k: {value}}}") == {"k": value}:
            return value
    except yaml.YAMLError:
        pass
    return json.dumps(value, ensure_ascii=False)


def _value(node: yaml.Node) -> dict | None:
    if isinstance(node, yaml.MappingNode):
        return {k.value: v.value for k, v in node.value}
    return None


def _node(root: yaml.Node, path: tuple) -> yaml.Node | None:
    node: Any = root
    for key in path:
        if isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if k.value == str(key)), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int):
            node = node.value[key] if key < len(node.value) else None
        else:
            return None
    return node


if __name__ == "__main__":
    sys.exit(main())
