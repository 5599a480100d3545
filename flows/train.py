"""Train two scikit-learn models on the wine data set in a tracked Prefect flow; keep the best.

    python flows/train.py                     # defaults
    python flows/train.py --n-estimators 200 --c 0.5

The flow runs in Prefect's local mode and tracks into flowml's default store (a SQLite file
and an artifact folder under ``~/.flowml``, or ``FLOWML_TRACKING_URI``):

    load_data ──> split ──┬──> train[random_forest] ───────> evaluate ──┐
                          └──> train[logistic_regression] ─> evaluate ──┴──> pick_best

The two ``train`` tasks (and their evaluations) run in parallel threads. Every task run is a
child run of the flow run's run, with its arguments as params, its metrics, the models it
logged and the lineage between them.
"""

from __future__ import annotations

import argparse
from typing import Any

from prefect.task_runners import ThreadPoolTaskRunner

import flowml
from flowml.tasks import register_model

EXPERIMENT = "wine"
MODELS = ("random_forest", "logistic_regression")


@flowml.tracked_task
def load_data() -> Any:
    """The wine data set bundled with scikit-learn, as a DataFrame (features + ``target``)."""
    from sklearn.datasets import load_wine

    frame = load_wine(as_frame=True).frame
    flowml.log_input(frame, name="sklearn-wine")
    flowml.log_metrics({"rows": len(frame), "features": frame.shape[1] - 1})
    return frame


@flowml.tracked_task
def split(frame: Any, test_size: float, seed: int) -> dict[str, Any]:
    """A stratified train/test split."""
    from sklearn.model_selection import train_test_split

    features, target = frame.drop(columns="target"), frame["target"]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=test_size, random_state=seed, stratify=target
    )
    flowml.log_metrics({"train_rows": len(x_train), "test_rows": len(x_test)})
    return {"x_train": x_train, "x_test": x_test, "y_train": y_train, "y_test": y_test}


@flowml.tracked_task(task_run_name="train-{kind}", exclude_params=["data"])
def train(data: dict[str, Any], kind: str, hyperparams: dict[str, Any]) -> dict[str, Any]:
    """Fit one candidate model and log it (MLmodel format, with a signature inferred from an
    input example) in the task's run. Returns the model and its ``runs:/`` URI."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if kind == "random_forest":
        model = RandomForestClassifier(**hyperparams)
    elif kind == "logistic_regression":
        model = make_pipeline(StandardScaler(), LogisticRegression(**hyperparams))
    else:
        raise ValueError(f"unknown model kind {kind!r}; expected one of {MODELS}")
    model.fit(data["x_train"], data["y_train"])
    flowml.log_metric("train_accuracy", float(model.score(data["x_train"], data["y_train"])))
    info = flowml.log_model(model, name="model", input_example=data["x_train"].head(3))
    return {"model": model, "model_uri": info.model_uri}


@flowml.tracked_task(task_run_name="evaluate-{kind}", exclude_params=["model", "data"])
def evaluate(model: dict[str, Any], data: dict[str, Any], kind: str) -> dict[str, float]:
    """Test-set accuracy and macro F1 (returned, so logged as the run's metrics)."""
    from sklearn.metrics import accuracy_score, f1_score

    predicted = model["model"].predict(data["x_test"])
    return {
        "accuracy": float(accuracy_score(data["y_test"], predicted)),
        "f1_macro": float(f1_score(data["y_test"], predicted, average="macro")),
    }


@flowml.tracked_task
def pick_best(scores: dict[str, dict[str, float]]) -> dict[str, Any]:
    """The candidate with the best accuracy (macro F1 breaks ties)."""
    best = max(scores, key=lambda kind: (scores[kind]["accuracy"], scores[kind]["f1_macro"]))
    flowml.set_tag("best_model", best)
    return {"best_model": best, **scores[best]}


@flowml.tracked_task
def save_holdout(data: dict[str, Any]) -> str:
    """Keep the test split as a CSV artifact of this run: the champion/challenger flow
    (flows/promote.py) scores registered versions on it. Returns its URI."""
    holdout = data["x_test"].assign(target=data["y_test"])
    flowml.log_text(holdout.to_csv(index=False), "holdout.csv")
    return flowml.get_artifact_uri("holdout.csv")


@flowml.tracked_flow(
    name="train-wine",
    experiment=EXPERIMENT,
    task_runner=ThreadPoolTaskRunner(max_workers=2),
)
def train_pipeline(
    test_size: float = 0.25,
    seed: int = 42,
    n_estimators: int = 100,
    c: float = 1.0,
    registered_model_name: str | None = EXPERIMENT,
) -> dict[str, Any]:
    """Load, split, train a random forest and a logistic regression in parallel, evaluate
    both, keep the best and register it as the next version of ``registered_model_name``.
    Returns the best model's name, scores, URI, registered version and the holdout's URI."""
    frame = load_data()
    data = split(frame, test_size, seed)
    candidates = {
        "random_forest": {"n_estimators": n_estimators, "random_state": seed},
        "logistic_regression": {"C": c, "max_iter": 1000},
    }
    models = {kind: train.submit(data, kind, params) for kind, params in candidates.items()}
    evaluations = {kind: evaluate.submit(models[kind], data, kind) for kind in candidates}
    best = pick_best({kind: future.result() for kind, future in evaluations.items()})
    best["model_uri"] = models[best["best_model"]].result()["model_uri"]
    best["holdout_uri"] = save_holdout(data)
    if registered_model_name:
        version = register_model(
            best["model_uri"], registered_model_name, reason=f"best of {', '.join(candidates)}"
        )
        best["model_version"] = version.version
    # The flow's own run records the winner next to its parameters.
    flowml.log_metrics({"best_accuracy": best["accuracy"], "best_f1_macro": best["f1_macro"]})
    flowml.set_tag("best_model", best["best_model"])
    return best


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--test-size", type=float, default=0.25)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--n-estimators", type=int, default=100)
    parser.add_argument("--c", type=float, default=1.0)
    args = parser.parse_args(argv)
    state = train_pipeline(
        test_size=args.test_size,
        seed=args.seed,
        n_estimators=args.n_estimators,
        c=args.c,
        return_state=True,
    )
    best = state.result()
    _print_where_to_look(state.state_details.flow_run_id, best)
    return best


def _print_where_to_look(flow_run_id: Any, best: dict[str, Any]) -> None:
    from flowml.tasks.identity import run_for_flow_run
    from flowml.tracking.fluent import get_client

    run = run_for_flow_run(get_client(), flow_run_id)
    run_id = run.info.run_id if run else "?"
    registered = (
        f"Registered as version {best['model_version']} of '{EXPERIMENT}': "
        f"flowml models versions {EXPERIMENT}\n"
        f"  serve it: flowml models serve -m models:/{EXPERIMENT}/{best['model_version']}"
        " --port 5001\n"
        if "model_version" in best
        else ""
    )
    print(
        f"\nBest model: {best['best_model']} "
        f"(accuracy {best['accuracy']:.3f}, macro F1 {best['f1_macro']:.3f})\n"
        f"{registered}"
        f"\nTracked in {flowml.get_tracking_uri()}:\n"
        f"  flowml runs list --experiment {EXPERIMENT}\n"
        f"  flowml runs show {run_id}\n"
        f"  flowml runs lineage {run_id}\n"
        f"\nHeld-out split: {best['holdout_uri']}\n"
        f"\nIn the Prefect UI (start it with `prefect server start`, then run this flow again\n"
        f"so it reports there): flow run {flow_run_id}, with the flowml-train-wine-* artifacts\n"
        f"and the flowml.run.* events."
    )


if __name__ == "__main__":
    main()
