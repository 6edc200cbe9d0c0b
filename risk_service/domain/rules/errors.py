"""Rule-set load errors: every problem found, each with its file, line and rule id."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class RuleLoadError:
    """One problem in a rule-set file; line is 1-based, 0 when it concerns the whole file."""

    file: str
    line: int
    rule_id: str | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        rule = f" rule {self.rule_id}:" if self.rule_id else ""
        return f"{where}:{rule} {self.message}"


class RuleSetError(Exception):
    """A rule set that cannot be loaded; `.errors` lists every problem, one per line in str()."""

    def __init__(self, errors: Sequence[RuleLoadError], sources: Sequence[Path] = ()) -> None:
        self.errors = list(errors)
        # Files read (or attempted), so a holder can tell when a fix lands in any of them.
        self.sources = tuple(sources)
        super().__init__("\n".join(str(e) for e in self.errors))
