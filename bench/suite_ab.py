"""The test suite's wall time in two checkouts, side by side in one run.

Each checkout's tests are split by file into ``--slices`` groups (round
robin over the sorted file names, so every group mixes the suite), and the
groups run alternately, one checkout's then the other's, so a machine whose
load drifts slows both alike. Each group is one ``uv run pytest`` in its
checkout (each checkout needs its own ``uv sync``); the figure per checkout
is the sum of its groups' wall times.

    git worktree add --detach ../before a193bd3   # the tree before issue 10
    git worktree add --detach ../after  bf683f26  # the restructuring's tip
    (cd ../before && uv sync) && (cd ../after && uv sync)
    CHATTERBOX_TRAY_TEST_CKPT_DIR=/work/ckpt uv run python -m bench.suite_ab ../before ../after --out DIR

Run it on an otherwise idle machine: a test run or benchmark beside it makes
the figures worthless (one group ran 4x slower that way; docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path


def test_files(tree: Path) -> dict[str, int]:
    """Test files of a checkout and how many tests each holds."""
    out = subprocess.run(
        ["uv", "run", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    counts: dict[str, int] = {}
    for line in out.splitlines():
        if "::" in line:
            name = line.split("::")[0]
            counts[name] = counts.get(name, 0) + 1
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--slices", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("suite_ab"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    plan = {}
    for name, tree in trees.items():
        counts = test_files(tree)
        files = sorted(counts)
        plan[name] = {"tests": sum(counts.values()), "slices": [files[k :: args.slices] for k in range(args.slices)]}
        print(f"{name}: {plan[name]['tests']} tests in {len(files)} files", flush=True)
    results: dict[str, list[dict]] = {name: [] for name in trees}
    for k in range(args.slices):
        for name in ("before", "after") if k % 2 == 0 else ("after", "before"):
            files = plan[name]["slices"][k]
            start = time.perf_counter()
            run = subprocess.run(
                ["uv", "run", "pytest", "-q", "-p", "no:cacheprovider", *files],
                cwd=trees[name],
                capture_output=True,
                text=True,
                check=False,
            )
            wall = time.perf_counter() - start
            summary = (run.stdout.strip().splitlines() or [""])[-1]
            results[name].append({"slice": k, "files": files, "wall_s": wall, "summary": summary})
            (args.out / f"{name}-{k}.log").write_text(run.stdout[-20000:] + run.stderr[-5000:])
            print(f"{name} {k}: {wall:.0f} s  {summary}  (load {os.getloadavg()[0]:.1f})", flush=True)
            (args.out / "suite_ab.json").write_text(json.dumps({"plan": plan, "results": results}, indent=1))
    before = sum(r["wall_s"] for r in results["before"])
    after = sum(r["wall_s"] for r in results["after"])
    print("\n| checkout | tests | wall time |\n|---|---|---|")
    for name, total in (("before", before), ("after", after)):
        print(f"| {name} | {plan[name]['tests']} | {total:.0f} s |")
    print(f"| after / before | | {after / before:.2f}x |")


if __name__ == "__main__":
    main()
