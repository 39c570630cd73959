"""daemon/settings.py: Settings.validate, the editable/reload declarations, and the file."""

from __future__ import annotations

import json
import os
import stat
import sys
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest

from chatterbox_tray.daemon.settings import (
    NEEDS_RELOAD,
    READ_ONLY,
    Settings,
    load_settings,
    save_changes,
)


def test_the_defaults_are_valid() -> None:
    assert Settings().validate() == Settings()


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"variant": "huge"}, "variant"),
        ({"device": "tpu"}, "device"),
        ({"engine": "other"}, "engine"),
        ({"prebuffer": "always"}, "prebuffer"),
        ({"memory_cache_mb": -1}, "memory_cache_mb"),
        ({"disk_cache_mb": -1}, "disk_cache_mb"),
        ({"max_text_chars": -5}, "max_text_chars"),
        ({"max_tokens_per_chunk": -1}, "max_tokens_per_chunk"),
        ({"volume": 1.5}, "volume"),
        ({"volume": -0.1}, "volume"),
        ({"sentence_pause_ms": 5001}, "sentence_pause_ms"),
        ({"sentence_pause_ms": -1}, "sentence_pause_ms"),
        ({"max_chunk_chars": 19}, "max_chunk_chars"),
    ],
)
def test_each_bad_value_is_named(changes: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        replace(Settings(), **changes).validate()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("memory_cache_mb", True),  # a bool is not an int here
        ("memory_cache_mb", 1.5),
        ("warmup", 1),
        ("variant", 3),
        ("volume", "loud"),
        ("volume", False),
    ],
)
def test_wrong_types_are_refused(name: str, value: Any) -> None:
    with pytest.raises(ValueError, match=f"{name} must be"):
        replace(Settings(), **{name: value}).validate()


def test_edge_values_pass() -> None:
    edge = replace(Settings(), volume=0, sentence_pause_ms=5000, max_chunk_chars=20, memory_cache_mb=0)
    assert edge.validate() is edge


def test_editable_is_every_setting_but_the_read_only_ones() -> None:
    names = [f.name for f in fields(Settings)]
    assert list(Settings.editable()) == [n for n in names if n not in READ_ONLY]
    assert "engine" in READ_ONLY
    assert set(NEEDS_RELOAD) <= set(Settings.editable())


def test_a_broken_file_gives_defaults_and_unknown_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text("{not json", encoding="utf-8")
    assert load_settings(path) == Settings()
    path.write_text(json.dumps({"volume": 7}), encoding="utf-8")
    assert load_settings(path) == Settings()  # one bad value: all defaults, logged
    path.write_text(json.dumps({"volume": 0.5, "from_the_future": 1}), encoding="utf-8")
    assert load_settings(path).volume == 0.5


def test_save_changes_merges_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_changes(replace(Settings(), volume=0.25).to_json(), path)
    save_changes({"prebuffer": "off"}, path)
    loaded = load_settings(path)
    assert (loaded.volume, loaded.prebuffer) == (0.25, "off")
    assert os.listdir(tmp_path) == ["settings.json"]
    if sys.platform != "win32":  # an ordinary file: the umask decides, as for any config file
        umask = os.umask(0)
        os.umask(umask)
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


def test_overrides_win_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    save_changes(replace(Settings(), variant="turbo").to_json(), path)
    assert load_settings(path, {"variant": "multilingual", "device": None}).variant == "multilingual"


def test_the_engines_own_lists_are_the_schemas_choices() -> None:
    # The engine checks its arguments itself (a bench or a test builds it without Settings);
    # engine_path and precision take their lists from the schema, quality's names must match.
    from chatterbox_tray.daemon.s3gen_stream import QUALITIES
    from chatterbox_tray.ipc.settings_schema import SETTINGS

    assert set(SETTINGS["quality"].choices) == set(QUALITIES)


def test_every_setting_is_a_field_with_the_schemas_type_and_default() -> None:
    from chatterbox_tray.ipc.settings_schema import SETTINGS

    assert [(f.name, f.type, f.default) for f in fields(Settings)] == [
        (s.name, s.type, s.default) for s in SETTINGS.values()
    ]
    for spec in SETTINGS.values():
        assert spec.problem(spec.default) is None, spec.name
