"""The warm daemon against what it replaces, measured side by side in one run.

Run from the repo root::

    uv run python -m bench.daemon_bench [--tokens 8] [--repeat 3] [--json out.json]

What it does, in order (docs/benchmarks.md explains every row):

1. Starts a real daemon (``python -m chatterbox_tray.daemon``) on a fresh home
   with a local checkpoint (by default the random-weight test checkpoint, the
   real file layout loaded through chatterbox's own ``from_local``), and times
   spawn -> ready, split into phases by polling ``status``.
2. Pings it, adds a voice, and times warm requests, conditionals misses and
   memory hits, and a five-sentence text (time to first chunk vs total).
3. Times the protocol alone: a separate echo process with the daemon's framing
   (HMAC-signed JSON header plus a binary frame) and the real client.
4. Runs "script mode": a fresh Python process that imports chatterbox, loads
   the model with ``from_local``, prepares conditionals from the same clip and
   generates the same sentence under the same speech-token budget.
5. Restarts the daemon on the same home (a second cold start) and times disk
   hits of the conditionals prepared before the restart.

It prints the machine, a markdown table (absolute figures and ratios, with
the 1-minute load average when each measurement started) and optionally
writes every raw figure as JSON. Nothing here asserts anything about time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib.metadata
import json
import math
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/daemon_bench.py` as well as `-m`
    sys.path.insert(0, str(ROOT))

#: One sentence, one chunk: the "same request" of script mode and the warm daemon.
SENTENCE = "Good morning, this is a short test of the new voice."
#: Five sentences, five chunks.
FIVE = (
    "The morning was quiet and cool. Birds sang in the old oak tree. "
    "Far away, a train rolled slowly past the fields. Somebody opened a window. "
    "Then the day began."
)
#: One second of float32 mono audio at chatterbox's 24 kHz: what a chunk frame carries.
SECOND_F32_BYTES = 24_000 * 4

# The fresh process of "script mode": what a user's one-off script does, plus the
# same speech-token budget the daemon gives the sentence (chatterbox's generate
# hard-codes max_new_tokens=1000, so we override it on t3.inference the way
# daemon/chatterbox_engine.py does).
SCRIPT_MODE = r"""
import json, sys, time
t0 = time.perf_counter()
import torch
from chatterbox.tts import ChatterboxTTS
t1 = time.perf_counter()
ckpt, device, clip, text, budget, seed = sys.argv[1:]
model = ChatterboxTTS.from_local(ckpt, device)
t2 = time.perf_counter()
inner, s3_inner = model.t3.inference, model.s3gen.inference
tokens, t3_s, s3_s = [], [], []
def budgeted(*args, **kwargs):
    kwargs["max_new_tokens"] = int(budget)
    start = time.perf_counter()
    out = inner(*args, **kwargs)
    t3_s.append(time.perf_counter() - start)
    tokens.append(int(out.shape[-1]))
    return out
def timed(*args, **kwargs):
    start = time.perf_counter()
    out = s3_inner(*args, **kwargs)
    s3_s.append(time.perf_counter() - start)
    return out
object.__setattr__(model.t3, "inference", budgeted)
object.__setattr__(model.s3gen, "inference", timed)
model.prepare_conditionals(clip)
t3 = time.perf_counter()
torch.manual_seed(int(seed))
wav = model.generate(text)
t4 = time.perf_counter()
print("BENCH-JSON " + json.dumps({
    "import_s": t1 - t0, "load_s": t2 - t1, "prepare_s": t3 - t2, "generate_s": t4 - t3,
    "in_process_s": t4 - t0, "tokens": sum(tokens), "t3_s": sum(t3_s), "s3gen_s": sum(s3_s),
    "audio_s": wav.shape[-1] / model.sr, "torch_threads": torch.get_num_threads(),
}))
"""

ECHO_SERVER = "import sys; from bench.daemon_bench import echo_server; echo_server(sys.argv[1], sys.argv[2])"


# -- small helpers ----------------------------------------------------------------


def log(msg: str) -> None:
    """Progress on stderr, so stdout holds the report only."""
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def load1() -> float:
    """The 1-minute load average (NaN where the OS has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return math.nan


def proc_cpu(pid: int) -> float | None:
    """CPU seconds (user + system) a process has used so far, or None."""
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return times.user + times.system
    except Exception:  # gone, not permitted, or no psutil: the column stays empty
        return None


def children_cpu() -> float:
    """CPU seconds of this process's waited-for children (script mode's process)."""
    try:
        import resource

        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime
    except (ImportError, OSError):
        return math.nan


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def summarize(values: list[float]) -> dict[str, Any]:
    """Median, p95, min, max and n of a list of seconds."""
    return {
        "n": len(values),
        "median": statistics.median(values),
        "p95": pct(values, 95),
        "min": min(values),
        "max": max(values),
        "values": values,
    }


def fmt_s(seconds: float | None) -> str:
    """Seconds with a unit that suits them."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "n/a"
    a = abs(seconds)
    if a >= 10:
        return f"{seconds:.1f} s"
    if a >= 1:
        return f"{seconds:.2f} s"
    if a >= 0.1:
        return f"{seconds * 1e3:.0f} ms"
    if a >= 1e-3:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds * 1e6:.0f} µs"


def fmt_stat(stat: dict[str, Any]) -> str:
    """Median, with the spread when there is more than one sample."""
    if stat["n"] == 1:
        return fmt_s(stat["median"])
    return f"{fmt_s(stat['median'])} (min {fmt_s(stat['min'])}, max {fmt_s(stat['max'])}, n={stat['n']})"


def fmt_ratio(r: float | None, prefix: str = "") -> str:
    """A ratio as ``12.3×``."""
    if r is None or math.isnan(r) or math.isinf(r):
        return "n/a"
    if r >= 100:
        return f"{prefix}{r:,.0f}×"
    if r >= 10:
        return f"{prefix}{r:.1f}×"
    return f"{prefix}{r:.2f}×"


def ratio(a: float | None, b: float | None) -> float | None:
    """a / b, or None when it has no meaning."""
    if a is None or b is None or b <= 0:
        return None
    return a / b


def version(dist: str) -> str:
    """An installed distribution's version, or '?'."""
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"


def git_state() -> str:
    """The commit the bench runs on, and whether the tree differs from it."""
    try:
        head = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return "not a git checkout"
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return f"git {head.stdout.strip()}" + (" + uncommitted changes" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def machine_info(device: str) -> dict[str, Any]:
    """What the figures were measured on."""
    import zmq

    cpu_model = platform.processor() or "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    mem_gib = None
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gib = round(int(line.split()[1]) / 2**20, 1)
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu_model": cpu_model,
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "memory_gib": mem_gib,
        "python": platform.python_version(),
        "torch": version("torch"),
        "chatterbox_tts": version("chatterbox-tts"),
        "pyzmq": zmq.pyzmq_version(),
        "libzmq": zmq.zmq_version(),
        "device": device,
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


# -- the protocol echo server (runs in its own process) ----------------------------------


def echo_server(endpoint: str, key: str) -> None:
    """Answer requests the way the daemon frames replies, with N bytes of float32 audio.

    A request's ``args.reply_bytes`` says how much audio the reply carries. The
    audio is made like the daemon's chunks (``astype("<f4").tobytes()``) and
    sent with the same socket options and ``copy=False``. ``op: stop`` ends it.
    """
    import numpy as np
    import zmq

    from chatterbox_tray.ipc.protocol import MAX_FRAME_BYTES, decode, encode, reply_header

    ctx = zmq.Context()
    sock = ctx.socket(zmq.ROUTER)
    sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
    sock.setsockopt(zmq.MAXMSGSIZE, MAX_FRAME_BYTES)
    sock.setsockopt(zmq.LINGER, 500)
    sock.bind(endpoint)
    kb = key.encode("ascii")
    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(MAX_FRAME_BYTES // 64) * 0.1).astype(np.float32)
    while True:
        identity, *body = sock.recv_multipart()
        msg = decode(kb, body)
        n = int(msg.header.get("args", {}).get("reply_bytes", 0))
        buffers = (audio[: n // 4].astype("<f4", copy=False).tobytes(),) if n else ()
        head = reply_header(msg.header["id"], "result", result={"samples": n // 4})
        sock.send_multipart([identity, *encode(kb, head, buffers)], copy=False)
        if msg.header.get("op") == "stop":
            break
    sock.close()
    ctx.term()


class Pinger:
    """Pings the daemon from a thread every ``interval`` s while the model works."""

    def __init__(self, info: Any, interval: float = 0.05) -> None:
        import threading

        self.info = info
        self.interval = interval
        self.times: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinger", daemon=True)

    def _run(self) -> None:
        from chatterbox_tray.ipc.client import Client

        with Client(self.info, timeout=60.0) as client:
            while not self._stop.wait(self.interval):
                self.times.append(client.ping())

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=70)


# -- the benchmark ------------------------------------------------------------------------


class Bench:
    """One run: state, raw figures, and the rows of the table."""

    def __init__(self, args: argparse.Namespace) -> None:
        from tests.support.checkpoint import ensure_checkpoint, loader_env
        from tests.support.daemons import Clips, DaemonProcess, short_home

        self.args = args
        self.t_start = time.perf_counter()
        self.ckpt = Path(args.checkpoint).resolve() if args.checkpoint else ensure_checkpoint("original")
        self.env = {**loader_env(self.ckpt), "TQDM_DISABLE": "1"}
        self.raw: dict[str, Any] = {"loads": {}}
        self.work = short_home()
        self.clips = Clips(self.work)
        self.daemon = DaemonProcess(
            home=short_home(),
            args=(
                "--checkpoint",
                str(self.ckpt),
                "--device",
                args.device,
                "--max-tokens-per-chunk",
                str(args.tokens),
            ),
            env=self.env,
        )
        self._short_home = short_home
        self.requests: list[dict[str, Any]] = []  # every timed synthesis, for the overhead rows

    def mark_load(self, what: str) -> float:
        """Note the 1-minute load average as a measurement starts."""
        value = load1()
        self.raw["loads"][what] = value
        return value

    # -- measurements ----------------------------------------------------------------

    def cold_start(self, label: str) -> dict[str, Any]:
        """Spawn the daemon and time it to "ready", phase by phase, by polling status."""
        from chatterbox_tray.ipc.client import Client

        log(f"{label}: spawning the daemon")
        self.mark_load(label)
        t0 = time.perf_counter()
        self.daemon.spawn()
        info = self.daemon.wait_connectable(self.args.start_timeout)
        t_listen = time.perf_counter() - t0
        marks: list[dict[str, Any]] = []
        last = None
        with Client(info, timeout=60.0) as client:
            while True:
                status = client.status()
                now = time.perf_counter() - t0
                key = (status["state"], status["message"])
                if key != last:
                    marks.append({"t": now, "state": status["state"], "message": status["message"]})
                    last = key
                if status["state"] == "ready":
                    break
                if status["state"] == "failed":
                    raise RuntimeError(f"model failed to load: {status['error']}\n{self.daemon.log_text()}")
                if now > self.args.start_timeout:
                    raise RuntimeError(f"not ready after {now:.0f} s\n{self.daemon.log_text()}")
                time.sleep(0.02)
        t_ready = marks[-1]["t"]
        cpu = proc_cpu(self.daemon.pid)
        found = re.search(r"warm-up took ([0-9.]+) s", self.daemon.log_text())
        result = {
            "total_s": t_ready,
            "listening_s": t_listen,
            "marks": marks,
            "phases": cold_phases(marks, t_listen, t_ready),
            "warmup_logged_s": float(found.group(1)) if found else None,
            "cpu_s": cpu,
        }
        log(f"{label}: ready after {t_ready:.1f} s")
        return result

    def timed_synth(self, client: Any, label: str, text: str, **kwargs: Any) -> dict[str, Any]:
        """One synthesis, timed by the client; the daemon's own summary alongside."""
        cpu0 = proc_cpu(self.daemon.pid)
        t0 = time.perf_counter()
        synthesis = client.synthesize(text, **kwargs)
        arrivals: list[float] = []
        samples = 0
        for chunk in synthesis:
            arrivals.append(time.perf_counter() - t0)
            samples += len(chunk.samples)
        wall = time.perf_counter() - t0
        cpu1 = proc_cpu(self.daemon.pid)
        s = synthesis.summary
        daemon_end = s["queue_wait_s"] + s["synthesis_s"]
        record = {
            "label": label,
            "wall_s": wall,
            "ttfc_s": arrivals[0] if arrivals else None,
            "arrivals_s": arrivals,
            "samples": samples,
            "summary": s,
            # client-observed minus daemon-measured: protocol, scheduling, decoding
            "first_chunk_overhead_s": (arrivals[0] - s["time_to_first_chunk_s"]) if arrivals else None,
            "end_overhead_s": wall - daemon_end,
            "cpu_s": None if cpu0 is None or cpu1 is None else cpu1 - cpu0,
        }
        self.requests.append(record)
        cond = s["conditionals"]
        log(
            f"  {label}: {wall:.2f} s wall, first chunk {record['ttfc_s']:.2f} s, "
            f"{s['chunks']} chunk(s), {s['tokens']} tokens, conditionals {cond['tier']} {cond['seconds']} s"
        )
        return record

    def pings(self, client: Any, n: int) -> dict[str, Any]:
        """n ping round trips of an idle daemon."""
        log(f"ping x{n}")
        self.mark_load("ping")
        for _ in range(20):
            client.ping()
        return summarize([client.ping() for _ in range(n)])

    def protocol_echo(self, n: int) -> dict[str, Any]:
        """Round trips through an echo process with the daemon's framing and the real client."""
        from chatterbox_tray.ipc import endpoints
        from chatterbox_tray.ipc.client import Client, DaemonUnavailable

        log("protocol echo")
        self.mark_load("echo")
        folder = self._short_home()
        endpoint = f"ipc://{folder}/echo.sock"
        key = endpoints.new_key()
        proc = subprocess.Popen(
            [sys.executable, "-c", ECHO_SERVER, endpoint, key],
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
        )
        info = endpoints.ConnectionInfo(requests=endpoint, events=endpoint, key=key, pid=proc.pid)
        out: dict[str, Any] = {}
        try:
            with Client(info, timeout=10.0) as client:
                deadline = time.monotonic() + 60
                while True:
                    try:
                        client.call("echo", {"reply_bytes": 0}, timeout=1.0)
                        break
                    except DaemonUnavailable:
                        if time.monotonic() > deadline or proc.poll() is not None:
                            raise
                sizes = {"header_only": 0, "audio_1s": SECOND_F32_BYTES, "audio_10s": 10 * SECOND_F32_BYTES}
                for name, size in sizes.items():
                    count = n if size <= SECOND_F32_BYTES else max(50, n // 5)
                    for _ in range(20):
                        client.call("echo", {"reply_bytes": size})
                    times = []
                    for _ in range(count):
                        start = time.perf_counter()
                        client.call("echo", {"reply_bytes": size})
                        times.append(time.perf_counter() - start)
                    out[name] = {**summarize(times), "reply_bytes": size}
                client.call("stop")
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            shutil.rmtree(folder, ignore_errors=True)
        return out

    def script_mode(self, clip_path: Path, budget: int) -> dict[str, Any]:
        """A fresh Python process: import, from_local, prepare_conditionals, generate."""
        log("script mode: fresh python process")
        self.mark_load("script")
        env = {**os.environ, **self.env}
        cpu0 = children_cpu()
        t0 = time.perf_counter()
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                SCRIPT_MODE,
                str(self.ckpt),
                self.args.device,
                str(clip_path),
                SENTENCE,
                str(budget),
                "0",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=900,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"script mode failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
        line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH-JSON "))
        result = json.loads(line[len("BENCH-JSON ") :])
        result["wall_s"] = wall
        result["interpreter_s"] = wall - result["in_process_s"]
        result["cpu_s"] = children_cpu() - cpu0
        log(f"  script mode: {wall:.1f} s wall ({result['tokens']} tokens)")
        return result

    def wait_cached(self, client: Any, name: str, timeout: float = 600.0) -> str:
        """Wait until a library voice's conditionals are cached; return the tier."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            voice = next(v for v in client.voices_list() if v["name"] == name)
            if voice["cache"] is not None:
                return voice["cache"]
            time.sleep(0.1)
        raise RuntimeError(f"voice {name} was not prepared within {timeout:.0f} s")

    # -- the run ---------------------------------------------------------------------

    def run(self) -> None:
        from chatterbox_tray.daemon.text import split_sentences, token_budget

        a = self.args
        raw = self.raw
        raw["machine"] = machine_info(a.device)
        raw["args"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
        raw["checkpoint"] = str(self.ckpt)
        raw["source"] = git_state()
        raw["budget_sentence"] = token_budget(SENTENCE, a.tokens)
        raw["budgets_five"] = [token_budget(c.text, a.tokens) for c in split_sentences(FIVE)]
        log(f"checkpoint {self.ckpt}; {a.tokens} speech tokens per chunk; repeat {a.repeat}")

        voice_clip = self.clips.new()
        voice_path = self.clips.write(voice_clip, "voice.wav")
        miss_clips = [self.clips.new() for _ in range(a.repeat)]
        raw["clip_bytes"] = len(voice_clip)

        # 1. cold start on a fresh home
        raw["cold_start"] = self.cold_start("cold start (fresh home)")
        client = self.daemon.client(timeout=600.0)

        # 4a. ping
        raw["ping"] = self.pings(client, a.pings)

        # 2b. the warm daemon with a cached voice
        log("adding the voice and waiting for its conditionals")
        client.voices_add("bench", data=voice_clip)
        raw["voice_tier_after_add"] = self.wait_cached(client, "bench")
        self.mark_load("warm")
        raw["warm"] = [
            self.timed_synth(client, f"warm {i + 1}", SENTENCE, voice="bench", seed=0) for i in range(a.repeat)
        ]

        # 3. conditionals: a miss for each fresh clip (the warm and five-sentence
        # requests above and below are the memory hits; disk hits come after the restart)
        self.mark_load("conditionals")
        raw["miss"] = [
            self.timed_synth(client, f"miss {i + 1}", SENTENCE, voice_data=clip, seed=0)
            for i, clip in enumerate(miss_clips)
        ]

        # 5. five sentences
        self.mark_load("five")
        with Pinger(self.daemon.info) as pinger:
            raw["five"] = [
                self.timed_synth(client, f"five sentences {i + 1}", FIVE, voice="bench", seed=0)
                for i in range(a.repeat)
            ]
        raw["ping_busy"] = summarize(pinger.times)
        raw["cache_stats_before_restart"] = client.cache_stats()

        # 4b. the protocol alone
        raw["echo"] = self.protocol_echo(a.pings)

        # 2a. script mode (the daemon sits idle meanwhile)
        raw["script"] = [self.script_mode(voice_path, raw["budget_sentence"]) for _ in range(a.script_runs)]

        # 1'. restart on the same home, then 3'. disk hits
        log("restarting the daemon on the same home")
        code = self.daemon.stop()
        if code != 0:
            raise RuntimeError(f"daemon exited with {code}:\n{self.daemon.log_text()}")
        raw["restart"] = self.cold_start("cold start (restart, same home)")
        client = self.daemon.client(timeout=600.0)
        self.mark_load("disk")
        raw["disk"] = [
            self.timed_synth(client, f"disk hit {i + 1}", SENTENCE, voice_data=clip, seed=0)
            for i, clip in enumerate(miss_clips)
        ]
        raw["cache_stats_after_restart"] = client.cache_stats()
        self.daemon.stop()
        raw["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
        raw["bench_wall_s"] = time.perf_counter() - self.t_start

    def cleanup(self) -> None:
        """Stop the daemon and remove the temporary folders."""
        self.daemon.cleanup()
        shutil.rmtree(self.work, ignore_errors=True)


def cold_phases(marks: list[dict[str, Any]], t_listen: float, t_ready: float) -> dict[str, float | None]:
    """Split spawn -> ready at the first status seen of each loading step.

    A step shorter than the polling interval may never be seen; it then counts
    as zero and its time goes to the step before it.
    """

    def first(pred: Callable[[dict[str, Any]], bool]) -> float | None:
        return next((m["t"] for m in marks if pred(m)), None)

    bounds = [
        ("listening", t_listen),
        ("fingerprint", first(lambda m: m["message"].startswith("fingerprinting"))),
        ("weights", first(lambda m: m["message"].startswith("loading weights"))),
        ("warmup", first(lambda m: m["state"] == "warming_up")),
        ("ready", t_ready),
    ]
    # A missing bound takes the next one's time (its phase is then zero).
    times: list[float] = []
    for i, (_, t) in enumerate(bounds):
        if t is None:
            t = next(bt for _, bt in bounds[i + 1 :] if bt is not None)
        times.append(max(t, times[-1]) if times else t)
    return {
        "spawn_to_listening_s": times[0],
        "import_chatterbox_s": times[1] - times[0],
        "fingerprint_s": times[2] - times[1],
        "from_local_s": times[3] - times[2],
        "warmup_s": times[4] - times[3],
    }


# -- the report ---------------------------------------------------------------------------


def build_rows(raw: dict[str, Any]) -> list[dict[str, str]]:
    """The table: one row per figure, with what it is compared with and the ratio."""
    rows: list[dict[str, str]] = []
    loads = raw["loads"]

    def row(
        key: str,
        what: str,
        value: str,
        vs: str = "",
        r: str = "",
        load: str | None = None,
        cores: tuple[Any, Any] | None = None,
    ) -> None:
        """``cores``: (CPU seconds, wall seconds) of the process doing the work."""
        load_val = loads.get(load) if load else None
        used = ""
        if cores is not None and cores[0] is not None and not math.isnan(cores[0]) and cores[1]:
            used = f"{cores[0] / cores[1]:.2f}"
        rows.append(
            {
                "row": key,
                "what": what,
                "value": value,
                "vs": vs,
                "ratio": r,
                "load": "" if load_val is None else f"{load_val:.2f}",
                "cores": used,
            }
        )

    def med(records: list[dict[str, Any]], get: Callable[[dict[str, Any]], float | None]) -> dict[str, Any]:
        return summarize([v for v in (get(r) for r in records) if v is not None])

    # 1. cold start
    cold, restart = raw["cold_start"], raw["restart"]
    ph = cold["phases"]
    total = cold["total_s"]
    row(
        "1",
        "Daemon cold start, fresh home: spawn → state `ready`",
        fmt_s(total),
        load="cold start (fresh home)",
        cores=(cold.get("cpu_s"), total),
    )
    parts = [
        ("1a", "↳ spawn → answering ping (interpreter, torch + daemon imports, bind)", ph["spawn_to_listening_s"]),
        ("1b", "↳ `import chatterbox` (status “importing chatterbox”)", ph["import_chatterbox_s"]),
        ("1c", "↳ fingerprint checkpoint (first + last MiB of each file)", ph["fingerprint_s"]),
        ("1d", "↳ `ChatterboxTTS.from_local` (read weights, build modules)", ph["from_local_s"]),
    ]
    for key, what, value in parts:
        shown = fmt_s(value) if value > 0 else "not seen (shorter than the 20 ms poll)"
        row(key, what, shown, "share of 1", f"{100 * value / total:.0f} %")
    warm_note = f"; log: {fmt_s(cold['warmup_logged_s'])}" if cold["warmup_logged_s"] is not None else ""
    row(
        "1e",
        f"↳ warm-up: prepare_conditionals + 4-token generate{warm_note}",
        fmt_s(ph["warmup_s"]),
        "share of 1",
        f"{100 * ph['warmup_s'] / total:.0f} %",
    )
    row(
        "1′",
        "Daemon restart on the same home: spawn → `ready`",
        fmt_s(restart["total_s"]),
        "1",
        fmt_ratio(ratio(restart["total_s"], total)),
        load="cold start (restart, same home)",
        cores=(restart.get("cpu_s"), restart["total_s"]),
    )

    # 2. script mode vs warm daemon
    script = raw["script"]
    warm = raw["warm"]
    s_wall = summarize([s["wall_s"] for s in script])
    w_wall = med(warm, lambda r: r["wall_s"])
    budget = raw["budget_sentence"]
    row(
        "2a",
        f"Script mode: fresh `python`, import + `from_local` + prepare + generate 1 sentence ({budget}-token budget)",
        fmt_stat(s_wall),
        load="script",
        cores=(statistics.median(s.get("cpu_s", math.nan) for s in script), s_wall["median"]),
    )
    for key, what, field in (
        ("2a.1", "↳ interpreter start + exit", "interpreter_s"),
        ("2a.2", "↳ `import torch, chatterbox.tts`", "import_s"),
        ("2a.3", "↳ `ChatterboxTTS.from_local(ckpt, device)`", "load_s"),
        ("2a.4", "↳ `prepare_conditionals(clip)` (first in the process: cold)", "prepare_s"),
        ("2a.5", "↳ `generate(sentence)`", "generate_s"),
    ):
        value = statistics.median(s[field] for s in script)
        row(key, what, fmt_s(value), "share of 2a", f"{100 * value / s_wall['median']:.0f} %")
    row(
        "2b",
        "Warm daemon, cached voice, same sentence, seed and budget (client: send → summary)",
        fmt_stat(w_wall),
        "2a ÷ 2b",
        fmt_ratio(ratio(s_wall["median"], w_wall["median"])),
        load="warm",
        cores=cores_of(warm),
    )
    w_synth = med(warm, lambda r: r["summary"]["synthesis_s"])
    s_gen = statistics.median(s["generate_s"] for s in script)
    row(
        "2c",
        "↳ model work only: daemon `synthesis_s` vs script's `generate` (same budget)",
        fmt_stat(w_synth),
        "2a.5 ÷ 2c",
        fmt_ratio(ratio(s_gen, w_synth["median"])),
    )
    w_tokens = statistics.median(r["summary"]["tokens"] for r in warm)
    s_tokens = statistics.median(s["tokens"] for s in script)
    w_t3 = statistics.median(r["summary"]["t3_s"] for r in warm)
    w_s3 = statistics.median(r["summary"]["s3gen_s"] for r in warm)
    s_t3 = statistics.median(s["t3_s"] for s in script)
    s_s3 = statistics.median(s["s3gen_s"] for s in script)
    row(
        "2d",
        "↳ T3 (speech tokens) per token, daemon vs script",
        f"{fmt_s(w_t3 / max(w_tokens, 1))} ({w_tokens:g} tokens)",
        f"script {fmt_s(s_t3 / max(s_tokens, 1))} ({s_tokens:g} tokens)",
        fmt_ratio(ratio(s_t3 / max(s_tokens, 1), w_t3 / max(w_tokens, 1))),
    )
    row(
        "2e",
        "↳ S3Gen (tokens → waveform, runs over the reference prompt too), daemon vs script",
        fmt_s(w_s3),
        f"script {fmt_s(s_s3)}",
        fmt_ratio(ratio(s_s3, w_s3)),
    )

    # 3. conditionals
    miss = med(raw["miss"], lambda r: r["summary"]["conditionals"]["seconds"])
    memory_hits = [r for r in _all_requests(raw) if r["summary"]["conditionals"]["tier"] == "memory"]
    mem = med(memory_hits, lambda r: r["summary"]["conditionals"]["seconds"])
    disk = med(raw["disk"], lambda r: r["summary"]["conditionals"]["seconds"])
    tiers = {k: sorted({r["summary"]["conditionals"]["tier"] for r in raw[k]}) for k in ("miss", "disk")}
    resolution = 1e-4  # the summary rounds seconds to 4 decimals
    row(
        "3a",
        f"Conditionals miss: prepare + store (tier {'/'.join(tiers['miss'])})",
        fmt_stat(miss),
        load="conditionals",
        cores=cores_of(raw["miss"]),
    )

    def hit_ratio(stat: dict[str, Any]) -> str:
        if stat["median"] >= resolution:
            return fmt_ratio(ratio(miss["median"], stat["median"]))
        return fmt_ratio(miss["median"] / resolution, "> ")

    mem_value = fmt_stat(mem) if mem["median"] >= resolution else "< 0.1 ms (summary rounds to 0.1 ms)"
    row("3b", f"Conditionals memory hit (rows 2b and 5, n={mem['n']})", mem_value, "3a ÷ 3b", hit_ratio(mem))
    row(
        "3c",
        f"Conditionals disk hit after restart (tier {'/'.join(tiers['disk'])})",
        fmt_stat(disk),
        "3a ÷ 3c",
        hit_ratio(disk),
        load="disk",
        cores=cores_of(raw["disk"]),
    )

    # 4. protocol
    ping = raw["ping"]
    echo = raw["echo"]
    row(
        "4a",
        f"Ping round trip to the idle daemon (n={ping['n']}): median",
        fmt_s(ping["median"]),
        f"p95 {fmt_s(ping['p95'])}",
        fmt_ratio(ratio(ping["p95"], ping["median"])),
        load="ping",
    )
    e0, e1, e10 = echo["header_only"], echo["audio_1s"], echo["audio_10s"]
    row(
        "4b",
        f"Echo process, daemon framing, header-only reply (n={e0['n']}): median",
        fmt_s(e0["median"]),
        "4a ÷ 4b",
        fmt_ratio(ratio(ping["median"], e0["median"])),
        load="echo",
    )
    row(
        "4c",
        f"Echo, reply carries 1 s of float32 audio ({SECOND_F32_BYTES // 1000} kB, n={e1['n']}): median",
        fmt_s(e1["median"]),
        "4c ÷ 4b",
        fmt_ratio(ratio(e1["median"], e0["median"])),
    )
    row(
        "4d",
        f"Echo, reply carries 10 s of float32 audio ({10 * SECOND_F32_BYTES // 1000} kB, n={e10['n']}): median",
        fmt_s(e10["median"]),
        "4d ÷ 4b",
        fmt_ratio(ratio(e10["median"], e0["median"])),
    )
    per_second = e1["median"] - e0["median"]
    five = raw["five"]
    make_second = statistics.median(r["summary"]["synthesis_s"] / r["summary"]["audio_s"] for r in five)
    row(
        "4e",
        "↳ protocol cost of 1 s of audio (4c − 4b) vs making 1 s of audio (5: synthesis_s ÷ audio_s)",
        fmt_s(per_second),
        f"model {fmt_s(make_second)} per audio second",
        f"{100 * per_second / make_second:.4f} %",
    )
    reqs = _all_requests(raw)
    first_oh = med(reqs, lambda r: r["first_chunk_overhead_s"])
    end_oh = med(reqs, lambda r: r["end_overhead_s"])
    row(
        "4f",
        f"First-chunk overhead: client time to first chunk − daemon's (n={first_oh['n']} requests)",
        fmt_stat(first_oh),
        "4f ÷ 4c",
        fmt_ratio(ratio(first_oh["median"], e1["median"])),
    )
    row(
        "4g",
        "End overhead: client send → summary − daemon (queue_wait_s + synthesis_s)",
        fmt_stat(end_oh),
        "4g ÷ 4b",
        fmt_ratio(ratio(end_oh["median"], e0["median"])),
    )
    busy = raw["ping_busy"]
    row(
        "4h",
        f"Ping while the daemon synthesizes (row 5, every 50 ms, n={busy['n']}): median",
        fmt_s(busy["median"]),
        f"p95 {fmt_s(busy['p95'])}, max {fmt_s(busy['max'])}; ÷ 4a",
        fmt_ratio(ratio(busy["median"], ping["median"])),
    )

    # 5. five sentences
    ttfc = med(five, lambda r: r["ttfc_s"])
    total5 = med(five, lambda r: r["wall_s"])
    chunks = five[0]["summary"]["chunks"]
    row(
        "5a",
        f"Five sentences ({chunks} chunks, ≤{max(raw['budgets_five'])} tokens each): time to first chunk (client)",
        fmt_stat(ttfc),
        load="five",
    )
    row(
        "5b",
        "Five sentences: send → last chunk and summary (client)",
        fmt_stat(total5),
        "5b ÷ 5a",
        fmt_ratio(ratio(total5["median"], ttfc["median"])),
        cores=cores_of(five),
    )
    d_ttfc = med(five, lambda r: r["summary"]["time_to_first_chunk_s"])
    d_total = med(five, lambda r: r["summary"]["queue_wait_s"] + r["summary"]["synthesis_s"])
    row(
        "5c",
        "↳ the same, daemon-side: time_to_first_chunk_s vs queue_wait_s + synthesis_s",
        f"{fmt_s(d_ttfc['median'])} / {fmt_s(d_total['median'])}",
        "total ÷ first",
        fmt_ratio(ratio(d_total["median"], d_ttfc["median"])),
    )
    audio = statistics.median(r["summary"]["audio_s"] for r in five)
    rtf = statistics.median(r["summary"]["rtf"] for r in five if r["summary"]["rtf"])
    row(
        "5d",
        "↳ audio made (random weights: not speech-length) and real-time factor",
        fmt_s(audio),
        "rtf (synthesis ÷ audio)",
        f"{rtf:.1f}",
    )
    return rows


def cores_of(records: list[dict[str, Any]]) -> tuple[float | None, float]:
    """(CPU seconds, wall seconds) summed over timed requests, for the "cores used" column."""
    cpu = [r.get("cpu_s") for r in records]
    if not records or any(c is None for c in cpu):
        return None, 0.0
    return sum(cpu), sum(r["wall_s"] for r in records)


def _all_requests(raw: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for key in ("warm", "miss", "five", "disk") for r in raw.get(key, [])]


def render(raw: dict[str, Any], rows: list[dict[str, str]]) -> str:
    """The report: machine header, table, notes."""
    m = raw["machine"]
    a = raw["args"]
    load_start = ", ".join(f"{v:.2f}" for v in m["loadavg_start"]) if m["loadavg_start"] else "n/a"
    load_end = ", ".join(f"{v:.2f}" for v in raw["loadavg_end"]) if raw.get("loadavg_end") else "n/a"
    lines = [
        "## Chatterbox Tray daemon benchmark",
        "",
        f"- date: {m['date']}; bench wall time {fmt_s(raw['bench_wall_s'])}",
        f"- machine: {m['platform']}; {m['cpu_model']}; {m['cpu_count']} CPUs ({m['cpus_usable']} usable); "
        f"{m['memory_gib']} GiB RAM",
        f"- software: Python {m['python']}, torch {m['torch']}, chatterbox-tts {m['chatterbox_tts']}, "
        f"pyzmq {m['pyzmq']} (libzmq {m['libzmq']}); torch threads in script mode: "
        f"{raw['script'][0]['torch_threads']}",
        f"- device: {m['device']}; checkpoint: {raw['checkpoint']}",
        f"- source: {raw.get('source', '?')}" + (f"; {a['note']}" if a.get("note") else ""),
        f"- speech-token budget per chunk: {a['tokens']} (--tokens); warm measurements repeated "
        f"{a['repeat']}× (median shown); script mode runs: {a['script_runs']}; pings: {a['pings']}",
        f"- load average (1, 5, 15 min): {load_start} at start, {load_end} at end; "
        "column “load” = 1-min load average when that measurement started (our own work included); "
        "“cores used” = CPU seconds of the working process ÷ wall seconds (2 would be both cores of a 2-core box)",
        "",
        "| Row | Measurement | Value | Compared with | Ratio | Load | Cores used |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        cells = [r["row"], r["what"], r["value"], r["vs"], r["ratio"], r["load"], r.get("cores", "")]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.daemon_bench",
        description="Measure the warm daemon against cold starts and one-shot scripts (see docs/benchmarks.md).",
    )
    parser.add_argument("--tokens", type=int, default=8, metavar="N", help="speech-token budget per chunk (default 8)")
    parser.add_argument(
        "--repeat", type=int, default=1, metavar="N", help="repeat each warm measurement N times (default 1)"
    )
    parser.add_argument("--script-runs", type=int, default=1, metavar="N", help="script-mode processes (default 1)")
    parser.add_argument("--pings", type=int, default=1000, metavar="N", help="ping / echo round trips (default 1000)")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write every raw figure here as JSON")
    parser.add_argument(
        "--checkpoint",
        metavar="DIR",
        help="an original-variant checkpoint folder (default: the random-weight test checkpoint, built if missing)",
    )
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "mps"), help="model device (default cpu)")
    parser.add_argument(
        "--start-timeout", type=float, default=900.0, metavar="S", help="seconds a daemon may take to be ready"
    )
    parser.add_argument("--note", default="", help="free text for the report's header (e.g. which commit)")
    parser.add_argument("--from-json", type=Path, metavar="PATH", help="print the report of a saved --json run")
    args = parser.parse_args(argv)
    if args.tokens < 1 or args.repeat < 1 or args.script_runs < 1 or args.pings < 10:
        parser.error("--tokens, --repeat and --script-runs must be at least 1, --pings at least 10")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.from_json:
        raw = json.loads(args.from_json.read_text(encoding="utf-8"))
        print(render(raw, build_rows(raw)))
        return 0
    bench = Bench(args)
    try:
        bench.run()
    finally:
        bench.cleanup()
    if args.json:  # before the report, so a report bug never loses a run (see --from-json)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(bench.raw, indent=2, default=str), encoding="utf-8")
        log(f"raw figures written to {args.json}")
    print(render(bench.raw, build_rows(bench.raw)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
