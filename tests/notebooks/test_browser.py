"""Each notebook's executed HTML page in headless Chromium: every figure loaded, nothing from the network."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from .conftest import NAMES

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None or CHROMEDRIVER is None,
        reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
    ),
]


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tmp_path_factory.mktemp("chromium-profile")
    for argument in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):  # fmt: skip
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def figure_outputs(nb) -> int:
    """Image outputs of the notebook (matplotlib figures, the episode GIF)."""
    return sum(
        1
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if {"image/png", "image/gif"} & set(output.get("data", {}))
    )


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("name", NAMES)
def test_executed_page_shows_every_figure(name: str, executed, browser) -> None:
    run = executed(name)
    assert run.error is None
    browser.get(Path(run.html).resolve().as_uri())
    browser.execute_script("window.scrollTo(0, document.body.scrollHeight)")  # lazy images, if any
    images = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.src.slice(0, 15)])"
    )
    assert len(images) == figure_outputs(run.nb) > 0
    broken = [src for complete, width, src in images if not complete or width == 0]
    assert broken == []
    assert all(src.startswith("data:image/") for _, _, src in images)
    # Nothing fetched from anywhere: no scripts from a CDN, the figures are data URIs.
    assert browser.execute_script("return performance.getEntriesByType('resource').length") == 0
