"""Outbound webhooks (`webhooks/*.yaml`): each names an entity, the events of its records to
send and the address to POST them to (docs/webhooks.md).

The builder checks what it can know from the files: the entity (E202), that an event can
happen to its records (E241: `transition` needs a workflow, `approval` an approval), that the
entity is not a system one (E242), and that the address is http(s) with a host (E240, with
`url_problem`, which the runtime asks again before each delivery).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from .link_rules import _at
from .model import Entity, Text, Webhook, humanize

if TYPE_CHECKING:
    from .linker import Linker
    from .loader import LoadedDoc


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive webhooks (not http or https, no host, a password in it, a bad
    port); None when it can."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        return f"'{url}' is not a valid address ({exc})"
    if parts.scheme not in ("http", "https"):
        return f"'{url}' is not an http:// or https:// address"
    if not parts.hostname:
        return f"'{url}' names no host"
    if parts.username or parts.password:
        return f"'{url}' holds a user name or password, which would show in every log"
    if port == 0:
        return f"'{url}' names port 0"
    return None


def build_webhooks(lk: Linker, entities: Mapping[str, Entity]) -> dict[str, Webhook]:
    """Every valid webhook of every pack, by name (E200 for a name used twice)."""
    result: dict[str, Webhook] = {}
    for source in lk.sources:
        for doc in source.of_kind("webhooks"):
            for name, raw in doc.data["webhooks"].items():
                loc = (doc, ("webhooks", name))
                if name in result:
                    lk.error("E200", f"webhook '{name}' is already defined by pack "
                             f"'{result[name].pack}'", loc, "choose another name", key=True)
                elif _valid(lk, entities, doc, name, raw):
                    result[name] = Webhook(
                        name, raw["entity"], source.name, Text.of(raw.get("label"),
                                                                  humanize(name)),
                        tuple(raw["events"]), raw["url"].strip(), raw.get("secret_env"),
                        raw.get("active", True))
    return result


def _valid(lk: Linker, entities: Mapping[str, Entity], doc: LoadedDoc, name: str,
           raw: dict[str, Any]) -> bool:
    """Report every problem of one webhook; whether it has none."""
    loc = (doc, ("webhooks", name))
    prefix = f"webhook '{name}': "
    problem = url_problem(raw["url"])
    if problem:
        lk.error("E240", prefix + problem, _at(loc, "url"),
                 "write the address of the receiving server, like https://hooks.example.com/crm")
    if not lk.entity_ref(raw["entity"], _at(loc, "entity"), prefix):
        return False
    entity = entities[raw["entity"]]
    if entity.system:
        lk.error("E242", f"{prefix}'{entity.name}' is a system entity; its records are not "
                 "sent to webhooks", _at(loc, "entity"), "name an entity of a pack")
        return False
    impossible = [(index, event) for index, event in enumerate(raw["events"])
                  if (event == "transition" and entity.workflow is None)
                  or (event == "approval" and not entity.approvals)]
    for index, event in impossible:
        needs = "workflow" if event == "transition" else "approvals"
        lk.error("E241", f"{prefix}'{entity.name}' has no {needs}, so '{event}' never happens",
                 _at(loc, "events", index), f"leave '{event}' out of events")
    return problem is None and not impossible
