"""Evaluation plots as PNG files, drawn by scikit-learn's displays on matplotlib.

Each plot is returned as PNG bytes, written to the run with the other artifacts. Figures are
built with ``matplotlib.figure.Figure`` and the Agg canvas directly, never
through pyplot's global state: no GUI backend is touched, nothing leaks between threads,
and no figure stays open after its file is written.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

__all__ = ["MAX_CURVE_CLASSES", "MAX_MATRIX_CLASSES", "classifier_plots", "regressor_plots"]

# One curve per class stops being readable past this many classes (MLflow's default too).
MAX_CURVE_CLASSES = 10
# Past these, a matrix's cell counts are unreadable, then the matrix itself is.
MAX_ANNOTATED_CLASSES = 20
MAX_MATRIX_CLASSES = 100
_SIZE = (6.0, 4.5)
_DPI = 80
# Axis labels' places in axes coordinates, below the x tick labels and left of the y ones.
_LABEL_OFFSET = (-0.09, -0.11)
_MARGINS = {"left": 0.14, "right": 0.96, "bottom": 0.13, "top": 0.92}


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

    Returns:
        File name -> PNG bytes.
    """
    from sklearn.metrics import PredictionErrorDisplay

    def draw(ax: Any) -> None:
        PredictionErrorDisplay.from_predictions(
            y_true,
            y_pred,
            kind="residual_vs_predicted",
            ax=ax,
            subsample=2000,
            random_state=0,
        )
        # Tick labels of at most four digits (the rest as a power of ten above the axis):
        # they fit left of the y label's fixed place.
        ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 4))

    return {"residuals_plot.png": _png(draw, "Residuals")}


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
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=_SIZE, dpi=_DPI)
    FigureCanvasAgg(figure)
    ax = figure.add_subplot()
    draw(ax)
    # A fixed title height and fixed axis label places: left to themselves, matplotlib
    # measures every tick label of the figure to place each of them, at each draw.
    ax.set_title(title, y=1.01)
    if numeric_ticks:  # class names can be of any width: their labels are placed by measure
        ax.xaxis.set_label_coords(0.5, _LABEL_OFFSET[0])
        ax.yaxis.set_label_coords(_LABEL_OFFSET[1], 0.5)
    # Tick labels are most of a plot's drawing time: five per axis are plenty to read it.
    ax.locator_params(nbins=5)
    # Fixed margins instead of tight_layout (which draws the figure once more just to
    # measure it), and light PNG compression: together they halve the time per plot.
    figure.subplots_adjust(**{**_MARGINS, **({"left": left} if left is not None else {})})
    out = io.BytesIO()
    figure.savefig(out, format="png", pil_kwargs={"compress_level": 1})
    return out.getvalue()
