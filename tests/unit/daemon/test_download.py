"""daemon/download.py against a local stand-in hub (tests/support/hub.py): the real huggingface_hub client.

The hub itself is out of reach here, so these show the figures, the stall,
the failure and the retry with huggingface_hub's own ``model_info`` and
``hf_hub_download`` talking HTTP to a server that answers as the hub does.
What they cannot show: the hub's real redirects to its CDN, Xet storage,
and a 3 GB download's timing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from huggingface_hub import constants, try_to_load_from_cache

from chatterbox_tray.daemon import download
from chatterbox_tray.daemon.download import DownloadError, DownloadProgress, HubUnreachable
from chatterbox_tray.daemon.engine import EngineError
from tests.support.hub import FakeHub

MIB = 1024 * 1024
REPO = "ResembleAI/chatterbox"


@pytest.fixture
def hub() -> Iterator[FakeHub]:
    files = {"t3_cfg.safetensors": os.urandom(4 * MIB), "tokenizer.json": b'{"v": 1}', "unwanted.bin": b"x" * 999}
    server = FakeHub(REPO, files, rate=4 * MIB).start()
    yield server
    server.stop()


def run(hub: FakeHub, cache: Path, **kwargs) -> tuple[int, list[dict]]:
    seen: list[dict] = []

    def report(p: DownloadProgress) -> None:
        seen.append({**p.to_json(), "line": p.describe(), "fraction": p.fraction})

    n = download.fetch(REPO, ["*.safetensors", "*.json"], report, endpoint=hub.endpoint, cache_dir=cache, **kwargs)
    return n, seen


def test_the_figures_say_bytes_total_speed_and_time_left(hub: FakeHub, tmp_path: Path) -> None:
    n, seen = run(hub, tmp_path, poll_s=0.1)
    total = len(hub.files["t3_cfg.safetensors"]) + len(hub.files["tokenizer.json"])
    assert n == total
    assert all(s["bytes_total"] == total and s["files_total"] == 2 for s in seen)
    done = [s["bytes_done"] for s in seen]
    assert done == sorted(done) and done[-1] == total
    midway = [s for s in seen if 0 < s["bytes_done"] < total]
    assert midway, "measured while under way"
    assert all(s["bytes_per_s"] > 0 and s["seconds_left"] is not None for s in midway)
    assert any(", about " in s["line"] and "MiB/s" in s["line"] for s in midway)
    assert seen[-1]["fraction"] == 1.0 and seen[-1]["files_done"] == 2
    # Where chatterbox will look, and only what was asked for.
    for name in ("t3_cfg.safetensors", "tokenizer.json"):
        path = try_to_load_from_cache(REPO, name, cache_dir=tmp_path)
        assert isinstance(path, str) and Path(path).read_bytes() == hub.files[name]
    assert not any("unwanted" in r for r in hub.requests)
    assert download.current()["bytes_done"] == total

    # Cached: nothing to fetch the second time.
    before = len(hub.requests)
    assert run(hub, tmp_path)[0] == 0
    assert not [r for r in hub.requests[before:] if "/resolve/" in r]


def test_a_stalled_download_says_so_and_goes_on(hub: FakeHub, tmp_path: Path) -> None:
    hub.stall_at, hub.stall_s = 2 * MIB, 1.5
    n, seen = run(hub, tmp_path, poll_s=0.1, stall_s=0.6)
    stalled = [s for s in seen if s["stalled"]]
    assert stalled, seen
    assert "stalled: no data for" in stalled[-1]["line"] and "check the connection" in stalled[-1]["line"]
    assert seen[-1]["stalled"] is False and n == seen[-1]["bytes_total"]


def test_a_failed_download_says_what_and_a_retry_finishes_it(hub: FakeHub, tmp_path: Path) -> None:
    hub.fail_at, hub.fail_times = MIB, 1000  # every attempt dropped after 1 MiB (huggingface_hub retries)
    with pytest.raises(DownloadError) as err:
        run(hub, tmp_path)
    message = str(err.value)
    assert message.startswith("the download of the weights failed at t3_cfg.safetensors (")
    assert "Check the connection and retry" in message and not message.endswith("..")

    hub.fail_times = 0
    n, seen = run(hub, tmp_path)
    assert n == seen[-1]["bytes_total"] > 0
    assert isinstance(try_to_load_from_cache(REPO, "t3_cfg.safetensors", cache_dir=tmp_path), str)


def test_an_unreachable_hub_downloads_nothing_and_lets_the_load_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(HubUnreachable, match="cannot reach the Hugging Face hub"):
        download.fetch(REPO, ["*"], lambda p: None, endpoint="http://127.0.0.1:9", cache_dir=tmp_path)
    # The load's step: offline with a cache is no error here (chatterbox reads its cache or says why).
    steps: list[str] = []
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    download.fetch_weights("nobody/nothing", ["*"], lambda f, m: steps.append(m))
    assert steps == []


def test_a_failed_file_is_a_model_failed_error_for_the_load(hub: FakeHub, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing(*args, **kwargs):
        raise DownloadError("the download of the weights failed at x (0 B of 1 B done): reset. Check the connection")

    monkeypatch.setattr(download, "fetch", failing)
    with pytest.raises(EngineError) as err:
        download.fetch_weights(REPO, ["*"], lambda f, m: None)
    assert err.value.code == "model_failed" and "failed at x" in err.value.message


@pytest.mark.parametrize(
    ("variant", "module"),
    [("original", "chatterbox.tts"), ("multilingual", "chatterbox.mtl_tts"), ("turbo", "chatterbox.tts_turbo")],
)
def test_we_fetch_what_chatterbox_from_pretrained_asks_for(variant: str, module: str) -> None:
    """HUB_FILES copies chatterbox's own lists; read its source (without importing torch) to keep them equal."""
    import importlib.util
    import re

    # find_spec of a submodule would import chatterbox (and torch, seconds): find the package folder only.
    package = importlib.util.find_spec("chatterbox")
    assert package is not None and package.submodule_search_locations
    folder = Path(next(iter(package.submodule_search_locations)))
    source = (folder / f"{module.split('.')[-1]}.py").read_text(encoding="utf-8")
    method = source[source.index("def from_pretrained") :]
    listed = re.search(
        r"\[([^\]]*)\]", method[method.index("hf_hub_download" if variant == "original" else "allow_patterns") - 120 :]
    )
    assert listed is not None
    names = tuple(re.findall(r'"([^"]+)"', listed.group(1)))
    assert names == download.HUB_FILES[variant]
    assert re.search(r'^REPO_ID = "[^"]+"', source, re.M)  # the engine reads the repo from the module
