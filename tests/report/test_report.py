"""The report: what it shows for every kind of section, and that it needs nothing outside the file."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

from dlrl.cli import main
from dlrl.report import build_report
from dlrl.report.collect import directory_kind, read_run, read_targets
from dlrl.report.figures import image_size
from dlrl.report.tables import summary_tables
from dlrl.report.view import fmt
from dlrl.rundir import RunDir


class Links(HTMLParser):
    """Ids, local links and image sources of a page, and every attribute that could fetch something."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[str] = []
        self.fetching: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"])
        if tag == "a" and values.get("href"):
            self.hrefs.append(values["href"])
        if tag == "img":
            self.images.append(values.get("src") or "")
        if tag in ("script", "iframe", "object", "embed"):
            self.fetching.append(tag)
        for name in ("src", "href"):
            value = values.get(name) or ""
            if value and not value.startswith(("#", "data:")):
                self.fetching.append(f"{tag} {name}={value[:40]}")


def parse(html: str) -> Links:
    links = Links()
    links.feed(html)
    return links


def test_fabricated_run_renders_every_kind_of_content(fake_run: Path) -> None:
    run = fake_run
    path = build_report(run)
    assert path == run / "report.html"
    html = path.read_text()
    links = parse(html)
    assert not links.fetching  # self-contained: no scripts, no external files
    for href in links.hrefs:  # the table of contents and overview point at real sections
        assert href.startswith("#") and href[1:] in links.ids
    for name in ("regression", "regression2", "classifier", "dqn", "vae"):
        assert f"#sec-{name}" in links.hrefs
    # figures: 2 + nested folder 1 + nested run 1, all embedded PNGs
    assert len(links.images) == 4 and all(src.startswith("data:image/png;base64,") for src in links.images)
    assert "A caption from captions.json" in html and "Learning curves" in html
    assert 'class="wide"' in html  # the 120x20 figure spans the page
    # status of every section
    assert 'badge failed">failed' in html and 'badge skipped">skipped' in html
    assert "not run yet" in html  # vae: in run.json, never started
    assert "&lt;script&gt;boom&lt;/script&gt;" in html and "<script>" not in html  # escaped
    assert "Traceback (most recent call last)" in html
    assert "did not finish" in html
    # targets beside measured values: met in one section, missed in the other
    section = html.split('id="sec-regression"')[1].split('id="sec-regression2"')[0]
    assert "1.05" in section and 'badge met">met' in section
    assert 'badge missed">missed' in html.split('id="sec-regression2"')[1].split('id="sec-classifier"')[0]
    # headline scalars, nested tables, extra tables, notes, config, metrics, environment
    assert "8,513" in section and "64, 64" in section
    assert "_internal" not in html
    assert "Per class" in section and "Folds" in section and "gaussian" in section and "salt" in section
    assert "Search" in section and "0.01" in section
    assert "first point" in section and "&lt;b&gt;here&lt;/b&gt;" in section
    assert "seed-2: summary" in section and "0.875" in section
    assert "experiment: regression" in section and "metrics.csv, 3 rows" in section
    assert "profile <strong>quick</strong>" in html and "0:42" in html and "2.13.0" in html


def test_single_experiment_and_tune_directories(tmp_path: Path, make_section, make_png) -> None:
    single = make_section(tmp_path / "regression-1", "regression", {"test_mse_over_noise_var": 2.0})
    html = build_report(single).read_text()
    assert 'id="sec-regression-1"' in html and 'badge missed">missed' in html and html.count("<img ") == 1

    tune = tmp_path / "tune-1"
    tune.mkdir()
    (tune / "trials.csv").write_text("trial,lr,val_loss\n5dab0e2d,0.001,0.5\n50375472,0.01,0.25\n")
    (tune / "best_config.yaml").write_text("experiment: regression\noptim:\n  lr: 0.01\n")
    (tune / "config.yaml").write_text("experiment: regression\n")  # the searched experiment
    summary = {"kind": "search", "experiment": "regression", "best_trial": "50375472", "best_val_loss": 0.25}
    (tune / "summary.json").write_text(json.dumps(summary))
    make_png(tune / "figures" / "trials.png")
    view = read_run(tune)
    assert view.kind == "search" and view.sections[0].status == "done"
    assert ("experiment", "regression") in view.sections[0].scalars  # what was searched, as always shown
    assert "kind" not in dict(view.sections[0].scalars)
    assert view.sections[0].trials is not None and view.sections[0].trials.highlight == 1
    html = build_report(tune, tmp_path / "elsewhere.html").read_text()
    assert "Best configuration" in html and "lr: 0.01" in html and 'class="highlight"' in html
    assert "<td>50375472</td>" in html  # trial ids are not numbers to format
    assert "Targets" not in html  # the searched experiment's targets are not the search's


def test_kind_says_what_a_directory_is_and_files_say_it_without_one(tmp_path: Path, make_section) -> None:
    section = make_section(tmp_path / "exp", "regression", {"test_mse_over_noise_var": 1.0})
    assert directory_kind(section) == "experiment"
    view = read_run(section)
    assert view.kind == "experiment" and view.sections[0].experiment == "regression"
    assert "kind" not in dict(view.sections[0].scalars)  # what wrote it, not a headline metric
    assert "experiment" not in dict(view.sections[0].scalars)
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "run.json").write_text(json.dumps({"kind": "run", "sections": ["a"]}))
    assert directory_kind(tmp_path / "run") == "run"
    # Written before the kind field: dlrl run by its sections.json, a search by its trials.csv.
    old = tmp_path / "old"
    old.mkdir()
    (old / "summary.json").write_text(json.dumps({"acc": 0.5}))
    assert directory_kind(old) == "experiment"
    (old / "trials.csv").write_text("trial,lr\n1,0.1\n")
    assert directory_kind(old) == "search"
    (old / "sections.json").write_text("{}")
    assert directory_kind(old) == "run"


def test_dlrl_report_rebuilds_and_names_bad_directories(tmp_path: Path, fake_run: Path, capsys) -> None:
    run = fake_run
    assert main(["report", str(run)]) == 0
    assert str(run / "report.html") in capsys.readouterr().out
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such run directory" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    assert "not a dlrl run directory" in capsys.readouterr().err


def test_summary_tables_shapes() -> None:
    scalars, tables = summary_tables(
        {"acc": 0.91234, "n": 12000, "ok": True, "missing": None, "dims": [2, 8], "per": {"x": 1.0}}
    )
    assert scalars == [("acc", "0.9123"), ("n", "12,000"), ("ok", "yes"), ("missing", "—"), ("dims", "2, 8")]
    assert [(t.title, t.columns, t.rows) for t in tables] == [("Per", ["x"], [["1"]])]
    _, tables = summary_tables({"m": {"a": {"x": 1, "y": 2}, "b": {"x": 3}}})
    assert tables[0].columns == ["", "x", "y"] and tables[0].rows == [["a", "1", "2"], ["b", "3", "—"]]


def test_targets_met_missed_and_unmeasured(tmp_path: Path) -> None:
    targets = [
        {"metric": "acc", "op": ">=", "value": 0.9, "label": "accuracy", "reference": "paper: 0.92"},
        {"metric": "time", "op": "<=", "value": 10, "label": "fast"},
        {"metric": "nested.psnr", "op": ">=", "value": 20, "label": "psnr"},
        {"metric": "absent", "op": ">=", "value": 1, "label": "absent"},
    ]
    RunDir(tmp_path).write_targets(targets, {"acc": 0.95, "time": 12.0, "nested": {"psnr": 21.5}})
    views = read_targets(tmp_path)
    assert [v.met for v in views] == [True, False, True, None]
    assert [(v.value, v.measured) for v in views] == [
        ("0.9", "0.95"),
        ("10", "12"),
        ("20", "21.5"),
        ("1", "not measured"),
    ]
    assert views[0].reference == "paper: 0.92" and views[0].label == "accuracy"
    (tmp_path / "targets.json").unlink()
    assert read_targets(tmp_path) == []  # no targets.json, no targets


def test_the_report_imports_no_experiment() -> None:
    """It reads the run directory's files only: no experiment, search or training code is imported."""
    code = (
        "import sys, dlrl.report\n"
        "print(sorted(m for m in sys.modules if m.startswith(('dlrl.experiments', 'dlrl.tuning', "
        "'dlrl.train', 'dlrl.models', 'dlrl.data', 'dlrl.rl', 'dlrl.viz', 'dlrl.pipeline'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize(
    ("value", "text"),
    [(0.5, "0.5"), (1234.5678, "1,234.6"), (1e-5, "1.000e-05"), (float("nan"), "NaN"), (3, "3"), ("a", "a")],
)
def test_fmt(value, text) -> None:
    assert fmt(value) == text


def test_image_size_reads_png_headers(tmp_path: Path, make_png) -> None:
    assert image_size(make_png(tmp_path / "a.png", 33, 17).read_bytes()) == (33, 17)
    assert image_size(b"not an image") == (None, None)


def test_report_of_a_partial_file_set_still_renders(tmp_path: Path) -> None:
    """A section killed early: config.yaml only, a broken summary.json, a half-written figure."""
    run = tmp_path / "run"
    section = run / "classifier"
    section.mkdir(parents=True)
    (section / "config.yaml").write_text("experiment: classifier\n")
    (section / "summary.json").write_text("{ not json")
    (section / "figures").mkdir()
    (section / "figures" / ".curves.png.123.tmp").write_bytes(b"partial")
    (run / "sections.json").write_text(json.dumps({"classifier": {"status": "interrupted"}}))
    html = build_report(run).read_text()
    assert re.search(r'badge interrupted">interrupted', html) and "<img " not in html
