#!/usr/bin/env python3
"""Idle CPU of a sandbox, measured against a baseline in the same run.

A detached interactive sandbox (`aishell --detach --name N shell`: the entrypoint,
tmux and an idle bash) is left alone for `--seconds`; its container's cgroup CPU time
over that window is the cost of an idle sandbox. The baseline is a container of the
same image that only sleeps (`--init`, `sleep infinity`), measured over the same
window. Budget: an idle sandbox costs ~0 CPU (well under 0.1 % of one core).

Needs a finished `aishell setup` (uses the caller's AISHELL_HOME) and Docker; runs
in the current directory's project. Usage: python bench/idle_cpu.py [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()}")
    return result.stdout.strip()


def cgroup_cpu_ns(container: str) -> int:
    """The container's CPU time so far (ns), from its cgroup (v1 cpuacct or v2)."""
    pid = docker("inspect", "--format", "{{.State.Pid}}", container)
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            for root in ("/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpuacct"):
                usage = Path(root + path) / "cpuacct.usage"
                if usage.exists():
                    return int(usage.read_text())
        if controllers == "":
            stat = Path("/sys/fs/cgroup" + path) / "cpu.stat"
            if stat.exists():
                found = re.search(r"^usage_usec (\d+)$", stat.read_text(), re.M)
                if found:
                    return int(found.group(1)) * 1000
    sys.exit(f"no CPU accounting found for {container}")


def measure(container: str, seconds: float) -> float:
    """Percent of one core used over `seconds`."""
    before, start = cgroup_cpu_ns(container), time.monotonic()
    time.sleep(seconds)
    used, elapsed = cgroup_cpu_ns(container) - before, time.monotonic() - start
    return 100.0 * used / (elapsed * 1e9)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=5.0, help="wait before measuring")
    args = parser.parse_args()
    name = f"idle{os.getpid()}"
    aishell = [sys.executable, "-m", "aishell"]
    started = subprocess.run(
        [*aishell, "--detach", "--unsafe", "--name", name, "shell"],
        capture_output=True,
        text=True,
        check=False,
    )
    found = re.search(r"Started (\S+) in the background", started.stderr)
    if started.returncode != 0 or not found:
        sys.exit(f"starting the sandbox failed: {started.stderr.strip()}")
    sandbox = found.group(1)
    image = docker("inspect", "--format", "{{.Image}}", sandbox)
    baseline = docker(
        "run", "-d", "--rm", "--init", "--label", "aishell.bench=1",
        "--entrypoint", "sleep", image, "infinity",
    )  # fmt: skip
    try:
        time.sleep(args.settle)
        # Both windows overlap, so the machine's load is the same for both.
        import threading

        results: dict[str, float] = {}
        threads = [
            threading.Thread(target=lambda: results.update(base=measure(baseline, args.seconds))),
            threading.Thread(target=lambda: results.update(idle=measure(sandbox, args.seconds))),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        subprocess.run(["docker", "rm", "-f", sandbox, baseline], capture_output=True, check=False)
    print(f"Idle CPU over {args.seconds:.0f}s (percent of one core):")
    print(f"  baseline (sleep infinity, same image)   {results['base']:.3f} %")
    print(f"  idle sandbox (entrypoint, tmux, bash)   {results['idle']:.3f} %")
    budget = 0.1
    ok = results["idle"] <= budget
    print(f"  budget: idle sandbox <= {budget} %: {'ok' if ok else 'OVER BUDGET'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
