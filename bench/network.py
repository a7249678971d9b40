"""Launch overhead of `network: allowlist` against `open`: `aishell exec true`, same run.

Usage: python bench/network.py [N]   (needs a set-up aishell and a running engine)
Runs in a temporary project under the current directory's HOME/AISHELL_HOME setup.
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


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    with tempfile.TemporaryDirectory(prefix="aishell-bench-net-") as tmp:
        results = {}
        for mode in ("open", "allowlist"):
            project = Path(tmp) / mode
            (project / ".aishell").mkdir(parents=True)
            subprocess.run(["git", "init", "-q", str(project)], check=True)
            if mode != "open":
                (project / ".aishell" / "config.yaml").write_text(
                    f"network:\n  mode: {mode}\n  allow: [example.com]\n"
                )
            run(project, 1)  # warm-up (builds or finds the proxy image once)
            results[mode] = run(project, n)
    for mode, times in results.items():
        print(f"{mode:<10} median {statistics.median(times):.3f}s  min {min(times):.3f}s  (n={n})")
    overhead = statistics.median(results["allowlist"]) - statistics.median(results["open"])
    print(f"allowlist overhead: {overhead:+.3f}s per launch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
