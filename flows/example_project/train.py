"""Train a random forest on a bundled dataset and log metrics and the model to the run.

`flowml run` starts this script with FLOWML_RUN_ID set: every `flowml.log_*` call below
lands in the run it created (with this entry point's parameters already logged).
"""

from __future__ import annotations

import argparse

from data import load
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import accuracy_score, f1_score
from sklearn.model_selection import train_test_split

import flowml
import flowml.models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="iris")
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--max-depth", type=int, default=5)
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()

    data = load(args.dataset)
    x_train, x_test, y_train, y_test = train_test_split(
        data.data,
        data.target,
        test_size=args.test_size,
        random_state=args.seed,
        stratify=data.target,
    )
    model = RandomForestClassifier(
        n_estimators=args.n_estimators, max_depth=args.max_depth, random_state=args.seed
    )
    model.fit(x_train, y_train)
    predictions = model.predict(x_test)

    accuracy = accuracy_score(y_test, predictions)
    flowml.log_metrics(
        {"accuracy": accuracy, "f1_macro": f1_score(y_test, predictions, average="macro")}
    )
    importances = dict(
        zip(data.feature_names, model.feature_importances_.round(4).tolist(), strict=True)
    )
    flowml.log_dict(importances, "feature_importances.json")
    flowml.models.log_model(model, "model", input_example=x_test.head(5))
    print(f"{args.dataset}: accuracy {accuracy:.3f} on {len(y_test)} held-out rows")


if __name__ == "__main__":
    main()
