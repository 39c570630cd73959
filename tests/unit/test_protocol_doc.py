"""docs/protocol.md and the code agree.

Checked: the protocol version; the ops (against ``protocol.OPS`` and the
handlers registered in ``daemon/handlers.py``) and each op's arguments with
their types and defaults; the ``synthesize`` options and their ranges; the
reply kinds and the fields each carries; the event topics; the error codes and
the codes each op lists; the size limits; the connection file's fields; every
example request (through the code's own validation), reply and event; and the
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
import inspect
import json
import re
import struct
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import pytest

from chatterbox_tray.daemon.engine import SynthOptions
from chatterbox_tray.ipc import endpoints, limits, protocol

DOC = Path(__file__).resolve().parents[2] / "docs" / "protocol.md"

#: ``Args`` method -> the type word the doc uses.
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


@dataclass(frozen=True)
class ArgRead:
    """One ``args.<type>("name", ...)`` call in the daemon: how it reads an argument."""

    name: str
    method: str
    #: What the call passes besides the name: default, lo, hi.
    bound: dict[str, Any]

    @property
    def required(self) -> bool:
        """No default: a missing argument is ``bad_args``."""
        return "default" not in self.bound

    def validate(self, args: dict[str, Any]) -> Any:
        """Read the argument from ``args`` with the code's own ``Args``; raises ProtocolError."""
        return getattr(protocol.Args(args), self.method)(self.name, **self.bound)


def _const(node: ast.expr) -> Any:
    """The value of a constant expression (``None``, ``2**31 - 1``, ``{}``, ``OPTION_RANGES["x"][:2]``).

    Names are those of ``ipc/limits.py``, the one home of the numbers both
    sides share; nothing else is in scope, so a handler reading a computed
    value fails here loudly rather than being checked against a guess.
    """
    code = compile(ast.Expression(node), "<daemon/handlers.py>", "eval")
    return eval(code, {"__builtins__": {}}, dict(vars(limits)))  # our own source; only limits' names in scope


def _call_args(node: ast.Call) -> list[Any]:
    """The positional arguments' values, ``*starred`` ones spread."""
    values: list[Any] = []
    for arg in node.args:
        if isinstance(arg, ast.Starred):
            values += list(_const(arg.value))
        else:
            values.append(_const(arg))
    return values


def _daemon_file(name: str) -> Path:
    # find_spec of the package imports only chatterbox_tray, not the daemon.
    spec = importlib.util.find_spec("chatterbox_tray.daemon")
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations))) / name


@functools.cache
def _module(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), str(path))


def _functions(tree: ast.Module) -> dict[str, ast.FunctionDef]:
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


def _arg_reads(func: ast.FunctionDef, receiver: str, functions: dict[str, ast.FunctionDef]) -> list[ArgRead]:
    """Argument reads in ``func`` on ``receiver`` (``req.args``), and in helpers it hands ``req``."""
    reads: list[ArgRead] = []
    for node in ast.walk(func):
        if not isinstance(node, ast.Call):
            continue
        target = node.func
        if isinstance(target, ast.Attribute) and target.attr in TYPE_WORDS and ast.unparse(target.value) == receiver:
            method = target.attr
            sig = inspect.signature(getattr(protocol.Args, method))
            bound = sig.bind(
                None, *_call_args(node), **{k.arg: _const(k.value) for k in node.keywords if k.arg}
            ).arguments
            name = bound.pop("name")
            bound.pop("self")
            reads.append(ArgRead(name, method, dict(bound)))
        elif (
            isinstance(target, ast.Name)
            and target.id in functions
            and target.id != func.name
            and any(isinstance(a, ast.Name) and a.id == "req" for a in node.args)
        ):
            reads += _arg_reads(functions[target.id], receiver, functions)
    return reads


def code_handlers() -> dict[str, list[ArgRead]]:
    """Each op registered with ``@handler("op")`` in daemon/handlers.py, with its argument reads."""
    tree = _module(_daemon_file("handlers.py"))
    functions = _functions(tree)
    found: dict[str, list[ArgRead]] = {}
    for func in functions.values():
        for deco in func.decorator_list:
            if isinstance(deco, ast.Call) and ast.unparse(deco.func) == "handler":
                found[_const(deco.args[0])] = _arg_reads(func, "req.args", functions)
    return found


def code_options() -> tuple[set[str], list[ArgRead]]:
    """The ``synthesize`` options: the names ``_options`` accepts and how it reads each."""
    tree = _module(_daemon_file("handlers.py"))
    func = _functions(tree).get("_options")
    assert func is not None, "daemon/handlers.py has no _options(); update this test to where options are read"
    known = next(
        (
            _const(n.value)
            for n in ast.walk(func)
            if isinstance(n, ast.Assign) and [ast.unparse(t) for t in n.targets] == ["known"]
        ),
        None,
    )
    assert isinstance(known, set), "_options() no longer has a `known = {...}` set of option names"
    return known, _arg_reads(func, "args", {})


def code_reply_fields() -> dict[str, set[str]]:
    """Reply kind -> header fields, from every ``reply(...)``/``reply_header(...)`` call in the daemon and ipc."""
    files = [Path(protocol.__file__), *sorted(_daemon_file("").glob("*.py"))]
    found: dict[str, set[str]] = {}
    for path in files:
        for node in ast.walk(_module(path)):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name not in ("reply", "reply_header"):
                continue
            kinds = [a.value for a in node.args if isinstance(a, ast.Constant) and a.value in protocol.REPLY_KINDS]
            if kinds:
                keys = {k.arg for k in node.keywords if k.arg and k.arg != "buffers"}
                found.setdefault(kinds[0], set()).update(keys)
    return found


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
        + _diff("ops in the overview table", overview.first_column() if overview else [], protocol.OPS, "protocol.OPS")
    )


def _doc_args(op_body: str, first_header: str) -> dict[str, tuple[str, str]]:
    """name -> (type, default or range cell) from an op's argument or option table."""
    found = table(op_body, first_header)
    if found is None:
        return {}
    return {TICKED_RE.findall(row[0])[0]: (row[1], row[2]) for row in found.rows}


def check_op_arguments(text: str) -> list[str]:
    """Each op's argument table has the names, types, required-ness and defaults the handler reads."""
    problems = []
    ops = ticked_sections(section(text, "Ops", 2), 3)
    for op, reads in code_handlers().items():
        if op not in ops:
            continue  # check_ops reports it
        doc = _doc_args(ops[op], "argument")
        code = {r.name: r for r in reads}
        problems += _diff(f"arguments of {op}", list(doc), list(code), "its handler")
        for name in doc.keys() & code.keys():
            kind, default = doc[name]
            read = code[name]
            if kind != TYPE_WORDS[read.method]:
                problems.append(f"{op}.{name}: the doc says {kind}, the code reads {TYPE_WORDS[read.method]}")
            if read.required != (default == "required"):
                problems.append(f"{op}.{name}: the doc says {default!r}, the code has default {read.bound}")
            elif not read.required:
                wanted = read.bound["default"]
                ticked = TICKED_RE.findall(default)
                shown = json.loads(ticked[0]) if ticked else None
                if (wanted is None and default != "none") or (wanted is not None and shown != wanted):
                    problems.append(f"{op}.{name}: the doc's default is {default!r}, the code's {wanted!r}")
    return problems


def check_options(text: str) -> list[str]:
    """The synthesize options table matches SynthOptions and what _options() accepts and enforces."""
    body = ticked_sections(section(text, "Ops", 2), 3).get("synthesize", "")
    doc = _doc_args(body, "option")
    known, reads = code_options()
    problems = _diff("synthesize options", list(doc), known, "_options()")
    problems += _diff("synthesize options", list(doc), [f.name for f in fields(SynthOptions)], "SynthOptions")
    for read in reads:
        if read.name not in doc:
            continue
        kind, cell = doc[read.name]
        if kind != TYPE_WORDS[read.method]:
            problems.append(f"option {read.name}: the doc says {kind}, the code reads {TYPE_WORDS[read.method]}")
        lo, hi = read.bound.get("lo"), read.bound.get("hi")
        if lo is None and hi is None:
            continue
        shown = re.fullmatch(r"(-?[\d.]+) to (-?[\d.]+)", cell)
        if not shown or (float(shown.group(1)), float(shown.group(2))) != (lo, hi):
            problems.append(f"option {read.name}: the doc's range is {cell!r}, the code's {lo} to {hi}")
    return problems


def check_reply_kinds(text: str) -> list[str]:
    """The reply kinds table: the kinds, which are final, and the fields of each."""
    found = table(section(text, "Replies", 2), "kind")
    if found is None:
        return ["## Replies has no table of reply kinds"]
    problems = _diff("reply kinds", found.first_column(), protocol.REPLY_KINDS, "protocol.REPLY_KINDS")
    final = {TICKED_RE.findall(row[0])[0] for row in found.rows if row[1] == "yes"}
    problems += _diff("final reply kinds", list(final), protocol.FINAL_KINDS, "protocol.FINAL_KINDS")
    code = code_reply_fields()
    for row in found.rows:
        kind = TICKED_RE.findall(row[0])[0]
        doc_fields = set(TICKED_RE.findall(row[2]))
        if kind in code and doc_fields != code[kind]:
            problems.append(
                f"reply {kind}: the doc lists fields {sorted(doc_fields)}, the code sends {sorted(code[kind])}"
            )
    return problems


def check_event_topics(text: str) -> list[str]:
    """The ### `topic` sections of ## Events are protocol.EVENT_TOPICS."""
    documented = list(ticked_sections(section(text, "Events", 2), 3))
    return _diff("event topics", documented, protocol.EVENT_TOPICS, "protocol.EVENT_TOPICS")


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
    """Every request example passes check_request and its handler's own argument reads; every op has one."""
    problems = []
    handlers = code_handlers()
    known_options, option_reads = code_options()
    seen = set()
    blocks = examples(text, "request")
    if not blocks:
        return ["the doc has no <!-- request --> examples"]
    for body in blocks:
        try:
            header = json.loads(body)
            _, op, args = protocol.check_request(header)
            seen.add(op)
            for read in handlers.get(op, []):
                read.validate(args)
            if any(read.name == "options" for read in handlers.get(op, [])):  # synthesize, speak
                options = args.get("options") or {}
                if set(options) - known_options:
                    raise protocol.ProtocolError("bad_args", f"unknown options {sorted(set(options) - known_options)}")
                for read in option_reads:
                    read.validate(options)
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
    assert set(code_reply_fields()) == set(protocol.REPLY_KINDS)


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
    assert {op for op, reads in code_handlers().items() if reads} >= {"voices.add", "synthesize", "cancel"}
    assert len(code_options()[1]) == len(fields(SynthOptions))


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
