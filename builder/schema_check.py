"""Structure checks: each definition file against its JSON Schema (Draft 2020-12).

The schemas in `builder/schemas/` are the formal version of docs/definition-files.md and are
published for editors. This module turns jsonschema's errors into diagnostics a person can act on:
one per culprit, at the line and column of the offending key or value, in words rather than JSON
pointers (codes E101-E106, see docs/definition-files.md).

Schemas may carry three annotations that only this module reads:
  x-expects  what a value should be, in words, for wrong-type errors
  x-rule     what a pattern means, in words
  x-message  the whole message for an error raised by that schema object ('{key}' is
             replaced by the key concerned); x-code and x-at change its code and the key
             it points at
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urljoin

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError, best_match
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from builder.diagnostics import Diagnostics, Mark, did_you_mean
from builder.loader import LoadedDoc

SCHEMA_DIR = Path(__file__).parent / "schemas"

KINDS = {
    "pack": "pack.schema.json",
    "roles": "roles.schema.json",
    "entity": "entity.schema.json",
    "automations": "automations.schema.json",
    "dashboard": "dashboard.schema.json",
    "data": "data.schema.json",
    "messages": "messages.schema.json",
    "webhooks": "webhooks.schema.json",
    "documents": "documents.schema.json",
    "inbound": "inbound.schema.json",
}

_DIR_KINDS = {
    "entities": "entity",
    "automations": "automations",
    "dashboards": "dashboard",
    "data": "data",
    "messages": "messages",
    "webhooks": "webhooks",
    "documents": "documents",
    "inbound": "inbound",
}


def kind_for(path_in_pack: str) -> str | None:
    """The kind of definition file at `path_in_pack` (relative to the pack), or None.

    `pack.yaml` -> "pack", `roles.yaml` -> "roles", `entities/*.yaml` -> "entity",
    `automations/*.yaml` -> "automations", `dashboards/*.yaml` -> "dashboard",
    `data/*.yaml` -> "data", `messages/*.yaml` -> "messages", `webhooks/*.yaml` -> "webhooks",
    `inbound/*.yaml` -> "inbound", `documents/*.yaml` -> "documents" (their `.html`
    templates are read by `builder.documents`).
    `.yml` is accepted too; CSV demo data is not YAML (None).
    """
    parts = PurePosixPath(path_in_pack.replace("\\", "/")).parts
    if parts and parts[0] == ".":
        parts = parts[1:]
    if not parts or not parts[-1].endswith((".yaml", ".yml")):
        return None
    if len(parts) == 1:
        return {"pack": "pack", "roles": "roles"}.get(parts[0].rsplit(".", 1)[0])
    if len(parts) == 2:
        return _DIR_KINDS.get(parts[0])
    return None


def check_document(doc: LoadedDoc, kind: str, diags: Diagnostics) -> bool:
    """Check a loaded file against the schema of `kind`; True when it has no problem.

    Every problem is reported, one per culprit (key or value), at its position.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown definition kind {kind!r}; expected one of {sorted(KINDS)}")
    if kind == "data" and _plain_data(doc.data):
        return True  # the common case, checked without jsonschema: demo files are big
    schemas = _schemas()
    if _fast_valid(schemas, kind, doc.data):
        return True
    validator = schemas.validators[kind]
    problems: dict[tuple, _Problem] = {}
    for error in validator.iter_errors(doc.data):
        for leaf in _leaves(error):
            for problem in _problems(leaf, doc, schemas):
                known = problems.get(problem.culprit)
                if known is None or _PRIORITY[problem.code] < _PRIORITY[known.code]:
                    problems[problem.culprit] = problem
    kept = _drop_noise(list(problems.values()))
    for problem in kept:
        diags.add(problem.code, problem.message, problem.mark, problem.hint)
    return not kept


_DATA_KEY = re.compile(r"^(_key|[a-z][a-z0-9_]{0,62})$")
_RECORD_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
_SCALARS = (str, int, float, bool, type(None))


def _plain_data(data: Any) -> bool:
    """True when a demo data document certainly satisfies data.schema.json.

    A shortcut for speed only: anything unusual goes through the schema, which finds and
    words the problems.
    """
    if not isinstance(data, list):
        return False
    for record in data:
        if not isinstance(record, dict):
            return False
        for key, value in record.items():
            if not isinstance(key, str) or not _DATA_KEY.match(key):
                return False
            if key == "_key":
                if not isinstance(value, str) or not _RECORD_KEY.match(value):
                    return False
            elif not isinstance(value, _SCALARS) and not (
                    isinstance(value, list) and all(isinstance(v, _SCALARS) for v in value)):
                return False
    return True


# -- schemas -----------------------------------------------------------------------------


@dataclass
class _Schemas:
    by_uri: dict[str, dict]
    base_of: dict[int, str]  # id() of every schema object -> URI of the file holding it
    validators: dict[str, Draft202012Validator]
    registry: Registry
    fast: dict[str, Any]  # jsonschema-rs validators, when that library is installed


def _fast_valid(schemas: _Schemas, kind: str, data: Any) -> bool:
    """True when the compiled (Rust) validator accepts `data`. Only a shortcut: documents it
    rejects, or cannot read, go through `jsonschema`, which finds and words the problems."""
    fast = schemas.fast.get(kind)
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(data))
    except Exception:  # noqa: BLE001 - anything odd is for the reference validator to judge
        return False


@functools.cache
def _schemas() -> _Schemas:
    by_uri: dict[str, dict] = {}
    base_of: dict[int, str] = {}
    for path in sorted(SCHEMA_DIR.glob("*.schema.json")):
        contents = json.loads(path.read_text(encoding="utf-8"))
        uri = contents["$id"]
        by_uri[uri] = contents
        _index(contents, uri, base_of)
    registry: Registry = Registry().with_resources(
        (uri, Resource.from_contents(contents, default_specification=DRAFT202012))
        for uri, contents in by_uri.items()
    )
    by_name = {uri.rsplit("/", 1)[-1]: uri for uri in by_uri}
    validators = {
        kind: Draft202012Validator(by_uri[by_name[name]], registry=registry)
        for kind, name in KINDS.items()
    }
    return _Schemas(by_uri, base_of, validators, registry, _fast_validators(by_uri, by_name))


def _fast_validators(by_uri: dict[str, dict], by_name: dict[str, str]) -> dict[str, Any]:
    try:
        import jsonschema_rs
    except ImportError:
        return {}
    try:
        registry = jsonschema_rs.Registry(list(by_uri.items()))
        return {kind: jsonschema_rs.Draft202012Validator(by_uri[by_name[name]],
                                                         registry=registry)
                for kind, name in KINDS.items()}
    except Exception:  # noqa: BLE001 - an incompatible version: use jsonschema alone
        return {}


def _index(node: Any, uri: str, base_of: dict[int, str]) -> None:
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            base_of[id(item)] = uri
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _resolve(schemas: _Schemas, base: str, ref: str) -> tuple[dict, str]:
    uri, _, fragment = urljoin(base, ref).partition("#")
    node: Any = schemas.by_uri[uri]
    for part in fragment.split("/"):
        if part:
            node = node[part.replace("~1", "/").replace("~0", "~")]
    return node, uri


def _allowed_keys(
    schemas: _Schemas, schema: Any, instance: dict, base: str, depth: int = 0
) -> list[str]:
    """The keys `schema` accepts for `instance`: properties, through $ref, allOf, if/then."""
    if not isinstance(schema, dict) or depth > 20:
        return []
    keys = list(schema.get("properties", {}))
    if "$ref" in schema:
        target, target_base = _resolve(schemas, base, schema["$ref"])
        keys += _allowed_keys(schemas, target, instance, target_base, depth + 1)
    for sub in schema.get("allOf", ()):
        keys += _allowed_keys(schemas, sub, instance, base, depth + 1)
    if "if" in schema:
        check = Draft202012Validator(schema["if"], registry=schemas.registry)
        branch = schema.get("then" if check.is_valid(instance) else "else")
        keys += _allowed_keys(schemas, branch, instance, base, depth + 1)
    return list(dict.fromkeys(keys))


# -- errors -> problems --------------------------------------------------------------------


@dataclass
class _Problem:
    code: str
    culprit: tuple
    mark: Mark
    message: str
    hint: str | None = None


_PRIORITY = {"E102": 0, "E103": 1, "E104": 2, "E105": 3, "E101": 4, "E106": 5}


def _leaves(error: ValidationError) -> Iterator[ValidationError]:
    """The error itself, or for anyOf/oneOf the most relevant error inside it."""
    if error.context:
        best = best_match(error.context)
        if best is not None:
            yield from _leaves(best)
            return
    yield error


def _problems(error: ValidationError, doc: LoadedDoc, schemas: _Schemas) -> Iterator[_Problem]:
    path = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, dict) else {}
    validator = error.validator
    instance = error.instance
    custom = schema.get("x-message")
    in_names = "propertyNames" in error.absolute_schema_path

    if in_names:  # the instance is a key of the mapping at `path`
        culprit = path + (instance,)
        mark = doc.mark(culprit, key=True)
        if validator == "pattern":
            rule = schema.get("x-rule") or f"match {schema.get('pattern')}"
            yield _Problem(
                "E105",
                culprit,
                mark,
                _prefixed(path, doc.data, f"invalid name '{_short(instance)}': it must be {rule}"),
            )
        else:
            yield _Problem(
                schema.get("x-code", "E106"),
                culprit,
                mark,
                _prefixed(
                    path,
                    doc.data,
                    _fill(custom, instance) if custom else f"invalid name '{_short(instance)}'",
                ),
            )
        return

    if validator in ("additionalProperties", "unevaluatedProperties") and isinstance(
        instance, dict
    ):
        base = schemas.base_of.get(id(error.schema), "")
        allowed = _allowed_keys(schemas, error.schema, instance, base)
        owner = _describe(path, doc.data)[0]
        for key in instance:
            if key in allowed:
                continue
            culprit = path + (key,)
            hint = did_you_mean(key, allowed) or (
                f"allowed keys: {', '.join(allowed)}" if allowed else None
            )
            where = f"{owner}: " if owner else ""
            yield _Problem(
                "E101",
                culprit,
                doc.mark(culprit, key=True),
                f"{where}unknown key '{_short(key)}'",
                hint,
            )
        return

    if validator == "required" and isinstance(instance, dict):
        owner = _describe(path, doc.data)[0]
        for key in error.validator_value:
            if key in instance:
                continue
            message = (
                _prefixed(path, doc.data, _fill(custom, key))
                if custom
                else f"{owner + ': ' if owner else ''}missing required key '{key}'"
            )
            yield _Problem("E103", path + (f"<missing {key}>",), doc.mark(path, key=True), message)
        return

    subject = _subject(path, doc.data)
    mark = doc.mark(path)
    if validator == "type":
        expected = schema.get("x-expects") or _type_words(error.validator_value)
        yield _Problem(
            "E102", path, mark, f"{subject} must be {expected}, got {_describe_value(instance)}"
        )
    elif validator in ("enum", "const"):
        allowed = error.validator_value if validator == "enum" else [error.validator_value]
        hint = (
            did_you_mean(instance, [str(a) for a in allowed]) if isinstance(instance, str) else None
        )
        if custom:
            message = _fill(custom, path[-1] if path else "")
            if "{key}" not in custom:
                message = _prefixed(path, doc.data, message)
        elif len(allowed) == 1:
            message = f"{subject} must be {_literal(allowed[0])}, got {_describe_value(instance)}"
        else:
            message = (
                f"{subject} must be one of {', '.join(_literal(a) for a in allowed)}; "
                f"got {_describe_value(instance)}"
            )
        yield _Problem("E104", path, mark, message, hint)
    elif validator == "pattern":
        rule = schema.get("x-rule") or f"text matching {error.validator_value}"
        yield _Problem(
            "E105", path, mark, f"{subject} must be {rule}, got {_describe_value(instance)}"
        )
    elif validator == "uniqueItems" and isinstance(instance, list):
        index, value = _first_repeat(instance)
        culprit = path + (index,)
        yield _Problem(
            "E106",
            culprit,
            doc.mark(culprit),
            f"{subject} lists {_describe_value(value)} twice",
            "remove the repeat",
        )
    else:
        code = schema.get("x-code", "E106")
        if custom:
            key = schema.get("x-at") or (path[-1] if path else "")
            culprit = path + (schema["x-at"],) if "x-at" in schema else path
            at = doc.mark(culprit, key=True) if "x-at" in schema or code == "E101" else mark
            message = _fill(custom, key)
            # A message that names its key is said by the key's owner; others by the value.
            owner_path = path[:-1] if "{key}" in custom else path
            yield _Problem(code, culprit, at, _prefixed(owner_path, doc.data, message))
        else:
            yield _Problem(code, path, mark, _limit_message(error, subject))


def _limit_message(error: ValidationError, subject: str) -> str:
    value = error.validator_value
    instance = error.instance
    validator = error.validator
    if validator == "minimum":
        return f"{subject} must be at least {value}, got {_describe_value(instance)}"
    if validator == "maximum":
        return f"{subject} must be at most {value}, got {_describe_value(instance)}"
    if validator == "exclusiveMinimum":
        return f"{subject} must be more than {value}, got {_describe_value(instance)}"
    if validator == "exclusiveMaximum":
        return f"{subject} must be less than {value}, got {_describe_value(instance)}"
    if validator == "minItems":
        return f"{subject} must list at least {value} item{'s' if value != 1 else ''}"
    if validator == "maxItems":
        return f"{subject} must list at most {value} item{'s' if value != 1 else ''}"
    if validator == "minLength":
        return (
            f"{subject} must not be empty"
            if value == 1
            else f"{subject} must be at least {value} characters long"
        )
    if validator == "maxLength":
        return f"{subject} must be at most {value} characters long"
    if validator == "minProperties":
        return (
            f"{subject} must not be empty"
            if value == 1
            else f"{subject} must have at least {value} keys"
        )
    if validator == "maxProperties":
        return f"{subject} must have at most {value} key{'s' if value != 1 else ''}"
    if validator == "not" or validator is None:
        return f"{subject} is not allowed here"
    return f"{subject}: {_short(error.message, 120)}"


def _drop_noise(problems: list[_Problem]) -> list[_Problem]:
    """Unknown-key errors next to a missing or invalid 'type' follow from it: drop them."""
    bad_type = {
        p.culprit[:-1]
        for p in problems
        if p.culprit
        and p.culprit[-1] in ("type", "<missing type>")
        and p.code in ("E102", "E103", "E104")
    }
    return [p for p in problems if not (p.code == "E101" and p.culprit[:-1] in bad_type)]


# -- words -----------------------------------------------------------------------------------

# Owner descriptions by path shape: "*" is any key, "#" any list index. Longest match wins.
_OWNERS: list[tuple[tuple, str]] = [
    (("fields", "*"), "field '{1}'"),
    (("validations", "#"), "validation {1}"),
    (("duplicates", "#"), "duplicate rule {1}"),
    (("views", "*"), "{1} view"),
    (("views", "form", "sections", "#"), "form view, section {3}"),
    (("views", "related", "#"), "related list {2}"),
    (("workflow",), "workflow"),
    (("workflow", "states", "*"), "state '{2}'"),
    (("workflow", "transitions", "*"), "transition '{2}'"),
    (("approvals", "*"), "approval '{1}'"),
    (("approvals", "*", "steps", "#"), "approval '{1}', step {3}"),
    (("permissions", "*"), "permissions of role '{1}'"),
    (("automations", "*"), "automation '{1}'"),
    (("automations", "*", "do", "#"), "automation '{1}', action {3}"),
    (("messages", "*"), "message '{1}'"),
    (("webhooks", "*"), "webhook '{1}'"),
    (("inbound", "*"), "inbound rule '{1}'"),
    (("roles", "*"), "role '{1}'"),
    (("widgets", "#"), "widget {1}"),
    (("#",), "record {0}"),
]


def _matches(pattern: tuple, path: tuple) -> bool:
    if len(pattern) > len(path):
        return False
    for want, got in zip(pattern, path, strict=False):
        if want == "*":
            if not isinstance(got, str):
                return False
        elif want == "#":
            if not isinstance(got, int):
                return False
        elif want != got:
            return False
    return True


def _describe(path: tuple, data: Any) -> tuple[str, tuple]:
    """('field 'amount'', ('rollup', 'op')): who owns `path`, and the rest of the path."""
    best: tuple | None = None
    for pattern, _ in _OWNERS:
        if _matches(pattern, path) and (best is None or len(pattern) > len(best[0])):
            best = (pattern, _)
    if best is None:
        return "", path
    pattern, template = best
    parts = []
    for index, part in enumerate(path[: len(pattern)]):
        if isinstance(part, int):
            parts.append(_item_name(path[: index + 1], part, data))
        else:
            parts.append(_short(part, 60))
    return template.format(*parts), path[len(pattern) :]


def _item_name(path: tuple, index: int, data: Any) -> str:
    """A list item by its name, label or _key when it has one, else by its number."""
    node = data
    try:
        for part in path:
            node = node[part]
    except (KeyError, IndexError, TypeError):
        node = None
    if isinstance(node, dict):
        for key in ("name", "label", "_key"):
            if isinstance(node.get(key), str) and node[key]:
                return f"'{_short(node[key], 40)}'"
    return str(index + 1)


def _rest(rest: tuple) -> str:
    out: list[str] = []
    keys: list[str] = []
    for part in rest:
        if isinstance(part, int):
            if keys:
                out.append("'" + ".".join(keys) + "'")
                keys = []
            out.append(f"item {part + 1}")
        else:
            keys.append(_short(part, 60))
    if keys:
        out.append("'" + ".".join(keys) + "'")
    return " ".join(out)


def _subject(path: tuple, data: Any) -> str:
    if not path:
        return "the file"
    owner, rest = _describe(path, data)
    if not rest:
        return owner
    return f"{owner}: {_rest(rest)}" if owner else _rest(rest)


def _prefixed(path: tuple, data: Any, message: str) -> str:
    return f"{_subject(path, data)}: {message}" if path else message


_TYPE_WORDS = {
    "string": "text",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "empty",
}


def _type_words(types: Any) -> str:
    names = [_TYPE_WORDS.get(t, t) for t in ([types] if isinstance(types, str) else types)]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def _describe_value(value: Any) -> str:
    if value is None:
        return "nothing (an empty value)"
    if isinstance(value, bool):
        return f"boolean {'true' if value else 'false'}"
    if isinstance(value, int):
        return f"integer {value}"
    if isinstance(value, float):
        return f"number {value}"
    if isinstance(value, str):
        return f"text '{_short(value)}'"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _literal(value: Any) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if value is None:
        return "null"
    return str(value)


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    text = re.sub(r"\s+", " ", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _fill(template: str, key: Any) -> str:
    return template.replace("{key}", _short(key, 60))


def _first_repeat(items: list) -> tuple[int, Any]:
    seen: list[Any] = []
    for index, item in enumerate(items):
        if any(_same(item, other) for other in seen):
            return index, item
        seen.append(item)
    return len(items) - 1, items[-1] if items else None


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b
