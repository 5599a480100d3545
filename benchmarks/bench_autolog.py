"""scikit-learn autologging cost: flowml against MLflow 3.17, same machine, same workload.

Workloads, each in a fresh subprocess on a fresh SQLite store in a temporary directory:
  (fit)    ``LogisticRegression.fit`` on iris, autologged (params, training metrics, the
           dataset, the model with signature and input example), N times;
  (search) ``GridSearchCV`` over 8 candidates (cv=3) with every candidate as a child run
           (``max_tuning_runs=None``).
Reported: the median seconds of one autologged call on each side and their ratio, and the
same call without autologging for reference (the difference is what autologging adds; on
a busy machine it is noisy, so the ratio compares whole autologged calls).

flowml runs with this interpreter, MLflow with its own venv's (``.cache/mlflow-venv``).

Usage:
    python benchmarks/bench_autolog.py            # full run
    python benchmarks/bench_autolog.py --quick    # a smoke run
    python benchmarks/bench_autolog.py --side flowml --quick --json
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _compare import chosen_sides, comparison_parser  # noqa: E402

# The workload, written once for both libraries: `lib` is flowml or mlflow.
WORKLOAD = r"""
import json, os, sys, time, warnings
warnings.simplefilter("ignore")
side, fits, searches, home = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if side == "flowml":
    os.environ["FLOWML_HOME"] = home
    import flowml as lib
    enable = lambda: lib.sklearn.autolog(max_tuning_runs=None, silent=True)
    disable = lambda: lib.sklearn.autolog(disable=True)
else:
    import mlflow as lib
    import mlflow.sklearn
    lib.set_tracking_uri(f"sqlite:///{home}/mlflow.db")
    lib.set_experiment("bench")
    enable = lambda: mlflow.sklearn.autolog(
        log_input_examples=True, max_tuning_runs=None, silent=True)
    disable = lambda: mlflow.sklearn.autolog(disable=True)
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
X, y = load_iris(return_X_y=True, as_frame=True)
grid = {"C": [0.01, 0.1, 1.0, 10.0], "fit_intercept": [True, False]}

def timed(make, n):
    out = []
    for _ in range(n):
        start = time.perf_counter()
        make()
        out.append(time.perf_counter() - start)
    return out

fit = lambda: LogisticRegression(max_iter=300).fit(X, y)
search = lambda: GridSearchCV(LogisticRegression(max_iter=300), grid, cv=3).fit(X, y)
fit(); search()  # warm imports and caches
plain_fit, plain_search = timed(fit, fits), timed(search, searches)
enable()
fit()  # the first autologged call creates the store
logged_fit, logged_search = timed(fit, fits), timed(search, searches)
disable()
print(json.dumps({"plain_fit": plain_fit, "logged_fit": logged_fit,
                  "plain_search": plain_search, "logged_search": logged_search}))
"""


def _run(side: str, fits: int, searches: int) -> dict[str, list[float]]:
    if side == "flowml":
        python, env = sys.executable, None
    else:
        from _mlflow_env import mlflow_env, mlflow_python

        python, env = str(mlflow_python()), mlflow_env()
    with tempfile.TemporaryDirectory(prefix=f"bench-autolog-{side}-") as home:
        done = subprocess.run(
            [python, "-c", WORKLOAD, side, str(fits), str(searches), home],
            capture_output=True,
            text=True,
            env=env,
            timeout=3600,
            check=False,
        )
    if done.returncode != 0:
        raise SystemExit(f"{side} workload failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _median(times: dict[str, list[float]], key: str) -> float:
    return round(statistics.median(times[key]), 4)


def main(argv: list[str] | None = None) -> int:
    args = comparison_parser(__doc__.splitlines()[0], "a few repetitions only").parse_args(argv)
    fits, searches = (3, 1) if args.quick else (30, 5)
    sides = chosen_sides(args)
    results = {side: _run(side, fits, searches) for side in sides}
    rows = []
    for kind in ("fit", "search"):
        row: dict[str, float | str] = {"id": kind}
        for side in sides:
            row[side] = _median(results[side], f"logged_{kind}")
            row[f"{side}_plain"] = _median(results[side], f"plain_{kind}")
        if len(sides) == 2:
            row["ratio"] = round(float(row["mlflow"]) / float(row["flowml"]), 2)
        rows.append(row)
    if args.json:
        print(json.dumps({"quick": args.quick, "rows": rows}))
        return 0
    header = "".join(f"{s + ' s':>12}{s + ' plain s':>16}" for s in sides)
    print(f"{'workload':<10}{header}{'ratio':>8}")
    for row in rows:
        cells = "".join(f"{row[s]:>12.4f}{row[s + '_plain']:>16.4f}" for s in sides)
        print(f"{row['id']:<10}{cells}{row.get('ratio', ''):>8}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
