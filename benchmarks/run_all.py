"""Run every CPU benchmark in turn and print their tables (`make bench`)."""
from __future__ import annotations

import subprocess
import sys

BENCHMARKS = ["benchmarks.bench_world", "benchmarks.bench_train", "benchmarks.bench_rollout",
              "benchmarks.param_counts", "benchmarks.bench_features"]


def main() -> None:
    for name in BENCHMARKS:
        print(f"\n## python -m {name}\n", flush=True)
        subprocess.run([sys.executable, "-m", name], check=True)


if __name__ == "__main__":
    main()
