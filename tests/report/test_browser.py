"""The report of a tiny real run, opened in headless Chromium: every section there, every image loaded."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from dlrl.cli import main
from dlrl.report import build_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture
def browser(tmp_path: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):  # fmt: skip
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def test_report_of_a_tiny_run_loads_completely_in_chromium(tmp_path: Path, browser) -> None:
    out = tmp_path / "run"
    code = main(
        ["run", "--quick", "--only", "classifier", "--out", str(out), "--set", "classifier.epochs=1",
         "--set", "classifier.data.limit=300", "--set", "classifier.model.hidden_sizes=[16]"]
    )  # fmt: skip
    assert code == 0
    # A failed section beside the real one, as a crash in another experiment would leave it.
    status = json.loads((out / "sections.json").read_text())
    status["regression"] = {
        "status": "failed",
        "experiment": "regression",
        "error": "RuntimeError: loss is NaN",
        "traceback": "Traceback (most recent call last):\nRuntimeError: loss is NaN",
        "seconds": 2.0,
    }
    (out / "sections.json").write_text(json.dumps(status))
    # ... which had written a wide table before it failed (20 columns: must scroll in its own box)
    (out / "regression").mkdir()
    wide = [{f"column_{i}": 1000.5 + i for i in range(20)} for _ in range(3)]
    (out / "regression" / "summary.json").write_text(json.dumps({"runs": wide}))
    report = build_report(out)
    figures = list((out / "classifier" / "figures").rglob("*.png"))
    assert figures

    browser.get(report.resolve().as_uri())
    assert browser.title.startswith("dlrl report")
    anchors = browser.execute_script(
        "return Array.from(document.querySelectorAll('nav#toc a')).map(a => a.getAttribute('href'))"
    )
    assert "#sec-classifier" in anchors and "#sec-regression" in anchors and "#environment" in anchors
    missing = browser.execute_script(
        "return arguments[0].filter(h => !document.getElementById(h.slice(1)))", anchors
    )
    assert missing == []
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.alt])"
    )
    assert len(images) == len(figures)
    broken = [alt for complete, width, alt in images if not complete or width == 0]
    assert broken == []
    # Nothing fetched from anywhere: the images are data URIs, there are no other resources.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
    failed = browser.find_element("id", "sec-regression").text
    assert "failed" in failed and "RuntimeError: loss is NaN" in failed
    # Wide tables scroll inside their box; the page itself never needs a horizontal scrollbar.
    widths = browser.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
    )
    assert widths[0] <= widths[1]
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "report.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
