"""`make bench`: run every benchmark and print one JSON report."""

from __future__ import annotations

import json
import logging

from bench import intent, knowledge_base, planner

BENCHMARKS = {
    "knowledge_base": knowledge_base.run,
    "planner": planner.run,
    "intent": intent.run,
}


def main() -> None:
    logging.disable(logging.INFO)
    report = {name: run() for name, run in BENCHMARKS.items()}
    print(json.dumps(report, indent=2, default=str))


if __name__ == "__main__":
    main()
