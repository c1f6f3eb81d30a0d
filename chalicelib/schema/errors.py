"""What a broken schema reports: every problem at once, each pointing into the user's file.

A user fixing a schema wants the whole list in one run, in file order, in the
``file:line:column`` form editors and CI logs turn into links.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One broken rule. ``field`` is ``Type.field``, a type name, or empty (file level)."""

    line: int
    column: int
    file: str
    field: str
    rule: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}:"
        subject = f" {self.field}:" if self.field else ""
        return f"{where}{subject} [{self.rule}] {self.message}"


class SchemaError(Exception):
    """The schema cannot be served; ``problems`` lists every rule it breaks, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(sorted(set(problems)))
        super().__init__("\n".join(str(p) for p in self.problems))
