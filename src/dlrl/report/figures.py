"""The figures of a section: every image under its figures/ folders, embedded as data URIs."""

from __future__ import annotations

import base64
import logging
import struct
from pathlib import Path

from dlrl.report.files import read_json_dict
from dlrl.report.view import Figure, FigureGroup, humanize

log = logging.getLogger(__name__)

IMAGE_TYPES = {
    ".png": "image/png",
    ".gif": "image/gif",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".svg": "image/svg+xml",
}


def data_uri(data: bytes, suffix: str) -> str:
    return f"data:{IMAGE_TYPES[suffix.lower()]};base64,{base64.b64encode(data).decode('ascii')}"


def image_size(data: bytes) -> tuple[int, int] | tuple[None, None]:
    """(width, height) in pixels from a PNG or GIF header; (None, None) for other formats."""
    if data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None, None


def _figure_files(directory: Path) -> list[Path]:
    files = [p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_TYPES]
    files = [p for p in files if not p.name.startswith(".")]  # half-written temp files
    stems_with_png = {p.with_suffix("") for p in files if p.suffix.lower() == ".png"}
    # An SVG copy of a PNG figure adds nothing but size.
    files = [p for p in files if not (p.suffix.lower() == ".svg" and p.with_suffix("") in stems_with_png)]
    return sorted(files, key=lambda p: (p.relative_to(directory).parent.as_posix(), _mtime(p), p.name))


def _mtime(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns  # figures in the order the experiment wrote them
    except OSError:
        return 0


def figure_groups(section_dir: Path, root: Path) -> list[FigureGroup]:
    """Every image under ``figures/`` of the section and of its nested run directories, grouped by folder."""
    figure_dirs = sorted(
        (p for p in section_dir.rglob("figures") if p.is_dir()),
        key=lambda p: (len(p.relative_to(section_dir).parts), p.as_posix()),
    )
    groups: list[FigureGroup] = []
    for figures_dir in figure_dirs:
        for folder, figures in _figures_by_folder(figures_dir, section_dir, root).items():
            groups.append(FigureGroup("" if folder == "." else folder, figures))
    return groups


def _figures_by_folder(figures_dir: Path, section_dir: Path, root: Path) -> dict[str, list[Figure]]:
    """The images of one figures/ directory, by their folder relative to the section."""
    captions = read_json_dict(figures_dir / "captions.json")
    by_folder: dict[str, list[Figure]] = {}
    for path in _figure_files(figures_dir):
        relative = path.relative_to(figures_dir)
        key = relative.with_suffix("").as_posix()
        caption = str(captions.get(key) or captions.get(path.stem) or humanize(path.stem))
        try:
            data = path.read_bytes()
        except OSError as err:
            log.warning("%s: cannot read (%s); left out of the report", path, err)
            continue
        folder = (figures_dir.relative_to(section_dir).parent / relative.parent).as_posix()
        width, height = image_size(data)
        uri = data_uri(data, path.suffix)
        by_folder.setdefault(folder, []).append(
            Figure(caption, path.relative_to(root).as_posix(), uri, width, height)
        )
    return by_folder
