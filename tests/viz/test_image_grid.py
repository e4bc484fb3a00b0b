"""image_grid: every image in its cell of the one mosaic, untouched, the gaps blank, a title per image and a
label per row; no images at all still draw."""

from __future__ import annotations

import io

import numpy as np
import pytest

from dlrl.viz.common import image_grid


def test_each_image_lands_in_its_cell_with_its_title() -> None:
    rng = np.random.default_rng(0)
    images = rng.random((5, 1, 6, 4)).astype(np.float32)
    fig = image_grid(images, [f"#{i}" for i in range(5)], ncols=3, row_labels=["first", "second"])
    (ax,) = fig.axes
    mosaic = ax.images[0].get_array()
    cells = ~np.ma.getmaskarray(mosaic)
    assert cells.sum() == 5 * 6 * 4  # five images, nothing else: the gaps and the empty sixth cell are blank
    rows, cols = np.nonzero(cells.any(axis=1))[0], np.nonzero(cells.any(axis=0))[0]
    row_starts = [r for r in rows if r == 0 or not cells[r - 1].any()]
    col_starts = [c for c in cols if c == 0 or not cells[:, c - 1].any()]
    assert len(row_starts) == 2 and len(col_starts) == 3
    for i, image in enumerate(images[:, 0]):
        top, left = row_starts[i // 3], col_starts[i % 3]
        np.testing.assert_array_equal(mosaic[top : top + 6, left : left + 4], image)
    texts = [t.get_text() for t in ax.texts]
    assert texts == [f"#{i}" for i in range(5)] + ["first", "second"]


@pytest.mark.parametrize("shape", [(0, 28, 28), (1, 28, 28), (3, 1, 12, 36)])
def test_any_number_of_images_draws(shape: tuple[int, ...]) -> None:
    fig = image_grid(np.zeros(shape), title="t")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
