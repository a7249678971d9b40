"""Launch overhead of `network: allowlist` (and `none`) against `open`: `aishell exec
true`, all in the same run, the modes interleaved so that a busy machine's drift hits
each alike.

Usage: python bench/network.py [N]   (needs a set-up aishell and a running engine)
Runs in temporary projects under the current HOME/AISHELL_HOME setup. The warm-up
launch of each mode starts this home's egress proxy (and builds its image once per
engine); the measured launches find it running, as every launch but a home's first.
Budget (issue 12): allowlist median - open median <= 0.25 s.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(project: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "aishell", "exec", "true"], cwd=project, check=True,
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        times.append(time.perf_counter() - start)
    return times


MODES = ("open", "none", "allowlist")


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="aishell-bench-net-") as tmp:
        projects = {}
        for mode in MODES:
            project = Path(tmp) / mode
            (project / ".aishell").mkdir(parents=True)
            subprocess.run(["git", "init", "-q", str(project)], check=True)
            if mode == "allowlist":
                (project / ".aishell" / "config.yaml").write_text(
                    "network:\n  mode: allowlist\n  allow: [example.com]\n"
                )
            elif mode == "none":
                (project / ".aishell" / "config.yaml").write_text("network: none\n")
            projects[mode] = project
            # The user approves the project's aishell config once (trust on change).
            subprocess.run(
                [sys.executable, "-m", "aishell", "trust", "--yes"], cwd=project, check=True,
                stdout=subprocess.DEVNULL,
            )  # fmt: skip
            run(project, 1)  # warm-up (starts the proxy, builds or finds its image once)
        results: dict[str, list[float]] = {mode: [] for mode in MODES}
        for _ in range(n):
            for mode in MODES:
                results[mode] += run(projects[mode], 1)
    for mode, times in results.items():
        print(f"{mode:<10} median {statistics.median(times):.3f}s  min {min(times):.3f}s  (n={n})")
    for mode in ("none", "allowlist"):
        overhead = statistics.median(results[mode]) - statistics.median(results["open"])
        print(f"{mode} overhead over open: {overhead:+.3f}s per launch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
