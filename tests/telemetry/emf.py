"""Reading EMF lines as CloudWatch would: each must follow the embedded metric format
specification, or CloudWatch Logs extracts no metric from it."""

from __future__ import annotations

import json
from typing import Any

from chalicelib.telemetry.metrics import UNITS

# CloudWatch's unit names (the specification's list).
CLOUDWATCH_UNITS = {
    "Seconds", "Microseconds", "Milliseconds", "Bytes", "Kilobytes", "Megabytes", "Gigabytes",
    "Terabytes", "Bits", "Kilobits", "Megabits", "Gigabits", "Terabits", "Percent", "Count",
    "Bytes/Second", "Kilobytes/Second", "Megabytes/Second", "Gigabytes/Second",
    "Terabytes/Second", "Bits/Second", "Kilobits/Second", "Megabits/Second",
    "Gigabits/Second", "Terabits/Second", "Count/Second", "None",
}  # fmt: skip


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_emf(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` if it is valid EMF; an AssertionError naming the fault otherwise."""
    metadata = document["_aws"]
    assert isinstance(metadata["Timestamp"], int) and metadata["Timestamp"] > 1_600_000_000_000
    directives = metadata["CloudWatchMetrics"]
    assert isinstance(directives, list) and directives
    for directive in directives:
        assert isinstance(directive["Namespace"], str) and directive["Namespace"]
        for dimension_set in directive["Dimensions"]:
            assert 1 <= len(dimension_set) <= 30
            for dimension in dimension_set:
                assert isinstance(document[dimension], str), f"dimension {dimension} has no value"
        assert 1 <= len(directive["Metrics"]) <= 100
        for metric in directive["Metrics"]:
            name, unit = metric["Name"], metric["Unit"]
            assert unit in CLOUDWATCH_UNITS, unit
            assert unit == UNITS[name], f"{name} is published in {unit}, not {UNITS[name]}"
            value = document[name]
            values = value if isinstance(value, list) else [value]
            assert 1 <= len(values) <= 100 and all(_number(v) for v in values), (name, value)
    return document


def emf_lines(text: str) -> list[dict[str, Any]]:
    """Every line of ``text``, each one checked EMF document."""
    return [check_emf(json.loads(line)) for line in text.splitlines()]


def metric_values(document: dict[str, Any]) -> dict[str, Any]:
    """The document's metrics by name."""
    names = [m["Name"] for d in document["_aws"]["CloudWatchMetrics"] for m in d["Metrics"]]
    return {name: document[name] for name in names}
