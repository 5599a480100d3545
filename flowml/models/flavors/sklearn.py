"""The scikit-learn flavor: any estimator or pipeline, pickled, cloudpickled or in skops.

The MLmodel blocks are MLflow's (``loader_module: mlflow.sklearn``), so a model saved here
loads in MLflow, and a model MLflow saved (pickle, cloudpickle, or skops when the ``skops``
package is installed) loads here.

Example:
    >>> from sklearn.linear_model import LinearRegression
    >>> import flowml
    >>> reg = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    >>> flowml.sklearn.save_model(reg, "reg_model")  # doctest: +SKIP
    >>> flowml.sklearn.load_model("reg_model").predict([[2.0]])  # doctest: +SKIP
    array([2.])
"""

from __future__ import annotations

import pickle
import platform
import sys
from pathlib import Path
from typing import Any

from flowml.exceptions import InvalidParameter
from flowml.models.autolog.sklearn import autolog
from flowml.models.flavors.base import Flavor, Predictor
from flowml.models.mlmodel import PYFUNC_FLAVOR, Model, model_file

__all__ = ["SklearnFlavor", "autolog", "load_model", "log_model", "save_model"]

FLAVOR_NAME = "sklearn"
MODEL_FILE = "model.pkl"
SKOPS_MODEL_FILE = "model.skops"
SERIALIZATION_FORMATS = ("cloudpickle", "pickle", "skops")
SKOPS_HINT = "pip install skops (or pip install 'flowml[sklearn]')"
PREDICT_FNS = ("predict", "predict_proba", "predict_log_proba", "predict_joint_log_proba", "score")


class _SklearnPredictor:
    __slots__ = ("_fn", "model")

    def __init__(self, model: Any, predict_fn: str) -> None:
        self.model = model
        self._fn = getattr(model, predict_fn)

    def predict(self, data: Any, params: dict[str, Any]) -> Any:
        return self._fn(data)


class SklearnFlavor(Flavor):
    """Saves and loads scikit-learn estimators (``flavors.sklearn`` in MLmodel).

    `flowml.save_model` and `flowml.log_model` pick it for any estimator.

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> clf = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0], [2.0]], [0, 0, 1])
        >>> flowml.sklearn.SklearnFlavor().can_save(clf)
        True
        >>> sorted(flowml.save_model(clf, path="tree").flavors)
        ['python_function', 'sklearn']
    """

    name = FLAVOR_NAME
    loader_modules = ("mlflow.sklearn", "flowml.models.flavors.sklearn")

    def can_save(self, model: Any) -> bool:
        base = sys.modules.get("sklearn.base")
        return base is not None and isinstance(model, base.BaseEstimator)

    def save(
        self,
        model: Any,
        path: Path,
        mlmodel: Model,
        *,
        serialization_format: str = "cloudpickle",
        pyfunc_predict_fn: str = "predict",
        skops_trusted_types: list[str] | None = None,
        **options: Any,
    ) -> None:
        if options:
            raise InvalidParameter(f"Unknown sklearn flavor option(s): {sorted(options)}")
        if serialization_format not in SERIALIZATION_FORMATS:
            raise InvalidParameter(
                f"serialization_format must be one of {list(SERIALIZATION_FORMATS)}, "
                f"got {serialization_format!r}"
            )
        if pyfunc_predict_fn not in PREDICT_FNS:
            raise InvalidParameter(
                f"pyfunc_predict_fn must be one of {list(PREDICT_FNS)}, got {pyfunc_predict_fn!r}"
            )
        if not callable(getattr(model, pyfunc_predict_fn, None)):
            raise InvalidParameter(
                f"{type(model).__name__} has no {pyfunc_predict_fn}() method to serve"
            )
        import sklearn

        extra: dict[str, Any] = {}
        if serialization_format == "skops":
            file_name = SKOPS_MODEL_FILE
            _save_skops(model, path / file_name, skops_trusted_types)
            extra["skops_trusted_types"] = list(skops_trusted_types or []) or None
        else:
            if skops_trusted_types:
                raise InvalidParameter("skops_trusted_types is for serialization_format='skops'")
            file_name = MODEL_FILE
            if serialization_format == "cloudpickle":
                import cloudpickle

                payload = cloudpickle.dumps(model)
            else:
                payload = pickle.dumps(model, protocol=pickle.DEFAULT_PROTOCOL)
            (path / file_name).write_bytes(payload)
        mlmodel.add_flavor(
            FLAVOR_NAME,
            pickled_model=file_name,
            serialization_format=serialization_format,
            sklearn_version=sklearn.__version__,
            code=None,
            **extra,
        )
        mlmodel.add_flavor(
            PYFUNC_FLAVOR,
            loader_module=self.loader_modules[0],
            model_path=file_name,
            predict_fn=pyfunc_predict_fn,
            python_version=platform.python_version(),
        )

    def requirements(self, model: Any, **options: Any) -> list[str]:
        dists = ["scikit-learn", "numpy", "scipy", "pandas"]
        fmt = options.get("serialization_format", "cloudpickle")
        if fmt in ("cloudpickle", "skops"):
            dists.append(fmt)
        return dists

    def load(self, path: Path, mlmodel: Model) -> Any:
        conf = mlmodel.flavor(FLAVOR_NAME)
        pickled = model_file(
            path, conf.get("pickled_model", MODEL_FILE), f"flavors.{FLAVOR_NAME}.pickled_model"
        )
        fmt = conf.get("serialization_format", "cloudpickle")
        if fmt == "skops":
            return _load_skops(pickled, conf)
        if fmt not in SERIALIZATION_FORMATS:
            raise InvalidParameter(f"Unsupported sklearn serialization_format {fmt!r}")
        with open(pickled, "rb") as handle:
            return pickle.load(handle)

    def predictor(self, native: Any, path: Path | None, mlmodel: Model) -> Predictor:
        conf = mlmodel.flavors.get(PYFUNC_FLAVOR, {})
        predict_fn = str(conf.get("predict_fn") or "predict")
        if predict_fn not in PREDICT_FNS or not callable(getattr(native, predict_fn, None)):
            raise InvalidParameter(f"The sklearn model cannot serve predict_fn {predict_fn!r}")
        return _SklearnPredictor(native, predict_fn)


def _skops_io(purpose: str) -> Any:
    try:
        import skops.io
    except ImportError:
        raise InvalidParameter(f"{purpose} the skops format: {SKOPS_HINT}") from None
    return skops.io


def _save_skops(model: Any, target: Path, trusted: list[str] | None) -> None:
    """Write ``model`` with skops and check it loads trusting only ``trusted`` (as MLflow)."""
    sio = _skops_io("Saving a model in")
    if trusted is not None and (
        isinstance(trusted, str) or not all(isinstance(t, str) for t in trusted)
    ):
        raise InvalidParameter("skops_trusted_types must be a list of type names")
    try:
        sio.dump(model, target)
    except Exception as exc:  # skops refuses what it cannot represent (lambdas, local classes)
        raise InvalidParameter(
            f"skops cannot serialize this {type(model).__name__} ({exc}); save it with "
            "serialization_format='cloudpickle' instead"
        ) from None
    untrusted = sorted(set(sio.get_untrusted_types(file=target)) - set(trusted or []))
    if untrusted:
        raise InvalidParameter(
            f"The skops file holds types skops does not trust by default: {untrusted}; if "
            f"loading them is safe, pass skops_trusted_types={untrusted}"
        )
    try:  # what MLflow checks too: the file loads back with exactly these trusted types
        sio.load(target, trusted=trusted or None)
    except Exception as exc:  # e.g. a class defined inside a function cannot be imported
        raise InvalidParameter(
            f"The skops file of this {type(model).__name__} does not load back ({exc}); save "
            "it with serialization_format='cloudpickle' instead"
        ) from None


def _load_skops(model_file: Path, conf: dict[str, Any]) -> Any:
    sio = _skops_io("This model was saved in")
    # Trust only what the saver explicitly declared, never everything the file asks for.
    return sio.load(model_file, trusted=conf.get("skops_trusted_types") or None)


def save_model(sk_model: Any, path: str | Path, **kwargs: Any) -> Model:
    """Save a scikit-learn estimator as an MLmodel directory (see `flowml.save_model`).

    Args:
        sk_model: A fitted estimator or pipeline.
        path: A local directory that does not exist yet (or is empty).
        **kwargs: `flowml.save_model` arguments, plus ``serialization_format``
            (``cloudpickle``, ``pickle``, or ``skops``: MLflow 3's default, which needs
            ``pip install skops``), ``skops_trusted_types`` (type names skops may load
            beyond its defaults, e.g. ``["sklearn.tree._tree.Tree"]``) and
            ``pyfunc_predict_fn`` (``predict``, ``predict_proba``, ...).

    Returns:
        The MLmodel metadata written.

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> clf = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0], [2.0]], [0, 0, 1])
        >>> _ = flowml.sklearn.save_model(clf, "tree", serialization_format="pickle")
        >>> flowml.sklearn.load_model("tree").predict([[2.0]]).tolist()
        [1]
    """
    from flowml.models.api import save_model as _save

    return _save(sk_model, path, flavor=FLAVOR_NAME, **kwargs)


def log_model(sk_model: Any, name: str = "model", **kwargs: Any) -> Any:
    """Log a scikit-learn estimator to the active run (see `flowml.log_model`).

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> clf = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0], [2.0]], [0, 0, 1])
        >>> with flowml.start_run():
        ...     info = flowml.sklearn.log_model(clf, name="model")
        >>> flowml.load_model(info.model_uri).predict([[0.0], [2.0]]).tolist()
        [0, 1]
    """
    from flowml.models.api import log_model as _log

    return _log(sk_model, name, flavor=FLAVOR_NAME, **kwargs)


def load_model(model_uri: str, dst_path: str | None = None) -> Any:
    """The native scikit-learn estimator saved at `model_uri` (any flowml model URI).

    Example:
        >>> from sklearn.tree import DecisionTreeClassifier
        >>> clf = DecisionTreeClassifier(random_state=0).fit([[0.0], [1.0], [2.0]], [0, 0, 1])
        >>> with flowml.start_run():
        ...     info = flowml.log_model(clf, "model")
        >>> estimator = flowml.sklearn.load_model(info.model_uri)
        >>> type(estimator).__name__, estimator.get_depth()
        ('DecisionTreeClassifier', 1)
    """
    from flowml.models.api import load_native

    return load_native(model_uri, FLAVOR_NAME, dst_path=dst_path)
