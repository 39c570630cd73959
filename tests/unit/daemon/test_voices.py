"""Tests for daemon/voices.py: the voice library."""

from __future__ import annotations

import io
import json
import threading
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from chatterbox_tray.daemon import voices as voices_mod
from chatterbox_tray.daemon.clip import ClipError, sha256_bytes
from chatterbox_tray.daemon.storage import DiskFullError
from chatterbox_tray.daemon.voices import (
    MANIFEST_VERSION,
    Voice,
    VoiceError,
    VoiceLibrary,
    check_name,
)

SR = 16000


def wav(seconds: float = 6.0, freq: float = 220.0, fmt: str = "WAV") -> bytes:
    t = np.arange(round(seconds * SR)) / SR
    buf = io.BytesIO()
    sf.write(buf, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), SR, format=fmt)
    return buf.getvalue()


CLIP_A = wav(freq=220.0)
CLIP_B = wav(freq=330.0)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def lib(data_dir: Path) -> VoiceLibrary:
    return VoiceLibrary(data_dir)


def manifest(data_dir: Path) -> dict:
    return json.loads((data_dir / "voices.json").read_text(encoding="utf-8"))


def clip_files(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "voices").iterdir())


# -- add, list, get --------------------------------------------------------------


def test_empty_library(lib: VoiceLibrary, data_dir: Path) -> None:
    assert lib.list() == []
    assert lib.default is None
    assert (data_dir / "voices").is_dir()
    assert not (data_dir / "voices.json").exists(), "nothing is written until a change"


def test_add_stores_the_original_bytes(lib: VoiceLibrary, data_dir: Path) -> None:
    voice = lib.add("Narrator", CLIP_A, source_name="/home/me/clips/My Voice.WAV")
    sha = sha256_bytes(CLIP_A)
    assert voice.name == "Narrator"
    assert voice.sha256 == sha
    assert voice.file == data_dir / "voices" / f"{sha[:16]}.wav"
    assert voice.file.read_bytes() == CLIP_A
    assert voice.duration_s == pytest.approx(6.0)
    assert voice.sample_rate == SR
    assert voice.source_name == "My Voice.WAV"
    added = datetime.fromisoformat(voice.added_at)
    assert added.utcoffset() == timezone.utc.utcoffset(None)
    assert abs((datetime.now(timezone.utc) - added).total_seconds()) < 3600
    assert lib.list() == [voice]
    assert lib.get("Narrator") == voice


def test_suffix_from_windows_path_and_missing_suffix(lib: VoiceLibrary) -> None:
    a = lib.add("A", CLIP_A, source_name="C:\\Users\\me\\voice.Flac")
    b = lib.add("B", CLIP_B)
    assert a.file.name.endswith(".flac")
    assert a.source_name == "voice.Flac"
    assert b.file.name == f"{b.sha256[:16]}.bin"
    assert b.source_name == ""


def test_odd_suffix_becomes_bin(lib: VoiceLibrary) -> None:
    voice = lib.add("A", CLIP_A, source_name="clip.w a v")
    assert voice.file.suffix == ".bin"


def test_ogg_clip_is_accepted(lib: VoiceLibrary) -> None:
    data = wav(fmt="OGG")
    voice = lib.add("Vorbis", data, source_name="v.ogg")
    assert voice.file.read_bytes() == data
    assert voice.file.suffix == ".ogg"


def test_get_ignores_case(lib: VoiceLibrary) -> None:
    voice = lib.add("Narrator", CLIP_A)
    assert lib.get("narrator") == voice
    assert lib.get("NARRATOR") == voice


def test_get_unknown(lib: VoiceLibrary) -> None:
    with pytest.raises(VoiceError) as err:
        lib.get("nobody")
    assert err.value.code == "unknown_voice"
    assert "nobody" in str(err.value)


def test_list_is_sorted_ignoring_case(lib: VoiceLibrary) -> None:
    for name, clip in (("bob", CLIP_A), ("Alice", CLIP_B), ("carol", CLIP_A)):
        lib.add(name, clip)
    assert [v.name for v in lib.list()] == ["Alice", "bob", "carol"]


def test_to_json(lib: VoiceLibrary) -> None:
    voice = lib.add("Narrator", CLIP_A, source_name="n.wav")
    doc = voice.to_json()
    assert doc == {
        "name": "Narrator",
        "file": str(voice.file),
        "sha256": voice.sha256,
        "duration_s": voice.duration_s,
        "sample_rate": SR,
        "added_at": voice.added_at,
        "source_name": "n.wav",
    }
    json.dumps(doc)


# -- names -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 65,
        "a/b",
        "a\\b",
        ".hidden",
        "..",
        "tab\there",
        "line\nbreak",
        "nul\x00",
        "del\x7f",
        "para\u2029sep",
        " leading",
        "trailing ",
    ],
)
def test_bad_names(lib: VoiceLibrary, name: str) -> None:
    with pytest.raises(VoiceError) as err:
        lib.add(name, CLIP_A)
    assert err.value.code == "bad_name"
    assert lib.list() == []


@pytest.mark.parametrize("name", ["Narrator", "x" * 64, "Zoë", "名前", "a.b", "Dr. Who (old)", "7"])
def test_good_names(lib: VoiceLibrary, name: str) -> None:
    assert lib.add(name, CLIP_A).name == name


def test_non_string_name_is_bad() -> None:
    with pytest.raises(VoiceError) as err:
        check_name(42)  # type: ignore[arg-type]
    assert err.value.code == "bad_name"


def test_names_are_nfc_normalised(lib: VoiceLibrary) -> None:
    decomposed = "Zoe\u0308"
    voice = lib.add(decomposed, CLIP_A)
    assert voice.name == "Zoë"
    assert lib.get("ZOË") == voice
    with pytest.raises(VoiceError) as err:
        lib.add("zoë", CLIP_B)
    assert err.value.code == "voice_exists"


def test_duplicate_name_ignoring_case(lib: VoiceLibrary) -> None:
    lib.add("Narrator", CLIP_A)
    with pytest.raises(VoiceError) as err:
        lib.add("narrator", CLIP_B)
    assert err.value.code == "voice_exists"
    assert "Narrator" in str(err.value)
    assert [v.name for v in lib.list()] == ["Narrator"]


# -- bad clips -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "code"),
    [(wav(seconds=2.0), "clip_too_short"), (b"definitely not audio" * 50, "clip_undecodable")],
)
def test_bad_clip_raises_clip_error_and_changes_nothing(
    lib: VoiceLibrary, data_dir: Path, data: bytes, code: str
) -> None:
    with pytest.raises(ClipError) as err:
        lib.add("Bad", data)
    assert err.value.code == code
    assert lib.list() == []
    assert clip_files(data_dir) == []
    assert not (data_dir / "voices.json").exists()


# -- rename, remove, default -----------------------------------------------------


def test_rename(lib: VoiceLibrary) -> None:
    old = lib.add("Narrator", CLIP_A)
    new = lib.rename("narrator", "Storyteller")
    assert new.name == "Storyteller"
    assert new.file == old.file and new.sha256 == old.sha256
    assert [v.name for v in lib.list()] == ["Storyteller"]
    with pytest.raises(VoiceError):
        lib.get("Narrator")


def test_rename_case_only(lib: VoiceLibrary) -> None:
    lib.add("narrator", CLIP_A)
    assert lib.rename("narrator", "Narrator").name == "Narrator"
    assert [v.name for v in lib.list()] == ["Narrator"]


def test_rename_errors(lib: VoiceLibrary) -> None:
    lib.add("A", CLIP_A)
    lib.add("B", CLIP_B)
    with pytest.raises(VoiceError) as err:
        lib.rename("a", "b")
    assert err.value.code == "voice_exists"
    with pytest.raises(VoiceError) as err:
        lib.rename("nobody", "C")
    assert err.value.code == "unknown_voice"
    with pytest.raises(VoiceError) as err:
        lib.rename("A", "bad/name")
    assert err.value.code == "bad_name"
    assert [v.name for v in lib.list()] == ["A", "B"]


def test_default_follows_rename_and_clears_on_remove(lib: VoiceLibrary, data_dir: Path) -> None:
    lib.add("Narrator", CLIP_A)
    lib.add("Other", CLIP_B)
    lib.set_default("narrator")
    assert lib.default == "Narrator"
    lib.rename("Narrator", "Teller")
    assert lib.default == "Teller"
    assert manifest(data_dir)["default"] == "Teller"
    lib.remove("Other")
    assert lib.default == "Teller", "removing another voice keeps the default"
    lib.remove("teller")
    assert lib.default is None
    assert manifest(data_dir)["default"] is None


def test_the_first_voice_becomes_the_default_when_there_is_none(lib: VoiceLibrary, data_dir: Path) -> None:
    """Speech Dispatcher, the hotkey and scripts name no voice: with one voice there must be a default."""
    lib.add("First", CLIP_A)
    assert lib.default == "First"
    lib.add("Second", CLIP_B)
    assert lib.default == "First", "a default is never replaced by an add"
    lib.set_default(None)
    lib.add("Third", CLIP_A)
    assert lib.default == "Third", "no default: the voice added becomes it"
    assert manifest(data_dir)["default"] == "Third"


def test_a_failed_add_leaves_no_default(lib: VoiceLibrary, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_replace(src: str, dst: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(voices_mod.os, "replace", failing_replace)
    with pytest.raises(DiskFullError):
        lib.add("A", CLIP_A)
    assert lib.default is None
    assert lib.list() == []


def test_set_default_unknown_and_none(lib: VoiceLibrary) -> None:
    lib.add("A", CLIP_A)
    with pytest.raises(VoiceError) as err:
        lib.set_default("B")
    assert err.value.code == "unknown_voice"
    lib.set_default("A")
    lib.set_default(None)
    assert lib.default is None


def test_remove_deletes_the_clip(lib: VoiceLibrary, data_dir: Path) -> None:
    voice = lib.add("A", CLIP_A)
    lib.remove("a")
    assert not voice.file.exists()
    assert lib.list() == []
    assert clip_files(data_dir) == []
    with pytest.raises(VoiceError) as err:
        lib.remove("A")
    assert err.value.code == "unknown_voice"


def test_voices_with_identical_bytes_share_a_file(lib: VoiceLibrary) -> None:
    a = lib.add("A", CLIP_A, source_name="a.wav")
    b = lib.add("B", CLIP_A, source_name="b.wav")
    assert a.file == b.file
    lib.remove("A")
    assert b.file.exists(), "B still uses it"
    lib.remove("B")
    assert not b.file.exists()


# -- persistence and the manifest ------------------------------------------------


def test_persistence_across_instances(data_dir: Path) -> None:
    first = VoiceLibrary(data_dir)
    a = first.add("Narrator", CLIP_A, source_name="n.wav")
    b = first.add("Other", CLIP_B)
    first.set_default("Other")

    second = VoiceLibrary(data_dir)
    assert second.list() == [a, b]
    assert second.default == "Other"
    second.remove("Other")
    assert VoiceLibrary(data_dir).default is None


def test_manifest_format(lib: VoiceLibrary, data_dir: Path) -> None:
    voice = lib.add("Narrator", CLIP_A, source_name="n.wav")
    doc = manifest(data_dir)
    assert doc["version"] == MANIFEST_VERSION == 1
    assert doc["default"] == "Narrator", "the first voice becomes the default"
    assert doc["voices"] == [
        {
            "name": "Narrator",
            "file": voice.file.name,  # relative: the data folder may move
            "sha256": voice.sha256,
            "duration_s": voice.duration_s,
            "sample_rate": SR,
            "added_at": voice.added_at,
            "source_name": "n.wav",
        }
    ]
    leftovers = [p for p in data_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert leftovers == []


def test_manifest_write_failure_leaves_old_state(
    lib: VoiceLibrary, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lib.add("A", CLIP_A)
    before = (data_dir / "voices.json").read_bytes()
    real_replace = voices_mod.os.replace

    def failing_replace(src: str, dst: object) -> None:
        if Path(str(dst)).name == "voices.json":
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(voices_mod.os, "replace", failing_replace)
    with pytest.raises(DiskFullError, match="no space left"):
        lib.add("B", CLIP_B)
    with pytest.raises(DiskFullError, match="no space left"):
        lib.rename("A", "Z")
    with pytest.raises(DiskFullError, match="no space left"):
        lib.set_default("A")
    with pytest.raises(DiskFullError, match="no space left"):
        lib.remove("A")
    monkeypatch.undo()

    assert (data_dir / "voices.json").read_bytes() == before
    assert [v.name for v in lib.list()] == ["A"]
    assert lib.default == "A", "the first voice's default stays"
    assert clip_files(data_dir) == [lib.get("A").file.name], "B's new clip was removed"
    assert not [p for p in data_dir.rglob("*") if p.name.startswith(".tmp-")]
    assert [v.name for v in VoiceLibrary(data_dir).list()] == ["A"]


@pytest.mark.parametrize(
    "content",
    [
        "{not json",
        "[]",
        '{"version": 2, "voices": []}',
        '{"version": 1}',
        '{"version": 1, "voices": [{"name": "A"}]}',
        '{"version": 1, "voices": "nope"}',
        b"\xff\xfe\x00garbage",
    ],
    ids=[
        "not-json",
        "not-object",
        "future-version",
        "no-voices",
        "incomplete-entry",
        "voices-not-list",
        "not-utf8",
    ],
)
def test_corrupt_manifest_is_moved_aside(data_dir: Path, content: str | bytes) -> None:
    data_dir.mkdir(parents=True)
    path = data_dir / "voices.json"
    raw = content.encode() if isinstance(content, str) else content
    path.write_bytes(raw)

    lib = VoiceLibrary(data_dir)
    assert lib.list() == []
    assert lib.default is None
    aside = list(data_dir.glob("voices.json.corrupt-*"))
    assert len(aside) == 1
    assert aside[0].read_bytes() == raw, "kept for the user, byte for byte"
    assert not path.exists()

    lib.add("Fresh", CLIP_A)
    assert [v.name for v in VoiceLibrary(data_dir).list()] == ["Fresh"]


def test_second_corrupt_manifest_gets_its_own_name(data_dir: Path) -> None:
    data_dir.mkdir(parents=True)
    for _ in range(2):
        (data_dir / "voices.json").write_text("{broken")
        VoiceLibrary(data_dir)
    assert len(list(data_dir.glob("voices.json.corrupt-*"))) == 2


def _entry(**overrides: object) -> dict:
    entry = {
        "name": "A",
        "file": "0123456789abcdef.wav",
        "sha256": "0" * 64,
        "duration_s": 6.0,
        "sample_rate": SR,
        "added_at": "2025-01-01T00:00:00+00:00",
        "source_name": "",
    }
    entry.update(overrides)
    return entry


@pytest.mark.parametrize(
    "entries",
    [
        [_entry(file="../../outside.wav")],
        [_entry(file="/etc/passwd")],
        [_entry(name="bad/name")],
        [_entry(), _entry(name="a")],
        [_entry(sample_rate="16000")],
        [_entry(sha256="xyz")],
    ],
    ids=["parent-path", "absolute-path", "bad-name", "duplicate", "wrong-type", "bad-sha"],
)
def test_manifest_with_bad_entries_is_moved_aside(data_dir: Path, entries: list) -> None:
    (data_dir / "voices").mkdir(parents=True)
    (data_dir / "voices" / "0123456789abcdef.wav").write_bytes(CLIP_A)
    (data_dir / "voices.json").write_text(json.dumps({"version": 1, "voices": entries}))
    lib = VoiceLibrary(data_dir)
    assert lib.list() == []
    assert len(list(data_dir.glob("voices.json.corrupt-*"))) == 1
    assert (data_dir / "voices" / "0123456789abcdef.wav").exists(), "clips are never deleted"


def test_voice_whose_clip_vanished_is_dropped(data_dir: Path) -> None:
    first = VoiceLibrary(data_dir)
    gone = first.add("Gone", CLIP_A)
    first.add("Kept", CLIP_B)
    first.set_default("Gone")
    gone.file.unlink()

    second = VoiceLibrary(data_dir)
    assert [v.name for v in second.list()] == ["Kept"]
    assert second.default is None
    doc = manifest(data_dir)
    assert [v["name"] for v in doc["voices"]] == ["Kept"]
    assert doc["default"] is None
    assert not list(data_dir.glob("voices.json.corrupt-*"))


def test_leftover_temp_files_are_removed(data_dir: Path) -> None:
    (data_dir / "voices").mkdir(parents=True)
    tmp1 = data_dir / ".tmp-abc"
    tmp2 = data_dir / "voices" / ".tmp-def"
    other = data_dir / "voices" / "unrelated.wav"
    for p in (tmp1, tmp2, other):
        p.write_bytes(b"x")
    VoiceLibrary(data_dir)
    assert not tmp1.exists() and not tmp2.exists()
    assert other.exists()


# -- threads ---------------------------------------------------------------------


def test_concurrent_adds(lib: VoiceLibrary, data_dir: Path) -> None:
    clips = [wav(freq=200.0 + 10 * i) for i in range(8)]
    errors: list[BaseException] = []
    results: list[Voice] = []

    def add(i: int) -> None:
        try:
            results.append(lib.add(f"voice {i}", clips[i]))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(results) == 8
    assert {v.name for v in VoiceLibrary(data_dir).list()} == {f"voice {i}" for i in range(8)}


def test_concurrent_adds_of_one_name_let_exactly_one_win(lib: VoiceLibrary) -> None:
    errors: list[VoiceError] = []
    barrier = threading.Barrier(4)

    def add(i: int) -> None:
        barrier.wait()
        try:
            lib.add("Same", wav(freq=300.0 + i))
        except VoiceError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(lib.list()) == 1
    assert len(errors) == 3
    assert {e.code for e in errors} == {"voice_exists"}


def test_clips_no_voice_names_are_removed_at_start(data_dir: Path) -> None:
    lib = VoiceLibrary(data_dir)
    kept = lib.add("A", CLIP_A).file
    orphan = data_dir / "voices" / f"{sha256_bytes(CLIP_B)[:16]}.wav"
    orphan.write_bytes(CLIP_B)  # a crash between storing a clip and saving the manifest
    stray = data_dir / "voices" / "notes.txt"
    stray.write_text("not ours")
    VoiceLibrary(data_dir)
    assert kept.exists() and not orphan.exists()
    assert stray.exists(), "only files named as the library names clips are removed"


def test_unnamed_clips_stay_while_a_moved_aside_manifest_may_name_them(data_dir: Path) -> None:
    lib = VoiceLibrary(data_dir)
    clip = lib.add("A", CLIP_A).file
    (data_dir / "voices.json").write_text("{broken", encoding="utf-8")
    lib = VoiceLibrary(data_dir)  # sets the manifest aside; A's clip is all that is left of A
    assert lib.list() == []
    assert clip.exists()
    VoiceLibrary(data_dir)
    assert clip.exists()
