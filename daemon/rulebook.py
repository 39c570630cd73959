"""The user's pronunciation dictionary: rules the daemon applies to every text before speaking it.

Kept in ``<data_dir>/words.json`` beside the voice library, readable by the
user only (0600: what a person asks their computer to say is theirs), and
replaced atomically (`ipc.atomic`) at every change, so a crash leaves the old
list or the new one. A file that cannot be read at start-up is moved aside
(kept for the user, as the voice library does) and the dictionary starts
empty. Rules are checked (`ipc.markup.check_rule`) before anything is saved,
so a bad regular expression is refused, never stored.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..ipc.atomic import OWNER_ONLY, write_atomic
from ..ipc.markup import MAX_RULES, Rule, check_rule
from ..ipc.protocol import ProtocolError
from .storage import disk_full_as_error, remove_temp_files_of

__all__ = ["RuleBook"]

log = logging.getLogger(__name__)

FILE_VERSION = 1


class RuleBook:
    """The rules, in the order the user made them, and their compiled patterns (thread-safe)."""

    def __init__(self, path: Path) -> None:
        """Open ``path`` (``words.json``); a missing file is an empty dictionary."""
        self.path = Path(path)
        self._lock = threading.Lock()
        self._rules: list[Rule] = []
        self._compiled: list[tuple[Rule, re.Pattern[str]]] = []
        remove_temp_files_of(self.path)
        self._load()

    # -- queries -------------------------------------------------------------------

    def list(self) -> list[Rule]:
        """Every rule, in order."""
        with self._lock:
            return list(self._rules)

    def compiled(self) -> list[tuple[Rule, re.Pattern[str]]]:
        """Every rule with its pattern (what ``saytext`` applies)."""
        with self._lock:
            return list(self._compiled)

    # -- changes -------------------------------------------------------------------

    def add(self, raw: Any, old_word: str | None = None) -> tuple[Rule, bool]:
        """Add a rule, or replace the one with the same word; return it and whether it replaced one.

        ``old_word``: edit that rule instead (the word itself may change); it
        keeps its place in the list. Raises ProtocolError ``bad_rule`` (saved
        nothing) or ``no_such_rule``.
        """
        rule = check_rule(raw)
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
                new.append(check_rule(raw))
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
        self._compiled = [(r, r.pattern()) for r in rules]

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
            rules = [check_rule(raw) for raw in raws]
        except (ValueError, KeyError, TypeError, ProtocolError) as exc:
            stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
            log.error("the pronunciation rules in %s cannot be read (%s); moved aside to %s", self.path, exc, aside)
            try:
                os.replace(self.path, aside)
            except OSError as move:
                log.error("could not move %s aside: %s", self.path, move)
            return
        self._rules = rules
        self._compiled = [(r, r.pattern()) for r in rules]
