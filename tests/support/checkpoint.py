"""Random-weight Chatterbox checkpoints with the real file layout, for tests.

Model weights cannot be downloaded where our tests run, and there is usually no
GPU. Instead of mocking chatterbox, we build a checkpoint folder that its own
``from_local`` loads unchanged: every file the loader reads, written from the real
module classes (``VoiceEncoder()``, ``T3(...)``, ``S3Gen(...)``) with their
default, seeded initialisation, plus a real tokenizer for each variant. The audio
it makes is noise, but every shape, code path and cost is the real one.

Building takes tens of seconds and writes gigabytes, so ``ensure_checkpoint``
caches one folder per variant and guards the build with a file lock; a folder
only counts once its ``.complete`` marker (written last, before the atomic
rename) names the same variant, format version and chatterbox version.

Run ``python -m tests.support.checkpoint [--variant original] [DEST]`` to build
one by hand; it prints the folder's path.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import shutil
import string
import sys
import tempfile
import unicodedata
import uuid
import zipfile
from collections.abc import Callable, Iterator, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

#: Bump when the files written change, so stale cached folders get rebuilt.
FORMAT_VERSION = 1

#: Variants we can build, each named after the chatterbox class that loads it.
VARIANTS: tuple[str, ...] = ("original", "turbo", "multilingual")

#: Written last; a folder without a matching one is treated as half-written.
MARKER_NAME = ".complete"

#: Where ``ensure_checkpoint`` keeps its folders when the env var is unset.
CACHE_ENV = "CHATTERBOX_TRAY_TEST_CKPT_DIR"
REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE = REPO_ROOT / ".cache" / "test-checkpoints"

#: Sidecar for the multilingual variant: spacy-pkuseg's home folder (see
#: ``_write_pkuseg_home``). Point ``PKUSEG_HOME`` here; ``loader_env`` does.
PKUSEG_HOME_NAME = "pkuseg_home"

# Files each variant's ``from_local`` reads (conds.pt is optional and left out:
# there is no built-in voice, callers must ``prepare_conditionals`` first).
LAYOUTS: dict[str, tuple[str, ...]] = {
    "original": ("ve.safetensors", "t3_cfg.safetensors", "s3gen.safetensors", "tokenizer.json"),
    "turbo": (
        "ve.safetensors",
        "t3_turbo_v1.safetensors",
        "s3gen_meanflow.safetensors",
        "vocab.json",
        "merges.txt",
        "added_tokens.json",
        "special_tokens_map.json",
        "tokenizer_config.json",
    ),
    "multilingual": (
        "ve.pt",
        "t3_mtl23ls_v2.safetensors",
        "s3gen.pt",
        "grapheme_mtl_merged_expanded_v1.json",
        "Cangjie5_TC.json",
    ),
}

# Text the tokenizers learn their merges from. Any English prose does; this is
# ours, so the merges (and therefore token counts) resemble real text.
_CORPUS = """
The quick brown fox jumps over the lazy dog while the rain keeps falling.
Hello there, and thank you for calling. How can I help you today?
She said that the meeting would start at nine, but nobody came until ten.
This is a test of the speech system; it should read numbers like 1, 22 and 333.
We went to the market, bought some bread, cheese and apples, then walked home.
Would you like to hear the story again? I think the ending is the best part.
Please remember to save your work before the computer restarts tonight.
It was the best of times, it was the worst of times, and then it was lunch.
When the weather is nice we often sit outside and talk about the future.
Everything that happens here is only a rehearsal for something else.
There are three things I need: a pencil, a notebook, and a quiet room.
Good morning! Today we will learn how sounds become words and sentences.
"""

_EN_SPECIALS = {"[STOP]": 0, "[UNK]": 1, "[SPACE]": 2, "[START]": 255}
# EnTokenizer's SPECIAL_TOKENS also names these; the real ids are not public,
# so they sit right after [START].
_EN_RESERVED = ("[PAD]", "[SEP]", "[CLS]", "[MASK]")

# ChatterboxTurboTTS checks len(tokenizer) == 50276: GPT-2's 50257 plus these.
_TURBO_TAGS = (
    "[clear throat]",
    "[sigh]",
    "[shush]",
    "[cough]",
    "[groan]",
    "[sniff]",
    "[gasp]",
    "[chuckle]",
    "[laugh]",
    "[angry]",
    "[fear]",
    "[surprised]",
    "[whispering]",
    "[advertisement]",
    "[dramatic]",
    "[narration]",
    "[crying]",
    "[happy]",
    "[sarcastic]",
)
_GPT2_BASE_VOCAB = 50257
_EOT = "<|endoftext|>"

_MTL_LANGUAGES = [
    "ar",
    "da",
    "de",
    "el",
    "en",
    "es",
    "fi",
    "fr",
    "he",
    "hi",
    "it",
    "ja",
    "ko",
    "ms",
    "nl",
    "no",
    "pl",
    "pt",
    "ru",
    "sv",
    "sw",
    "tr",
    "zh",
]
# Characters the multilingual tokenizer sees after MTLTokenizer lowercases and
# NFKD-decomposes text: scripts of its 23 languages plus combining marks.
_MTL_RANGES = (
    (0x0300, 0x036F),  # combining diacritics (é -> e + U+0301 after NFKD)
    (0x03B1, 0x03C9),  # Greek
    (0x0430, 0x044F),  # Cyrillic
    (0x05B0, 0x05C7),  # Hebrew points
    (0x05D0, 0x05EA),  # Hebrew letters
    (0x0621, 0x0652),  # Arabic letters and harakat
    (0x0900, 0x097F),  # Devanagari
    (0x1100, 0x11FF),  # Hangul jamo (korean_normalize decomposes syllables)
    (0x3041, 0x3096),  # Hiragana
    (0x3099, 0x309A),  # combining (han)dakuten after NFKD
    (0x30A1, 0x30FC),  # Katakana
)
_MTL_EXTRA_CHARS = "ßæøœłıđþð،؟、。"
_CANGJIE_TOKENS = tuple(f"[cj_{c}]" for c in string.ascii_lowercase + string.digits + ".")
_CANGJIE_SAMPLE = "你好世界我是中文的一不了人在有这个上们来到时大地为子"


def _chatterbox_version() -> str:
    return metadata.version("chatterbox-tts")


def _marker(variant: str, seed: int) -> dict[str, Any]:
    return {
        "variant": variant,
        "format": FORMAT_VERSION,
        "seed": seed,
        "chatterbox": _chatterbox_version(),
    }


def is_complete(path: Path, variant: str = "original") -> bool:
    """Whether ``path`` holds a finished build of ``variant`` for this chatterbox.

    The marker is written last, so its presence means every file before it was
    flushed; version fields make a chatterbox or format upgrade rebuild.
    """
    try:
        marker = json.loads((Path(path) / MARKER_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    expected = _marker(variant, marker.get("seed", 0))
    if any(marker.get(k) != v for k, v in expected.items()):
        return False
    return all((Path(path) / name).exists() for name in LAYOUTS[variant])


# --------------------------------------------------------------------------- weights


def _seeded(seed: int, offset: int) -> None:
    """Seed torch per module, so each file is the same whatever was built before."""
    import torch

    torch.manual_seed(seed * 1000 + offset)


def _tensors(module: Any) -> dict[str, Any]:
    # safetensors refuses views and shared storage; our modules tie nothing, and
    # .contiguous() is free for tensors that already are.
    return {k: v.detach().contiguous() for k, v in module.state_dict().items()}


def _save_safetensors(module: Any, path: Path) -> None:
    from safetensors.torch import save_file

    save_file(_tensors(module), str(path), metadata={"format": "pt"})


def _save_torch(module: Any, path: Path) -> None:
    import torch

    torch.save(_tensors(module), path)


def _write_original(tmp: Path, seed: int) -> None:
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    _seeded(seed, 1)
    _save_safetensors(VoiceEncoder(), tmp / "ve.safetensors")
    _seeded(seed, 2)
    _save_safetensors(T3(), tmp / "t3_cfg.safetensors")
    _seeded(seed, 3)
    _save_safetensors(S3Gen(), tmp / "s3gen.safetensors")
    (tmp / "tokenizer.json").write_text(_english_tokenizer_json(), encoding="utf-8")


def _turbo_t3_config() -> Any:
    """Mirror of the hyperparameters ``ChatterboxTurboTTS.from_local`` sets."""
    from chatterbox.models.t3.modules.t3_config import T3Config

    hp = T3Config(text_tokens_dict_size=50276)
    hp.llama_config_name = "GPT2_medium"
    hp.speech_tokens_dict_size = 6563
    hp.input_pos_emb = None
    hp.speech_cond_prompt_len = 375
    hp.use_perceiver_resampler = False
    hp.emotion_adv = False
    return hp


def _write_turbo(tmp: Path, seed: int) -> None:
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.voice_encoder import VoiceEncoder

    _seeded(seed, 1)
    _save_safetensors(VoiceEncoder(), tmp / "ve.safetensors")
    _seeded(seed, 2)
    _save_safetensors(T3(_turbo_t3_config()), tmp / "t3_turbo_v1.safetensors")
    _seeded(seed, 3)
    _save_safetensors(S3Gen(meanflow=True), tmp / "s3gen_meanflow.safetensors")
    _write_gpt2_tokenizer(tmp)


def _write_multilingual(tmp: Path, seed: int) -> None:
    from chatterbox.models.s3gen import S3Gen
    from chatterbox.models.t3 import T3
    from chatterbox.models.t3.modules.t3_config import T3Config
    from chatterbox.models.voice_encoder import VoiceEncoder

    _seeded(seed, 1)
    _save_torch(VoiceEncoder(), tmp / "ve.pt")
    _seeded(seed, 2)
    _save_safetensors(T3(T3Config.multilingual()), tmp / "t3_mtl23ls_v2.safetensors")
    _seeded(seed, 3)
    _save_torch(S3Gen(), tmp / "s3gen.pt")
    (tmp / "grapheme_mtl_merged_expanded_v1.json").write_text(_multilingual_tokenizer_json(), encoding="utf-8")
    _write_cangjie(tmp, seed)
    _write_pkuseg_home(tmp / PKUSEG_HOME_NAME, seed)


_WRITERS: dict[str, Callable[[Path, int], None]] = {
    "original": _write_original,
    "turbo": _write_turbo,
    "multilingual": _write_multilingual,
}


# ------------------------------------------------------------------------ tokenizers


def _train_merges(alphabet: list[str], vocab_size: int, byte_level: bool = False) -> Any:
    """BPE trained on ``_CORPUS``: real merges, so token counts look like real text.

    The trainer is deterministic for a fixed corpus, so the file is reproducible.
    """
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    if byte_level:
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        alphabet = pre_tokenizers.ByteLevel.alphabet()
    else:
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=sorted(alphabet),
        show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(_CORPUS.strip().splitlines(), trainer=trainer)
    return tok


def _trained_vocab_and_merges(tok: Any) -> tuple[list[str], list[tuple[str, str]]]:
    model = json.loads(tok.to_str())["model"]
    ordered = sorted(model["vocab"], key=model["vocab"].__getitem__)
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    return ordered, merges


def _whitespace_bpe_json(
    *,
    size: int,
    alphabet: list[str],
    pinned: Mapping[str, int],
    added: list[str],
) -> str:
    """A BPE ``tokenizers`` file shaped like Chatterbox's grapheme tokenizers.

    Same model type (BPE, ``[UNK]`` as unk token), ``Whitespace`` pre-tokenizer
    (EnTokenizer turns spaces into ``[SPACE]`` before encoding), and every
    ``[...]`` control token registered as a special added token so it is never
    split into ``[``, ``SPACE``, ``]``. ``pinned`` tokens keep fixed ids (T3
    hard-codes start=255 and stop=0); everything else fills the free ids below
    ``size``, T3's text vocabulary size.
    """
    from tokenizers import AddedToken, Tokenizer, models, pre_tokenizers

    budget = size - len(pinned) - len(added)
    learned, merges = _trained_vocab_and_merges(_train_merges(alphabet, budget))
    free = (i for i in range(size) if i not in set(pinned.values()))
    vocab = dict(pinned)
    for token in [*learned, *added]:
        if token not in vocab:
            vocab[token] = next(free)
    assert max(vocab.values()) < size, "tokenizer does not fit T3's text vocabulary"

    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    specials = sorted([*pinned, *added], key=vocab.__getitem__)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok.to_str(pretty=True)


def _english_tokenizer_json() -> str:
    pinned = dict(_EN_SPECIALS)
    for i, token in enumerate(_EN_RESERVED, start=_EN_SPECIALS["[START]"] + 1):
        pinned[token] = i
    alphabet = list(string.ascii_letters + string.digits + string.punctuation)
    return _whitespace_bpe_json(size=704, alphabet=alphabet, pinned=pinned, added=[])


def _multilingual_tokenizer_json() -> str:
    alphabet = set(string.ascii_lowercase + string.digits + string.punctuation + _MTL_EXTRA_CHARS)
    for lo, hi in _MTL_RANGES:
        alphabet.update(chr(c) for c in range(lo, hi + 1) if unicodedata.category(chr(c)) != "Cn")
    added = [f"[{lang}]" for lang in _MTL_LANGUAGES] + list(_CANGJIE_TOKENS)
    return _whitespace_bpe_json(size=2454, alphabet=sorted(alphabet), pinned=dict(_EN_SPECIALS), added=added)


def _write_gpt2_tokenizer(tmp: Path) -> None:
    """GPT-2 style slow-tokenizer files, as the chatterbox-turbo repo ships them.

    ``AutoTokenizer.from_pretrained(ckpt_dir)`` reads ``tokenizer_config.json``
    for the class, ``vocab.json``/``merges.txt`` for byte-level BPE, and
    ``added_tokens.json`` for the paralinguistic tags. GPT-2's real 50k merges
    are not available offline: we learn what the corpus offers, then pad with
    synthetic merges (byte-level concatenations) so the vocabulary has GPT-2's
    exact size and ids, and the loader's length check passes silently.
    """
    learned, merges = _trained_vocab_and_merges(_train_merges([], _GPT2_BASE_VOCAB - 1, byte_level=True))
    vocab = {token: i for i, token in enumerate(learned)}
    base = [t for t in learned if len(t) == 1]
    # Deterministic filler: left token from the vocab in id order, right from the
    # byte alphabet, skipping what already exists.
    for left in list(vocab):
        if len(vocab) >= _GPT2_BASE_VOCAB - 1:
            break
        for right in base:
            if len(vocab) >= _GPT2_BASE_VOCAB - 1:
                break
            if left + right not in vocab:
                vocab[left + right] = len(vocab)
                merges.append((left, right))
    vocab[_EOT] = len(vocab)
    assert len(vocab) == _GPT2_BASE_VOCAB

    (tmp / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2", *(f"{a} {b}" for a, b in merges)]
    (tmp / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    added = {tag: _GPT2_BASE_VOCAB + i for i, tag in enumerate(_TURBO_TAGS)}
    (tmp / "added_tokens.json").write_text(json.dumps(added, indent=2), encoding="utf-8")
    special = {"bos_token": _EOT, "eos_token": _EOT, "unk_token": _EOT}
    (tmp / "special_tokens_map.json").write_text(json.dumps(special, indent=2), encoding="utf-8")
    added_decoder = {
        str(i): {
            "content": t,
            "lstrip": False,
            "normalized": t != _EOT,
            "rstrip": False,
            "single_word": False,
            "special": t == _EOT,
        }
        for t, i in {_EOT: vocab[_EOT], **added}.items()
    }
    config = {
        "add_prefix_space": False,
        "added_tokens_decoder": added_decoder,
        "bos_token": _EOT,
        "clean_up_tokenization_spaces": True,
        "eos_token": _EOT,
        "model_max_length": 1024,
        "tokenizer_class": "GPT2Tokenizer",
        "unk_token": _EOT,
    }
    (tmp / "tokenizer_config.json").write_text(json.dumps(config, indent=2), encoding="utf-8")


def _write_cangjie(tmp: Path, seed: int) -> None:
    """A small Cangjie table, both where from_pretrained puts it and where it is read.

    ``ChineseCangjieConverter`` fetches it with ``hf_hub_download(...,
    cache_dir=ckpt_dir)``, i.e. from a hub-cache tree *inside* the checkpoint
    folder; with ``HF_HUB_OFFLINE=1`` that tree is used without a network call.
    Codes are random letters: what matters is the ``[cj_x]`` token path.
    """
    rng = random.Random(seed)
    rows = [f"{ch}\t{''.join(rng.choices(string.ascii_lowercase, k=rng.randint(1, 5)))}" for ch in _CANGJIE_SAMPLE]
    text = json.dumps(rows, ensure_ascii=False)
    (tmp / "Cangjie5_TC.json").write_text(text, encoding="utf-8")
    revision = "0" * 40
    repo = tmp / "models--ResembleAI--chatterbox"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(revision, encoding="utf-8")
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (snapshot / "Cangjie5_TC.json").write_text(text, encoding="utf-8")


def _write_pkuseg_home(home: Path, seed: int) -> None:
    """A tiny random spacy-pkuseg model, for ``PKUSEG_HOME``.

    ``MTLTokenizer`` builds a ``pkuseg()`` segmenter at load time for every
    language, and spacy-pkuseg downloads its default ``spacy_ontonotes`` model
    from GitHub unless ``$PKUSEG_HOME/spacy_ontonotes.zip`` exists; offline that
    raises and ``ChatterboxMultilingualTTS.from_local`` fails. This is the same
    folder the download unpacks (``features.msgpack`` + ``weights.npz``), with
    random weights.
    """
    import numpy as np
    import srsly

    model_dir = home / "spacy_ontonotes"
    model_dir.mkdir(parents=True)
    chars = list(_CANGJIE_SAMPLE)
    features = ["/", *(f"c.{c}" for c in chars)]
    tags = {"B": 0, "I": 1}
    srsly.write_msgpack(
        model_dir / "features.msgpack",
        {
            "unigram": sorted(chars),
            "bigram": [],
            "feature_to_idx": {f: i for i, f in enumerate(features)},
            "tag_to_idx": tags,
        },
    )
    n_tag, n_feature = len(tags), len(features)
    rng = np.random.default_rng(seed)
    weights = rng.uniform(-1, 1, n_tag * (n_feature + n_tag))
    np.savez(model_dir / "weights.npz", sizes=np.array([n_tag, n_feature]), w=weights)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for f in sorted(model_dir.iterdir()):
            zf.write(f, f"spacy_ontonotes/{f.name}")
    (home / "spacy_ontonotes.zip").write_bytes(buf.getvalue())


# ------------------------------------------------------------------------ public API


def build_checkpoint(dest: Path, variant: str = "original", seed: int = 0) -> Path:
    """Write a random-weight checkpoint for ``variant`` at ``dest`` and return it.

    Files are written into a temporary sibling folder, the ``.complete`` marker
    last, then renamed into place, so a crash or a concurrent reader never sees
    a half-written ``dest``. An existing ``dest`` is replaced.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    dest = Path(dest).absolute()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.partial-", dir=dest.parent))
    try:
        _WRITERS[variant](tmp, seed)
        (tmp / MARKER_NAME).write_text(json.dumps(_marker(variant, seed)), encoding="utf-8")
        _fsync_tree(tmp)
        old = None
        if dest.exists():
            old = dest.with_name(f".{dest.name}.old-{uuid.uuid4().hex[:8]}")
            os.replace(dest, old)
        os.replace(tmp, dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return dest


def _fsync_tree(root: Path) -> None:
    """Flush file contents before the rename makes the folder visible as done."""
    for path in root.rglob("*"):
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def cache_root() -> Path:
    """Folder holding one cached checkpoint per variant."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else DEFAULT_CACHE


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock so parallel pytest processes build a variant only once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+b") as fh:
        if sys.platform == "win32":
            import msvcrt

            fh.seek(0)
            while True:
                try:
                    msvcrt.locking(fh.fileno(), msvcrt.LK_LOCK, 1)
                    break
                except OSError:  # LK_LOCK gives up after ~10 s; keep waiting
                    continue
            try:
                yield
            finally:
                fh.seek(0)
                msvcrt.locking(fh.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def ensure_checkpoint(variant: str = "original") -> Path:
    """Return the cached checkpoint for ``variant``, building it if needed.

    Lives at ``$CHATTERBOX_TRAY_TEST_CKPT_DIR/<variant>`` or, by default,
    ``<repo>/.cache/test-checkpoints/<variant>``. Leftovers of interrupted builds
    are removed while the lock is held.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    root = cache_root()
    dest = root / variant
    if is_complete(dest, variant):
        return dest
    with _file_lock(root / f".{variant}.lock"):
        if is_complete(dest, variant):  # another process built it while we waited
            return dest
        for stale in root.glob(f".{variant}.*-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        return build_checkpoint(dest, variant)


def loader_env(path: Path, variant: str = "original") -> dict[str, str]:
    """Environment variables a process needs to load ``variant`` from ``path`` offline.

    Both are read at import time by their libraries, so set them before
    chatterbox (and huggingface_hub / spacy_pkuseg) is imported, e.g. in a
    daemon subprocess's ``env``. Without ``HF_HUB_OFFLINE`` the multilingual
    loader spends ~25 s retrying huggingface.co for its Cangjie table.
    """
    env = {"HF_HUB_OFFLINE": "1"}
    if variant == "multilingual":
        env["PKUSEG_HOME"] = str(Path(path) / PKUSEG_HOME_NAME)
    return env


def load_model(path: Path, variant: str = "original", device: str = "cpu") -> Any:
    """Load ``path`` with the chatterbox class for ``variant``, via its own ``from_local``."""
    if variant == "original":
        from chatterbox.tts import ChatterboxTTS as cls
    elif variant == "turbo":
        from chatterbox.tts_turbo import ChatterboxTurboTTS as cls
    elif variant == "multilingual":
        from chatterbox.mtl_tts import ChatterboxMultilingualTTS as cls
    else:
        raise ValueError(f"unknown variant {variant!r}; expected one of {VARIANTS}")
    return cls.from_local(Path(path), device)


def main(argv: list[str] | None = None) -> int:
    """CLI: build (or reuse) a checkpoint and print its path."""
    parser = argparse.ArgumentParser(
        prog="python -m tests.support.checkpoint",
        description="Build a random-weight Chatterbox checkpoint with the real file layout.",
    )
    parser.add_argument("--variant", choices=VARIANTS, default="original")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="rebuild even if complete")
    parser.add_argument(
        "dest",
        nargs="?",
        type=Path,
        help=f"target folder (default: the cache, ${CACHE_ENV} or {DEFAULT_CACHE})",
    )
    args = parser.parse_args(argv)
    if args.dest is None and not args.force and args.seed == 0:
        path = ensure_checkpoint(args.variant)
    else:
        dest = args.dest if args.dest is not None else cache_root() / args.variant
        if args.force or not is_complete(dest, args.variant):
            path = build_checkpoint(dest, args.variant, args.seed)
        else:
            path = dest.absolute()
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
