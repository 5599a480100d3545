"""The command line every flowml-vs-MLflow benchmark shares: ``--quick``, ``--side``, ``--json``.

The smoke tests run each benchmark as ``--quick --side flowml --json`` and read its report.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any


def comparison_parser(description: str, quick_help: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--side", choices=["both", "flowml", "mlflow"], default="both")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    return parser


def chosen_sides(args: argparse.Namespace) -> list[str]:
    return ["flowml", "mlflow"] if args.side == "both" else [args.side]


def print_report(
    report: dict[str, Any], args: argparse.Namespace, table: Callable[[dict[str, Any]], None]
) -> int:
    """The report, marked quick or not, as JSON (``--json``) or as ``table`` prints it."""
    report["quick"] = args.quick
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        table(report)
    return 0
