"""The import's outcome: per entity, what the source holds and what flowml holds after."""

from __future__ import annotations

from dataclasses import dataclass, field

from flowml.importers.mlflow.source import COUNTED, Counts

__all__ = ["ImportReport", "ReportRow"]


@dataclass(slots=True, frozen=True)
class ReportRow:
    """One entity's counts (``source`` is ``None`` when the source cannot count it cheaply)."""

    entity: str
    source: int | None
    before: int
    imported: int
    after: int

    @property
    def matches(self) -> bool:
        return self.source is None or self.after >= self.source


@dataclass(slots=True)
class ImportReport:
    """What `import_mlflow` did (or, with ``dry_run``, would do).

    Attributes:
        source: the source, without password.
        dry_run: nothing was written; ``imported`` is what a real import would add.
        rows: one `ReportRow` per entity, in `COUNTED` order.
        experiment_ids: source experiment id -> flowml experiment id.
    """

    source: str
    dry_run: bool
    rows: list[ReportRow] = field(default_factory=list)
    experiment_ids: dict[str, str] = field(default_factory=dict)

    @property
    def matches(self) -> bool:
        """Whether flowml now holds everything the source holds."""
        return all(row.matches for row in self.rows)

    def row(self, entity: str) -> ReportRow:
        return next(r for r in self.rows if r.entity == entity)

    @classmethod
    def build(
        cls,
        source: str,
        dry_run: bool,
        counts: Counts,
        before: dict[str, int],
        after: dict[str, int],
        experiment_ids: dict[str, str],
    ) -> ImportReport:
        rows = [
            ReportRow(name, counts.get(name), before.get(name, 0),
                      after.get(name, 0) - before.get(name, 0), after.get(name, 0))
            for name in COUNTED
        ]  # fmt: skip
        return cls(source, dry_run, rows, experiment_ids)

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "dry_run": self.dry_run,
            "matches": self.matches,
            "experiment_ids": self.experiment_ids,
            "counts": [
                {
                    "entity": r.entity,
                    "source": r.source,
                    "before": r.before,
                    "imported": r.imported,
                    "after": r.after,
                }
                for r in self.rows
            ],  # fmt: skip
        }
