"""Issue 21 end to end on a real (fake-engine) daemon: pronunciation rules, pause markup and tags.

The fake engine's tone lasts as long as its text (2 tokens a character), so a
rule that lengthens a word lengthens the audio; a pause is silence of the
asked length; a fake Turbo knows a few tags and the original none.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, EventLog, narrated_daemon

SR = 24_000


@pytest.fixture(scope="module")
def words_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    """A fake original-model daemon of its own (its rules are this module's), with a default voice."""
    with narrated_daemon(clips) as proc:
        yield proc


@pytest.fixture
def c(words_daemon: DaemonProcess) -> Iterator[Client]:
    with words_daemon.client(timeout=30) as client:
        yield client
        client.stop(all=True)
        client.call("words.import", {"rules": [], "merge": False})


def test_rules_are_added_listed_removed_and_a_bad_one_is_refused(c: Client, words_daemon: DaemonProcess) -> None:
    with words_daemon.events(("words", "voices")) as stream:
        log = EventLog(stream)
        log.sync(c)
        added = c.call("words.add", {"word": "nginx", "say": "engine x"})
        assert added == {
            "rule": {"word": "nginx", "say": "engine x", "regex": False, "case_sensitive": False},
            "replaced": False,
            "count": 1,
        }
        log.wait_for(lambda t, d: t == "words" and d.get("action") == "added" and d.get("word") == "nginx")
    assert c.call("words.add", {"word": "NGINX", "say": "engine ex"})["replaced"] is True
    with pytest.raises(ProtocolError) as err:
        c.call("words.add", {"word": "(oops", "say": "x", "regex": True})
    assert err.value.code == "bad_rule" and "not a valid regular expression" in err.value.message
    assert [r["word"] for r in c.call("words.list")["rules"]] == ["NGINX"]
    path = words_daemon.home / "data" / "words.json"
    if sys.platform != "win32":
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert c.call("words.remove", {"word": "nginx"})["count"] == 0
    with pytest.raises(ProtocolError) as err:
        c.call("words.remove", {"word": "nginx"})
    assert err.value.code == "no_such_rule"


def test_rules_survive_a_restart(clips: Clips) -> None:
    proc = DaemonProcess().start()
    try:
        with proc.client() as c:
            c.call("words.import", {"rules": [{"word": "SQL", "say": "sequel"}, {"word": "Dr.", "say": "Doctor"}]})
        proc.restart()
        with proc.client() as c:
            assert [r["word"] for r in c.call("words.list")["rules"]] == ["SQL", "Dr."]
    finally:
        proc.cleanup()


def test_a_rule_changes_what_is_said_and_spans_stay_in_the_users_text(c: Client) -> None:
    text = "Run nginx now. Then stop."
    before = [(ch.text, ch.span, len(ch.samples)) for ch in c.synthesize(text, seed=1)]
    c.call("words.add", {"word": "nginx", "say": "engine x"})
    after = [(ch.text, ch.span, len(ch.samples)) for ch in c.synthesize(text, seed=1)]
    assert [a[0] for a in after] == ["Run engine x now.", "Then stop."]
    assert [a[1] for a in after] == [b[1] for b in before] == [(0, 14), (15, 25)]
    assert after[0][2] > before[0][2]  # "engine x" is longer to say than "nginx"
    assert after[1][2] == before[1][2]
    preview = c.call("text.preview", {"text": text})
    assert preview["chunks"][0] == {"text": "Run engine x now.", "span": [0, 14]}


def test_a_pause_is_silence_of_that_length_and_never_reaches_the_model(c: Client) -> None:
    s = c.synthesize("One two. [pause 1.5s] Three four.", seed=1)
    chunks = list(s)
    assert [(ch.text, ch.span) for ch in chunks] == [("One two.", (0, 8)), ("", (9, 21)), ("Three four.", (22, 33))]
    assert len(chunks[1].samples) == int(1.5 * SR) and not np.any(chunks[1].samples)
    assert s.summary["chunks"] == 3 and s.summary["warnings"] == []


@pytest.mark.parametrize(
    ("text", "says"),
    [("Wait [pause 11s] now.", "at most 10 s"), ("Wait [pause 300] now.", "needs a unit"), ("[pause 1s]", None)],
)
def test_a_bad_pause_or_only_pauses_is_refused_at_once(c: Client, text: str, says: str | None) -> None:
    with pytest.raises(ProtocolError) as err:
        c.speak(text)
    if says is None:
        assert err.value.code == "empty_text"
    else:
        assert err.value.code == "bad_markup" and says in err.value.message


def test_speak_inserts_the_pause_between_the_sentences(c: Client, words_daemon: DaemonProcess) -> None:
    def gap_after_first_sentence(text: str) -> float:
        before = len(words_daemon.played())
        job = c.speak(text, seed=2)["job"]
        assert c.wait(job)["state"] == "finished"
        played = words_daemon.played()[before:]
        loud = np.flatnonzero(np.abs(played) > 1e-3)
        jumps = np.diff(loud)
        return float(jumps.max() / SR)

    plain = gap_after_first_sentence("First one. Second one.")
    paused = gap_after_first_sentence("First one. [pause 2s] Second one.")
    assert plain < 0.6
    assert paused == pytest.approx(2.0, abs=0.1)


def test_the_original_model_removes_tags_and_says_so_once(c: Client) -> None:
    s = c.synthesize("Well [laugh] that is [sigh] funny. [laugh]", seed=1)
    chunks = list(s)
    assert [ch.text for ch in chunks] == ["Well that is funny.", ""]
    assert len(s.summary["warnings"]) == 1
    assert "[laugh], [sigh]" in s.summary["warnings"][0] and "original model has no tags" in s.summary["warnings"][0]
    listed = c.call("tags.list")
    assert listed["tags"] == [] and listed["loaded"] is True and listed["pause"]["max_s"] == 10.0


def test_a_turbo_keeps_its_tags_whole(clips: Clips) -> None:
    proc = DaemonProcess(args=("--engine", "fake", "--variant", "turbo")).start()
    try:
        with proc.client(timeout=30) as c:
            c.voices_add("narrator", data=clips.new())
            tags = c.call("tags.list")["tags"]
            assert "[laugh]" in tags and "[clear throat]" in tags
            long = "word " * 60 + "[clear throat] " + "more " * 10 + "[whisper]."
            s = c.synthesize(long, voice="narrator", seed=1)
            texts = [ch.text for ch in s]
            assert all(t.count("[") == t.count("]") for t in texts)
            assert sum(t.count("[clear throat]") for t in texts) == 1
            assert "[whisper]" not in "".join(texts)
            assert s.summary["warnings"] == [
                "removed [whisper]: the turbo model does not know that tag (chatterbox-tray tags lists those it knows)"
            ]
    finally:
        proc.cleanup()


# -- the command line ------------------------------------------------------------------------


def test_cli_words_round_trip_and_a_bad_rule(words_daemon: DaemonProcess, c: Client, tmp_path) -> None:
    from tests.protocol.test_cli import cli, ok

    assert "added: nginx  ->  engine x" in ok(cli(words_daemon, "words", "add", "nginx", "engine x"))
    ok(cli(words_daemon, "words", "add", "--regex", r"(\d+)km", r"\1 kilometres"))
    bad = cli(words_daemon, "words", "add", "--regex", "(oops", "x")
    assert bad.returncode == 1 and b"not a valid regular expression" in bad.stderr
    listed = ok(cli(words_daemon, "words", "list"))
    assert listed.splitlines() == ["nginx  ->  engine x", r"(\d+)km  ->  \1 kilometres   [regex]"]
    exported = tmp_path / "words.txt"
    ok(cli(words_daemon, "words", "export", str(exported)))
    assert exported.read_text(encoding="utf-8").splitlines()[-1] == "(\\d+)km\t\\1 kilometres\tregex"
    assert "removed: nginx" in ok(cli(words_daemon, "words", "remove", "NGINX"))
    assert "1 new, 1 replaced" in ok(cli(words_daemon, "words", "import", str(exported)))
    assert ok(cli(words_daemon, "words", "try", "Run nginx 5km. [pause 1s] Done.")).splitlines() == [
        "Run engine x 5 kilometres.",
        "[pause 1 s]",
        "Done.",
    ]
    broken = tmp_path / "broken.txt"
    broken.write_text("fine\tok\nno separator\n", encoding="utf-8")
    result = cli(words_daemon, "words", "import", str(broken))
    assert result.returncode == 1 and b"line 2" in result.stderr


def test_cli_say_to_a_file_hears_the_rule_and_the_pause(words_daemon: DaemonProcess, c: Client, tmp_path) -> None:
    from tests.protocol.test_cli import cli, ok

    plain, ruled = tmp_path / "plain.wav", tmp_path / "ruled.wav"
    text = "Run nginx. [pause 1s] Done."
    ok(cli(words_daemon, "say", "--seed", "1", "-o", str(plain), text))
    ok(cli(words_daemon, "words", "add", "nginx", "engine x"))
    ok(cli(words_daemon, "say", "--seed", "1", "-o", str(ruled), text))
    a, _ = sf.read(plain, dtype="float32")
    b, _ = sf.read(ruled, dtype="float32")
    assert len(b) > len(a)  # the rule lengthened what was said
    quiet = np.abs(b) < 1e-3
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], quiet.astype(int), [0]]))))[::2]
    assert runs.max() == pytest.approx(SR, abs=0.02 * SR)  # the pause: one second of silence


def test_cli_tags(words_daemon: DaemonProcess, clips: Clips) -> None:
    from tests.protocol.test_cli import cli, ok

    assert "has no tags" in ok(cli(words_daemon, "tags"))
    turbo = DaemonProcess(args=("--engine", "fake", "--variant", "turbo")).start()
    try:
        out = ok(cli(turbo, "tags"))
        assert "  [laugh]" in out.splitlines() and "[pause 500ms]" in out
    finally:
        turbo.cleanup()


# -- Speech Dispatcher ------------------------------------------------------------------------


def test_speech_dispatcher_hears_the_rule_the_pause_and_the_tag(words_daemon: DaemonProcess, c: Client) -> None:
    """With Speech Dispatcher's symbol pre-processing off (SymbolsPreproc "no", docs/speech-dispatcher.md):
    by default speechd itself makes "[" and "]" spaces before any module sees the text."""
    from tests.protocol.test_speechd import Speechd, needs_speechd

    if needs_speechd.args[0]:
        pytest.skip(needs_speechd.kwargs["reason"])
    sd = Speechd(words_daemon, extra_conf='SymbolsPreproc "no"\n')
    try:
        assert sd.install.returncode == 0, sd.install.stderr
        with words_daemon.events(("job", "voices")) as stream:
            log = EventLog(stream)
            log.sync(c)
            c.call("words.add", {"word": "nginx", "say": "engine x"})
            before = len(words_daemon.played())
            sd.module_say("-w", "Run nginx now. [pause 2s] Done [laugh].")
            queued = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)
            end = log.wait_job(queued["job"], "finished", "cancelled", "failed", timeout=30)
        assert end["event"] == "finished", end
        assert "[pause 2s]" in queued["text"]  # brackets reach the daemon (not made spaces by speechd)
        chunks = [d for t, d in log.seen if t == "job" and d.get("job") == queued["job"] and d["event"] == "chunk"]
        assert len(chunks) == 3
        assert any("original model has no tags" in w for w in end["summary"]["warnings"])
        played = words_daemon.played()[before:]
        loud = np.flatnonzero(np.abs(played) > 1e-3)
        assert np.diff(loud).max() / SR == pytest.approx(2.0, abs=0.1)
        # "engine x now." is 13 characters: the fake engine's 2 tokens a character, 25 a second.
        first = np.split(loud, np.flatnonzero(np.diff(loud) > SR // 10) + 1)[0]
        assert len(first) / SR == pytest.approx(2 * len("Run engine x now.") / 25, abs=0.1)
    finally:
        sd.close()


def test_speech_dispatcher_as_installed_hears_the_rule(words_daemon: DaemonProcess, c: Client) -> None:
    """Speech Dispatcher's defaults: a rule works (plain words); its symbol pre-processing makes brackets spaces."""
    from tests.protocol.test_speechd import Speechd, needs_speechd

    if needs_speechd.args[0]:
        pytest.skip(needs_speechd.kwargs["reason"])
    sd = Speechd(words_daemon)
    try:
        with words_daemon.events(("job", "voices")) as stream:
            log = EventLog(stream)
            log.sync(c)
            c.call("words.add", {"word": "nginx", "say": "engine x"})
            sd.module_say("-w", "Run nginx now.")
            queued = log.wait_for(lambda t, d: t == "job" and d["event"] == "queued", timeout=30)
            end = log.wait_job(queued["job"], "finished", "cancelled", "failed", timeout=30)
        assert end["event"] == "finished", end
        assert end["summary"]["audio_s"] == pytest.approx(2 * len("Run engine x now.") / 25, abs=0.05)
    finally:
        sd.close()


def test_cli_say_tells_of_a_tag_the_model_does_not_know(words_daemon: DaemonProcess, tmp_path) -> None:
    from tests.protocol.test_cli import cli, err, ok

    result = cli(words_daemon, "say", "-o", str(tmp_path / "a.wav"), "Well [laugh] then.")
    ok(result)
    assert "say: removed [laugh]: the original model has no tags" in err(result)
