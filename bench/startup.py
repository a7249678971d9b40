#!/usr/bin/env python3
"""Start-up benchmark, measured against baselines in the same run.

1. `aishell --version` against `python -c pass` (same interpreter).
2. `aishell exec true` against the equivalent bare `docker run --rm --init <image> true`
   (same image, so the image's entrypoint runs in both; the difference is
   aishell's own work: config, state, inspections, argv).

Budget: exec ratio <= 1.15. Needs a finished `aishell setup` (uses the
caller's AISHELL_HOME) and runs in the current directory's project.
Usage: python bench/startup.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def timed(argv: list[str], runs: int, env: dict[str, str] | None = None) -> list[float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
            check=False,
        )
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv)} failed: {proc.stderr.decode()[-500:]}")
    return samples


def summary(name: str, samples: list[float]) -> float:
    med = statistics.median(samples)
    print(f"  {name:<44} median {med * 1000:7.1f} ms  min {min(samples) * 1000:7.1f} ms")
    return med


def image_in_use() -> tuple[str, str]:
    """The image ID `aishell exec` runs here (this home's base hold) and its volume."""
    home = Path(os.environ.get("AISHELL_HOME") or Path.home() / ".aishell")
    state = json.loads((home / "state.json").read_text())
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from aishell import paths
    from aishell.engine.images import Holds

    hold = Holds(paths.home_id()).base
    image = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", hold],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not image:
        sys.exit(f"{hold} does not exist: run 'aishell exec true' once first")
    return image, state.get("harness_volume", "")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    py = sys.executable
    import compileall

    # pip compiles bytecode at install time; do the same so the first runs are fair.
    compileall.compile_dir(str(Path(__file__).resolve().parents[1] / "src" / "aishell"), quiet=1)
    aishell = [py, "-m", "aishell"]

    print("aishell --version vs python -c pass")
    base = summary("python -c pass", timed([py, "-c", "pass"], args.runs))
    ours = summary("aishell --version", timed([*aishell, "--version"], args.runs))
    print(f"  overhead {1000 * (ours - base):.1f} ms, ratio {ours / base:.2f}")

    image, volume = image_in_use()
    bare = ["docker", "run", "--rm", "--init", "-i"]
    if volume:
        bare += ["--mount", f"type=volume,source={volume},target=/tools,readonly"]
    bare += [image, "true"]
    timed(bare, 2)  # warm up
    timed([*aishell, "exec", "true"], 2)
    print("aishell exec true vs bare docker run (interleaved)")
    bare_s: list[float] = []
    ours_s: list[float] = []
    for _ in range(args.runs):
        bare_s += timed(bare, 1)
        ours_s += timed([*aishell, "exec", "true"], 1)
    b = summary("docker run --rm --init <base id> true", bare_s)
    o = summary("aishell exec true", ours_s)
    ratio = o / b
    print(f"  overhead {1000 * (o - b):.1f} ms, ratio {ratio:.3f} (budget <= 1.15)")
    ok = ratio <= 1.15
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
