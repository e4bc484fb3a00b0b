"""``dlrl data info | fetch | verify [DATASET]``: where datasets are read from, downloading, checksums."""

from __future__ import annotations

import argparse
from typing import Any

from dlrl.errors import DlrlError

# The datasets of dlrl.data.sources (a test checks), named here: building the parser does not import it.
DATASET_CHOICES = ("mnist", "fashion-mnist")


def add_parser(subparsers: Any, formatter: type) -> None:
    parser = subparsers.add_parser(
        "data",
        help="find, download and verify datasets",
        formatter_class=formatter,
        description="info: where each dataset would be read from; fetch: download from the official mirrors "
        "(md5-checked, retried); verify: read every file and compare checksums.",
    )
    parser.add_argument("action", choices=["info", "fetch", "verify"])
    parser.add_argument("dataset", nargs="?", choices=DATASET_CHOICES, help="default: all")
    parser.add_argument("--data-dir", metavar="DIR", help="directory to search first / download into")
    parser.set_defaults(handler=cmd_data)


def cmd_data(args: argparse.Namespace) -> int:
    for name in [args.dataset] if args.dataset else DATASET_CHOICES:
        if args.action == "info":
            info(name, args.data_dir)
        elif args.action == "fetch":
            fetch(name, args.data_dir)
        else:
            verify(name, args.data_dir, required=bool(args.dataset))
    return 0


def info(name: str, data_dir: str | None) -> None:
    """Print where dataset ``name`` would be read from, the directories searched and the mirrors."""
    from dlrl.data import sources  # keeps dlrl --help fast: urllib, http.client and ssl

    spec = sources.get_spec(name)
    try:
        found = sources.locate(spec, data_dir)
        where = f"{found.directory} ({found.origin})" if found else "no local copy"
        if not found and data_dir:
            where = str(sources.not_in_data_dir(spec, data_dir))  # what a run refuses with
        elif name == "mnist" and not found:
            where += "; falls back to the shipped 10,000-image sample"
    except DlrlError as err:  # what a run would refuse with
        where = str(err)
    print(f"{name}: {where}")
    print(f"  searched: {', '.join(str(d) for _, d in sources.candidate_dirs(spec, data_dir))}")
    print(f"  mirrors: {' '.join(sources.mirrors_for(spec))}")


def fetch(name: str, data_dir: str | None) -> None:
    """Download dataset ``name`` into the download root and verify it."""
    from dlrl.data import sources  # keeps dlrl --help fast: urllib, http.client and ssl

    spec = sources.get_spec(name)
    target = sources.download_root(data_dir) / name  # an explicit fetch may complete a partial copy there
    sources.fetch(spec, target)
    print(f"{name}: downloaded and verified in {target}")


def verify(name: str, data_dir: str | None, required: bool) -> None:
    """Read every file of the local copy of ``name``, compare checksums; no copy is an error if required."""
    from dlrl.data import sources  # keeps dlrl --help fast: urllib, http.client and ssl

    spec = sources.get_spec(name)
    found = sources.locate(spec, data_dir)
    if found is None and name == "mnist" and not data_dir:  # an explicit directory is used as given
        found = sources.sample_files()
    if found is None:
        if required:
            raise DlrlError(f"{name}: no local copy to verify (see 'dlrl data info {name}')")
        print(f"{name}: no local copy, skipped")
        return
    print(f"{name} ({found.origin}, {found.directory}):")
    for line in sources.verify(found):
        print(f"  {line}")
