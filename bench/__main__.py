"""`make bench`: run every benchmark (or those named: `python -m bench platform`) and print
one JSON report."""

from __future__ import annotations

import json
import logging
import sys

from bench import intent, knowledge_base, planner, platform

BENCHMARKS = {
    "knowledge_base": knowledge_base.run,
    "planner": planner.run,
    "intent": intent.run,
    "platform": platform.run,
}


def main() -> None:
    logging.disable(logging.INFO)
    names = sys.argv[1:] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        sys.exit(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    report = {name: BENCHMARKS[name]() for name in names}
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
