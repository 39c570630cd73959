"""A user's regular expression cannot hold the daemon: rules run with a time limit, and slow ones are refused.

daemon/saytext.py (`RuleClock`, `RULES_TIME_LIMIT_S`) and daemon/rulebook.py
(`probe_rule`). With ``re`` (before), ``(a+)+$`` on a long run of "a"s then
"b" backtracks for longer than the universe has left, on the daemon's main loop.
"""

from __future__ import annotations

import json
import time

import pytest

from chatterbox_tray.daemon import saytext
from chatterbox_tray.daemon.rulebook import PROBE_TOTAL_S, RuleBook, compile_rule
from chatterbox_tray.daemon.saytext import RuleClock, apply_rules, prepare
from chatterbox_tray.ipc.markup import check_rule
from chatterbox_tray.ipc.protocol import ProtocolError

#: Catastrophic backtracking, in the shapes people write by accident (cubic or worse with
#: regex: (\w|\d)+$, exponential with re, is only quadratic with regex, so it is fair here).
CATASTROPHIC = [r"(a+)+$", r"(\w+\s?)+$", r"(x+x+)+y", r"(a|aa)+$", r"(\d+)+x", r"(a+)+!"]
#: Fair expressions (some quadratic on a long run, as many are): never refused.
FAIR = [
    r"\b(\d+)\s*km\b",
    r"(\w+)\s+\1",
    r"\bDr\.",
    r"[A-Z]{2,}",
    r"(?i)colou?r",
    r"\$(\d+)(?:\.(\d\d))?",
    r"\b(\w+)ing\b",
    r"(?:https?://)?(?:www\.)?(\w+)\.com",
    r"(\d{1,3})(?:,(\d{3}))+",
    r"[\u2190-\u21ff]",
    r"(\d+(?:\.\d+)?)\s*(kg|km|mph|GHz|MB)\b",
    r"(\w|\d)+$",
]
#: What a stopped rule may overrun its limit by here: the runs below take years unstopped, and a
#: machine busy with other test workers once needed more than the 0.3-0.5 s this allowed before.
SLACK_S = 3.0


def regex_rule(word: str, say: str = "x") -> list:
    rule = check_rule({"word": word, "say": say, "regex": True})
    return [(rule, compile_rule(rule))]


def test_a_catastrophic_rule_is_stopped_within_the_limit_and_the_job_refused_naming_it(monkeypatch) -> None:
    monkeypatch.setattr(saytext, "RULES_TIME_LIMIT_S", 0.3)
    rules = regex_rule(r"(a+)+$")
    began = time.monotonic()
    with pytest.raises(ProtocolError) as err:
        prepare("Hello. " + "a" * 5000 + "b", rules, 300)
    # Unlimited, it would run for years; the slack is for a loaded machine (other test workers).
    assert time.monotonic() - began < 0.3 + SLACK_S
    assert err.value.code == "bad_rule"
    message = err.value.message
    assert "'(a+)+$' took more than 0.3 s" in message and "not spoken" in message
    assert "chatterbox-tray words remove '(a+)+$'" in message


def test_the_limit_is_for_the_whole_text_not_each_run_between_markups(monkeypatch) -> None:
    monkeypatch.setattr(saytext, "RULES_TIME_LIMIT_S", 0.3)
    run = "a" * 600 + "b"  # each run takes a while; ten of them, more than the limit
    text = " [pause 100ms] ".join([run] * 10)
    began = time.monotonic()
    with pytest.raises(ProtocolError):
        prepare(text, regex_rule(r"(a+)+$"), 300)
    assert time.monotonic() - began < 0.3 + SLACK_S


def test_the_rule_named_is_the_one_that_used_the_time_not_the_last_one_running() -> None:
    slow = regex_rule(r"(a+)+$")[0]
    fair = regex_rule(r"\bhello\b", "hi")[0]
    rules = [slow, fair]
    text = "hello " + "a" * 400 + "b" + " hello" * 50
    clock = RuleClock(rules, limit_s=0.05)
    with pytest.raises(ProtocolError) as err:
        apply_rules(text, rules, clock=clock)
    assert "'(a+)+$'" in err.value.message
    clock = RuleClock(rules, limit_s=10)
    clock.used[0] = 5.0  # the slow rule used the time; it runs out as the fair one is searched
    clock.deadline = time.monotonic()
    with pytest.raises(ProtocolError) as err:
        clock.search(1, text, 0, len(text))
    assert "'(a+)+$'" in err.value.message and "\\bhello" not in err.value.message


def test_fair_rules_on_a_long_text_finish_far_inside_the_limit() -> None:
    rules = [
        (r, compile_rule(r)) for r in map(check_rule, [{"word": f"word{i}", "say": f"W {i}"} for i in range(2000)])
    ]
    rules += regex_rule(r"\b(\d+)\s*km\b", r"\1 kilometres")
    text = " ".join(f"word{i % 2500} went 5 km." for i in range(8000))[:100_000]
    began = time.monotonic()
    chunks = prepare(text, rules, 300).chunks
    assert time.monotonic() - began < saytext.RULES_TIME_LIMIT_S
    assert chunks[0].text.startswith("W 0 went 5 kilometres.")


@pytest.mark.parametrize("word", CATASTROPHIC)
def test_adding_a_catastrophic_expression_is_refused_and_nothing_is_saved(tmp_path, word: str) -> None:
    book = RuleBook(tmp_path / "words.json")
    book.add({"word": "nginx", "say": "engine x"})
    before = (tmp_path / "words.json").read_bytes()
    began = time.monotonic()
    with pytest.raises(ProtocolError) as err:
        book.add({"word": word, "say": "x", "regex": True})
    assert time.monotonic() - began < PROBE_TOTAL_S + SLACK_S  # it runs on the main loop: bounded too
    assert err.value.code == "bad_rule"
    assert f"{word!r} is too slow" in err.value.message and "it was not saved" in err.value.message
    assert [r.word for r in book.list()] == ["nginx"]
    assert (tmp_path / "words.json").read_bytes() == before
    assert [r.word for r in RuleBook(tmp_path / "words.json").list()] == ["nginx"]


def test_an_import_with_a_catastrophic_expression_changes_nothing(tmp_path) -> None:
    book = RuleBook(tmp_path / "words.json")
    with pytest.raises(ProtocolError) as err:
        book.replace_all([{"word": "SQL", "say": "sequel"}, {"word": "(a|aa)+$", "say": "x", "regex": True}], True)
    assert err.value.message.startswith("rule 2: the regular expression '(a|aa)+$' is too slow")
    assert book.list() == []


@pytest.mark.parametrize("word", FAIR)
def test_fair_expressions_are_accepted(tmp_path, word: str) -> None:
    book = RuleBook(tmp_path / "words.json")
    rule, _ = book.add({"word": word, "say": "x", "regex": True})
    assert rule.word == word


def test_a_slow_rule_already_in_the_file_loads_and_is_stopped_in_time(tmp_path, monkeypatch) -> None:
    """A file from before the probe (or edited by hand) is not refused whole: the time limit holds anyway."""
    monkeypatch.setattr(saytext, "RULES_TIME_LIMIT_S", 0.3)
    path = tmp_path / "words.json"
    rules = [{"word": "nginx", "say": "engine x"}, {"word": "(a+)+$", "say": "x", "regex": True}]
    path.write_text(json.dumps({"version": 1, "rules": rules}), encoding="utf-8")
    book = RuleBook(path)
    assert [r.word for r in book.list()] == ["nginx", "(a+)+$"]
    assert [c.text for c in prepare("Run nginx.", book.compiled(), 300).chunks] == ["Run engine x."]
    with pytest.raises(ProtocolError) as err:
        prepare("Run nginx " + "a" * 3000 + "b.", book.compiled(), 300)
    assert "'(a+)+$' took more than" in err.value.message


def test_rules_keep_their_meaning_under_the_regex_module() -> None:
    """Plain words stay whole words in any case; groups and named groups fill the replacement."""
    rules = [
        (r, compile_rule(r))
        for r in map(
            check_rule,
            [
                {"word": "SQL", "say": "sequel"},
                {"word": r"(?P<n>\d+)\s*km\b", "say": r"\g<n> kilometres", "regex": True},
                {"word": "Dr.", "say": "Doctor", "case_sensitive": True},
            ],
        )
    ]
    text = "Dr. sql runs MySQL 5km; dr. stays."
    found = [(text[a:b], say) for a, b, say in apply_rules(text, rules)]
    assert found == [("Dr.", "Doctor"), ("sql", "sequel"), ("5km", "5 kilometres")]
