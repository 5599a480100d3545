"""Evaluation plots as PNG files, drawn with matplotlib.

A classifier's plots are scikit-learn's displays (confusion matrix, ROC and PR curves); a
regressor's residuals are drawn by matplotlib directly, as points or, for many rows, as
cells shaded by count, on one figure per thread that is reused from plot to plot. Each plot
is returned as PNG bytes, written to the run with the other artifacts. Figures are built
with ``matplotlib.figure.Figure`` and the Agg canvas directly, never through pyplot's
global state: no GUI backend is touched and nothing is shared between threads.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable
from typing import Any

__all__ = [
    "DENSITY_CELLS",
    "MAX_CURVE_CLASSES",
    "MAX_MATRIX_CLASSES",
    "MAX_SCATTER_ROWS",
    "classifier_plots",
    "regressor_plots",
]

# One curve per class stops being readable past this many classes (MLflow's default too).
MAX_CURVE_CLASSES = 10
# Past these, a matrix's cell counts are unreadable, then the matrix itself is.
MAX_ANNOTATED_CLASSES = 20
MAX_MATRIX_CLASSES = 100
# Past this many rows, residual points hide each other: the plot shades cells by count instead.
MAX_SCATTER_ROWS = 1_000
# The residual plot's cells (predictions x residuals), about 7 pixels square at this size.
DENSITY_CELLS = (60, 40)
_SIZE = (6.0, 4.5)
_DPI = 80
# Axis labels' places in axes coordinates, below the x tick labels and left of the y ones.
_LABEL_OFFSET = (-0.09, -0.11)
_MARGINS = {"left": 0.14, "right": 0.96, "bottom": 0.13, "top": 0.92}
# The residual plot's colour key (left, bottom, width, height), right of the axes.
_KEY_PLACE = (0.87, 0.13, 0.025, 0.79)
_THREAD = threading.local()


def classifier_plots(y_true: Any, y_pred: Any, labels: Any, probs: Any) -> dict[str, bytes]:
    """Write the confusion matrix and, with probabilities, the ROC and PR curves.

    Args:
        y_true: the labels.
        y_pred: the predicted labels.
        labels: every class, sorted (the matrix's order).
        probs: probabilities aligned with ``labels``, or ``None``.

    Returns:
        File name -> PNG bytes (``confusion_matrix.png``, ``roc_curve_plot.png``,
        ``precision_recall_curve_plot.png``, as MLflow names them): no curves past 10
        classes, no plot at all past 100.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    if len(labels) > MAX_MATRIX_CLASSES:
        return {}
    pngs = {
        "confusion_matrix.png": _png(
            lambda ax: ConfusionMatrixDisplay.from_predictions(
                y_true,
                y_pred,
                labels=labels,
                ax=ax,
                colorbar=False,
                include_values=len(labels) <= MAX_ANNOTATED_CLASSES,
            ),
            "Confusion matrix",
            numeric_ticks=False,
            # Room left of the matrix for the longest class name (about 0.012 of the
            # width per character at this size), up to 40% of the figure.
            left=min(0.4, 0.08 + 0.012 * max(len(str(label)) for label in labels)),
        )
    }
    if probs is None or len(labels) > MAX_CURVE_CLASSES:
        return pngs
    from sklearn.metrics import PrecisionRecallDisplay, RocCurveDisplay

    curves = (
        (
            "roc_curve_plot.png",
            RocCurveDisplay,
            "ROC curve",
            "False positive rate",
            "True positive rate",
        ),
        (
            "precision_recall_curve_plot.png",
            PrecisionRecallDisplay,
            "Precision-recall curve",
            "Recall",
            "Precision",
        ),
    )
    for file_name, display, title, x_label, y_label in curves:
        draw = _curves(display, y_true, probs, labels, (x_label, y_label))
        pngs[file_name] = _png(draw, title)
    return pngs


def regressor_plots(y_true: Any, y_pred: Any) -> dict[str, bytes]:
    """Write the residuals against the predictions (``residuals_plot.png``).

    Up to `MAX_SCATTER_ROWS` rows, one point per row; past that, points hide each other, and
    the plot shades cells by how many rows fall in each (a logarithmic colour scale).

    Returns:
        File name -> PNG bytes.
    """
    import numpy as np

    predicted = np.asarray(y_pred, dtype=float)
    residuals = np.asarray(y_true, dtype=float) - predicted
    template = getattr(_THREAD, "residuals", None)
    if template is None:
        # One per thread: a figure is not safe to draw from two threads at once.
        template = _THREAD.residuals = _ResidualsFigure()
    return {"residuals_plot.png": template.png(predicted, residuals)}


class _ResidualsFigure:
    """The residual plot, built once per thread and redrawn with each evaluation's data.

    Most of a plot's time went to building the axes and drawing text, glyph by glyph. Here
    the axes are built once, and what never changes (title, axis names, the colour key) is
    drawn once into a background image per layout: each plot restores that image and draws
    the axes and the key's top count over it (matplotlib's blitting), then encodes it.
    """

    def __init__(self) -> None:
        import numpy as np
        from matplotlib import colormaps
        from matplotlib.cm import ScalarMappable
        from matplotlib.colors import LogNorm, Normalize

        self.figure, ax = _figure()
        self.axes = ax
        columns, rows = DENSITY_CELLS
        # The cells fill the axes (the limits are the histogram's range): drawn in axes
        # coordinates, the mesh never moves, only its counts change.
        self.density = ax.pcolormesh(
            np.linspace(0, 1, columns + 1),
            np.linspace(0, 1, rows + 1),
            np.ones((rows, columns)),
            transform=ax.transAxes,
            norm=LogNorm(1, 2),
            cmap="viridis",
        )
        self.points = ax.scatter([], [], s=12, alpha=0.6)
        ax.axhline(0, color="black", linestyle="--", linewidth=1)
        # Tick labels of at most four digits (the rest as a power of ten above the axis):
        # they fit left of the y label's fixed place.
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))
        ax.locator_params(nbins=5)
        # Fixed places for the (empty) axis labels: left to place themselves, they measure
        # every tick label at each draw.
        ax.xaxis.set_label_coords(0.5, _LABEL_OFFSET[0])
        ax.yaxis.set_label_coords(_LABEL_OFFSET[1], 0.5)
        # The key runs from one row to the fullest cell's count on the same logarithmic
        # scale as the cells; only that top count changes from plot to plot.
        key = self.figure.add_axes(_KEY_PLACE)
        self.figure.colorbar(
            ScalarMappable(Normalize(0, 1), colormaps["viridis"]), cax=key, ticks=[]
        )
        text = self.figure.text
        left, bottom, width, height = _KEY_PLACE
        self.key_max = text(left + width + 0.01, bottom + height, "", va="top", size="small")
        self.key_parts = [
            key,
            text(left + width + 0.01, bottom, "1", va="bottom", size="small"),
            text(left, bottom + height + 0.015, "rows", size="small"),
        ]
        # The title and axis names as the figure's text: the axes' own would be drawn with
        # the axes, at every plot.
        on_axes = {"transform": ax.transAxes, "ha": "center"}
        text(0.5, 1.01, "Residuals", va="bottom", size="large", **on_axes)
        text(0.5, _LABEL_OFFSET[0], "Predicted values", va="top", **on_axes)
        text(
            _LABEL_OFFSET[1],
            0.5,
            "Residuals (actual - predicted)",
            va="bottom",
            rotation="vertical",
            rotation_mode="anchor",
            **on_axes,
        )
        self.backgrounds: dict[bool, Any] = {}

    def png(self, predicted: Any, residuals: Any) -> bytes:
        import numpy as np
        from matplotlib.image import imsave

        x_limits, y_limits = _limits(predicted), _limits(residuals)
        dense = len(predicted) > MAX_SCATTER_ROWS
        if dense:
            counts = np.histogram2d(
                predicted, residuals, bins=DENSITY_CELLS, range=(x_limits, y_limits)
            )[0].T
            fullest = max(2.0, counts.max())
            # Empty cells are masked (left blank): a logarithmic scale has no place for 0.
            self.density.set_array(np.ma.masked_less(counts, 1))
            self.density.norm.vmax = fullest
            # Past six digits, the count would run off the figure's edge.
            self.key_max.set_text(f"{fullest:,.0f}" if fullest < 1e6 else f"{fullest:.1e}")
        else:
            self.points.set_offsets(np.column_stack([predicted, residuals]))
        self.axes.set_xlim(x_limits)
        self.axes.set_ylim(y_limits)
        canvas = self.figure.canvas
        canvas.restore_region(self._background(dense))
        renderer = canvas.get_renderer()
        self.axes.draw(renderer)
        if dense:
            self.key_max.draw(renderer)
        out = io.BytesIO()
        # What savefig does after drawing: the canvas's pixels to a PNG, lightly compressed.
        imsave(out, canvas.buffer_rgba(), format="png", dpi=_DPI, pil_kwargs={"compress_level": 1})
        return out.getvalue()

    def _background(self, dense: bool) -> Any:
        """Lay the figure out for cells or points; the first time, draw what never changes."""
        left, bottom, right, top = (_MARGINS[k] for k in ("left", "bottom", "right", "top"))
        right = _KEY_PLACE[0] - 0.04 if dense else right
        self.axes.set_position((left, bottom, right - left, top - bottom))
        self.points.set_visible(not dense)
        self.density.set_visible(dense)
        for part in self.key_parts:
            part.set_visible(dense)
        if dense not in self.backgrounds:
            for changing in (self.axes, self.key_max):
                changing.set_visible(False)
            self.figure.canvas.draw()
            self.backgrounds[dense] = self.figure.canvas.copy_from_bbox(self.figure.bbox)
            for changing in (self.axes, self.key_max):
                changing.set_visible(True)
        return self.backgrounds[dense]


def _limits(values: Any) -> tuple[float, float]:
    """The values' range and 5% of it on each side (one unit for a single value)."""
    low, high = float(values.min()), float(values.max())
    pad = 0.05 * (high - low) or 0.5
    return low - pad, high + pad


def _curves(
    display: Any, y_true: Any, probs: Any, labels: Any, axes: tuple[str, str]
) -> Callable[[Any], None]:
    def draw(ax: Any) -> None:
        # Binary: the positive (larger) class only; multiclass: one-vs-rest, one per class.
        classes = [1] if len(labels) == 2 else range(len(labels))
        for j in classes:
            display.from_predictions(
                y_true == labels[j], probs[:, j], ax=ax, name=f"class {labels[j]}"
            )
        # sklearn names the axes after the boolean positive label: name the real quantities.
        ax.set_xlabel(axes[0])
        ax.set_ylabel(axes[1])

    return draw


def _png(
    draw: Callable[[Any], Any],
    title: str,
    *,
    numeric_ticks: bool = True,
    left: float | None = None,
) -> bytes:
    figure, ax = _figure()
    draw(ax)
    _finish(ax, title, numeric_ticks=numeric_ticks, left=left)
    return _encode(figure)


def _figure() -> tuple[Any, Any]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE, dpi=_DPI)
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _finish(ax: Any, title: str, *, numeric_ticks: bool = True, left: float | None = None) -> None:
    # A fixed title height and fixed axis label places: left to themselves, matplotlib
    # measures every tick label of the figure to place each of them, at each draw.
    ax.set_title(title, y=1.01)
    if numeric_ticks:  # class names can be of any width: their labels are placed by measure
        ax.xaxis.set_label_coords(0.5, _LABEL_OFFSET[0])
        ax.yaxis.set_label_coords(_LABEL_OFFSET[1], 0.5)
    # Tick labels are most of a plot's drawing time: five per axis are plenty to read it.
    ax.locator_params(nbins=5)
    # Fixed margins instead of tight_layout (which draws the figure once more just to
    # measure it).
    ax.figure.subplots_adjust(**{**_MARGINS, **({"left": left} if left is not None else {})})


def _encode(figure: Any) -> bytes:
    out = io.BytesIO()
    # Light PNG compression: a third of the time of the default level, files barely larger.
    figure.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    return out.getvalue()
