#!/usr/bin/env python3
"""Launch time against config size, measured against baselines in the same run.

A project and global config with ever more entries (env variables up to the cap of
each file, and as many `docker_args` labels), at 0, 1/4, 1/2 and all of the caps:

1. the launch's own work before the engine (config, state, checks, the argv:
   `resolve`, `assemble`, `build_run_args`), in-process, median of --runs;
2. `aishell exec true` end to end, against a bare `docker run --rm --init <image> true`.

The work must grow linearly with the config (issue 15 found 10k env entries took
7.2 s, 20k 27.7 s): the cost per entry of the last step may be at most twice that of
the first. Needs a finished `aishell setup` (the caller's AISHELL_HOME, whose global
config is replaced for the run and restored after) and Docker; runs in a temporary
project. Usage: python bench/config_size.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

FRACTIONS = (0.0, 0.25, 0.5, 1.0)


def config_text(entries: int, prefix: str) -> str:
    env = "".join(f"  {prefix}_VAR_{i}: value-{i}\n" for i in range(entries))
    labels = "".join(f"  - --label=bench.{prefix}.{i}=x\n" for i in range(entries // 2))
    return ("env:\n" + env if env else "env: {}\n") + (
        "docker_args:\n" + labels if labels else "docker_args: []\n"
    )


def pipeline_seconds(project: Path, runs: int) -> float:
    """The median time of the launch's work before the engine, in this process."""
    from aishell.engine.client import Engine
    from aishell.engine.run_args import build_run_args
    from aishell.launch.assemble import assemble
    from aishell.launch.materialise import Materials
    from aishell.launch.request import LaunchRequest
    from aishell.launch.resolve import resolve

    engine = Engine(binary=shutil.which("docker") or "/usr/bin/docker", kind="docker")
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        req = LaunchRequest(kind="exec", args=("true",), cwd=str(project))
        resolved = resolve(req)
        materials = Materials(
            engine=engine,
            image="sha256:" + "0" * 64,
            volume=resolved.volume,
            agent_binds=(),
            flavour=engine.flavour,
        )
        build_run_args(assemble(resolved, materials), resolved.host)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def timed(argv: list[str], runs: int, cwd: Path) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
        samples.append(time.perf_counter() - start)
        if proc.returncode != 0:
            sys.exit(f"{' '.join(argv[:4])} failed: {proc.stderr.decode()[-800:]}")
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    from aishell import paths
    from aishell.config.checks import LIMITS
    from aishell.engine.images import Holds

    cap = LIMITS["env"].cap
    home = paths.aishell_home()
    global_file = home / "config.yaml"
    saved = global_file.read_text() if global_file.exists() else None
    kept = "".join(
        line + "\n"
        for line in (saved or "").splitlines()
        if line.startswith(("ca_certificates", "  - /", "base_image", "engine"))
    )
    image = subprocess.run(
        ["docker", "image", "inspect", "--format", "{{.Id}}", Holds(paths.home_id()).base],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    if not image:
        sys.exit("no base image held by this home: run 'aishell exec true' once first")
    project = Path(tempfile.mkdtemp(prefix="aishell-bench-config-"))
    subprocess.run(["git", "init", "-q", str(project)], check=True)
    (project / ".aishell").mkdir()
    aishell = [sys.executable, "-m", "aishell", "exec", "true"]
    bare = ["docker", "run", "--rm", "--init", image, "true"]
    env_os = dict(os.environ)
    rows = []
    try:
        bare_s = timed(bare, args.runs, project)
        for fraction in FRACTIONS:
            entries = int(cap * fraction)
            global_file.write_text(kept + config_text(entries, "G"))
            (project / ".aishell" / "config.yaml").write_text(config_text(entries, "P"))
            # The user approves the changed project config (trust on change).
            subprocess.run(
                [sys.executable, "-m", "aishell", "trust", "--yes"], cwd=project, check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            for name in list(os.environ):
                if name.startswith(("G_VAR_", "P_VAR_")):
                    del os.environ[name]
            work = pipeline_seconds(project, args.runs)
            launch = timed(aishell, args.runs, project)
            rows.append((entries * 2, work, launch))
    finally:
        os.environ.clear()
        os.environ.update(env_os)
        if saved is None:
            global_file.unlink(missing_ok=True)
        else:
            global_file.write_text(saved)
        shutil.rmtree(project, ignore_errors=True)

    print(f"Launch time against config size (median of {args.runs}; env entries + half")
    print("as many docker_args labels, global and project files together):")
    print(f"  bare docker run --rm --init <image> true  {bare_s * 1000:8.1f} ms")
    for total, work, launch in rows:
        print(
            f"  {total:5d} env entries: work before the engine {work * 1000:7.1f} ms,"
            f"  aishell exec true {launch * 1000:7.1f} ms ({launch / bare_s:.2f}x bare)"
        )
    steps = [
        (rows[i + 1][1] - rows[i][1]) / (rows[i + 1][0] - rows[i][0]) for i in range(len(rows) - 1)
    ]
    first, last = steps[0], steps[-1]
    per_entry = ", ".join(f"{s * 1e6:.1f}" for s in steps)
    print(f"  cost per entry, step by step: {per_entry} us")
    linear = last <= 2 * max(first, 1e-6)
    print(
        f"  budget: last step at most 2x the first per entry: {'ok' if linear else 'SUPERLINEAR'}"
    )
    return 0 if linear else 1


if __name__ == "__main__":
    raise SystemExit(main())
