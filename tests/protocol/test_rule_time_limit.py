"""A user's slow regular expression on a real (fake-engine) daemon: refused when added, stopped when applied.

Rules run on the daemon's main loop (daemon/saytext.py). Before the time
limit, a rule such as ``(a+)+$`` met by a long run of "a"s then "b" held the
main loop for ever: no client got an answer again, not even ``ping``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from chatterbox_tray.daemon.saytext import RULES_TIME_LIMIT_S
from chatterbox_tray.ipc.client import Client
from chatterbox_tray.ipc.protocol import ProtocolError
from tests.support.daemons import Clips, DaemonProcess, narrated_daemon

SLOW = r"(a+)+$"
#: Long enough that (a+)+$ would take hours; within max_text_chars.
BAD_TEXT = "Run nginx now. " + "a" * 20_000 + "b."


@pytest.fixture(scope="module")
def slow_daemon(clips: Clips) -> Iterator[DaemonProcess]:
    """A daemon whose words.json already holds a slow rule (written before the probe existed, or by hand)."""
    rules = [{"word": "nginx", "say": "engine x"}, {"word": SLOW, "say": "x", "regex": True}]
    with narrated_daemon(clips, files={"data/words.json": json.dumps({"version": 1, "rules": rules})}) as proc:
        yield proc


@pytest.fixture
def c(slow_daemon: DaemonProcess) -> Iterator[Client]:
    with slow_daemon.client(timeout=30) as client:
        yield client
        client.stop(all=True)


def test_a_slow_rule_refuses_the_job_naming_the_rule_and_ping_is_answered_meanwhile(
    slow_daemon: DaemonProcess, c: Client
) -> None:
    assert [r["word"] for r in c.call("words.list")["rules"]] == ["nginx", SLOW]
    outcome: dict[str, object] = {}

    def speak() -> None:
        with slow_daemon.client(timeout=30) as speaker:
            began = time.monotonic()
            try:
                outcome["reply"] = speaker.speak(BAD_TEXT)
            except ProtocolError as exc:
                outcome["error"] = exc
            outcome["took"] = time.monotonic() - began

    thread = threading.Thread(target=speak)
    thread.start()
    waits = []
    while thread.is_alive():  # every ping is answered, within the rules' time limit at worst
        began = time.monotonic()
        c.ping()
        waits.append(time.monotonic() - began)
        time.sleep(0.02)
    thread.join()
    error = outcome.get("error")
    assert isinstance(error, ProtocolError), outcome
    assert error.code == "bad_rule"
    assert f"{SLOW!r} took more than {RULES_TIME_LIMIT_S:g} s" in error.message
    assert f"chatterbox-tray words remove '{SLOW}'" in error.message
    assert outcome["took"] < RULES_TIME_LIMIT_S + 2
    assert max(waits) < RULES_TIME_LIMIT_S + 1.5, waits
    # The same text previewed is refused alike; a text the rule is quick on is spoken as ever.
    with pytest.raises(ProtocolError) as err:
        c.call("text.preview", {"text": BAD_TEXT})
    assert err.value.code == "bad_rule"
    preview = c.call("text.preview", {"text": "Run nginx now."})
    assert preview["chunks"][0]["text"] == "Run engine x now."
    assert [ch.text for ch in c.synthesize("Run nginx now.", seed=1)] == ["Run engine x now."]


def test_adding_a_slow_expression_is_refused_and_not_saved(slow_daemon: DaemonProcess, c: Client) -> None:
    path = slow_daemon.home / "data" / "words.json"
    before = path.read_bytes()
    began = time.monotonic()
    with pytest.raises(ProtocolError) as err:
        c.call("words.add", {"word": r"(\w+\s?)+$", "say": "x", "regex": True})
    assert time.monotonic() - began < 2
    assert err.value.code == "bad_rule"
    assert r"'(\\w+\\s?)+$' is too slow" in err.value.message and "it was not saved" in err.value.message
    assert path.read_bytes() == before
    assert [r["word"] for r in c.call("words.list")["rules"]] == ["nginx", SLOW]


def test_cli_words_add_of_a_slow_expression_says_why(slow_daemon: DaemonProcess) -> None:
    from tests.protocol.test_cli import cli

    result = cli(slow_daemon, "words", "add", "--regex", "(x+x+)+y", "why")
    assert result.returncode == 1
    assert b"'(x+x+)+y' is too slow" in result.stderr and b"it was not saved" in result.stderr


def test_through_speech_dispatcher_the_module_log_says_which_rule_and_what_to_do(slow_daemon: DaemonProcess) -> None:
    """Speech Dispatcher cannot pass an error on: the module's log has it, with the fix."""
    from tests.protocol.test_speechd import Speechd, needs_speechd

    if needs_speechd.args[0]:
        pytest.skip(needs_speechd.kwargs["reason"])
    sd = Speechd(slow_daemon)
    try:
        assert sd.install.returncode == 0, sd.install.stderr
        sd.module_say("-w", BAD_TEXT)
        logs = sd.logs()
        assert "NOT SPOKEN: the pronunciation rule '(a+)+$' took more than" in logs, logs
        assert "[bad_rule]; to fix: change or remove the pronunciation rule named" in logs
    finally:
        sd.close()


def test_the_openai_endpoint_answers_a_slow_rule_with_422_naming_it(slow_daemon: DaemonProcess) -> None:
    """The official ``openai`` client gets our plain message, not a 500: the request was sound."""
    import openai

    from chatterbox_tray.bridges.openai_server import BridgeServer, Config

    server = BridgeServer(
        Config(connection=slow_daemon.connection_path, port=0, voice_table=slow_daemon.home / "openai-voices.json")
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = openai.OpenAI(base_url=server.url, api_key="not-needed", max_retries=0, timeout=60)
        with pytest.raises(openai.UnprocessableEntityError) as caught:
            api.audio.speech.create(model="tts-1", voice="narrator", input=BAD_TEXT, response_format="wav")
        assert caught.value.status_code == 422
        assert caught.value.code == "pronunciation_rule_failed"
        assert SLOW in caught.value.message and "words remove" in caught.value.message
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
