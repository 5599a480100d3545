"""The residual plot: points or shaded cells, and a figure reused without leaking between plots."""

from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

from flowml.evaluation.plots import MAX_SCATTER_ROWS, regressor_plots

PNG = b"\x89PNG\r\n\x1a\n"


def _rows(n: int, seed: int) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(0, 50, n)
    return y_true, y_true + rng.normal(0, seed + 1, n)


def _pixels(png: bytes) -> Any:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def _residuals(y_true: Any, y_pred: Any) -> bytes:
    return regressor_plots(y_true, y_pred)["residuals_plot.png"]


def _key_column(pixels: Any) -> Any:
    # The colour key's middle, right of the axes (its place in figure fractions).
    height, width = pixels.shape[:2]
    return pixels[int(height * 0.3) : int(height * 0.7), int(width * 0.88)]


def test_few_rows_are_points_and_many_are_shaded_cells_with_a_key():
    few = _pixels(_residuals(*_rows(MAX_SCATTER_ROWS, 0)))
    many = _pixels(_residuals(*_rows(MAX_SCATTER_ROWS + 1, 0)))
    yellow = (many[..., 0] > 200) & (many[..., 1] > 200) & (many[..., 2] < 100)
    assert yellow.any()  # viridis' top, for the fullest cells and the key
    assert not ((few[..., 0] > 200) & (few[..., 1] > 200) & (few[..., 2] < 100)).any()
    key = _key_column(many)
    assert len({tuple(p) for p in key}) > 20  # a colour ramp
    # Viridis' green rises from one row (bottom) to the most (top): it falls down the image.
    assert (np.diff(key[:, 1].astype(int)) <= 0).all()


def test_a_reused_figure_keeps_nothing_of_the_plot_before():
    many, other_many = _rows(5000, 1), _rows(3000, 2)
    few = _rows(200, 3)
    first = _residuals(*many)
    assert first[:8] == PNG
    between = [_residuals(*other_many), _residuals(*few), _residuals(*other_many)]
    assert _residuals(*many) == first
    assert between[0] == between[2] != first
    assert _residuals(*few) == between[1]


def test_plots_drawn_in_threads_at_once_are_the_ones_drawn_alone():
    cases = [_rows(n, seed) for seed, n in enumerate([4000, 300, 2500, 50, 6000, 1200])]
    alone = [_residuals(*case) for case in cases]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            assert list(pool.map(lambda case: _residuals(*case), cases)) == alone


@pytest.mark.parametrize("n", [1, 7, MAX_SCATTER_ROWS + 10])
def test_constant_predictions_and_single_rows_still_plot(n):
    png = _residuals(np.full(n, 3), np.full(n, 3.0))
    assert png[:8] == PNG
    assert _pixels(png).shape == (360, 480, 3)
