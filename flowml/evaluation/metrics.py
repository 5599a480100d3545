"""The standard metrics of each model type, computed by scikit-learn under MLflow's names.

Classifiers: ``example_count``, ``accuracy_score``, ``precision_score``, ``recall_score``,
``f1_score`` (binary: of the positive class; multiclass: weighted, as MLflow), their
``_macro`` averages, ``log_loss``, ``roc_auc`` and ``precision_recall_auc`` (when the model
gives probabilities), the confusion counts of a binary classifier, and a per-class table.
Regressors: ``example_count``, ``mean_absolute_error``, ``mean_squared_error``,
``root_mean_squared_error``, ``r2_score``, ``max_error``, ``mean_absolute_percentage_error``,
``sum_on_target`` and ``mean_on_target``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ClassifierScores", "align_probabilities", "classifier_metrics", "regressor_metrics"]


@dataclass
class ClassifierScores:
    """A classifier's metrics and what the plots reuse.

    Attributes:
        metrics: metric name -> value.
        labels: every class seen in the targets or the predictions, sorted.
        probabilities: n_rows x n_classes aligned with ``labels``, or ``None``.
        per_class: a DataFrame of precision, recall, F1 and support per class.
    """

    metrics: dict[str, float]
    labels: Any
    probabilities: Any
    per_class: Any = field(default=None)

    @property
    def positive_label(self) -> Any:
        """The positive class of a binary classifier: the larger label, as MLflow (1 of 0/1)."""
        return self.labels[-1]


def classifier_metrics(y_true: Any, y_pred: Any, proba: Any, classes: Any) -> ClassifierScores:
    """Compute a classifier's metrics.

    Args:
        y_true: the labels (1-D).
        y_pred: the predicted labels (1-D).
        proba: class probabilities (n_rows x n_classes) or ``None``.
        classes: the class of each column of ``proba`` (an estimator's ``classes_``), or
            ``None`` to assume the sorted labels.

    Returns:
        A `ClassifierScores`.
    """
    import numpy as np
    import pandas as pd
    from sklearn import metrics as m

    labels = np.unique(np.concatenate([np.unique(y_true), np.unique(y_pred)]))
    binary = len(labels) == 2
    average = "binary" if binary else "weighted"
    pos = labels[-1] if binary else None
    out: dict[str, float] = {
        "example_count": float(len(y_true)),
        "accuracy_score": m.accuracy_score(y_true, y_pred),
    }
    # One call per averaging gives precision, recall and F1 together (each of sklearn's
    # precision_score/recall_score/f1_score calls would redo the same counting).
    for suffix, how, positive in (("", average, pos), ("_macro", "macro", None)):
        scores = m.precision_recall_fscore_support(
            y_true, y_pred, average=how, pos_label=positive, zero_division=0
        )
        for key, value in zip(
            ("precision_score", "recall_score", "f1_score"), scores[:3], strict=True
        ):
            out[key + suffix] = value
    if binary:
        tn, fp, fn_, tp = m.confusion_matrix(y_true, y_pred, labels=labels).ravel()
        out.update(true_negatives=tn, false_positives=fp, false_negatives=fn_, true_positives=tp)
    precision, recall, f1, support = m.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    per_class = pd.DataFrame(
        {
            "class": labels,
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    )
    probs = align_probabilities(proba, classes, labels)
    if probs is not None:
        out.update(_probability_metrics(y_true, probs, labels))
    return ClassifierScores({k: float(v) for k, v in out.items()}, labels, probs, per_class)


def align_probabilities(proba: Any, classes: Any, labels: Any) -> Any:
    """``proba``'s columns reordered (and zero-filled) to match ``labels``; ``None`` if unknown."""
    import numpy as np

    if proba is None:
        return None
    if classes is None:
        return proba if proba.shape[1] == len(labels) else None
    classes = np.asarray(classes)
    if len(classes) != proba.shape[1]:
        return None
    aligned = np.zeros((proba.shape[0], len(labels)))
    index = {c: i for i, c in enumerate(classes.tolist())}
    for j, label in enumerate(labels.tolist()):
        if label in index:
            aligned[:, j] = proba[:, index[label]]
    return aligned


def _probability_metrics(y_true: Any, probs: Any, labels: Any) -> dict[str, float]:
    from sklearn import metrics as m
    from sklearn.preprocessing import label_binarize

    out: dict[str, float] = {}
    # Each metric below is undefined for some inputs (one class present, probabilities not
    # summing to one): sklearn raises ValueError, and the metric is left out, as MLflow does.
    try:
        out["log_loss"] = m.log_loss(y_true, probs, labels=labels)
    except ValueError:
        pass
    if len(labels) == 2:
        positive = probs[:, 1]
        try:
            out["roc_auc"] = m.roc_auc_score(y_true == labels[1], positive)
            precision, recall, _ = m.precision_recall_curve(y_true == labels[1], positive)
            out["precision_recall_auc"] = m.auc(recall, precision)
        except ValueError:
            pass
        return out
    try:
        out["roc_auc"] = m.roc_auc_score(
            y_true, probs, labels=labels, multi_class="ovr", average="weighted"
        )
        onehot = label_binarize(y_true, classes=labels)
        out["precision_recall_auc"] = m.average_precision_score(onehot, probs, average="weighted")
    except ValueError:
        pass
    return out


def regressor_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Compute a regressor's metrics (MLflow's names and definitions)."""
    import numpy as np
    from sklearn import metrics as m

    mse = m.mean_squared_error(y_true, y_pred)
    total = float(np.sum(y_true))
    out = {
        "example_count": float(len(y_true)),
        "mean_absolute_error": m.mean_absolute_error(y_true, y_pred),
        "mean_squared_error": mse,
        "root_mean_squared_error": float(np.sqrt(mse)),
        "sum_on_target": total,
        "mean_on_target": total / len(y_true),
        "r2_score": m.r2_score(y_true, y_pred) if len(y_true) > 1 else float("nan"),
        "max_error": m.max_error(y_true, y_pred),
        "mean_absolute_percentage_error": m.mean_absolute_percentage_error(y_true, y_pred),
    }
    return {k: float(v) for k, v in out.items()}
