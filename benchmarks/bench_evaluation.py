"""Evaluation speed: ``flowml.evaluate`` against MLflow 3.17's ``mlflow.models.evaluate``.

The same data and the same saved models for both sides: a LogisticRegression classifier
and a Ridge regressor, fitted on ``make_classification``/``make_regression`` data (20
features) and saved once in flowml's model format (which MLflow loads). Each side runs
in its own process (MLflow from its virtual environment, ``.cache/mlflow-venv``) against
its own fresh SQLite tracking store and local artifact folder, and evaluates the model
given by its path, with the default evaluator: metrics, plots, and whatever else each
logs by default (flowml: confusion matrix, ROC and PR curves or residuals, the per-row
table; MLflow: its curves, confusion matrix, calibration and lift curves, per-class
metrics). MLflow's SHAP explainability is switched off (``shap`` is not installed there).

And ``genai.evaluate`` of 200 rows (a trivial ``predict_fn``) with 3 heuristic scorers written
with each library's own ``@scorer`` (exact match, contains, token count); both trace each
prediction and store each verdict as an assessment on its trace.

Measured per model: the first evaluation in a fresh process (imports and loading
included) and the median of the following ones (each a new run), in wall time, and the
CPU time of the following ones (``cpu_warm``: far less sensitive to the machine's load).
The sides take turns for a few rounds and each figure is the best of its rounds (the
machine is shared).
Target (issue 15): flowml at least 3x faster.

Usage:
    python benchmarks/bench_evaluation.py            # 10,000 rows, 5 repeats
    python benchmarks/bench_evaluation.py --quick    # a smoke run
    python benchmarks/bench_evaluation.py --side flowml --quick --json   # no MLflow at all
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _compare import chosen_sides, comparison_parser, print_report  # noqa: E402
from _mlflow_env import mlflow_env, mlflow_python  # noqa: E402

FULL = {"rows": 10_000, "repeats": 5, "rounds": 3}
QUICK = {"rows": 1_000, "repeats": 2, "rounds": 1}
TARGET_RATIO = 3.0
# Wall time of the first and the warm evaluations, and the warm ones' CPU time (this
# process's, every thread): on a loaded machine wall time swings with the load of the
# moment, CPU time far less, so its ratio tells whether a wall ratio was the load's doing.
WHENS = ("first", "warm", "cpu_warm")
WORKER_TIMEOUT_S = 1800

# The timed part of each side; {call} evaluates one model. Loading the data is not timed.
WORKER = """
import json, sys, time
start, cpu_start = time.perf_counter(), time.process_time()
{imports}
import pandas as pd
root, repeats = sys.argv[1], int(sys.argv[2])
out = {{}}
for case, kind, model_type, target in {cases}:
    data = pd.read_parquet(f"{{root}}/{{kind}}.parquet")
    model = f"{{root}}/{{kind}}_model"
    times, cpu = [], []
    for i in range(repeats + 1):
        if i:
            start, cpu_start = time.perf_counter(), time.process_time()
        {call}
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - cpu_start)
    out[case] = {{"first": times[0], "warm": sorted(times[1:])[len(times[1:]) // 2],
                 "cpu_warm": sorted(cpu[1:])[len(cpu[1:]) // 2], "metrics": sorted(metrics)}}
{genai}
print(json.dumps(out))
"""

# genai.evaluate of GENAI_ROWS rows with 3 heuristic scorers written with each library's own
# @scorer decorator (the same three functions), a trivial predict_fn.
GENAI_ROWS = 200
# MLflow takes minutes per genai evaluation here (a trace per row written to SQLite): one
# warm run after the first.
GENAI_REPEATS = 1
GENAI = """
rows = [{{"inputs": {{"question": f"q{{i}}"}},
         "expectations": {{"expected_response": f"answer {{i}}"}}}} for i in range({rows})]

@scorer
def exact_match(outputs, expectations):
    return outputs.strip() == expectations["expected_response"].strip()

@scorer
def contains(outputs, expectations):
    return expectations["expected_response"].lower() in outputs.lower()

@scorer
def token_count(outputs):
    return len(outputs.split())

def predict(question):
    return "answer " + question[1:]

times, cpu = [], []
for i in range({genai_repeats} + 1):
    start, cpu_start = time.perf_counter(), time.process_time()
    metrics = {evaluate}(data=rows, predict_fn=predict,
                         scorers=[exact_match, contains, token_count]).metrics
    times.append(time.perf_counter() - start)
    cpu.append(time.process_time() - cpu_start)
out["genai"] = {{"first": times[0], "warm": sorted(times[1:])[len(times[1:]) // 2],
                "cpu_warm": sorted(cpu[1:])[len(cpu[1:]) // 2], "metrics": sorted(metrics)}}
"""

CASES = [
    ("classifier", "classifier", "classifier", "label"),
    ("regressor", "regressor", "regressor", "y"),
]
FLOWML = {
    "imports": "import flowml\nfrom flowml.genai import scorer",
    "genai": GENAI.format(
        rows=GENAI_ROWS, evaluate="flowml.genai.evaluate", genai_repeats=GENAI_REPEATS
    ),
    "call": "metrics = flowml.evaluate(model, data, targets=target, model_type=model_type, "
    "evaluators=['metrics'] if case.endswith('metrics') else None).metrics",
    # MLflow's default regressor evaluation logs metrics only (its one plot is SHAP's):
    # this case gives flowml the same output, for a like-for-like figure.
    "cases": repr([*CASES, ("regressor_metrics", "regressor", "regressor", "y")]),
}
MLFLOW = {
    "imports": "import mlflow\nfrom mlflow.genai.scorers import scorer",
    "genai": GENAI.format(
        rows=GENAI_ROWS, evaluate="mlflow.genai.evaluate", genai_repeats=GENAI_REPEATS
    ),
    "cases": repr(CASES),
    "call": "with mlflow.start_run():\n"
    "            metrics = mlflow.models.evaluate(model, data, targets=target, "
    "model_type=model_type, evaluators='default', "
    "evaluator_config={'log_model_explainability': False}).metrics",
}


def prepare(root: Path, rows: int) -> None:
    """Write both data sets and both fitted models under ``root``."""
    import pandas as pd
    from sklearn.datasets import make_classification, make_regression
    from sklearn.linear_model import LogisticRegression, Ridge

    from flowml.models.api import save_model

    columns = [f"x{i}" for i in range(20)]
    features, labels = make_classification(rows, 20, n_informative=8, random_state=0)
    frame = pd.DataFrame(features, columns=columns).assign(label=labels)
    frame.to_parquet(root / "classifier.parquet")
    save_model(
        LogisticRegression(max_iter=500).fit(frame[columns], labels),
        str(root / "classifier_model"),
    )
    features, y = make_regression(rows, 20, noise=5.0, random_state=0)
    frame = pd.DataFrame(features, columns=columns).assign(y=y)
    frame.to_parquet(root / "regressor.parquet")
    save_model(Ridge().fit(frame[columns], y), str(root / "regressor_model"))


def run_side(
    side: str, root: Path, repeats: int, round_no: int = 0, genai: bool = True
) -> dict[str, Any]:
    store = root / f"{side}-{round_no}"
    store.mkdir()
    parts = dict(FLOWML if side == "flowml" else MLFLOW)
    if not genai:
        parts["genai"] = ""
    script = WORKER.format(**parts)
    if side == "flowml":
        python = sys.executable
        env = {
            **os.environ,
            "FLOWML_HOME": str(store),
            "FLOWML_TRACKING_URI": f"sqlite:///{store / 'flowml.db'}",
            "FLOWML_ARTIFACT_ROOT": str(store / "artifacts"),
            "PYTHONPATH": str(HERE.parent),
        }
    else:
        python = str(mlflow_python())
        env = mlflow_env()
        env["MLFLOW_TRACKING_URI"] = f"sqlite:///{store / 'mlflow.db'}"
        env["MPLBACKEND"] = "Agg"
        # Its default 10 threads exhaust SQLAlchemy's connection pool on SQLite and traces
        # then fail to export (after 30 s timeouts): one worker is MLflow's fastest working
        # setting here.
        env["MLFLOW_GENAI_EVAL_MAX_WORKERS"] = "1"
        env["MLFLOW_GENAI_EVAL_MAX_SCORER_WORKERS"] = "1"
    done = subprocess.run(
        [python, "-c", script, str(root), str(repeats)],
        env=env,
        cwd=store,
        capture_output=True,
        text=True,
        timeout=WORKER_TIMEOUT_S,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"The {side} worker failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _best(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    best = {}
    for case in rounds[0]:
        best[case] = dict(rounds[0][case])
        for when in WHENS:
            best[case][when] = min(r[case][when] for r in rounds)
    return best


def run(sides: list[str], sizes: dict[str, int]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="flowml-bench-eval-") as tmp:
        root = Path(tmp)
        genai = bool(sizes.get("genai", True))
        prepare(root, sizes["rows"])
        # Sides take turns, round after round, and each figure is the best of its rounds: on a
        # shared machine, load that comes and goes then weighs on both sides alike.
        rounds = [
            {side: run_side(side, root, sizes["repeats"], n, genai) for side in sides}
            for n in range(sizes["rounds"])
        ]
        results = {side: _best([r[side] for r in rounds]) for side in sides}
    report: dict[str, Any] = {
        "rows": sizes["rows"],
        "repeats": sizes["repeats"],
        "rounds": sizes["rounds"],
        "python": platform.python_version(),
        "results": results,
    }
    if len(sides) == 2:
        # regressor_metrics: flowml with metrics only against MLflow's default (metrics only)
        pairs = {"classifier": "classifier", "regressor": "regressor"}
        if genai:
            pairs["genai"] = "genai"
        pairs["regressor_metrics"] = "regressor"
        report["ratios"] = {
            case: {
                when: results["mlflow"][theirs][when] / results["flowml"][case][when]
                for when in WHENS
            }
            for case, theirs in pairs.items()
        }
    return report


def _print_table(report: dict[str, Any]) -> None:
    results = report["results"]
    print(
        f"evaluate, {report['rows']:,} rows: median of {report['repeats']} warm runs, "
        f"best of {report['rounds']} rounds"
    )
    print(f"{'case':<18} {'when':<8}" + "".join(f"{side:>12}" for side in results) + "   ratio")
    for case in results.get("flowml", results.get("mlflow", {})):
        for when in WHENS:
            theirs = "regressor" if case == "regressor_metrics" else case
            cells = "".join(
                f"{results[s][case if s == 'flowml' else theirs][when]:>11.3f}s" for s in results
            )
            ratio = report.get("ratios", {}).get(case, {}).get(when)
            print(f"{case:<18} {when:<8}{cells}" + (f"  {ratio:5.1f}x" if ratio else ""))
    for kind, ratios in report.get("ratios", {}).items():
        passed = ratios["warm"] >= TARGET_RATIO
        print(f"target {kind} warm >= {TARGET_RATIO:g}x: {'PASS' if passed else 'FAIL'}")


def main(argv: list[str] | None = None) -> int:
    parser = comparison_parser(__doc__.splitlines()[0], "small sizes, a smoke run")
    parser.add_argument("--no-genai", action="store_true", help="skip the genai case (minutes)")
    args = parser.parse_args(argv)
    sizes = {**(QUICK if args.quick else FULL), "genai": not args.no_genai}
    return print_report(run(chosen_sides(args), sizes), args, _print_table)


if __name__ == "__main__":
    sys.exit(main())
