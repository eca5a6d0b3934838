"""What composition reports when subgraphs do not fit together."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class CompositionIssue:
    """One broken rule: an Apollo/Guild error code, the subgraphs involved and where."""

    code: str
    message: str
    subgraphs: tuple[str, ...] = ()
    coordinate: str | None = None

    def __str__(self) -> str:
        where = f" at {self.coordinate}" if self.coordinate else ""
        named = f" [{', '.join(self.subgraphs)}]" if self.subgraphs else ""
        return f"{self.code}{where}{named}: {self.message}"


class CompositionError(Exception):
    """The subgraphs do not compose; `issues` says why, every one of them."""

    def __init__(self, issues: Sequence[CompositionIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(str(issue) for issue in self.issues))
