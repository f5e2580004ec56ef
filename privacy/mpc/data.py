"""A party's data: the declared schema and the CSV loader.

Schema (declared on chain, identical at every party)::

    {"columns": {"views": {"min": 0, "max": 1000000}, "likes": {"min": 0, "max": 100000}}}

CSV: a header ``content_id,<columns...>`` naming only declared columns (every declared column
present), then one row per content id; a value is a base-10 integer within its column's bounds.
A malformed row, a duplicate id or an out-of-bounds value raises ``InputError`` naming the line.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import InputError, QueryError

INT = re.compile(r"-?[0-9]{1,19}")
MAX_ID = 256
LIMIT = 2**62


@dataclass(frozen=True)
class Column:
    name: str
    lo: int
    hi: int

    @property
    def magnitude(self) -> int:
        return max(abs(self.lo), abs(self.hi))


@dataclass(frozen=True)
class Schema:
    columns: dict[str, Column]

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Schema:
        cols = raw.get("columns") if isinstance(raw, dict) else None
        if not isinstance(cols, dict) or not cols:
            raise QueryError("the schema needs a non-empty 'columns' object")
        out: dict[str, Column] = {}
        for name, bounds in cols.items():
            if not isinstance(name, str) or not re.fullmatch(r"[a-z][a-z0-9_]{0,63}", name) or name == "content_id":
                raise QueryError(f"schema column name {name!r} is not allowed")
            lo = bounds.get("min") if isinstance(bounds, dict) else None
            hi = bounds.get("max") if isinstance(bounds, dict) else None
            if (not isinstance(lo, int) or not isinstance(hi, int) or isinstance(lo, bool)
                    or isinstance(hi, bool) or not -LIMIT < lo <= hi < LIMIT):
                raise QueryError(f"schema column {name}: bounds must be integers with min <= max, |bound| < 2^62")
            out[name] = Column(name, lo, hi)
        return cls(out)

    def column(self, name: Any) -> Column:
        if not isinstance(name, str) or name not in self.columns:
            raise QueryError(f"column {name!r} is not in the schema")
        return self.columns[name]

    def check(self, data: dict[str, dict[str, int]]) -> None:
        """Every value of the data within its declared bounds (``InputError`` naming the content id)."""
        for cid, row in data.items():
            for name, value in row.items():
                col = self.columns.get(name)
                if col is None:
                    raise InputError(f"content {cid}: column {name!r} is not in the schema",
                                     rule=f"column {name!r} is not in the schema")
                if not isinstance(value, int) or isinstance(value, bool) or not col.lo <= value <= col.hi:
                    raise InputError(f"content {cid}: {name}={value!r} is outside [{col.lo}, {col.hi}]",
                                     rule=f"a value of column {name} is outside [{col.lo}, {col.hi}]")


def valid_id(cid: Any) -> bool:
    return isinstance(cid, str) and 0 < len(cid) <= MAX_ID and cid.isprintable() and cid.strip() == cid


def load_csv(path: str | Path, schema: Schema) -> dict[str, dict[str, int]]:
    """content_id -> column -> value, checked against ``schema`` (``InputError`` naming the line)."""
    out: dict[str, dict[str, int]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, strict=True)
        try:
            head = next(reader)
        except StopIteration:
            raise InputError("the file is empty, a header is required", row=1) from None
        except csv.Error as exc:
            raise InputError(f"malformed header: {exc}", row=1, rule="malformed header") from None
        if not head or head[0] != "content_id" or len(set(head)) != len(head):
            raise InputError("the header must start with content_id and name each column once", row=1)
        cols = [schema.columns.get(h) for h in head[1:]]
        missing = set(schema.columns) - set(head[1:])
        if None in cols or missing:
            raise InputError(f"the header's columns must be exactly the schema's {sorted(schema.columns)}", row=1)
        while True:
            try:
                row = next(reader)
            except StopIteration:
                break
            except csv.Error as exc:
                raise InputError(f"malformed row: {exc}", row=reader.line_num, rule="malformed row") from None
            out_row = _row(row, cols, reader.line_num)  # type: ignore[arg-type]
            if row[0] in out:
                raise InputError(f"content id {row[0]!r} appears twice", row=reader.line_num,
                                 rule="a content id appears twice")
            out[row[0]] = out_row
    return out


def _row(row: list[str], cols: list[Column], line: int) -> dict[str, int]:
    if len(row) != len(cols) + 1:
        raise InputError(f"{len(row)} fields where the header has {len(cols) + 1}", row=line)
    if not valid_id(row[0]):
        raise InputError(f"content id {row[0][:40]!r} is empty, too long or not printable", row=line,
                         rule="a content id is empty, too long or not printable")
    values: dict[str, int] = {}
    for col, raw in zip(cols, row[1:], strict=True):
        if not INT.fullmatch(raw):
            raise InputError(f"{col.name}={raw[:40]!r} is not an integer", row=line,
                             rule=f"a value of column {col.name} is not an integer")
        v = int(raw)
        if not col.lo <= v <= col.hi:
            raise InputError(f"{col.name}={v} is outside [{col.lo}, {col.hi}]", row=line,
                             rule=f"a value of column {col.name} is outside [{col.lo}, {col.hi}]")
        values[col.name] = v
    return values
