"""docs/protocol.md and the code agree.

Checked: the protocol version; the ops (against ``protocol.OPS``, the
handlers registered in ``daemon/handlers.py`` and the request types of
``ipc/messages.py``) and each op's arguments with their types and defaults
(the fields of its request type); the ``synthesize`` options and their ranges
(``SpeechOptions``); the reply kinds and the fields of each (the reply
types); the event topics and the fields of each (the event types); the error
codes and the codes each op lists; the size limits; the connection file's
fields; every example request (read as its type, as the daemon reads it),
reply and event (read as its type and written back unchanged); and the
signing worked examples, recomputed with the code.

``daemon/handlers.py`` imports torch (through the conditionals cache), so it is
read with ``ast`` rather than imported: the test takes milliseconds. Each check
returns a list of problems; the last test feeds the checks a doc with one
deliberate mistake at a time to show that each of them can fail.
"""

from __future__ import annotations

import ast
import functools
import importlib.util
import json
import re
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path

import pytest

from chatterbox_tray.daemon.engine import SynthOptions
from chatterbox_tray.ipc import endpoints, messages, protocol

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

#: A field's ``Args`` reader -> the type word the doc uses.
TYPE_WORDS = {
    "str": "string",
    "bool": "boolean",
    "int": "integer",
    "float": "number",
    "dict": "object",
    "list": "array",
}
#: Marked examples: ``<!-- marker -->`` on the line before a fenced block.
EXAMPLE_RE = re.compile(r"^<!-- ([a-z-]+) -->\n```[a-z]*\n(.*?)\n```", re.M | re.S)
HEADING_RE = re.compile(r"^(#{1,6}) (.+?)\s*$")
TICKED_RE = re.compile(r"`([^`]+)`")


# -- reading the doc -------------------------------------------------------------


@dataclass
class Table:
    """A markdown table: header cells and rows of cells."""

    header: list[str]
    rows: list[list[str]] = field(default_factory=list)

    def first_column(self) -> list[str]:
        """The backticked names in each row's first cell."""
        return [name for row in self.rows for name in TICKED_RE.findall(row[0])]


def _prose_lines(text: str) -> list[str]:
    """The lines of ``text`` with fenced code blocks blanked (headings and tables in code are not ours)."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.startswith("```"):
            fenced = not fenced
            out.append("")
        else:
            out.append("" if fenced else line)
    return out


def sections(text: str, level: int) -> dict[str, str]:
    """Title -> body of each heading of ``level``, up to the next heading of that level or above."""
    lines = _prose_lines(text)
    raw = text.splitlines()
    found: dict[str, str] = {}
    starts = []
    for i, line in enumerate(lines):
        match = HEADING_RE.match(line)
        if match:
            starts.append((i, len(match.group(1)), match.group(2)))
    for n, (i, lvl, title) in enumerate(starts):
        if lvl != level:
            continue
        end = next((j for j, lv, _ in starts[n + 1 :] if lv <= level), len(raw))
        found[title] = "\n".join(raw[i + 1 : end])
    return found


def section(text: str, title: str, level: int) -> str:
    """The body of one section; an AssertionError names a missing one."""
    found = sections(text, level)
    assert title in found, f"docs/protocol.md has no {'#' * level} {title} section"
    return found[title]


def ticked_sections(text: str, level: int) -> dict[str, str]:
    """Sections whose heading is one backticked name (``### `hello` ``), by that name."""
    out = {}
    for title, body in sections(text, level).items():
        match = re.fullmatch(r"`([^`]+)`", title)
        if match:
            out[match.group(1)] = body
    return out


def tables(text: str) -> list[Table]:
    """Every table in ``text``, outside code blocks."""
    found: list[Table] = []
    current: Table | None = None
    for line in _prose_lines(text):
        if not line.startswith("|"):
            current = None
            continue
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
        if current is None:
            current = Table(cells)
            found.append(current)
        elif not all(set(c) <= set("-: ") for c in cells):
            current.rows.append(cells)
    return found


def table(text: str, first_header: str) -> Table | None:
    """The first table whose first header cell is ``first_header``."""
    return next((t for t in tables(text) if t.header and t.header[0] == first_header), None)


def examples(text: str, marker: str) -> list[str]:
    """The bodies of the fenced blocks marked ``<!-- marker -->``."""
    return [body for kind, body in EXAMPLE_RE.findall(text) if kind == marker]


def error_bullets(op_body: str) -> list[str] | None:
    """The codes of an op's **Errors** list ([] for "none of its own"); None without one."""
    lines = op_body.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("**Errors")), None)
    if start is None:
        return None
    codes: list[str] = []
    in_list = False
    for line in lines[start + 1 :]:
        if line.startswith("- "):
            in_list = True
            codes += TICKED_RE.findall(line[2:].split(":", 1)[0])
        elif in_list and line.startswith("  "):
            continue
        elif in_list or line.startswith("**"):
            break
    return codes


# -- reading the code --------------------------------------------------------------


def _daemon_file(name: str) -> Path:
    # find_spec of the package imports only chatterbox_tray, not the daemon.
    spec = importlib.util.find_spec("chatterbox_tray.daemon")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / name


@functools.cache
def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def code_handlers() -> set[str]:
    """Each op registered with ``@handler("op")`` in daemon/handlers.py."""
    return {
        deco.args[0].value
        for func in _module(_daemon_file("handlers.py")).body
        if isinstance(func, ast.FunctionDef)
        for deco in func.decorator_list
        if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "handler" and isinstance(deco.args[0], ast.Constant)
    }


def code_fields(kind: type) -> dict[str, messages.FieldSpec]:
    """The fields of a message type that travel in the header (buffers do not), by name."""
    return {spec.name: spec for spec in messages.specs(kind) if not spec.buffer}


# -- the checks ----------------------------------------------------------------------


def _diff(what: str, doc: set[str] | list[str], code: set[str] | list[str], code_name: str) -> list[str]:
    doc_set, code_set = set(doc), set(code)
    problems = []
    if doc_set - code_set:
        problems.append(f"{what} in the doc but not in {code_name}: {sorted(doc_set - code_set)}")
    if code_set - doc_set:
        problems.append(f"{what} in {code_name} but not in the doc: {sorted(code_set - doc_set)}")
    if len(doc) != len(doc_set):
        problems.append(f"{what} listed twice in the doc: {sorted(x for x in doc_set if list(doc).count(x) > 1)}")
    return problems


def check_version(text: str) -> list[str]:
    """Every "**protocol version N**" says the code's PROTOCOL_VERSION."""
    found = re.findall(r"\*\*protocol version (\d+)\*\*", text)
    if not found:
        return ["the doc never says **protocol version N**"]
    return [
        f"the doc says protocol version {v}, the code {protocol.PROTOCOL_VERSION}"
        for v in found
        if int(v) != protocol.PROTOCOL_VERSION
    ]


def check_ops(text: str) -> list[str]:
    """The ### `op` sections of ## Ops, and its overview table, are protocol.OPS and the handlers."""
    ops = section(text, "Ops", 2)
    documented = list(ticked_sections(ops, 3))
    overview = table(ops.split("\n### ", 1)[0], "op")
    return (
        _diff("ops", documented, protocol.OPS, "protocol.OPS")
        + _diff("ops", documented, code_handlers(), "daemon/handlers.py")
        + _diff("ops", documented, messages.REQUESTS, "ipc/messages.py's request types")
        + _diff("ops in the overview table", overview.first_column() if overview else [], protocol.OPS, "protocol.OPS")
    )


def _doc_args(op_body: str, first_header: str) -> dict[str, tuple[str, str]]:
    """name -> (type, default or range cell) from an op's argument or option table."""
    found = table(op_body, first_header)
    if found is None:
        return {}
    return {TICKED_RE.findall(row[0])[0]: (row[1], row[2]) for row in found.rows}


def check_op_arguments(text: str) -> list[str]:
    """Each op's argument table has the names, types, required-ness and defaults of its request type's fields."""
    problems = []
    ops = ticked_sections(section(text, "Ops", 2), 3)
    for op, kind in messages.REQUESTS.items():
        if op not in ops:
            continue  # check_ops reports it
        doc = _doc_args(ops[op], "argument")
        code = code_fields(kind)
        problems += _diff(f"arguments of {op}", list(doc), list(code), f"messages.{kind.__name__}")
        for name in doc.keys() & code.keys():
            word, default = doc[name]
            spec = code[name]
            if word != TYPE_WORDS.get(spec.reader or ""):
                problems.append(f"{op}.{name}: the doc says {word}, the type declares {spec.reader}")
            if spec.required != (default == "required"):
                problems.append(f"{op}.{name}: the doc says {default!r}, the type's default is {spec.default!r}")
            elif not spec.required:
                ticked = TICKED_RE.findall(default)
                shown = json.loads(ticked[0]) if ticked else None
                if (spec.default is None and default != "none") or (spec.default is not None and shown != spec.default):
                    problems.append(f"{op}.{name}: the doc's default is {default!r}, the type's {spec.default!r}")
    return problems


def check_options(text: str) -> list[str]:
    """The synthesize options table matches SpeechOptions (names, types, ranges) and the engine's SynthOptions."""
    body = ticked_sections(section(text, "Ops", 2), 3).get("synthesize", "")
    doc = _doc_args(body, "option")
    code = code_fields(messages.SpeechOptions)
    problems = _diff("synthesize options", list(doc), list(code), "messages.SpeechOptions")
    problems += _diff("synthesize options", list(doc), [f.name for f in fields(SynthOptions)], "SynthOptions")
    for name in doc.keys() & code.keys():
        (word, cell), spec = doc[name], code[name]
        if word != TYPE_WORDS.get(spec.reader or ""):
            problems.append(f"option {name}: the doc says {word}, the type declares {spec.reader}")
        if spec.lo is None and spec.hi is None:
            continue
        shown = re.fullmatch(r"(-?[\d.]+) to (-?[\d.]+)", cell)
        if not shown or (float(shown.group(1)), float(shown.group(2))) != (spec.lo, spec.hi):
            problems.append(f"option {name}: the doc's range is {cell!r}, the type's {spec.lo} to {spec.hi}")
    return problems


def check_reply_kinds(text: str) -> list[str]:
    """The reply kinds table: the kinds, which are final, and the fields of each."""
    found = table(section(text, "Replies", 2), "kind")
    if found is None:
        return ["## Replies has no table of reply kinds"]
    problems = _diff("reply kinds", found.first_column(), protocol.REPLY_KINDS, "protocol.REPLY_KINDS")
    final = {TICKED_RE.findall(row[0])[0] for row in found.rows if row[1] == "yes"}
    problems += _diff("final reply kinds", list(final), protocol.FINAL_KINDS, "protocol.FINAL_KINDS")
    problems += _diff("reply kinds", found.first_column(), messages.REPLIES, "ipc/messages.py's reply types")
    for row in found.rows:
        kind = TICKED_RE.findall(row[0])[0]
        doc_fields = set(TICKED_RE.findall(row[2]))
        code = set(code_fields(messages.REPLIES[kind])) if kind in messages.REPLIES else doc_fields
        if doc_fields != code:
            problems.append(f"reply {kind}: the doc lists fields {sorted(doc_fields)}, its type has {sorted(code)}")
    return problems


def check_event_topics(text: str) -> list[str]:
    """The ### `topic` sections of ## Events are protocol.EVENT_TOPICS."""
    documented = list(ticked_sections(section(text, "Events", 2), 3))
    return _diff("event topics", documented, protocol.EVENT_TOPICS, "protocol.EVENT_TOPICS")


def doc_event_fields(text: str) -> dict[str, set[str]]:
    """Topic -> the ``data`` fields its ### section lists.

    Read from the forms the page uses: "`data` is exactly the [`op`] result"
    (that op's result table); the job's fields in parentheses and "plus
    `event`"; tables of ``event`` or ``action`` values with the fields each
    adds (the column's own name is a field too), or of ``fields``; and an
    inline object, "`data` is `{"name": ...}`".
    """
    ops = ticked_sections(section(text, "Ops", 2), 3)
    found = {}
    for topic, body in ticked_sections(section(text, "Events", 2), 3).items():
        names: set[str] = set()
        same = re.search(r"`data` is exactly the\s+\[`([^`]+)`\]", body)
        result = table(ops.get(same.group(1), ""), "field") if same else None
        if result is not None:
            names |= set(result.first_column())
        first = body.strip().split("\n\n")[0]
        for group in re.findall(r"\(([^()]*)\)", first) if "`data` has" in first else []:
            names |= set(TICKED_RE.findall(group))
        names |= set(re.findall(r"plus `(\w+)`", first))
        for t in tables(body):
            if t.header[0] in ("event", "action"):
                extra = [re.sub(r"\([^()]*\)", "", row[1]) for row in t.rows]  # what is in brackets explains
                names |= {t.header[0]} | {n for cell in extra for n in TICKED_RE.findall(cell)}
            elif t.header[0] == "fields":
                names |= {n.split(":")[0] for row in t.rows for n in TICKED_RE.findall(row[0])}
        inline = re.search(r"`data` is\s+`(\{.*?\})`", body, re.S)
        if inline:
            names |= set(re.findall(r'"(\w+)":', inline.group(1)))
        found[topic] = names
    return found


def check_event_fields(text: str) -> list[str]:
    """Every topic has an event type in ipc/messages.py, whose fields are those the doc lists for it."""
    problems = _diff("event topics", list(ticked_sections(section(text, "Events", 2), 3)), messages.EVENTS, "EVENTS")
    for topic, names in doc_event_fields(text).items():
        if topic in messages.EVENTS:
            kind = messages.EVENTS[topic]
            problems += _diff(f"fields of the {topic} event", list(names), code_fields(kind), kind.__name__)
    return problems


def doc_results(text: str) -> dict[str, tuple[list[str], dict[str, list[str]]]]:
    """Op -> the fields its Result paragraph lists, and the fields of each object it names (``voice``).

    Read from the forms the page uses: an inline object (": `{"voices": [voice, ...], ...}`"),
    "with the fields of `status`" (that op's table), "the new voice object", or a table
    of fields (a dotted row is a field of an object-valued field). An object is the
    table after "A *voice object* is".
    """
    ops = ticked_sections(section(text, "Ops", 2), 3)
    objects = {}
    for body in ops.values():
        for name, rest in re.findall(r"A \*(\w+)\s+object\*(.*)", body, re.S):
            objects[name] = table(rest, "field").first_column()  # type: ignore[union-attr]
    found = {}
    for op, body in ops.items():
        result = body.split("\nResult", 1)[-1].split("**Errors", 1)[0]
        inline = re.match(r":\s+`([^`]*)`", result)
        named = re.match(r":\s+the [\w ]*?(\w+) object", result)
        if inline:
            names = re.findall(r'"(\w+)":', inline.group(1))
            nested = {f: objects.get(o, []) for f, o in re.findall(r'"(\w+)": \[(\w+), \.\.\.\]', inline.group(1))}
        elif named:
            names, nested = objects.get(named.group(1), []), {}
        else:
            rows = table(result, "field")
            names, nested = [n for n in (rows.first_column() if rows else []) if "." not in n], {}
        if "with the fields of `status`" in result:
            names += [n for n in table(ops["status"], "field").first_column() if "." not in n]  # type: ignore[union-attr]
        found[op] = (names, nested)
    return found


def check_result_fields(text: str) -> list[str]:
    """The ops whose result has a type (``messages.RESULTS``): its fields, and those of the objects it holds."""
    problems = []
    documented = doc_results(text)
    for op, kind in messages.RESULTS.items():
        names, nested = documented.get(op, ([], {}))
        problems += _diff(f"fields of {op}'s result", names, code_fields(kind), kind.__name__)
        for name, spec in code_fields(kind).items():
            if spec.nested is not None:
                inner = spec.nested.__name__
                problems += _diff(f"fields of {op}'s {name}", nested.get(name, []), code_fields(spec.nested), inner)
    return problems


def check_result_examples(text: str) -> list[str]:
    """Every example result of a typed op reads as its type and writes back unchanged: no field lost, none added."""
    problems, ops = [], {}
    for body in examples(text, "request"):
        header = json.loads(body)
        check = header["op"] == "voices.add" and header.get("args", {}).get("check")
        ops[header["id"]] = messages.ClipChecked if check else messages.RESULTS.get(header["op"])
    for body in examples(text, "reply"):
        header = json.loads(body)
        kind = ops.get(header.get("id"))
        if header.get("kind") != "result" or kind is None:
            continue
        try:
            written = kind.from_data(header["result"]).to_data()
        except protocol.ProtocolError as exc:
            problems.append(f"result example {body[:70]!r} does not read as {kind.__name__}: {exc}")
            continue
        if written != header["result"]:
            problems.append(f"result example {body[:70]!r} writes back as {written}")
    return problems


def check_error_codes(text: str) -> list[str]:
    """The tables of ## Error codes list exactly protocol.ERROR_CODES."""
    documented = [code for t in tables(section(text, "Error codes", 2)) for code in t.first_column()]
    return _diff("error codes", documented, protocol.ERROR_CODES, "protocol.ERROR_CODES")


def check_op_errors(text: str) -> list[str]:
    """Every op has an **Errors** paragraph, and every code it lists exists."""
    problems = []
    for op, body in ticked_sections(section(text, "Ops", 2), 3).items():
        codes = error_bullets(body)
        if codes is None:
            problems.append(f"op {op} has no **Errors** paragraph")
            continue
        unknown = sorted(set(codes) - set(protocol.ERROR_CODES))
        if unknown:
            problems.append(f"op {op} lists error codes that do not exist: {unknown}")
    return problems


def check_request_examples(text: str) -> list[str]:
    """Every request example reads as its op's type, options included, as the daemon reads it; every op has one."""
    problems = []
    seen = set()
    blocks = examples(text, "request")
    if not blocks:
        return ["the doc has no <!-- request --> examples"]
    for body in blocks:
        try:
            request = messages.Request.from_header(json.loads(body))
            seen.add(request.op)
            if isinstance(request, (messages.Synthesize, messages.Speak)):
                messages.SpeechOptions.from_data(request.options)
        except (ValueError, protocol.ProtocolError) as exc:
            problems.append(f"request example {body[:80]!r}: {exc}")
    missing = sorted(set(protocol.OPS) - seen)
    if missing:
        problems.append(f"ops without a request example: {missing}")
    return problems


def check_reply_examples(text: str) -> list[str]:
    """Every reply example is a well-formed reply of a known kind with that kind's fields."""
    problems = []
    kinds = table(section(text, "Replies", 2), "kind")
    needed = {TICKED_RE.findall(r[0])[0]: set(TICKED_RE.findall(r[2])) for r in kinds.rows} if kinds else {}
    for body in examples(text, "reply"):
        try:
            header = json.loads(body)
        except ValueError as exc:
            problems.append(f"reply example {body[:60]!r} is not JSON: {exc}")
            continue
        kind = header.get("kind")
        where = f"reply example {body[:60]!r}"
        if header.get("v") != protocol.PROTOCOL_VERSION:
            problems.append(f"{where}: v is {header.get('v')!r}")
        if not isinstance(header.get("id"), str) or not 0 < len(header["id"]) <= 128:
            problems.append(f"{where}: bad id")
        if kind not in protocol.REPLY_KINDS:
            problems.append(f"{where}: unknown kind {kind!r}")
            continue
        if needed.get(kind, set()) - set(header):
            problems.append(f"{where}: lacks {sorted(needed[kind] - set(header))}")
        if kind == "error" and header.get("error", {}).get("code") not in protocol.ERROR_CODES:
            problems.append(f"{where}: unknown error code")
        result = header.get("result") if kind == "result" else None
        if isinstance(result, dict) and "ops" in result and result["ops"] != sorted(protocol.OPS):
            problems.append(f"{where}: hello's ops are not sorted(protocol.OPS)")
        if isinstance(result, dict) and "protocol" in result and result["protocol"] != protocol.PROTOCOL_VERSION:
            problems.append(f"{where}: hello's protocol is {result['protocol']!r}")
    return problems


def check_event_examples(text: str) -> list[str]:
    """Every event example is a well-formed event of a known topic."""
    problems = []
    for body in examples(text, "event"):
        try:
            header = json.loads(body)
        except ValueError as exc:
            problems.append(f"event example {body[:60]!r} is not JSON: {exc}")
            continue
        if header.get("v") != protocol.PROTOCOL_VERSION or header.get("event") not in protocol.EVENT_TOPICS:
            problems.append(f"event example {body[:60]!r}: bad v or unknown topic")
        if not isinstance(header.get("seq"), int) or header["seq"] < 1 or not isinstance(header.get("data"), dict):
            problems.append(f"event example {body[:60]!r}: bad seq or data")
        try:
            event = messages.Event.from_header(header)
        except protocol.ProtocolError as exc:
            problems.append(f"event example {body[:60]!r} does not read as its type: {exc}")
        else:  # and it writes back as it was: no field lost, none added
            if event.to_data() != header["data"]:
                problems.append(f"event example {body[:60]!r} writes back as {event.to_data()}")
    return problems


def check_connection_file(text: str) -> list[str]:
    """The connection file's fields table and example match endpoints.ConnectionInfo."""
    body = section(text, "The connection file", 3)
    found = table(body, "field")
    names = [f.name for f in fields(endpoints.ConnectionInfo)]
    problems = _diff("connection file fields", found.first_column() if found else [], names, "ConnectionInfo")
    for example in examples(text, "connection"):
        data = json.loads(example)
        problems += _diff("connection example keys", list(data), names, "ConnectionInfo")
        if data.get("protocol") != protocol.PROTOCOL_VERSION:
            problems.append(f"the connection example says protocol {data.get('protocol')!r}")
        if not re.fullmatch(r"[0-9a-f]{64}", str(data.get("key"))):
            problems.append("the connection example's key is not 64 lowercase hex digits")
    return problems


def _signature_example(body: str) -> dict[str, str]:
    fields_: dict[str, str] = {}
    current = None
    for line in body.splitlines():
        match = re.match(r"^(key|frame \d+(?: \(hex\))?|mac input \(hex\)|signature):\s*(.*)$", line)
        if match:
            current = match.group(1)
            fields_[current] = match.group(2)
        elif line.startswith(" ") and current is not None:
            fields_[current] += line.strip()
    return fields_


def check_signature_examples(text: str) -> list[str]:
    """Each worked example reproduces: MAC input, signature, and the code's own encoding of the frames."""
    problems = []
    blocks = examples(text, "signature-example")
    if not blocks:
        return ["the doc has no <!-- signature-example --> blocks"]
    for body in blocks:
        ex = _signature_example(body)
        frames = []
        for n in range(1, 100):
            if f"frame {n}" in ex:
                frames.append(ex[f"frame {n}"].encode("utf-8"))
            elif f"frame {n} (hex)" in ex:
                frames.append(bytes.fromhex(ex[f"frame {n} (hex)"]))
            else:
                break
        key = ex.get("key", "").encode("ascii")
        if not frames or not key:
            problems.append(f"signature example without key or frames: {body[:60]!r}")
            continue
        mac_input = b"".join(struct.pack(">Q", len(f)) + f for f in frames)
        if ex.get("mac input (hex)") != mac_input.hex():
            problems.append(f"signature example {body[:60]!r}: the MAC input should be {mac_input.hex()}")
        signature = protocol.sign(key, frames)
        if ex.get("signature", "").encode("ascii") != signature:
            problems.append(f"signature example {body[:60]!r}: the signature should be {signature.decode()}")
        encoded = protocol.encode(key, json.loads(frames[0]), frames[1:])
        if encoded != [signature, *frames]:
            problems.append(f"signature example {body[:60]!r}: the code would send {encoded}")
        protocol.decode(key, encoded)  # and accept it
    return problems


def check_limits(text: str) -> list[str]:
    """The byte limits the doc names are the code's."""
    problems = []
    for name in ("MAX_HEADER_BYTES", "MAX_FRAME_BYTES"):
        shown = re.findall(rf"(\d+) bytes \(`{name}`\)", text)
        if [int(s) for s in shown] != [getattr(protocol, name)]:
            problems.append(f"the doc gives {name} as {shown}, the code {getattr(protocol, name)}")
    return problems


def check_settings_table(text: str) -> list[str]:
    """``settings.get``'s table of settings: every setting of the schema, its type, default and reload."""
    from chatterbox_tray.ipc.settings_schema import JSON_TYPES, SETTINGS

    rows = table(ticked_sections(section(text, "Ops", 2), 3)["settings.get"], "setting")
    if rows is None:
        return ["settings.get has no table of settings"]
    doc = {cell[0].strip("`"): cell for cell in rows.rows}
    problems = _diff("settings", list(doc), list(SETTINGS), "ipc/settings_schema.py")
    for name, spec in SETTINGS.items():
        if name not in doc:
            continue
        _, kind, default, _, effect = doc[name][:5]
        if kind != JSON_TYPES[spec.type]:
            problems.append(f"setting {name}: the doc says {kind}, the schema {JSON_TYPES[spec.type]}")
        if json.loads(default.strip("`")) != spec.default:
            problems.append(f"setting {name}: the doc's default is {default}, the schema's {spec.default!r}")
        if (effect == "at `reload`") != (spec.needs_reload and name != "warmup"):
            problems.append(f"setting {name}: the doc says it takes effect {effect!r}")
    return problems


CHECKS = [
    check_version,
    check_ops,
    check_op_arguments,
    check_options,
    check_reply_kinds,
    check_event_topics,
    check_event_fields,
    check_result_fields,
    check_result_examples,
    check_error_codes,
    check_op_errors,
    check_request_examples,
    check_reply_examples,
    check_event_examples,
    check_connection_file,
    check_signature_examples,
    check_limits,
    check_settings_table,
]


# -- the tests ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def doc() -> str:
    """The protocol document's text."""
    return DOC.read_text(encoding="utf-8")


def test_the_code_itself_is_consistent() -> None:
    assert set(code_handlers()) == set(protocol.OPS)
    assert set(protocol.REPLY_KINDS) >= protocol.FINAL_KINDS
    assert set(messages.REPLIES) == set(protocol.REPLY_KINDS)
    assert set(messages.EVENTS) == set(protocol.EVENT_TOPICS)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
def test_doc_agrees_with_code(doc: str, check) -> None:
    assert check(doc) == []


def test_the_parsers_find_what_they_check(doc: str) -> None:
    # Guards against a check that passes because it found nothing to compare.
    assert len(ticked_sections(section(doc, "Ops", 2), 3)) == len(protocol.OPS)
    assert len(examples(doc, "request")) >= len(protocol.OPS)
    assert len(examples(doc, "reply")) >= len(protocol.REPLY_KINDS)
    assert len(examples(doc, "event")) >= len(protocol.EVENT_TOPICS)
    assert len(examples(doc, "signature-example")) >= 2
    assert {op for op, kind in messages.REQUESTS.items() if code_fields(kind)} >= {"voices.add", "synthesize", "cancel"}
    assert len(code_fields(messages.SpeechOptions)) == len(fields(SynthOptions))
    assert all(doc_event_fields(doc).values()) and len(doc_event_fields(doc)) == len(protocol.EVENT_TOPICS)
    assert all(doc_results(doc)[op][0] for op in messages.RESULTS)


#: (what goes wrong, text in the doc, its wrong replacement, the check that must notice)
DRIFTS = [
    ("version", "**protocol version 1**", "**protocol version 2**", check_version),
    ("op renamed", "### `ping`", "### `pong`", check_ops),
    ("op left out of the overview", "| `skip` | one |", "| `skips` | one |", check_ops),
    ("argument type", "| `new_name` | string | required |", "| `new_name` | integer | required |", check_op_arguments),
    ("argument default", "| `clear` | boolean | `false` |", "| `clear` | boolean | `true` |", check_op_arguments),
    ("argument missing", '| `source_name` | string | `""` |', '| `source` | string | `""` |', check_op_arguments),
    (
        "option range",
        "| `temperature` | number | 0.05 to 2.0 |",
        "| `temperature` | number | 0.1 to 2.0 |",
        check_options,
    ),
    ("final kind", "| `progress` | no |", "| `progress` | yes |", check_reply_kinds),
    (
        "reply field",
        "| `accepted` | no | `job`, `position`, `chunks` |",
        "| `accepted` | no | `job`, `chunks` |",
        check_reply_kinds,
    ),
    ("event topic", "### `cache`", "### `caches`", check_event_topics),
    ("event field", "| `renamed` | `old_name`, `voice`", "| `renamed` | `voice`", check_event_fields),
    ("job event field", "| `dropped` | `priority`, `reason` |", "| `dropped` | `priority` |", check_event_fields),
    ("result field of an event", "| `device_latency_ms` | number", "| `device_latency` | number", check_event_fields),
    ("result field", "| `replaced` | array of strings |", "| `displaced` | array of strings |", check_result_fields),
    ("inline result field", '`{"stopped": [job id', '`{"halted": [job id', check_result_fields),
    ("nested object field", "| `hostapi` | string |", "| `host_api` | string |", check_result_fields),
    ("result example", '"result": {"removed": 1}}', '"result": {"removed": 1, "left": 0}}', check_result_examples),
    (
        "event example field",
        '"action": "added", "word": "nginx"',
        '"action": "added", "words": "nginx"',
        check_event_examples,
    ),
    ("error code", "| `no_such_job` |", "| `no_job` |", check_error_codes),
    ("op error", "- `no_such_job`: no queued", "- `no_job`: no queued", check_op_errors),
    ("request example", '"new_name": "Narrator"}}', '"new_name": 7}}', check_request_examples),
    (
        "request version",
        '{"v": 1, "id": "5f2c9a1e-2", "op": "ping"}',
        '{"v": 2, "id": "5f2c9a1e-2", "op": "ping"}',
        check_request_examples,
    ),
    (
        "reply example",
        '"kind": "accepted", "job": "j2", "position": 0,',
        '"kind": "accepted", "job": "j2",',
        check_reply_examples,
    ),
    ("signature", "signature: 6ee7379c", "signature: 7ee7379c", check_signature_examples),
    ("mac input", "00000000000000297b22", "00000000000000287b22", check_signature_examples),
    ("limit", "1048576 bytes (`MAX_HEADER_BYTES`)", "65536 bytes (`MAX_HEADER_BYTES`)", check_limits),
    ("connection field", "| `transport` | string |", "| `transports` | string |", check_connection_file),
    ("setting default", "| integer | `250` |", "| integer | `25` |", check_settings_table),
    ("setting type", "| `volume` | number | `1.0` |", "| `volume` | integer | `1.0` |", check_settings_table),
    ("setting left out", "| `rate` | number | `1.0` |", "| `speed` | number | `1.0` |", check_settings_table),
]


@pytest.mark.parametrize(("old", "new", "check"), [d[1:] for d in DRIFTS], ids=[d[0] for d in DRIFTS])
def test_each_check_notices_a_drifted_doc(doc: str, old: str, new: str, check) -> None:
    assert old in doc, f"the drift test's anchor {old!r} is gone from the doc; pick another"
    assert check(doc.replace(old, new, 1)) != []
