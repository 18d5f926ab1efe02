"""What ingest returns: a profile per column and a preview."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass
class ColumnProfile:
    name: str
    type: str
    missing: int
    distinct: int
    distinct_is_estimate: bool = False
    min: float | str | None = None
    max: float | str | None = None
    mean: float | str | None = None
    std: float | None = None
    top: list[tuple[str, int]] = field(default_factory=list)
    top_is_estimate: bool = False
    histogram: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["top"] = [{"value": value, "count": count} for value, count in self.top]
        return data


@dataclass
class IngestResult:
    format: str
    rows: int
    columns: list[ColumnProfile]
    preview: list[list[str | None]]
    encoding: str | None = None  # what a text file was read as (None for Parquet)

    def to_dict(self) -> dict[str, Any]:
        """The profile as stored and served: ``preview`` has the API's ``{columns, rows}`` shape."""
        return {
            "format": self.format,
            "rows": self.rows,
            "columns": [column.to_dict() for column in self.columns],
            "preview": {"columns": [column.name for column in self.columns], "rows": self.preview},
        }
