"""Safe YAML loading that keeps positions and refuses hostile input quickly.

PyYAML's parser produces events; this module builds plain Python data from them itself
(it never uses PyYAML's constructors) so that:

- no Python object other than dict, list, str, int, float, bool and None is ever created;
- every value and every mapping key keeps its 1-based line and column (read when first
  asked for, for a document with nothing to report: see `LoadedDoc`);
- scalars follow the YAML 1.2 core schema (`yes`, `on`, `2024-01-01`, `1.2.0` stay text);
- depth, alias and size limits are checked while reading, without recursion, so a
  "billion laughs" or a 10,000-deep document is refused after a few hundred events.

Every problem becomes a diagnostic (codes E001-E012, see docs/definition-files.md); nothing
here raises for a user's file.
"""

from __future__ import annotations

import copy
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml import events

from builder.diagnostics import Diagnostics, Mark

MAX_BYTES = 2 * 1024 * 1024
MAX_DEPTH = 64
MAX_ALIASES = 100
MAX_NODES = 100_000

_YAML = "tag:yaml.org,2002:"
_STANDARD_SCALAR_TAGS = {_YAML + t for t in ("str", "int", "float", "bool", "null")}

# YAML 1.2 core schema, with two deliberate restrictions (see docs/definition-files.md):
# integers with a leading zero or a leading '+' stay text (phone numbers, postcodes), and
# .inf / .nan stay text (no definition needs them and JSON cannot hold them).
_NULL = re.compile(r"null|Null|NULL|~|")
_TRUE = re.compile(r"true|True|TRUE")
_FALSE = re.compile(r"false|False|FALSE")
_INT_DEC = re.compile(r"-?(?:0|[1-9][0-9]*)")
_INT_HEX = re.compile(r"0x[0-9a-fA-F]+")
_INT_OCT = re.compile(r"0o[0-7]+")
_FLOAT = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?")

# Characters YAML allows in a stream (YAML 1.2, 5.1); anything else is binary junk.
_NON_PRINTABLE = re.compile(
    "[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


@dataclass
class Positions:
    """Where every value and key of a document was written, and how its scalars were quoted."""

    value_marks: dict[tuple, Mark] = field(default_factory=dict)
    key_marks: dict[tuple, Mark] = field(default_factory=dict)
    styles: dict[tuple, str] = field(default_factory=dict)
    verbatim: set[tuple] = field(default_factory=set)


class LoadedDoc:
    """One YAML file as plain data, with the position of every value and key.

    A document without problems is read without positions (the demo data files hold half a
    million values, and only a diagnostic ever asks where one is): its text is kept and read
    again with positions the first time one is asked for. A document with a problem is read
    with positions at once, so its diagnostics are the same either way.
    """

    def __init__(self, file: str, data: Any, positions: Positions | None = None,
                 text: str | None = None) -> None:
        self.file = file
        self.data = data
        self._positions = positions
        self._text = text

    def __repr__(self) -> str:
        return f"LoadedDoc({self.file!r})"

    @property
    def positions(self) -> Positions:
        """The document's positions, read from its text on first use. The text is kept: two
        threads asking at once both read it, and either answer is the same."""
        if self._positions is None:
            reread = _Builder(self.file, Diagnostics()).build(self._text or "")
            self._positions = reread.positions if reread is not None else Positions()
        return self._positions

    @property
    def value_marks(self) -> dict[tuple, Mark]:
        return self.positions.value_marks

    @property
    def key_marks(self) -> dict[tuple, Mark]:
        return self.positions.key_marks

    def mark(self, path: tuple, *, key: bool = False) -> Mark:
        """The mark of `path` (its key when `key` and it has one), else its nearest ancestor's.

        Values that came from an alias have no marks of their own below the alias: they
        report the alias's position.
        """
        path = tuple(path)
        positions = self.positions
        if key and path in positions.key_marks:
            return positions.key_marks[path]
        for end in range(len(path), -1, -1):
            found = positions.value_marks.get(path[:end])
            if found is not None:
                return found
        return Mark(self.file, 1, 1)

    def scalar_style(self, path: tuple) -> str | None:
        """How the scalar at `path` was written: "plain", "'", '"', "|" or ">".

        None for mappings, lists, aliases and missing paths. Lets callers map an offset
        inside an expression to a column: only a single-line plain or quoted scalar maps
        one-to-one.
        """
        return self.positions.styles.get(tuple(path))

    def is_verbatim(self, path: tuple) -> bool:
        """Whether the text scalar at `path` is written on one line exactly as its value reads
        (plain, or quoted without escapes and without folding): then an offset inside the
        value is an offset from its mark (plus one for the opening quote)."""
        return tuple(path) in self.positions.verbatim


def load_file(
    path: str | Path, display: str | None = None, diags: Diagnostics | None = None
) -> LoadedDoc | None:
    """Read and load one YAML file; `display` is the name used in diagnostics.

    The size is checked before the file is read. Returns None when the file cannot be read
    as one YAML document (the reason is in `diags`).
    """
    if diags is None:
        raise TypeError("load_file() needs diags=Diagnostics()")
    name = display if display is not None else str(path)
    start = Mark(name, 1, 1)
    try:
        size = os.stat(path).st_size
        if size > MAX_BYTES:
            diags.add(
                "E003",
                f"file is too large ({_size(size)}; the limit is {_size(MAX_BYTES)})",
                start,
                "split it into several files",
            )
            return None
        with open(path, "rb") as handle:
            raw = handle.read(MAX_BYTES + 1)  # +1: a file that grew (or /dev/zero) is caught
    except OSError as exc:
        reason = exc.strerror or exc.__class__.__name__
        diags.add(
            "E012",
            f"cannot read the file: {reason}",
            start,
            "check that the path exists, is a file and is readable",
        )
        return None
    return load_text(raw, name, diags)


def load_text(text: str | bytes, file: str, diags: Diagnostics) -> LoadedDoc | None:
    """Load YAML from a string or bytes (UTF-8); `file` is the name used in diagnostics.

    Returns None when the text is not one readable YAML document; returns a LoadedDoc with
    the recoverable problems (duplicate keys, unsupported tags, merge keys, non-text keys)
    reported in `diags` otherwise.
    """
    start = Mark(file, 1, 1)
    if len(text) > MAX_BYTES or (isinstance(text, str) and _utf8_len(text) > MAX_BYTES):
        size = len(text) if isinstance(text, bytes) else _utf8_len(text)
        diags.add(
            "E003",
            f"file is too large ({_size(size)}; the limit is {_size(MAX_BYTES)})",
            start,
            "split it into several files",
        )
        return None
    if isinstance(text, bytes):
        decoded = _decode(text, file, diags)
        if decoded is None:
            return None
        text = decoded
    elif text.startswith("\ufeff"):
        text = text[1:]
    bad = _NON_PRINTABLE.search(text)
    if bad:
        char = bad.group()
        what = "a NUL byte" if char == "\0" else f"the control character U+{ord(char):04X}"
        diags.add(
            "E006",
            f"file contains {what}; is it a binary file?",
            _mark_at(text, bad.start(), file),
            "definition files must be plain UTF-8 text",
        )
        return None
    data = _quick(text)
    if data is not _NEEDS_POSITIONS:
        return LoadedDoc(file, data, text=text)
    return _Builder(file, diags).build(text)


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n} bytes"


def _decode(raw: bytes, file: str, diags: Diagnostics) -> str | None:
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        diags.add("E006", "file is UTF-16 encoded", Mark(file, 1, 1), "save it as UTF-8")
        return None
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[line_start : exc.start].decode("utf-8", "replace")) + 1
        diags.add(
            "E006",
            f"file is not valid UTF-8 text (byte 0x{raw[exc.start]:02x}); is it a binary file?",
            Mark(file, line, col),
            "save the file as UTF-8",
        )
        return None


def _mark_at(text: str, offset: int, file: str) -> Mark:
    line_start = text.rfind("\n", 0, offset) + 1
    return Mark(file, text.count("\n", 0, offset) + 1, offset - line_start + 1)


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_YAML) :] if tag.startswith(_YAML) else tag


class _Stop(Exception):
    """A fatal problem was reported; stop reading this file."""


@dataclass
class _Frame:
    """A mapping or list being built. `path` is None while building something discarded."""

    value: dict | list
    path: tuple | None
    mark: Mark
    anchor: str | None
    nodes_before: int
    # mapping state
    key: Any = None
    have_key: bool = False
    key_ok: bool = True
    seen: dict[str, int] = field(default_factory=dict)


_NO_VALUE = object()
_FAST = getattr(yaml, "CSafeLoader", None)


class _Builder:
    def __init__(self, file: str, diags: Diagnostics) -> None:
        self.file = file
        self.diags = diags
        self.positions = Positions()
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int]] = {}
        self.nodes = 0
        self.aliases = 0
        self.result: Any = _NO_VALUE
        self.empty_root = False

    def mark(self, ymark: Any) -> Mark:
        return Mark(self.file, ymark.line + 1, ymark.column + 1)

    def build(self, text: str, fast: bool = _FAST is not None) -> LoadedDoc | None:
        # libyaml parses several times faster; on any YAML error the pure-Python parser runs
        # again so that syntax messages and positions are always the same.
        loader = _FAST(text) if fast and _FAST is not None else yaml.SafeLoader(text)
        try:
            self._run(loader)
        except _Stop:
            return None
        except yaml.YAMLError as exc:
            if fast:
                loader.dispose()
                self.__init__(self.file, self.diags)  # type: ignore[misc]
                return self.build(text, fast=False)
            if isinstance(exc, yaml.MarkedYAMLError):
                self._syntax_error(exc)
            else:  # unmarked (reader) errors
                self.diags.add("E001", f"YAML error: {exc}", Mark(self.file, 1, 1))
            return None
        finally:
            loader.dispose()
        if self.result is _NO_VALUE or self.empty_root:
            self.diags.add(
                "E011",
                "file is empty",
                Mark(self.file, 1, 1),
                "write the definition, or delete the file",
            )
            return None
        return LoadedDoc(self.file, self.result, self.positions)

    # -- events ------------------------------------------------------------------------

    def _run(self, loader: yaml.SafeLoader) -> None:
        documents = 0
        while True:
            event = loader.get_event()
            if isinstance(event, events.StreamEndEvent):
                return
            if isinstance(event, events.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    self.diags.add(
                        "E010",
                        "file holds more than one YAML document ('---')",
                        self.mark(event.start_mark),
                        "put each definition in its own file",
                    )
                    raise _Stop
            elif isinstance(event, events.ScalarEvent):
                if event.style == "":  # libyaml's plain style; the Python parser says None
                    event.style = None
                self._scalar(event)
            elif isinstance(event, events.AliasEvent):
                self._alias(event)
            elif isinstance(event, (events.MappingStartEvent, events.SequenceStartEvent)):
                self._start(event)
            elif isinstance(event, (events.MappingEndEvent, events.SequenceEndEvent)):
                self._end()

    def _child_path(self) -> tuple | None:
        """The path of the node that starts now, or None when it is discarded."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if top.path is None:
            return None
        if isinstance(top.value, list):
            return top.path + (len(top.value),)
        if not top.have_key or not top.key_ok:
            return None  # a key node, or the value of a rejected key
        return top.path + (top.key,)

    def _count(self, n: int, mark: Mark) -> None:
        self.nodes += n
        if self.nodes > MAX_NODES:
            self.diags.add(
                "E005",
                f"document is too large: more than {MAX_NODES:,} values (aliases included)",
                mark,
                "split the file, or repeat fewer aliases",
            )
            raise _Stop

    def _start(self, event: events.CollectionStartEvent) -> None:
        mark = self.mark(event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            self.diags.add(
                "E004",
                f"document is nested too deeply (more than {MAX_DEPTH} levels)",
                mark,
                "flatten the structure",
            )
            raise _Stop
        is_map = isinstance(event, events.MappingStartEvent)
        expected = _YAML + ("map" if is_map else "seq")
        if event.tag not in (None, "!", expected):
            self._bad_tag(event.tag, mark)
        self._count(1, mark)
        path = self._child_path()
        if path is not None:
            self.positions.value_marks[path] = mark
        self.stack.append(_Frame({} if is_map else [], path, mark, event.anchor, self.nodes - 1))

    def _end(self) -> None:
        frame = self.stack.pop()
        if frame.anchor is not None:
            self.anchors[frame.anchor] = (frame.value, self.nodes - frame.nodes_before)
        self._attach(frame.value, frame.mark, scalar=None)

    def _scalar(self, event: events.ScalarEvent) -> None:
        mark = self.mark(event.start_mark)
        self._count(1, mark)
        value = self._resolve(event, mark)
        if event.anchor is not None:
            self.anchors[event.anchor] = (value, 1)
        self._attach(value, mark, scalar=event)

    def _alias(self, event: events.AliasEvent) -> None:
        mark = self.mark(event.start_mark)
        self.aliases += 1
        if self.aliases > MAX_ALIASES:
            self.diags.add(
                "E005",
                f"too many aliases (more than {MAX_ALIASES})",
                mark,
                "repeat the values instead of using '*' aliases",
            )
            raise _Stop
        if event.anchor not in self.anchors:
            self.diags.add(
                "E005",
                f"alias '*{event.anchor}' refers to no anchor defined "
                "before it (recursive aliases are not allowed)",
                mark,
                f"define '&{event.anchor}' before using it",
            )
            raise _Stop
        value, size = self.anchors[event.anchor]
        self._count(size, mark)
        self._attach(copy.deepcopy(value), mark, scalar=None, alias=True)

    # -- building ----------------------------------------------------------------------

    def _attach(
        self, value: Any, mark: Mark, scalar: events.ScalarEvent | None, alias: bool = False
    ) -> None:
        if not self.stack:
            if scalar is not None or alias:
                self.positions.value_marks[()] = mark
            if scalar is not None:
                self.positions.styles[()] = scalar.style or "plain"
                if _verbatim(scalar):
                    self.positions.verbatim.add(())
                # `---` alone: the document has no content at all (unlike `~` or `null`)
                self.empty_root = (
                    scalar.value == ""
                    and scalar.style is None
                    and scalar.tag is None
                    and scalar.anchor is None
                )
            self.result = value
            return
        top = self.stack[-1]
        if isinstance(top.value, list):
            if top.path is not None:
                path = top.path + (len(top.value),)
                self._remember(path, mark, scalar, alias)
            top.value.append(value)
            return
        if not top.have_key:
            top.have_key = True
            top.key_ok = False
            top.key = self._key(value, mark, scalar, alias, top)
            if top.key is not None:
                top.key_ok = True
                if top.path is not None:
                    self.positions.key_marks[top.path + (top.key,)] = mark
            return
        if top.key_ok and top.path is not None:
            self._remember(top.path + (top.key,), mark, scalar, alias)
        if top.key_ok:
            top.value[top.key] = value
        top.have_key = False
        top.key = None

    def _remember(
        self, path: tuple, mark: Mark, scalar: events.ScalarEvent | None, alias: bool
    ) -> None:
        if scalar is not None or alias:  # collections were recorded when they started
            self.positions.value_marks[path] = mark
        if scalar is not None:
            self.positions.styles[path] = scalar.style or "plain"
            if _verbatim(scalar):
                self.positions.verbatim.add(path)

    def _key(
        self, value: Any, mark: Mark, scalar: events.ScalarEvent | None, alias: bool, frame: _Frame
    ) -> str | None:
        """The text of a mapping key, or None (reported) when it cannot be one."""
        if alias or scalar is None:
            what = "an alias" if alias else "a list or mapping"
            self.diags.add(
                "E008", f"a key must be text, not {what}", mark, "write the key as plain text"
            )
            return None
        plain = scalar.style is None
        if plain and scalar.value == "<<" and scalar.tag is None:
            self.diags.add(
                "E009", "merge keys ('<<') are not supported", mark, "repeat the keys instead"
            )
            return None
        if isinstance(value, bool) or value is None:
            shown = scalar.value or "an empty key"
            self.diags.add(
                "E008",
                f"a key must be text, got {shown!s}"
                if scalar.value
                else "a key is missing before ':'",
                mark,
                f"quote it if you mean the word: '{scalar.value}'"
                if scalar.value
                else "write a name before ':'",
            )
            return None
        key = value if isinstance(value, str) else scalar.value  # 1: and 2.5: as written
        first = frame.seen.get(key)
        if first is not None:
            self.diags.add(
                "E002",
                f"duplicate key '{key}' (first defined on line {first})",
                mark,
                "keep only one of them",
            )
            return None
        frame.seen[key] = mark.line
        return key

    def _resolve(self, event: events.ScalarEvent, mark: Mark) -> Any:
        text = event.value
        tag = event.tag
        plain = event.style is None
        if tag is None or tag == "!":
            return _core_value(text) if plain and tag is None else text
        if tag not in _STANDARD_SCALAR_TAGS:
            self._bad_tag(tag, mark)
            return _core_value(text) if plain else text
        if tag == _YAML + "str":
            return text
        value = _core_value(text)
        kind = tag[len(_YAML) :]
        ok = {
            "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
            "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
            "bool": lambda v: isinstance(v, bool),
            "null": lambda v: v is None,
        }[kind](value)
        if not ok:
            self.diags.add(
                "E007",
                f"'{text}' is not a valid {_short_tag(tag)}",
                mark,
                "remove the tag or fix the value",
            )
            return text
        return float(value) if kind == "float" else value

    def _bad_tag(self, tag: str, mark: Mark) -> None:
        self.diags.add(
            "E007",
            f"unsupported tag '{_short_tag(tag)}'",
            mark,
            "remove it: definitions hold plain values, lists and mappings only",
        )

    def _syntax_error(self, exc: yaml.MarkedYAMLError) -> None:
        ymark = exc.problem_mark or exc.context_mark
        mark = self.mark(ymark) if ymark is not None else Mark(self.file, 1, 1)
        problem = _clean(exc.problem or exc.context or "invalid YAML")
        message = f"YAML syntax error: {problem}"
        if exc.context and exc.problem:
            message += f" ({_clean(exc.context)}"
            if exc.context_mark is not None and exc.context_mark.line != ymark.line:
                where = self.mark(exc.context_mark)
                message += f" that starts at line {where.line}, column {where.col}"
            message += ")"
        hint = _syntax_hint(problem)
        if "mapping values are not allowed" in problem and mark.col > 1024:
            hint = "a key may be at most 1024 characters long"
        self.diags.add("E001", message, mark, hint)


_NEEDS_POSITIONS = object()
_NO_KEY = object()


def _quick(text: str) -> Any:
    """The data of a document with nothing to report, read without positions; or
    _NEEDS_POSITIONS when it may have something to report (a YAML error, a duplicate or
    non-text key, a tag, an anchor or alias, a limit reached, several documents, no
    content): `_Builder` then reads it with positions and reports exactly what it finds.

    Half a million values in the shipped packs' demo data are read here three times faster
    than with positions."""
    if _FAST is None:
        return _NEEDS_POSITIONS
    parser = _FAST(text)
    try:
        return _quick_events(parser.get_event)
    except yaml.YAMLError:
        return _NEEDS_POSITIONS
    finally:
        parser.dispose()


def _quick_events(next_event: Any) -> Any:
    # one loop, no calls per value: this is the hot path of `crmforge install --demo`
    stack: list[list] = []  # [the dict or list being filled, the key waiting for its value]
    result: Any = _NO_VALUE
    documents = nodes = 0
    plain_values: dict[str, Any] = {}  # a document repeats the same words many times
    scalar_event, mapping_start = events.ScalarEvent, events.MappingStartEvent
    while True:
        event = next_event()
        kind = event.__class__
        if kind is scalar_event:
            if event.anchor is not None or event.tag is not None:
                return _NEEDS_POSITIONS
            text = event.value
            plain = not event.style
            if not plain:
                value = text
            elif text in plain_values:
                value = plain_values[text]
            else:
                value = plain_values[text] = _core_value(text)
            new = None
        elif kind is mapping_start or kind is events.SequenceStartEvent:
            if event.anchor is not None or event.tag is not None or len(stack) >= MAX_DEPTH:
                return _NEEDS_POSITIONS
            value = new = {} if kind is mapping_start else []
        elif kind is events.MappingEndEvent or kind is events.SequenceEndEvent:
            stack.pop()
            continue
        elif kind is events.DocumentStartEvent:
            documents += 1
            if documents > 1:
                return _NEEDS_POSITIONS
            continue
        elif kind is events.StreamEndEvent:
            break
        elif kind is events.AliasEvent:
            return _NEEDS_POSITIONS
        else:  # StreamStart, DocumentEnd
            continue
        nodes += 1
        if nodes > MAX_NODES:
            return _NEEDS_POSITIONS
        if not stack:
            if new is None and plain and text == "":
                return _NEEDS_POSITIONS  # `---` alone: no content
            result = value
        else:
            top = stack[-1]
            into = top[0]
            if into.__class__ is list:
                into.append(value)
            elif top[1] is not _NO_KEY:
                into[top[1]] = value
                top[1] = _NO_KEY
            elif (new is not None or value.__class__ is not str or value in into
                  or (plain and value == "<<")):
                return _NEEDS_POSITIONS  # a key that is not text, a duplicate, a merge key
            else:
                top[1] = value
        if new is not None:
            stack.append([new, _NO_KEY])
    return _NEEDS_POSITIONS if result is _NO_VALUE else result


# a plain scalar that starts with none of these is text under the core schema (below)
_TYPED_START = frozenset("nNtTfF~-+.0123456789")


def _core_value(text: str) -> Any:
    """A plain scalar under the YAML 1.2 core schema (with the restrictions noted above)."""
    if text and text[0] not in _TYPED_START:
        return text
    if _NULL.fullmatch(text):
        return None
    if _TRUE.fullmatch(text):
        return True
    if _FALSE.fullmatch(text):
        return False
    if _INT_DEC.fullmatch(text):
        return int(text)
    if _INT_HEX.fullmatch(text):
        return int(text[2:], 16)
    if _INT_OCT.fullmatch(text):
        return int(text[2:], 8)
    if _FLOAT.fullmatch(text) and not re.fullmatch(r"[-+]?[0-9]+", text):
        return float(text)
    return text


_TOKEN_NAMES = {
    "<block end>": "the end of an indented block",
    "<block mapping start>": "the start of a new mapping",
    "<block sequence start>": "the start of a new list",
    "<stream end>": "the end of the file",
    "<document start>": "'---'",
    "<document end>": "'...'",
    "<scalar>": "a value",
    "<alias>": "an alias",
    "<anchor>": "an anchor",
    "<tag>": "a tag",
    "?": "a key",
    "-": "a list item ('-')",
}
_CHAR_NAMES = {
    "\t": "a tab",
    "\r": "a carriage return",
    "\n": "a line break",
    "\0": "the end of the file",
}


def _clean(text: str | None) -> str:
    """PyYAML's problem text without Python reprs and internal token names."""
    if not text:
        return ""

    def found(match: re.Match) -> str:
        name = _TOKEN_NAMES.get(match.group(2))
        return f"{match.group(1)}{name}" if name else match.group(0)

    text = re.sub(r"(expected |found |got )'?(<[a-z ]+>)'?", found, text)
    text = re.sub(r"(expected |found |got )'(\?|-)'", found, text)

    def char(match: re.Match) -> str:
        inner = match.group(1)
        try:
            value = inner.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError:
            return match.group(0)
        return _CHAR_NAMES.get(value, f"'{value}'")

    text = re.sub(r"'(\\[^']{1,10})'", char, text)
    text = re.sub(r"character (a tab|a carriage return|a line break)", r"\1", text)
    return re.sub(r"<([a-z ]+)>", r"\1", text)


def _syntax_hint(problem: str) -> str | None:
    if "a tab" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains ': ', or check the indentation"
    if "could not find expected ':'" in problem:
        return "a key must be followed by ':' on the same line (keys are at most 1024 characters)"
    if "end of an indented block" in problem:
        return "check the indentation of this line and the one before"
    if "cannot start any token" in problem:
        return "put a value that starts with this character in quotes"
    if "found undefined alias" in problem:
        return "define the '&anchor' before its '*alias'"
    return None


def _verbatim(scalar: events.ScalarEvent) -> bool:
    """One line, and as many characters as its value (and quotes): no escape, no folding."""
    start, end = scalar.start_mark, scalar.end_mark
    if start is None or end is None or start.line != end.line:
        return False
    quotes = 2 if scalar.style in ("'", '"') else 0 if scalar.style is None else -1
    return quotes >= 0 and end.column - start.column == len(scalar.value) + quotes
