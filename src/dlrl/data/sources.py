"""Where image datasets come from, and getting them there.

Resolution order for a dataset's four IDX files:
``--data-dir`` / ``data.data_dir`` (used as given or refused: nothing else is searched), else
``$DLRL_DATA_DIR``, then the user cache (``~/.cache/dlrl``), then system copies (Debian's
``dataset-fashion-mnist`` installs /usr/share/datasets/fashion-mnist), then a download from the official
mirrors into the user cache (checksums, retries, progress, atomic placement).
An incomplete copy in an explicit data dir (--data-dir or $DLRL_DATA_DIR) is an error, never skipped, and
reading never creates anything in a data dir; only ``dlrl data fetch`` downloads into one.
``DLRL_NO_DOWNLOAD=1`` (or ``data.download=false``) skips the download step.
Offline with nothing found (and no --data-dir), ``mnist`` falls back to the official 10,000-image MNIST
test set shipped inside the package, split into train/validation/test.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import shutil
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlrl.data.download import download_file, file_md5
from dlrl.errors import DataError

log = logging.getLogger(__name__)

SPLIT_FILES = {
    "train-images": "train-images-idx3-ubyte",
    "train-labels": "train-labels-idx1-ubyte",
    "test-images": "t10k-images-idx3-ubyte",
    "test-labels": "t10k-labels-idx1-ubyte",
}
SAMPLE_DIR = Path(__file__).parent / "sample"


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    classes: tuple[str, ...]
    mirrors: tuple[str, ...]
    # md5 of the official .gz files (what the mirrors serve)
    gz_md5: dict[str, str]
    # sha256 of the uncompressed IDX bytes, where known (matches re-compressed copies such as Debian's)
    raw_sha256: dict[str, str] = field(default_factory=dict)
    system_dirs: tuple[str, ...] = ()


DATASETS: dict[str, DatasetSpec] = {
    "mnist": DatasetSpec(
        name="mnist",
        classes=tuple(str(i) for i in range(10)),
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "http://yann.lecun.com/exdb/mnist/",
        ),
        gz_md5={
            "train-images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels": "d53e105ee54ea40749a09fcbcd1e9432",
            "test-images": "9fb629c4189551a2d022fa330f9573f3",
            "test-labels": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        raw_sha256={
            "test-images": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            "test-labels": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        },
        system_dirs=("/usr/share/datasets/mnist",),
    ),
    "fashion-mnist": DatasetSpec(
        name="fashion-mnist",
        classes=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        gz_md5={
            "train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels": "25c81989df183df01b3e8a0aad5dffbe",
            "test-images": "bef4ecab320f06d8554ea6380940ec79",
            "test-labels": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        raw_sha256={
            "train-images": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
            "train-labels": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
            "test-images": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
            "test-labels": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
        },
        system_dirs=("/usr/share/datasets/fashion-mnist",),
    ),
}


def get_spec(name: str) -> DatasetSpec:
    try:
        return DATASETS[name]
    except KeyError:
        raise DataError(f"unknown dataset '{name}' (choose from {', '.join(DATASETS)})") from None


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dlrl"


def find_file(directory: Path, stem: str) -> Path | None:
    """The IDX file ``stem`` in ``directory``, gzip or plain (also the '-idx' -> '.idx' spelling)."""
    for name in (f"{stem}.gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        candidate = directory / name
        if candidate.is_file():
            return candidate
    return None


# Data dirs the user named: a copy there is used as given or refused, never skipped.
EXPLICIT_ORIGINS = ("--data-dir", "DLRL_DATA_DIR")


def explicit_data_dir(data_dir: str | Path | None) -> tuple[str, Path] | None:
    """The data dir the user named (--data-dir, else $DLRL_DATA_DIR) with its origin, or None."""
    if data_dir:
        return "--data-dir", Path(data_dir)
    env = os.environ.get("DLRL_DATA_DIR")
    return ("DLRL_DATA_DIR", Path(env)) if env else None


def candidate_dirs(spec: DatasetSpec, data_dir: str | Path | None) -> list[tuple[str, Path]]:
    """Directories searched, in order, each with where it came from (only --data-dir's if it is given)."""
    dirs: list[tuple[str, Path]] = []
    explicit = explicit_data_dir(data_dir)
    if explicit:
        # A data dir may hold the files directly or in a <dataset> subfolder.
        origin, base = explicit
        dirs.extend([(origin, base / spec.name), (origin, base)])
    if data_dir:
        return dirs
    dirs.append(("user cache", cache_dir() / spec.name))
    dirs.extend(("system copy", Path(d)) for d in spec.system_dirs)
    return dirs


@dataclass(frozen=True)
class ResolvedFiles:
    """The four files of a dataset, or the shipped sample (train files are None then)."""

    dataset: str
    origin: str
    directory: Path
    files: dict[str, Path]
    is_sample: bool = False


def locate(spec: DatasetSpec, data_dir: str | Path | None) -> ResolvedFiles | None:
    """The first candidate directory holding all four files, or None.

    In an explicit data dir (``data_dir``, else $DLRL_DATA_DIR) an incomplete or unreadable copy is a
    DataError (a ``data_dir`` without any of the files gives None: see :func:`not_in_data_dir`); elsewhere
    a partial copy is skipped with a warning.
    """
    explicit = explicit_data_dir(data_dir)
    if explicit and not explicit[1].is_dir():
        origin, base = explicit
        problem = "not a directory" if base.exists() else "no such directory"
        raise DataError(f"{origin} {base}: {problem}")
    for origin, directory in candidate_dirs(spec, data_dir):
        try:
            files = {split: find_file(directory, stem) for split, stem in SPLIT_FILES.items()}
        except OSError as err:
            raise DataError(f"{directory}: cannot read {spec.name} files ({err.strerror or err})") from None
        if all(files.values()):
            # Cheap guard (the labels file is 5 KB) against e.g. MNIST files read as Fashion-MNIST.
            if checksum_status(spec, "test-labels", files["test-labels"]) == "mismatch":  # type: ignore[arg-type]
                log.warning("%s: test labels differ from the official %s file", directory, spec.name)
            return ResolvedFiles(spec.name, origin, directory, files)  # type: ignore[arg-type]
        if any(files.values()):
            missing = ", ".join(SPLIT_FILES[split] for split, path in files.items() if path is None)
            if origin in EXPLICIT_ORIGINS:
                base = explicit[1]  # type: ignore[index]
                raise DataError(
                    f"{origin} {base}: incomplete {spec.name} dataset in {directory} (missing {missing}); "
                    f"add the missing files or run 'dlrl data fetch {spec.name} --data-dir {base}'"
                )
            log.warning("%s: incomplete %s copy (missing %s), skipped", directory, spec.name, missing)
    return None


def not_in_data_dir(spec: DatasetSpec, data_dir: str | Path) -> DataError:
    """The error for a --data-dir without any of the dataset's files (it is not replaced by other data)."""
    base = Path(data_dir)
    return DataError(
        f"--data-dir {base}: no local copy of {spec.name} (none of its four IDX files in "
        f"{base / spec.name} or {base}); run 'dlrl data fetch {spec.name} --data-dir {base}', "
        "or leave out --data-dir"
    )


def sample_files() -> ResolvedFiles:
    files = {
        "test-images": SAMPLE_DIR / f"{SPLIT_FILES['test-images']}.gz",
        "test-labels": SAMPLE_DIR / f"{SPLIT_FILES['test-labels']}.gz",
    }
    return ResolvedFiles("mnist", "shipped sample", SAMPLE_DIR, files, is_sample=True)


SAMPLE_WARNING = (
    "using the 10,000-image MNIST sample shipped with dlrl (split into train/validation/test); "
    "for full MNIST run 'dlrl data fetch mnist' online, or put the four IDX files in a directory "
    "and pass --data-dir DIR (or set DLRL_DATA_DIR)"
)


def downloads_enabled(download: bool = True) -> bool:
    return download and os.environ.get("DLRL_NO_DOWNLOAD", "") in ("", "0")


def download_root(data_dir: str | Path | None = None) -> Path:
    """Where ``dlrl data fetch`` downloads: --data-dir, else $DLRL_DATA_DIR, else the user cache.

    (Downloads while reading a dataset, in :func:`resolve`, always go to the user cache.)
    """
    base = data_dir or os.environ.get("DLRL_DATA_DIR")
    return Path(base) if base else cache_dir()


# (dataset, mirrors) -> why every mirror failed: a process (e.g. the sections of one 'dlrl run') tries and
# says it once. Only lookups while reading use this; 'dlrl data fetch' always tries.
_FAILED_DOWNLOADS: dict[tuple[str, tuple[str, ...]], str] = {}


def resolve(name: str, data_dir: str | Path | None = None, download: bool = True) -> ResolvedFiles:
    """Find a dataset's files in resolution order, downloading if allowed; mnist falls back to the sample.

    A ``data_dir`` is used as given or refused (DataError), never replaced by other data.
    """
    spec = get_spec(name)
    found = locate(spec, data_dir)
    if found:
        return found
    if data_dir:
        raise not_in_data_dir(spec, data_dir)
    problem = "downloads disabled"
    failed_key = (spec.name, mirrors_for(spec))
    if downloads_enabled(download) and failed_key in _FAILED_DOWNLOADS:
        problem = _FAILED_DOWNLOADS[failed_key]  # already said; no new attempt in this process
    elif downloads_enabled(download):
        try:
            # Fewer, shorter attempts than 'dlrl data fetch': offline, the fallback should come quickly.
            # Into the cache: reading never writes into a data dir.
            fetch(spec, cache_dir() / spec.name, retries=2, timeout=15.0)
            found = locate(spec, data_dir)
            if found:
                return found
        except DataError as err:
            problem = _FAILED_DOWNLOADS[failed_key] = str(err)
            log.warning("%s; not trying again in this process", problem)
    if name == "mnist":
        log.debug("mnist: no local copy and no download (%s)", problem)
        log.warning("%s", SAMPLE_WARNING)
        return sample_files()
    searched = ", ".join(str(d) for _, d in candidate_dirs(spec, data_dir))
    hint = ", install Debian's dataset-fashion-mnist" if name == "fashion-mnist" else ""
    raise DataError(
        f"{name}: no local copy (searched {searched}) and no download ({problem}); "
        f"run 'dlrl data fetch {name}' online{hint}, or pass --data-dir DIR holding its IDX files"
    )


def raw_sha256(path: Path) -> str:
    """sha256 of the uncompressed bytes of a (possibly gzipped) file."""
    digest = hashlib.sha256()
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == b"\x1f\x8b"
    with gzip.open(path, "rb") if is_gzip else path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def checksum_status(spec: DatasetSpec, split: str, path: Path) -> str:
    """'ok' (matches a known checksum), 'mismatch' (contradicts one), 'unknown' (none known for this form)
    or 'unreadable (...)'."""
    try:
        if file_md5(path) == spec.gz_md5[split]:
            return "ok"
        known_raw = spec.raw_sha256.get(split)
        if known_raw is None:
            # A re-compressed or uncompressed copy of a file whose raw checksum we do not know.
            return "unknown"
        return "ok" if raw_sha256(path) == known_raw else "mismatch"
    except (OSError, EOFError, zlib.error) as err:
        return f"unreadable ({err})"


def verify(found: ResolvedFiles) -> list[str]:
    """Read every file of ``found`` (structure, label range, counts) and check checksums.

    Returns one report line per file; raises DataError naming the first bad file.
    """
    from dlrl.data.idx import read_pair

    spec = get_spec(found.dataset)
    lines = []
    for prefix in ("train", "test"):
        if f"{prefix}-images" not in found.files:
            continue
        images, _ = read_pair(
            found.files[f"{prefix}-images"], found.files[f"{prefix}-labels"], len(spec.classes)
        )
        for split in (f"{prefix}-images", f"{prefix}-labels"):
            path = found.files[split]
            status = checksum_status(spec, split, path)
            if status != "ok" and status != "unknown":
                raise DataError(f"{path}: checksum {status} (expected the official {split} file)")
            lines.append(
                f"{path}: {len(images)} {'images' if split.endswith('images') else 'labels'}, "
                f"checksum {status}"
            )
    return lines


def mirrors_for(spec: DatasetSpec) -> tuple[str, ...]:
    """The mirrors of ``spec``, or the space-separated ``$DLRL_MIRROR_<NAME>`` (DLRL_MIRROR_FASHION_MNIST)."""
    override = os.environ.get("DLRL_MIRROR_" + spec.name.upper().replace("-", "_"))
    if override:
        return tuple(m if m.endswith("/") else m + "/" for m in override.split())
    return spec.mirrors


def fetch(spec: DatasetSpec, target: Path, mirrors: tuple[str, ...] | None = None, **kwargs: Any) -> Path:
    """Download the four files of ``spec`` into ``target``, trying each mirror in turn.

    Files already there with the right md5 are kept. ``kwargs`` go to :func:`download_file`.
    """
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DataError(f"{target}: cannot create download directory ({err.strerror or err})") from None
    for split, stem in SPLIT_FILES.items():
        dest = target / f"{stem}.gz"
        if dest.is_file() and file_md5(dest) == spec.gz_md5[split]:
            continue
        errors = []
        for mirror in mirrors or mirrors_for(spec):
            try:
                log.info("downloading %s%s.gz", mirror, stem)
                download_file(f"{mirror}{stem}.gz", dest, spec.gz_md5[split], **kwargs)
                break
            except DataError as err:
                errors.append(str(err))
        else:
            raise DataError(f"{spec.name}: " + "; ".join(errors))
    return target


def copy_sample_to(target: Path) -> None:
    """Copy the shipped sample (used by tests and tools that need a data dir)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sample_files().files.values():
        shutil.copy2(path, target / path.name)
