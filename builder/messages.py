"""Message templates (`messages/*.yaml`): each names the entity its `{field}` slots are read
from, and its subject and body are checked like every template (E310 for an unknown field).

The e-mail action of automations (`email: {to, template}`) is checked in `link_rules`; this
module builds the templates it names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .link_rules import _at
from .model import Message, Text, humanize

if TYPE_CHECKING:
    from .linker import Linker


def build_messages(lk: Linker) -> dict[str, Message]:
    """Every message template of every pack, by name (E200 for a name used twice, E202 for
    an unknown entity, E310 for an unknown field in the subject or the body)."""
    result: dict[str, Message] = {}
    for source in lk.sources:
        for doc in source.of_kind("messages"):
            for name, raw in doc.data["messages"].items():
                loc = (doc, ("messages", name))
                prefix = f"message '{name}': "
                if name in result:
                    lk.error("E200", f"message '{name}' is already defined by pack "
                             f"'{result[name].pack}'", loc, key=True)
                    continue
                if not lk.entity_ref(raw["entity"], _at(loc, "entity"), prefix):
                    continue
                for key in ("subject", "body"):
                    for at, text in _texts(raw[key], _at(loc, key)):
                        lk.template(text, at, raw["entity"], prefix + f"{key}: ")
                result[name] = Message(name, raw["entity"], source.name,
                                       Text.of(raw.get("label"), humanize(name)),
                                       Text.of(raw["subject"]), Text.of(raw["body"]),
                                       raw.get("format", "markdown"), raw.get("consent"))
    return result


def _texts(raw: object, loc: tuple) -> list[tuple[tuple, str]]:
    """The text of each language of a `text` value, with its place."""
    if isinstance(raw, dict):
        return [(_at(loc, language), text) for language, text in raw.items()
                if isinstance(text, str)]
    return [(loc, raw)] if isinstance(raw, str) else []

