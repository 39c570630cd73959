"""Saying it the way the user wants: pronunciation rules, pause markup and tags, as the protocol knows them.

What the daemon and every client agree on, in the standard library only:

* a pronunciation rule (`Rule`): a word or phrase, or a regular expression,
  and what to say instead; `check_rule` refuses a bad one with a clear
  message, before anything is saved;
* the plain file rules are imported from and exported to (`parse_rules_file`,
  `format_rules_file`): one rule a line, tab-separated;
* the pause markup (``[pause 500ms]``, ``[pause 1.5s]``, ``[pause]``) and its
  bounds (`PAUSE_MAX_S`);
* what a tag looks like (``[laugh]``, ``[clear throat]``): `TAG_RE`. Which
  tags the model knows is read from its tokenizer by the daemon, never listed
  here.

The daemon applies all of it (``daemon/saytext.py``) so every client gets it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .protocol import ProtocolError

#: Most rules a dictionary holds; each is tried against every text spoken.
MAX_RULES = 2000
#: Longest word (or regular expression) and replacement, in characters.
MAX_WORD_CHARS = 200
MAX_SAY_CHARS = 500

#: ``[pause]`` alone; ``[pause 500ms]``, ``[pause 1.5s]``, ``[pause:2s]`` give the length.
PAUSE_DEFAULT_S = 0.5
#: The longest one pause may be, and all of a text's pauses together.
PAUSE_MAX_S = 10.0
PAUSE_TOTAL_MAX_S = 600.0
#: Anything that starts like a pause is one: a malformed one is refused, never spoken.
PAUSE_RE = re.compile(r"\[\s*pause\b(?P<arg>[^\[\]]{0,40})\]", re.IGNORECASE)
_PAUSE_ARG_RE = re.compile(r"^[\s:=]*(?:(?P<num>\d+(?:\.\d+)?|\.\d+)\s*(?P<unit>ms|s|sec|secs|seconds?)?)?\s*$", re.I)

#: What a paralinguistic or delivery tag looks like: a word or up to three, in brackets
#: (``[laugh]``, ``[clear throat]``). Whether the model knows it is the tokenizer's say.
TAG_RE = re.compile(r"\[(?P<name>[A-Za-z]{2,20}(?: [A-Za-z]{2,20}){0,2})\]")


@dataclass(frozen=True)
class Rule:
    """One pronunciation rule.

    Attributes:
        word: the word or phrase to find (whole words only where it begins
            or ends with a letter or digit), or a regular expression.
        say: what to say instead; with ``regex``, ``\\1`` and ``\\g<name>``
            refer to the expression's groups.
        regex: ``word`` is a Python regular expression.
        case_sensitive: match case exactly (default: any case).
    """

    word: str
    say: str
    regex: bool = False
    case_sensitive: bool = False

    def to_json(self) -> dict[str, Any]:
        """The rule as the protocol and the rules file store it."""
        return {"word": self.word, "say": self.say, "regex": self.regex, "case_sensitive": self.case_sensitive}

    @property
    def key(self) -> str:
        """What makes two rules the same rule: the word, in any case unless that matters."""
        return self.word if self.regex or self.case_sensitive else self.word.casefold()

    def pattern(self) -> re.Pattern[str]:
        """The compiled pattern that finds what this rule replaces."""
        flags = 0 if self.case_sensitive else re.IGNORECASE
        if self.regex:
            return re.compile(self.word, flags)
        body = re.escape(self.word)
        # Whole words: "SQL" is not found inside "MySQL"; "→" or "Dr." end where they end.
        if re.match(r"\w", self.word[0]):
            body = r"(?<!\w)" + body
        if re.match(r"\w", self.word[-1]):
            body += r"(?!\w)"
        return re.compile(body, flags)


def _bad(message: str) -> ProtocolError:
    return ProtocolError("bad_rule", message)


def check_rule(raw: Any) -> Rule:
    """A rule from its JSON form, checked: raises ProtocolError ``bad_rule`` saying what is wrong.

    The word must be non-empty and at most `MAX_WORD_CHARS`; the replacement
    at most `MAX_SAY_CHARS` (it may be empty: the word is then skipped). A
    regular expression must compile, must not match empty text (it would
    match everywhere), and its replacement may name only groups it has.
    """
    if not isinstance(raw, dict):
        raise _bad("a rule must be an object with 'word' and 'say'")
    unknown = sorted(set(raw) - {"word", "say", "regex", "case_sensitive"})
    if unknown:
        raise _bad(f"unknown field(s) in a rule: {', '.join(unknown)}")
    word, say = raw.get("word"), raw.get("say", "")
    regex, case = raw.get("regex", False), raw.get("case_sensitive", False)
    if not isinstance(word, str) or not word.strip():
        raise _bad("a rule needs a word to find ('word', a non-empty string)")
    if not isinstance(say, str):
        raise _bad(f"what to say for {word!r} must be a string")
    if not isinstance(regex, bool) or not isinstance(case, bool):
        raise _bad(f"'regex' and 'case_sensitive' of {word!r} must be true or false")
    if not regex:
        word = word.strip()
    if len(word) > MAX_WORD_CHARS:
        raise _bad(f"the word is {len(word)} characters long; the limit is {MAX_WORD_CHARS}")
    if len(say) > MAX_SAY_CHARS:
        raise _bad(f"what to say for {word[:40]!r} is {len(say)} characters long; the limit is {MAX_SAY_CHARS}")
    if any(ch in word + say for ch in "\x00\r\n"):
        raise _bad(f"a rule for {word[:40]!r} holds a line break or NUL; a rule is one line")
    rule = Rule(word, say, regex, case)
    if regex:
        try:
            pattern = rule.pattern()
        except re.error as exc:
            raise _bad(f"{word!r} is not a valid regular expression: {exc}") from None
        except (RecursionError, OverflowError):
            raise _bad(f"{word[:40]!r} is too complex a regular expression") from None
        if pattern.fullmatch(""):
            raise _bad(f"the regular expression {word!r} matches empty text; it must match at least one character")
        try:
            pattern.sub(say, "")  # parses the replacement's group references
        except (re.error, IndexError) as exc:
            raise _bad(f"the replacement {say!r} does not fit {word!r}: {exc}") from None
    return rule


def parse_pause(arg: str) -> float:
    """The seconds a pause markup's argument (the text after ``pause``) stands for.

    Raises ProtocolError ``bad_markup`` for a length without a unit, an
    unreadable one, or one over `PAUSE_MAX_S`.
    """
    match = _PAUSE_ARG_RE.match(arg)
    if match is None:
        raise ProtocolError(
            "bad_markup", f"cannot read the pause [pause{arg}]: write [pause 500ms], [pause 1.5s] or [pause]"
        )
    if match["num"] is None:
        return PAUSE_DEFAULT_S
    if match["unit"] is None:
        raise ProtocolError("bad_markup", f"the pause [pause{arg}] needs a unit: [pause {match['num']}ms] or s")
    value = float(match["num"])
    seconds = value / 1000 if match["unit"].lower() == "ms" else value
    if seconds > PAUSE_MAX_S:
        raise ProtocolError(
            "bad_markup", f"the pause [pause{arg}] is {seconds:g} s long; a pause may last at most {PAUSE_MAX_S:g} s"
        )
    return seconds


# -- the rules file ----------------------------------------------------------------------

_FILE_HEADER = """\
# Chatterbox Tray pronunciation rules: one a line,
#   word<TAB>what to say[<TAB>options]
# options (comma-separated): regex, match-case. Lines starting with # are comments.
"""


#: A rules file's options, and the rule field each one sets.
_OPTIONS = {"regex": "regex", "match-case": "case_sensitive"}


def format_rules_file(rules: list[dict[str, Any]]) -> str:
    """The plain text file of ``rules`` (their JSON form), as `parse_rules_file` reads it."""
    lines = [_FILE_HEADER.rstrip("\n")]
    for raw in rules:
        options = [name for name, key in _OPTIONS.items() if raw.get(key)]
        fields = [raw["word"], raw.get("say", "")] + ([",".join(options)] if options else [])
        lines.append("\t".join(fields))
    return "\n".join(lines) + "\n"


def parse_rules_file(text: str) -> list[dict[str, Any]]:
    """Rules (JSON form, unchecked) from a rules file; raises ProtocolError ``bad_rule`` naming the line.

    A line is ``word<TAB>say`` with an optional third field of options; a
    line without a tab may use `` => `` instead (easier to type). A JSON
    list of rule objects (an export of ``words.list``'s ``rules``) is read too.
    """
    text = text.lstrip("\ufeff")
    if text.strip().startswith(("[", "{")):
        import json

        try:
            data = json.loads(text.strip())
        except ValueError as exc:
            raise _bad(f"the file looks like JSON but cannot be read: {exc}") from None
        rules = data.get("rules") if isinstance(data, dict) else data
        if not isinstance(rules, list):
            raise _bad("a JSON rules file holds a list of rules (or an object with 'rules')")
        return rules
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if "\t" in line:
            fields = line.split("\t")
        elif " => " in line:
            word, _, rest = line.partition(" => ")
            fields = [word, *rest.split("\t")]
        else:
            raise _bad(f"line {number}: separate the word and what to say with a tab (or ' => '): {line[:60]!r}")
        if len(fields) > 3:
            raise _bad(f"line {number}: too many tab-separated fields ({len(fields)}; at most 3)")
        options = {o.strip().lower() for o in (fields[2] if len(fields) > 2 else "").split(",") if o.strip()}
        unknown = sorted(options - set(_OPTIONS))
        if unknown:
            raise _bad(f"line {number}: unknown option(s) {', '.join(unknown)} (known: {', '.join(_OPTIONS)})")
        word = fields[0] if "regex" in options else fields[0].strip()
        rules.append({"word": word, "say": fields[1].strip(), **{key: o in options for o, key in _OPTIONS.items()}})
    return rules
