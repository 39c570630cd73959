"""daemon/saytext.py and daemon/rulebook.py: rules, pauses and tags, and spans back in the user's text."""

from __future__ import annotations

import json
import os
import stat
import sys

import pytest

from chatterbox_tray.daemon.rulebook import RuleBook, compile_rule
from chatterbox_tray.daemon.saytext import Prepared, prepare, resolve_tags, silence_samples, tokenizer_tags
from chatterbox_tray.ipc.markup import (
    PAUSE_MAX_S,
    Rule,
    check_rule,
    format_rules_file,
    parse_pause,
    parse_rules_file,
)
from chatterbox_tray.ipc.protocol import ProtocolError

TURBO_TAGS = ["[clear throat]", "[sigh]", "[laugh]", "[chuckle]"]


def compiled(*rules: dict) -> list:
    return [(r, compile_rule(r)) for r in (check_rule(raw) for raw in rules)]


def spoken(text: str, rules: list | None = None, max_chars: int = 300) -> list[tuple[str, str, float | None]]:
    """(model text, original text under the span, pause) for each chunk."""
    prepared = prepare(text, rules or [], max_chars)
    return [(c.text, text[c.start : c.end], c.pause_s) for c in prepared.chunks]


# -- rules ------------------------------------------------------------------------------


def test_a_rule_replaces_whole_words_in_any_case_and_spans_point_at_what_the_user_wrote() -> None:
    rules = compiled({"word": "nginx", "say": "engine x"}, {"word": "SQL", "say": "sequel"})
    assert spoken("Nginx speaks SQL. MySQL stays.", rules) == [
        ("engine x speaks sequel.", "Nginx speaks SQL.", None),
        ("MySQL stays.", "MySQL stays.", None),
    ]


def test_symbols_and_abbreviations_match_where_they_are() -> None:
    rules = compiled({"word": "→", "say": " to "}, {"word": "Dr.", "say": "Doctor"})
    chunks = spoken("Dr. Who went a→b. Done.", rules)
    assert chunks[0][0] == "Doctor Who went a to b."
    assert chunks[0][1] == "Dr. Who went a→b."


def test_a_span_starting_or_ending_inside_a_replacement_covers_all_of_it() -> None:
    # The replacement ends the sentence: its span must still end after the original word.
    rules = compiled({"word": "EOS", "say": "the end. Truly"})
    text = "This is EOS here."
    chunks = prepare(text, rules, 300).chunks
    assert [c.text for c in chunks] == ["This is the end.", "Truly here."]
    assert text[chunks[0].start : chunks[0].end] == "This is EOS"
    assert text[chunks[1].start : chunks[1].end] == "EOS here."


def test_regex_rules_use_groups_and_the_leftmost_longest_match_wins() -> None:
    rules = compiled(
        {"word": r"(\d+)\s?km", "say": r"\1 kilometres", "regex": True},
        {"word": "New", "say": "Knew"},
        {"word": "New York", "say": "the big apple"},
    )
    assert spoken("New York is 12km away.", rules)[0][0] == "the big apple is 12 kilometres away."


def test_case_sensitive_rules_leave_other_cases_alone() -> None:
    rules = compiled({"word": "US", "say": "United States", "case_sensitive": True})
    assert spoken("Tell us about the US.", rules)[0][0] == "Tell us about the United States."


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        ({"word": "(unclosed", "say": "x", "regex": True}, "not a valid regular expression"),
        ({"word": "a*", "say": "x", "regex": True}, "matches empty text"),
        ({"word": "(a)", "say": r"\2", "regex": True}, "does not fit"),
        ({"word": "  ", "say": "x"}, "needs a word"),
        ({"word": "x" * 201, "say": "y"}, "limit is 200"),
        ({"word": "a", "say": "b\nc"}, "line break"),
        ({"word": "a", "say": "b", "extra": 1}, "unknown field"),
        ("nginx", "must be an object"),
    ],
)
def test_a_bad_rule_is_refused_with_a_clear_message(raw: object, says: str) -> None:
    with pytest.raises(ProtocolError) as err:
        check_rule(raw)
    assert err.value.code == "bad_rule"
    assert says in err.value.message


# -- pauses ----------------------------------------------------------------------------------


def test_a_pause_splits_the_sentence_and_never_reaches_the_model() -> None:
    assert spoken("Wait for it [pause 1.5s] now go. Then [PAUSE:500ms]more.") == [
        ("Wait for it", "Wait for it", None),
        ("", "[pause 1.5s]", 1.5),
        ("now go.", "now go.", None),
        ("Then", "Then", None),
        ("", "[PAUSE:500ms]", 0.5),
        ("more.", "more.", None),
    ]


def test_pause_lengths_and_bounds() -> None:
    assert parse_pause("") == 0.5
    assert parse_pause(" 250ms") == 0.25
    assert parse_pause(" 2 s") == 2.0
    assert parse_pause(f" {PAUSE_MAX_S:g}s") == PAUSE_MAX_S
    for bad, says in [(" 11s", "at most 10 s"), (" 300", "needs a unit"), (" soon", "cannot read")]:
        with pytest.raises(ProtocolError) as err:
            parse_pause(bad)
        assert err.value.code == "bad_markup" and says in err.value.message
    with pytest.raises(ProtocolError, match="add up to more than"):
        prepare("a [pause 10s] " * 61, [], 300)


def test_rules_never_touch_markup() -> None:
    rules = compiled({"word": "pause", "say": "stop"}, {"word": "laugh", "say": "giggle"})
    assert [c[0] for c in spoken("A pause [pause 1s] and a laugh [laugh] here.", rules)] == [
        "A stop",
        "",
        "and a giggle [laugh] here.",
    ]


def test_the_silence_makes_the_gap_heard_the_length_asked() -> None:
    assert silence_samples(1.0, 24_000, 1.0, None, first=False) == 24_000  # synthesize: all of it
    assert silence_samples(1.0, 24_000, 1.0, 0.25, first=False) == 12_000  # the speaker adds 2 x 0.25
    assert silence_samples(1.0, 24_000, 1.0, 0.25, first=True) == 18_000
    assert silence_samples(0.1, 24_000, 1.0, 0.25, first=False) == 0
    assert silence_samples(1.0, 24_000, 2.0, None, first=False) == 48_000  # stretched to 1 s at rate 2


# -- tags -----------------------------------------------------------------------------------


def test_a_tag_is_never_cut_in_two() -> None:
    text = "word " * 12 + "[clear throat]" + " more" * 10
    for max_chars in range(50, 80):
        for chunk in prepare(text, [], max_chars).chunks:
            assert chunk.text.count("[") == chunk.text.count("]")


def test_known_tags_stay_unknown_ones_go_with_one_warning() -> None:
    prepared = prepare("Well [Laugh] that is [whisper] funny. [sigh] [whisper]", [], 300)
    turbo = resolve_tags(prepared, TURBO_TAGS, "turbo")
    assert [c.text for c in turbo.chunks] == ["Well [laugh] that is funny.", "[sigh]"]
    assert turbo.warnings == [
        "removed [whisper]: the turbo model does not know that tag (chatterbox-tray tags lists those it knows)"
    ]
    original = resolve_tags(prepared, [], "original")
    assert [c.text for c in original.chunks] == ["Well that is funny.", ""]
    assert original.chunks[1].pause_s == 0.0  # only tags: nothing to say, its place kept
    assert len(original.warnings) == 1 and "[Laugh], [whisper], [sigh]" in original.warnings[0]


def test_tags_are_read_from_the_tokenizer() -> None:
    class HF:
        def get_added_vocab(self) -> dict[str, int]:
            return {"<|endoftext|>": 50256, "[sigh]": 50258, "[clear throat]": 50257, "[START]": 3}

    assert tokenizer_tags(HF()) == ["[clear throat]", "[sigh]"]
    assert tokenizer_tags(None) == []

    class Grapheme:  # chatterbox's own tokenizers (original, multilingual): added tokens are control only
        class tokenizer:  # the shape of chatterbox's wrapper of tokenizers.Tokenizer
            @staticmethod
            def get_added_tokens_decoder() -> dict:
                return {704: "[fr]", 705: "[en]"}

    assert tokenizer_tags(Grapheme()) == []


# -- the rule book on disk --------------------------------------------------------------------


def test_rules_are_private_survive_a_restart_and_a_bad_one_is_not_saved(tmp_path) -> None:
    book = RuleBook(tmp_path / "words.json")
    book.add({"word": "nginx", "say": "engine x"})
    _, replaced = book.add({"word": "NGINX", "say": "engine ex"})
    assert replaced and [r.say for r in book.list()] == ["engine ex"]
    with pytest.raises(ProtocolError):
        book.add({"word": "(", "say": "x", "regex": True})
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(tmp_path / "words.json").st_mode) == 0o600
    again = RuleBook(tmp_path / "words.json")
    assert again.list() == [Rule("NGINX", "engine ex")]
    again.add({"word": "SQL", "say": "sequel"}, old_word="nginx")  # an edit keeps its place
    assert [r.word for r in again.list()] == ["SQL"]
    assert again.remove("sql").word == "SQL"
    with pytest.raises(ProtocolError) as err:
        again.remove("sql")
    assert err.value.code == "no_such_rule"


def test_an_import_is_all_or_nothing(tmp_path) -> None:
    book = RuleBook(tmp_path / "words.json")
    book.add({"word": "a1", "say": "x"})
    with pytest.raises(ProtocolError, match="rule 2"):
        book.replace_all([{"word": "b", "say": "y"}, {"word": "[", "say": "z", "regex": True}], merge=True)
    assert [r.word for r in book.list()] == ["a1"]
    assert book.replace_all([{"word": "b", "say": "y"}], merge=False) == {
        "added": 1,
        "replaced": 0,
        "removed": 1,
        "count": 1,
    }


def test_an_unreadable_file_is_moved_aside(tmp_path) -> None:
    (tmp_path / "words.json").write_text("{not json", encoding="utf-8")
    assert RuleBook(tmp_path / "words.json").list() == []
    assert [p.name.startswith("words.json.corrupt-") for p in tmp_path.iterdir()] == [True]


def test_a_file_with_one_unusable_rule_keeps_the_others_and_a_copy_of_itself(tmp_path) -> None:
    """A hand-edited words.json with one broken pattern: the other rules still apply, and nothing is lost."""
    original = json.dumps(
        {
            "rules": [
                {"word": "nginx", "say": "engine x"},
                {"word": "([", "say": "broken", "regex": True},
                {"word": "SQL", "say": "sequel"},
            ]
        }
    )
    (tmp_path / "words.json").write_text(original, encoding="utf-8")
    book = RuleBook(tmp_path / "words.json")
    assert [r.word for r in book.list()] == ["nginx", "SQL"]
    copies = [p for p in tmp_path.iterdir() if p.name.startswith("words.json.corrupt-")]
    assert len(copies) == 1 and copies[0].read_text(encoding="utf-8") == original
    assert copies[0].stat().st_mode & 0o077 == 0  # what a person asks their computer to say is theirs
    assert (tmp_path / "words.json").read_text(encoding="utf-8") == original  # untouched until the next change


def test_the_rules_file_round_trips() -> None:
    rules = [
        {"word": "nginx", "say": "engine x", "regex": False, "case_sensitive": False},
        {"word": r"(\d+)km", "say": r"\1 kilometres", "regex": True, "case_sensitive": True},
    ]
    assert parse_rules_file(format_rules_file(rules)) == rules
    assert parse_rules_file("# comment\nSQL => sequel\n") == [
        {"word": "SQL", "say": "sequel", "regex": False, "case_sensitive": False}
    ]
    assert parse_rules_file(json.dumps({"rules": rules})) == rules
    with pytest.raises(ProtocolError, match="line 2"):
        parse_rules_file("a\tb\nno separator here\n")


def test_prepared_without_tags_resolves_to_itself() -> None:
    prepared = Prepared(prepare("Hello there.", [], 300).chunks)
    assert resolve_tags(prepared, [], "original").chunks == prepared.chunks
