"""The user's pronunciation dictionary: rules the daemon applies to every text before speaking it.

Kept in ``<data_dir>/words.json`` beside the voice library, readable by the
user only (0600: what a person asks their computer to say is theirs), and
replaced atomically (`ipc.atomic`) at every change, so a crash leaves the old
list or the new one. A file that cannot be read at start-up is moved aside
(kept for the user, as the voice library does) and the dictionary starts
empty; a file with some rules that cannot be used (a hand edit) is copied
aside and the others apply. Rules are checked (`ipc.markup.check_rule`) before anything is saved,
so a bad regular expression is refused, never stored.

Rules are compiled with the third-party ``regex`` module, not ``re``: its
searches take a time limit, which is what lets ``saytext`` stop a user's
regular expression that backtracks without end instead of freezing the
daemon's main loop. A new regular expression is also tried on a few probe
texts (`probe_rule`) and refused if it is catastrophically slow on one.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import regex

from ..ipc.atomic import OWNER_ONLY, write_atomic
from ..ipc.markup import MAX_RULES, Rule, check_rule
from ..ipc.protocol import ProtocolError
from .storage import disk_full_as_error, remove_temp_files_of

log = logging.getLogger(__name__)

FILE_VERSION = 1

#: A probe is a text of about this many characters, then one four times as long. A fair
#: expression's search grows at most with the square of the length (``(\w+)\s+\1`` does
#: on a long run of letters: 16 times as long); catastrophic backtracking grows with the
#: cube or faster (``regex``'s safeguards make ``(a+)+$`` cubic, ``re`` exponential).
PROBE_CHARS = 250
PROBE_GROWTH = 4
#: The longer probe may take this many times the shorter one (16 for a square, 64 for a
#: cube), and never less than the floor below (a scheduler's hiccup is not a verdict).
PROBE_MAX_RATIO = 32
PROBE_FLOOR_S = 0.02
#: The most one probe may take, and all of a rule's probes together. They run on the main
#: loop when a rule is added or imported; a rule whose probes use up the total without
#: showing catastrophic growth is accepted (saytext's time limit holds for it anyway).
PROBE_LIMIT_S = 0.2
PROBE_TOTAL_S = 0.5
#: Pieces a probe is made of besides the expression's own: a letter, a digit, spaces, dots, dashes.
_PROBE_UNITS = ("a", "1", " ", "a ", ".", "-")
_REGEX_SYNTAX = set("()[]{}?*+|^$\\")


def compile_rule(rule: Rule) -> Any:
    """The ``regex`` pattern that finds what ``rule`` replaces (searched with a time limit by ``saytext``).

    A plain word's pattern is `Rule.pattern`'s (whole words, escaped); a
    regular expression is the user's, in ``regex``'s ``re``-compatible
    syntax (V0). Raises ProtocolError ``bad_rule`` for one ``regex`` cannot
    compile.
    """
    flags = regex.V0 | (0 if rule.case_sensitive else regex.IGNORECASE)
    source = rule.word if rule.regex else rule.pattern().pattern
    try:
        return regex.compile(source, flags)
    except (regex.error, RecursionError, OverflowError) as exc:
        raise ProtocolError("bad_rule", f"{rule.word!r} is not a valid regular expression: {exc}") from None


def _probes(source: str) -> list[tuple[str, str]]:
    r"""Pieces whose long runs make a catastrophically backtracking expression show itself: (unit, end).

    A run of one unit (a character or a word of the expression, or a letter,
    digit, space or dot), then a character it may not expect, or nothing, or
    a blocker and then the expression's own characters (so one that needs a
    "!" is not let off early because there is none): ``(a+)+$`` meets
    "aaaa…a!", ``(\w+\s?)+$`` meets "www…w!", ``(a+)+!`` meets "aaaa…a\x00a!".
    """
    words = list(dict.fromkeys(re.findall(r"[^\W_]+", source)))[:6]
    chars = list(dict.fromkeys(ch for ch in source if ch.isprintable() and ch not in _REGEX_SYNTAX))[:10]
    units = list(dict.fromkeys([*words, *chars, *_PROBE_UNITS]))
    return [(unit, end) for unit in units for end in ("!", "", "\x00" + "".join(chars))]


def _timed(pattern: Any, text: str, limit_s: float) -> float | None:
    """Seconds ``pattern`` takes to search ``text``, or None past ``limit_s``."""
    began = time.monotonic()
    try:
        pattern.search(text, timeout=max(limit_s, 0.001))
    except TimeoutError:
        return None
    return time.monotonic() - began


def probe_rule(rule: Rule, pattern: Any) -> None:
    """Refuse (ProtocolError ``bad_rule``) a regular expression that backtracks catastrophically on a probe.

    Each probe is searched at two lengths: refused when the short one takes
    longer than `PROBE_LIMIT_S`, or the long one (`PROBE_GROWTH` times as
    long) more than `PROBE_MAX_RATIO` times the short one. A cheap test, not
    a proof: it catches the usual shapes (a repetition inside a repetition,
    overlapping alternatives) and passes quadratic ones; ``saytext``'s time
    limit on every text is what guarantees the main loop is never held longer.
    """
    if not rule.regex:
        return  # a plain word is searched in linear time
    deadline = time.monotonic() + PROBE_TOTAL_S
    for unit, end in _probes(rule.word):
        reps = max(1, PROBE_CHARS // len(unit))
        short = unit * reps + end
        left = deadline - time.monotonic()
        took = _timed(pattern, short, min(PROBE_LIMIT_S, left))
        if took is None:
            if left < PROBE_LIMIT_S:
                return  # the probes' time is up, not this probe's: nothing proven
            raise _too_slow(rule, short, f"it took more than {PROBE_LIMIT_S * 1000:g} ms")
        long = unit * (reps * PROBE_GROWTH) + end
        allowed = max(took * PROBE_MAX_RATIO, PROBE_FLOOR_S)
        left = deadline - time.monotonic()
        if _timed(pattern, long, min(allowed, PROBE_LIMIT_S, left)) is None:
            if left < min(allowed, PROBE_LIMIT_S):
                return  # the probes' time is up: nothing proven
            if allowed <= PROBE_LIMIT_S:
                growth = f"{PROBE_MAX_RATIO} times as long as on one {PROBE_GROWTH} times shorter"
                raise _too_slow(rule, long, f"it took more than {growth}")
            raise _too_slow(rule, long, f"it took more than {PROBE_LIMIT_S * 1000:g} ms")


def _too_slow(rule: Rule, text: str, why: str) -> ProtocolError:
    shown = text if len(text) <= 12 else f"{text[:4]}…{text[-4:]}"
    return ProtocolError(
        "bad_rule",
        f"the regular expression {rule.word!r} is too slow: on a test text of {len(text)} characters ({shown!r}) "
        f"{why}, so on a longer text it could hold up every job (a repetition inside a repetition, such as (a+)+, "
        "does that); it was not saved",
    )


def _checked(raw: Any) -> Rule:
    """A rule checked (`check_rule`), compiled, and probed if it is a regular expression."""
    rule = check_rule(raw)
    probe_rule(rule, compile_rule(rule))
    return rule


class RuleBook:
    """The rules, in the order the user made them, and their compiled patterns (thread-safe)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` (``words.json``); a missing file is an empty dictionary."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._compiled: list[tuple[Rule, Any]] = []
        remove_temp_files_of(self.path)
        self._load()

    # -- queries -------------------------------------------------------------------

    def list(self) -> list[Rule]:
        """Every rule, in order."""
        with self._lock:
            return list(self._rules)

    def compiled(self) -> list[tuple[Rule, Any]]:
        """Every rule with its ``regex`` pattern (`compile_rule`: what ``saytext`` applies)."""
        with self._lock:
            return list(self._compiled)

    # -- changes -------------------------------------------------------------------

    def add(self, raw: Any, old_word: str | None = None) -> tuple[Rule, bool]:
        """Add a rule, or replace the one with the same word; return it and whether it replaced one.

        ``old_word``: edit that rule instead (the word itself may change); it
        keeps its place in the list. Raises ProtocolError ``bad_rule`` (saved
        nothing) or ``no_such_rule``.
        """
        rule = _checked(raw)
        with self._lock:
            rules = list(self._rules)
            if old_word is not None:
                at = self._index(rules, old_word)
                if at is None:
                    raise ProtocolError("no_such_rule", f"there is no rule for {old_word!r} to edit")
                rules.pop(at)
                same = self._index(rules, rule.key, exact_key=True)
                if same is not None:  # renamed onto another rule's word: that one goes
                    rules.pop(same)
                    at -= 1 if same < at else 0
                rules.insert(at, rule)
                replaced = True
            else:
                same = self._index(rules, rule.key, exact_key=True)
                replaced = same is not None
                if same is not None:
                    rules[same] = rule
                else:
                    if len(rules) >= MAX_RULES:
                        raise ProtocolError("bad_rule", f"the dictionary holds {MAX_RULES} rules, the most it may")
                    rules.append(rule)
            self._save(rules)
        return rule, replaced

    def remove(self, word: str) -> Rule:
        """Remove the rule for ``word`` (as listed; any case for a case-insensitive rule)."""
        with self._lock:
            rules = list(self._rules)
            at = self._index(rules, word)
            if at is None:
                raise ProtocolError("no_such_rule", f"there is no rule for {word!r}")
            rule = rules.pop(at)
            self._save(rules)
        return rule

    def replace_all(self, raws: list[Any], merge: bool) -> dict[str, int]:
        """Import: check every rule first (one bad rule and nothing changes), then add or replace them all.

        ``merge``: keep the rules not named in ``raws``; else they go.
        """
        new: list[Rule] = []
        for number, raw in enumerate(raws, start=1):
            try:
                new.append(_checked(raw))
            except ProtocolError as exc:
                raise ProtocolError("bad_rule", f"rule {number}: {exc.message}") from None
        with self._lock:
            rules = list(self._rules) if merge else []
            added = replaced = 0
            for rule in new:
                same = self._index(rules, rule.key, exact_key=True)
                if same is None:
                    rules.append(rule)
                    added += 1
                else:
                    rules[same] = rule
                    replaced += 1
            if len(rules) > MAX_RULES:
                raise ProtocolError("bad_rule", f"that would make {len(rules)} rules; the most is {MAX_RULES}")
            removed = len({r.key for r in self._rules} - {r.key for r in rules})
            self._save(rules)
        return {"added": added, "replaced": replaced, "removed": removed, "count": len(rules)}

    # -- inside ------------------------------------------------------------------------

    @staticmethod
    def _index(rules: list[Rule], word: str, exact_key: bool = False) -> int | None:
        """Where the rule for ``word`` is.

        ``exact_key``: ``word`` is a rule's `Rule.key` (the rule that a new one
        replaces). Else ``word`` is what a user typed: a rule with exactly that
        word, else a case-insensitive plain rule for it in any case.
        """
        if exact_key:
            return next((i for i, r in enumerate(rules) if r.key == word), None)
        exact = next((i for i, r in enumerate(rules) if r.word == word), None)
        if exact is not None:
            return exact
        folded = word.strip().casefold()
        return next((i for i, r in enumerate(rules) if not (r.regex or r.case_sensitive) and r.key == folded), None)

    def _save(self, rules: list[Rule]) -> None:
        data = {"version": FILE_VERSION, "rules": [r.to_json() for r in rules]}
        text = json.dumps(data, ensure_ascii=False, indent=1) + "\n"
        with disk_full_as_error("the pronunciation rules", self.path.parent):
            self.path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.path, text, mode=OWNER_ONLY, site="words")
        if os.name == "posix":  # a file from before (or restored by the user) becomes private too
            os.chmod(self.path, OWNER_ONLY)
        self._rules = rules
        known = dict(self._compiled)  # only new rules are compiled: a save is not 2000 compilations
        self._compiled = [(r, known.get(r) or compile_rule(r)) for r in rules]

    def _load(self) -> None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return
        except OSError as exc:
            log.error("cannot read the pronunciation rules %s: %s; starting without them", self.path, exc)
            return
        try:
            data = json.loads(text)
            raws = data["rules"] if isinstance(data, dict) else None
            if not isinstance(raws, list):
                raise ValueError("no 'rules' list")
        except (ValueError, KeyError, TypeError) as exc:
            self._set_aside(f"cannot be read ({exc})", move=True)
            return
        # Rule by rule: one bad pattern (a hand edit, a ``regex`` upgrade) must
        # not take the user's other rules away. Not probed: the file was
        # checked when saved, and saytext's time limit holds anyway.
        rules, compiled, bad = [], [], []
        for number, raw in enumerate(raws, start=1):
            try:
                rule = check_rule(raw)
                compiled.append((rule, compile_rule(rule)))
                rules.append(rule)
            except (ValueError, KeyError, TypeError, ProtocolError) as exc:
                bad.append(f"rule {number}: {exc}")
        if bad:
            # The next save rewrites the file without them: the copy keeps them for the user.
            why = f"has rules that cannot be used ({'; '.join(bad)}); the other {len(rules)} apply"
            self._set_aside(why, move=False)
        self._rules = rules
        self._compiled = compiled

    def _set_aside(self, why: str, *, move: bool) -> None:
        """Keep the file as it was under a ``.corrupt-<time>`` name: moved (nothing usable) or copied."""
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        log.error("the pronunciation rules in %s %s; %s to %s", self.path, why, "moved" if move else "copied", aside)
        try:
            if move:
                os.replace(self.path, aside)
            else:
                write_atomic(aside, self.path.read_bytes(), mode=OWNER_ONLY)
        except OSError as exc:
            log.error("could not keep a copy of %s: %s", self.path, exc)
