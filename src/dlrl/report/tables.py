"""Tables of the report: a summary.json's scalars and nested values, CSV files, env.json rows."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Any

from dlrl.report.view import Table, fmt, humanize, is_scalar, is_scalar_list

MAX_WIDE_COLUMNS = 12  # flat dicts up to this many keys are shown as one row
MAX_TABLE_ROWS = 500  # metrics.csv / trials.csv rows shown (the file has them all)
ID_COLUMNS = {"trial", "trial_id", "id", "run", "run_id", "name"}


def read_csv_table(path: Path, title: str, max_rows: int = MAX_TABLE_ROWS) -> Table | None:
    try:
        with path.open(newline="", encoding="utf-8", errors="replace") as handle:
            rows = list(csv.reader(handle))
    except OSError:
        return None
    if not rows:
        return None
    header, body = rows[0], rows[1:]
    note = ""
    if len(body) > max_rows:
        note = f"{max_rows} of {len(body)} rows shown; all are in {path.name}"
        body = body[:max_rows]
    raw = [name.lower() in ID_COLUMNS for name in header]  # ids stay as written: no "50,375,472"
    rows = [[c if i < len(raw) and raw[i] else _fmt_cell(c) for i, c in enumerate(row)] for row in body]
    return Table(title, header, rows, note)


def _fmt_cell(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    if re.fullmatch(r"[+-]?\d+", text.strip()):
        return fmt(int(text))
    return fmt(number)


def summary_tables(summary: dict[str, Any]) -> tuple[list[tuple[str, str]], list[Table]]:
    """(scalar rows, tables) from a summary: flat scalars first, nested dicts and lists as tables."""
    scalars: list[tuple[str, str]] = []
    tables: list[Table] = []
    for key, value in summary.items():
        if key.startswith("_"):
            continue
        if is_scalar(value) or is_scalar_list(value):
            scalars.append((key, fmt(value)))
        else:
            tables.extend(_value_tables(humanize(key), value))
    return scalars, tables


def _value_tables(title: str, value: Any) -> list[Table]:
    if isinstance(value, list):
        if value and all(isinstance(v, dict) for v in value):
            columns = list(dict.fromkeys(k for row in value for k in row))
            rows = [[_cell(row.get(c)) for c in columns] for row in value]
            return [Table(title, columns, rows)]
        return [Table(title, ["#", "value"], [[str(i), _cell(v)] for i, v in enumerate(value)])]
    if not isinstance(value, dict):
        return [Table(title, ["value"], [[_cell(value)]])]
    return _dict_tables(title, value)


def _dict_tables(title: str, value: dict[str, Any]) -> list[Table]:
    children = list(value.values())
    if children and all(isinstance(v, dict) and all(is_scalar(x) for x in v.values()) for v in children):
        # dict of flat dicts: a matrix with one row per outer key
        columns = list(dict.fromkeys(k for v in children for k in v))
        rows = [[str(k), *[_cell(v.get(c)) for c in columns]] for k, v in value.items()]
        return [Table(title, ["", *columns], rows)]
    flat = [(k, v) for k, v in value.items() if is_scalar(v) or is_scalar_list(v)]
    if flat and len(flat) == len(value) and len(flat) <= MAX_WIDE_COLUMNS:
        # a short flat dict (per-class accuracy, PSNR by noise level) reads best as one row
        return [Table(title, [str(k) for k, _ in flat], [[fmt(v) for _, v in flat]])]
    tables = [Table(title, ["key", "value"], [[str(k), fmt(v)] for k, v in flat])] if flat else []
    for key, child in value.items():
        if not (is_scalar(child) or is_scalar_list(child)):
            tables.extend(_value_tables(f"{title} · {humanize(str(key))}", child))
    return tables


def _cell(value: Any) -> str:
    if is_scalar(value) or is_scalar_list(value):
        return fmt(value)
    return json.dumps(value, default=str)


def env_rows(env: dict[str, Any]) -> list[tuple[str, str]]:
    """env.json as (key, text) rows; the package versions are left to their own table."""
    rows = []
    for key, value in env.items():
        if key == "packages" and isinstance(value, dict):
            continue
        if key == "command" and isinstance(value, list):
            value = " ".join(str(v) for v in value)
        rows.append((key, fmt(value) if is_scalar(value) or is_scalar_list(value) else json.dumps(value)))
    return rows


def best_trial_row(trials: Table, summary: dict[str, Any]) -> int | None:
    """The row of the best trial, if summary.json names it (best_trial / best_trial_id)."""
    best = summary.get("best_trial", summary.get("best_trial_id"))
    if best is None:
        return None
    for column in ("trial_id", "trial", "id"):
        if column in trials.columns:
            index = trials.columns.index(column)
            for i, row in enumerate(trials.rows):
                if row[index] == fmt(best) or row[index] == str(best):
                    return i
    return None
