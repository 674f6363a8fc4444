"""Run the benchmarks and write their figures to tests/benchmarks/results/<name>.json and .md.

    python -m tests.benchmarks [name …] [--quick]

Prefer ratios against a baseline measured in the same run: absolute timings on a shared machine
are noisy.
"""

import argparse
import importlib
import json
import os
import platform
import sys
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS = ["bridge", "postcall", "billing"]

RESULTS = Path(__file__).resolve().parent / "results"


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.benchmarks")
    parser.add_argument("names", nargs="*", help=f"some of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--quick", action="store_true", help="fewer, shorter rounds")
    parser.add_argument("--levels", help="comma-separated numbers of concurrent calls")
    parser.add_argument("--seconds", type=float, help="length of each round")
    args = parser.parse_args()
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    RESULTS.mkdir(exist_ok=True)
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"tests.benchmarks.{name}")
        figures = module.run(args)
        report = {
            "benchmark": name,
            "ran_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": sys.version.split()[0],
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            **figures,
        }
        table = module.markdown(report)
        (RESULTS / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
        (RESULTS / f"{name}.md").write_text(table)
        print(table)
        print(f"Written to {RESULTS / name}.json and .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
