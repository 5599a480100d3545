"""Cross-validate a logistic regression on a bundled dataset; one metric point per fold."""

from __future__ import annotations

import argparse
import statistics

from data import load
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import flowml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="wine")
    parser.add_argument("--C", type=float, default=1.0)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    data = load(args.dataset)
    model = make_pipeline(StandardScaler(), LogisticRegression(C=args.C, max_iter=1000))
    scores = cross_val_score(model, data.data, data.target, cv=args.folds)
    for fold, score in enumerate(scores):
        flowml.log_metric("fold_accuracy", float(score), step=fold)
    mean = statistics.fmean(scores)
    flowml.log_metrics({"mean_accuracy": mean, "std_accuracy": statistics.pstdev(scores)})
    print(f"{args.dataset}: {args.folds}-fold accuracy {mean:.3f}")


if __name__ == "__main__":
    main()
