"""Images, figures and tables as run artifacts, laid out as MLflow lays them out.

- An image logged with a ``key`` is one point of a step-indexed series, stored as
  ``images/<key>+step+<step>+timestamp+<ms>+<uuid>.png`` plus a 256-pixel
  ``...+compressed.webp`` preview (``/`` in the key becomes ``~``), and the run gets the
  ``mlflow.loggedImages`` tag: MLflow's UI draws these series from flowml's runs.
- A table is JSON in pandas' ``split`` orientation (or Parquet), appended to when the
  file exists, and listed in the ``mlflow.loggedArtifacts`` tag.

Pillow, matplotlib, plotly and pandas are imported only when their objects are logged; a
missing one is named with the command that installs it.

Example:
    >>> import numpy as np
    >>> with flowml.start_run():
    ...     flowml.log_image(np.zeros((8, 8, 3), dtype=np.uint8), key="mask", step=1)
"""

from __future__ import annotations

import io
import json
import numbers
import posixpath
import re
import sys
import uuid
import warnings
from typing import TYPE_CHECKING, Any

from flowml.exceptions import InvalidParameter
from flowml.tracking.artifacts import safe_artifact_path
from flowml.tracking.entities import now_ms

if TYPE_CHECKING:
    from flowml.tracking.client import TrackingClient

__all__ = ["log_figure", "log_image", "log_table", "to_pil_image"]

LOGGED_IMAGES_TAG = "mlflow.loggedImages"
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"
COMPRESSED_IMAGE_SIZE = 256
IMAGE_KEY_RE = re.compile(r"^[a-zA-Z0-9_\-./ ]+$")
MAX_IMAGE_KEY_LENGTH = 250
# The characters MLflow refuses in a table's file name (its UI reads the path as JSON).
_TABLE_FORBIDDEN = set("\"',:[]{}")
_FIGURE_IMAGE_SUFFIXES = (".png", ".jpeg", ".jpg", ".webp", ".svg", ".pdf")


def _require(module: str, dist: str, purpose: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise InvalidParameter(
            f"{purpose} needs {dist}: pip install {dist} (or pip install 'flowml[media]')"
        ) from None


def to_pil_image(image: Any) -> Any:
    """A PIL image from a PIL image or a numpy array, with MLflow's rules for arrays.

    Arrays are ``H x W`` (grayscale), ``H x W x 1``, ``H x W x 3`` (RGB) or ``H x W x 4``
    (RGBA) of booleans, integers in [0, 255] or floats in [0, 1] (floats outside are
    rescaled with min/max, with a warning, as MLflow does).

    Raises:
        InvalidParameter: another type, shape or dtype, or integers outside [0, 255].
    """
    pil_module = sys.modules.get("PIL.Image")
    if pil_module is not None and isinstance(image, pil_module.Image):
        return image
    np = sys.modules.get("numpy")
    if np is None or not isinstance(image, np.ndarray):
        raise InvalidParameter(
            f"log_image takes a numpy array or a PIL image, got {type(image).__name__}"
        )
    pil = _require("PIL.Image", "pillow", "Logging an image")
    if image.dtype.kind not in "biuf":
        raise InvalidParameter(
            f"Image arrays must hold booleans, integers or floats, got dtype {image.dtype}"
        )
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] not in (1, 3, 4)):
        raise InvalidParameter(
            f"Image arrays must be HxW, HxWx1, HxWx3 or HxWx4, got shape {image.shape}"
        )
    if image.size == 0:
        raise InvalidParameter("Cannot log an empty image array")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.dtype.kind in "iu":
        low, high = image.min(), image.max()
        if low < 0 or high > 255:
            raise InvalidParameter(
                f"Integer pixel values must lie in [0, 255], got [{low}, {high}]"
            )
        return pil.fromarray(image.astype(np.uint8))
    values = image.astype(np.float64)
    low, high = values.min(), values.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        raise InvalidParameter("Image arrays must not hold NaN or infinite values")
    if low < 0 or high > 1:
        warnings.warn(
            f"Float pixel values outside [0, 1] (min {low}, max {high}): rescaled with min/max",
            UserWarning,
            stacklevel=3,
        )
        values = (values - low) / (high - low) if high > low else np.zeros_like(values)
    return pil.fromarray((values * 255).astype(np.uint8))


def _encode(image: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _compressed(image: Any) -> Any:
    width, height = image.size
    scale = COMPRESSED_IMAGE_SIZE / max(width, height)
    return image.resize((max(1, int(width * scale)), max(1, int(height * scale))))


def log_image(
    client: TrackingClient,
    run_id: str,
    image: Any,
    artifact_file: str | None = None,
    key: str | None = None,
    step: int | None = None,
    timestamp: int | None = None,
) -> None:
    """Log an image as a file (``artifact_file``) or as a step of the series ``key``.

    Raises:
        InvalidParameter: both or neither of ``artifact_file`` and ``key``, a key with
            other characters than letters, digits, ``_ - . /`` and space, or a bad image.
    """
    if artifact_file is not None and (key, step, timestamp) != (None, None, None):
        raise InvalidParameter(
            "Give artifact_file alone, or key (with step and timestamp), not both"
        )
    if artifact_file is None and key is None:
        raise InvalidParameter(
            "Give artifact_file (a static image) or key (an image series with steps)"
        )
    if artifact_file is not None:
        path = safe_artifact_path(artifact_file)
        if not path:
            raise InvalidParameter("artifact_file must name a file")
        pil = to_pil_image(image)
        suffix = posixpath.splitext(path)[1].lower().lstrip(".") or "png"
        fmt = {"jpg": "JPEG", "jpeg": "JPEG", "tif": "TIFF"}.get(suffix, suffix.upper())
        try:
            data = _encode(pil, fmt)
        except (KeyError, ValueError, OSError) as exc:
            raise InvalidParameter(f"Cannot save an image as {path!r}: {exc}") from None
        client.artifact_repo(run_id).write_bytes(path, data)
        return
    assert key is not None
    if not isinstance(key, str) or len(key) > MAX_IMAGE_KEY_LENGTH or not IMAGE_KEY_RE.match(key):
        raise InvalidParameter(
            f"Invalid image key {key!r}: use at most {MAX_IMAGE_KEY_LENGTH} letters, digits, "
            "'_', '-', '.', '/' and spaces"
        )
    for label, value in (("step", step), ("timestamp", timestamp)):
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, numbers.Integral)
        ):
            raise InvalidParameter(f"An image {label} must be an integer, got {value!r}")
    step = int(step or 0)
    timestamp = int(timestamp or now_ms())
    pil = to_pil_image(image)
    stem = f"images/{key.replace('/', '~')}+step+{step}+timestamp+{timestamp}+{uuid.uuid4()}"
    repo = client.artifact_repo(run_id)
    repo.write_bytes(safe_artifact_path(stem + ".png"), _encode(pil, "PNG"))
    repo.write_bytes(
        safe_artifact_path(stem + "+compressed.webp"), _encode(_compressed(pil), "WEBP")
    )
    client.set_tag(run_id, LOGGED_IMAGES_TAG, "True")


def log_figure(
    client: TrackingClient,
    run_id: str,
    figure: Any,
    artifact_file: str,
    save_kwargs: dict[str, Any] | None = None,
) -> None:
    """Save a matplotlib or plotly figure as the artifact ``artifact_file``.

    A matplotlib figure takes any format ``savefig`` writes (by suffix); a plotly figure
    ``.html`` (plotly.js from its CDN unless ``save_kwargs`` says otherwise, as MLflow) or
    an image suffix (needs plotly's ``kaleido``).

    Raises:
        InvalidParameter: another object, or a suffix the figure's library cannot write.
    """
    path = safe_artifact_path(artifact_file)
    if not path:
        raise InvalidParameter("artifact_file must name a file")
    kwargs = dict(save_kwargs or {})
    suffix = posixpath.splitext(path)[1].lower()
    buffer = io.BytesIO()
    # Checked through sys.modules: a figure of a library that was never imported cannot exist.
    mpl_figure = sys.modules.get("matplotlib.figure")
    plotly_go = sys.modules.get("plotly.graph_objects") or sys.modules.get("plotly.graph_objs")
    if mpl_figure is not None and isinstance(figure, mpl_figure.Figure):
        kwargs.setdefault("format", suffix.lstrip(".") or "png")
        try:
            figure.savefig(buffer, **kwargs)
        except ValueError as exc:
            raise InvalidParameter(f"matplotlib cannot save {path!r}: {exc}") from None
        data = buffer.getvalue()
    elif plotly_go is not None and isinstance(figure, plotly_go.Figure):
        if suffix == ".html":
            kwargs.setdefault("include_plotlyjs", "cdn")
            kwargs.setdefault("auto_open", False)
            text = io.StringIO()
            figure.write_html(text, **kwargs)
            data = text.getvalue().encode("utf-8")
        elif suffix in _FIGURE_IMAGE_SUFFIXES:
            _require("kaleido", "kaleido", "Saving a plotly figure as an image")
            data = figure.to_image(format=suffix.lstrip("."), **kwargs)
        else:
            raise InvalidParameter(
                f"A plotly figure is saved as .html or one of {list(_FIGURE_IMAGE_SUFFIXES)}, "
                f"not {suffix or 'a file without suffix'!r}"
            )
    else:
        raise InvalidParameter(
            f"log_figure takes a matplotlib or plotly figure, got {type(figure).__name__}"
        )
    client.artifact_repo(run_id).write_bytes(path, data)


def _is_image(value: Any) -> bool:
    return callable(getattr(value, "save", None)) and callable(getattr(value, "resize", None))


def _table_frame(data: Any) -> Any:
    pd = _require("pandas", "pandas", "log_table")
    if isinstance(data, pd.DataFrame):
        return data.copy()
    if isinstance(data, dict):
        try:
            return pd.DataFrame(data)
        except ValueError:  # all scalars: one row, as MLflow
            return pd.DataFrame([data])
    raise InvalidParameter(
        f"log_table takes a dict or a pandas DataFrame, got {type(data).__name__}"
    )


def log_table(client: TrackingClient, run_id: str, data: Any, artifact_file: str) -> None:
    """Write ``data`` as a table artifact (``.json`` or ``.parquet``), appending to it.

    Columns of PIL images are stored as image files under ``table_images/`` and referenced
    from the table, as MLflow does.

    Raises:
        InvalidParameter: another suffix, a forbidden character, data that is not a dict or
            DataFrame, a column mixing images and other values, or an existing table whose
            columns cannot be read.
    """
    path = safe_artifact_path(artifact_file)
    bad = sorted(_TABLE_FORBIDDEN & set(path))
    if bad:
        raise InvalidParameter(f"Table file names may not contain {''.join(bad)!r}: {path!r}")
    if not path.endswith((".json", ".parquet")):
        raise InvalidParameter(f"A table is saved as .json or .parquet, not {path!r}")
    frame = _table_frame(data)
    pd = sys.modules["pandas"]
    repo = client.artifact_repo(run_id)
    for column in frame.columns:
        flags = [_is_image(v) for v in frame[column]]
        if any(flags) and not all(flags):
            raise InvalidParameter(f"Column {column!r} mixes images and other values")
        if flags and all(flags):
            frame[column] = [_table_image(repo, path, v) for v in frame[column]]
    if repo.exists(path):
        frame = pd.concat([_read_table(repo, path, pd), frame], ignore_index=True)
    buffer = io.BytesIO()
    try:
        if path.endswith(".json"):
            buffer.write(
                frame.to_json(orient="split", index=False, date_format="iso").encode("utf-8")
            )
        else:
            frame.to_parquet(buffer, index=False)
    except Exception as exc:  # pandas raises many types for values it cannot write
        raise InvalidParameter(f"Cannot save the table as {path!r}: {exc}") from None
    repo.write_bytes(path, buffer.getvalue())
    tags = client.get_run(run_id).data.tags
    try:
        listed = json.loads(tags.get(LOGGED_ARTIFACTS_TAG, "[]"))
    except ValueError:
        listed = []
    entry = {"path": path, "type": "table"}
    if isinstance(listed, list) and entry not in listed:
        client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps([*listed, entry]))


def _table_image(repo: Any, table_path: str, image: Any) -> dict[str, str]:
    stem = posixpath.join("table_images", posixpath.splitext(table_path)[0], str(uuid.uuid4()))
    repo.write_bytes(stem + ".png", _encode(image, "PNG"))
    repo.write_bytes(stem + ".webp", _encode(_compressed(image), "WEBP"))
    return {"type": "image", "filepath": stem + ".png", "compressed_filepath": stem + ".webp"}


def _read_table(repo: Any, path: str, pd: Any) -> Any:
    raw = repo.read_bytes(path)
    try:
        if path.endswith(".json"):
            return pd.read_json(io.StringIO(raw.decode("utf-8")), orient="split")
        return pd.read_parquet(io.BytesIO(raw))
    except Exception as exc:  # a file someone else wrote: say which, leave it untouched
        raise InvalidParameter(
            f"The existing table {path!r} cannot be read to append to it: {exc}"
        ) from None
