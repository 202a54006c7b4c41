"""Counting what happened to the records of each object, for the log lines after each batch and at the end."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Tally:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    not_found: int = 0
    merged: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, other: Tally) -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted
        self.not_found += other.not_found
        self.merged += other.merged
        self.rejected.update(other.rejected)

    def describe(self) -> str:
        """One log line, e.g. ``3 created, 2 updated, 0 not found, 1 merged, 2 rejected (STRING_TOO_LONG: 2)``."""
        parts = [f"{self.created} created", f"{self.updated} updated"]
        if self.deleted:
            parts.append(f"{self.deleted} deleted")
        parts += [f"{self.not_found} not found", f"{self.merged} merged"]
        total = sum(self.rejected.values())
        reasons = ", ".join(f"{code}: {n}" for code, n in self.rejected.most_common())
        parts.append(f"{total} rejected" + (f" ({reasons})" if reasons else ""))
        return ", ".join(parts)
