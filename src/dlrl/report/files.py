"""Reading a run directory's files without letting one bad file take the report down."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def read_json(path: Path) -> Any:
    """The parsed file; None (with a warning) if it cannot be read or parsed."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        log.warning("%s: cannot read (%s); left out of the report", path, err)
        return None


def read_json_dict(path: Path) -> dict[str, Any]:
    """A JSON object file as a dict; {} if absent, unreadable or not an object."""
    data = read_json(path) if path.is_file() else None
    return data if isinstance(data, dict) else {}


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def read_notes(section_dir: Path) -> list[tuple[str, Any]]:
    """notes.md / notes.txt as headings, paragraphs, bullet lists and code blocks (a tiny Markdown subset)."""
    for name in ("notes.md", "notes.txt"):
        path = section_dir / name
        if path.is_file():
            return _blocks(read_text(path))
    return []


def _blocks(text: str) -> list[tuple[str, Any]]:
    blocks: list[tuple[str, Any]] = []
    for chunk in re.split(r"\n\s*\n", text.strip()):
        lines = chunk.splitlines()
        if not lines:
            continue
        if lines[0].startswith("```"):
            blocks.append(("pre", "\n".join(line for line in lines if not line.startswith("```"))))
        elif all(re.match(r"\s*[-*] ", line) for line in lines):
            blocks.append(("ul", [re.sub(r"^\s*[-*] ", "", line) for line in lines]))
        elif lines[0].startswith("#"):
            blocks.append(("h", lines[0].lstrip("#").strip()))
            if lines[1:]:
                blocks.append(("p", " ".join(lines[1:])))
        else:
            blocks.append(("p", " ".join(line.strip() for line in lines)))
    return blocks
