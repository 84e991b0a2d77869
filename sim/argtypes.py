"""Command-line helpers: number types that refuse a bad value with a message that says why,
and the one writer of the commands' JSON reports."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def write_json_report(path_text: str | None, report: dict) -> None:
    """Write ``report`` as JSON when a path was given (parent folders made) and say where."""
    if not path_text:
        return
    path = Path(path_text)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"  JSON {path}")


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a whole number >= 1")
    return value


def positive_float(text: str) -> float:
    """A number > 0 (seconds, hours...)."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number > 0")
    return value


def non_negative_float(text: str) -> float:
    """A number >= 0."""
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number >= 0")
    return value
