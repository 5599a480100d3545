"""The web UI in a real browser (Debian's Chromium, headless, offline), over a seeded server.

Each test drives what a person does: open the UI, search runs, open a run, compare three
runs, browse an artifact, open a registered model. Screenshots go to a temporary folder
(``FLOWML_UI_SCREENSHOTS=<dir>`` keeps them, which is how docs/ui-*.png are made).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_browser import missing_reason, start_browser, stop_browser, until, wait_for, wait_text
from ui_helpers import PREFECT_UI, Seeded

pytestmark = [
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
    pytest.mark.slow,
]


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    kept = os.environ.get("FLOWML_UI_SCREENSHOTS")
    if kept:
        Path(kept).mkdir(parents=True, exist_ok=True)
        return Path(kept)
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    browser = start_browser(tmp_path_factory.mktemp("chromium"))
    yield browser
    stop_browser(browser)


@pytest.fixture
def ui(driver: Any, seeded: Seeded, shots: Path) -> Iterator[Callable[..., Any]]:
    """``ui(hash)`` opens a page; after the test, the page must have logged no error."""

    def open_page(fragment: str = "#/") -> Any:
        driver.get(f"{seeded.url}/{fragment}")
        until(driver, lambda d: d.execute_script("return document.readyState") == "complete")
        return driver

    driver.get_log("browser")  # drop what earlier tests left
    yield open_page
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def rows(driver: Any, table: str) -> list[Any]:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, f"{table} tbody tr[data-run-id]")


def shot(driver: Any, shots: Path, name: str, height: int = 1000) -> Path:
    driver.set_window_size(1400, height)
    driver.execute_script("window.scrollTo(0, 0)")
    path = shots / f"{name}.png"
    driver.save_screenshot(str(path))
    driver.set_window_size(1400, 1000)
    assert path.stat().st_size > 10_000
    return path


def test_experiments_list_create_rename_delete_restore(ui: Callable[..., Any], shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = ui("#/")
    wait_text(driver, "#experiments", "wine-quality")
    assert "old-sandbox" not in driver.find_element(By.ID, "experiments").text
    shot(driver, shots, "experiments")

    driver.find_element(By.ID, "new-experiment").send_keys("made-in-browser")
    driver.find_element(By.CSS_SELECTOR, "form.inline button").click()
    wait_text(driver, "h1", "made-in-browser")  # the new experiment's runs page
    driver.get(driver.current_url.split("#")[0] + "#/")
    row = wait_text(driver, "#experiments tbody tr", "made-in-browser")

    row.find_element(By.XPATH, ".//button[text()='Rename']").click()
    alert = driver.switch_to.alert
    alert.send_keys("renamed-in-browser")
    alert.accept()
    row = wait_text(driver, "#experiments tbody tr", "renamed-in-browser")

    row.find_element(By.XPATH, ".//button[text()='Delete']").click()
    driver.switch_to.alert.accept()

    until(driver, lambda d: "renamed-in-browser" not in d.find_element(By.ID, "experiments").text)
    Select(driver.find_element(By.ID, "experiment-view")).select_by_value("DELETED_ONLY")
    row = wait_text(driver, "#experiments tbody tr", "renamed-in-browser")
    row.find_element(By.XPATH, ".//button[text()='Restore']").click()
    until(driver, lambda d: "renamed-in-browser" not in d.find_element(By.ID, "experiments").text)

    Select(driver.find_element(By.ID, "experiment-view")).select_by_value("ACTIVE_ONLY")
    wait_text(driver, "#experiments", "renamed-in-browser")  # restored: active again
    driver.find_element(By.ID, "experiment-search").send_keys("WINE")  # names match any case
    until(
        driver,
        lambda d: (
            [
                r.text.split()[0]
                for r in d.find_elements(
                    By.CSS_SELECTOR, "#experiments tbody tr[data-experiment-id]"
                )
            ]
            == ["wine-quality"]
        ),
    )


def test_search_runs(ui: Callable[..., Any], seeded: Seeded, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    exp = seeded.ids["experiment_id"]
    driver = ui(f"#/experiments/{exp}")
    wait_for(driver, "#runs tbody tr[data-run-id]", 7)
    assert len(rows(driver, "#runs")) == 7  # six training runs and the flow run (a tree)

    # The flow run opens onto its three task runs, with a link to Prefect's UI.
    flow_row = driver.find_element(
        By.CSS_SELECTOR, f"tr[data-run-id='{seeded.ids['flow_run_id']}']"
    )
    link = wait_for(driver, "a.prefect-link")[0]
    assert link.get_attribute("href") == (
        f"{PREFECT_UI}/runs/flow-run/0b6e4c1e-8d8e-4f4c-9a43-5f5d2e3c1a01"
    )
    flow_row.find_element(By.CSS_SELECTOR, "button.twisty").click()
    wait_for(driver, "#runs tbody tr[data-run-id]", 10)
    names = driver.find_element(By.ID, "runs").text
    assert all(task in names for task in ("load", "split", "fit"))
    shot(driver, shots, "ui-runs", 760)

    box = driver.find_element(By.ID, "run-filter")
    box.send_keys("params.model = 'gbm' and (metrics.f1 > 0.7 or tags.team = 'none')" + Keys.ENTER)
    until(driver, lambda d: len(rows(d, "#runs")) == 3)
    assert "train-gbm" in driver.find_element(By.ID, "runs").text

    # A bad filter: the server's message, and a caret under the position it names.
    box.clear()
    box.send_keys("metrics.f1 > 0.7 and (params.model = " + Keys.ENTER)
    error = wait_for(driver, "#filter-error .error")[0]
    assert "position 37" in error.text  # the box's text is trimmed: 36 characters
    caret = driver.find_element(By.CSS_SELECTOR, "#filter-error pre.caret").text
    assert caret.splitlines()[1] == " " * 36 + "^"
    driver.get_log("browser")  # Chromium logs the expected 400 itself

    # Sort by a metric column, descending then ascending.
    box.clear()
    box.send_keys("attributes.run_name LIKE 'train-%-%'" + Keys.ENTER)
    until(driver, lambda d: len(rows(d, "#runs")) == 6)
    header = driver.find_element(By.CSS_SELECTOR, "th[data-order='metrics.f1']")
    header.click()
    until(
        driver, lambda d: "▼" in d.find_element(By.CSS_SELECTOR, "th[data-order='metrics.f1']").text
    )
    first = rows(driver, "#runs")[0].text
    assert "train-gbm-5" in first

    # Column picker: add a tag column.
    driver.find_element(By.ID, "column-picker").click()
    driver.find_element(By.CSS_SELECTOR, "input[data-column='tags:team']").click()
    wait_for(driver, "th[data-order='tags.team']")
    assert "ml-platform" in rows(driver, "#runs")[0].text


def test_paging_runs(ui: Callable[..., Any], seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    driver = ui(f"#/experiments/{seeded.ids['experiment_id']}?tree=0")
    wait_for(driver, "#runs tbody tr[data-run-id]", 10)  # flat: all ten runs
    Select(
        driver.find_element(By.CSS_SELECTOR, "select[aria-label='Runs per page']")
    ).select_by_value("25")
    until(
        driver, lambda d: d.find_element(By.ID, "next-page").get_attribute("disabled") is not None
    )
    driver.get(f"{seeded.url}/#/experiments/{seeded.ids['experiment_id']}?tree=0&size=4")
    driver.refresh()
    wait_for(driver, "#runs tbody tr[data-run-id]", 4)
    first_page = {r.get_attribute("data-run-id") for r in rows(driver, "#runs")}
    driver.find_element(By.ID, "next-page").click()
    until(driver, lambda d: d.find_element(By.ID, "page-number").text == "Page 2")
    second_page = {r.get_attribute("data-run-id") for r in rows(driver, "#runs")}
    assert len(second_page) == 4 and not first_page & second_page


def test_open_a_run(ui: Callable[..., Any], seeded: Seeded, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    exp = seeded.ids["experiment_id"]
    driver = ui(f"#/experiments/{exp}")
    wait_for(driver, "#runs tbody tr[data-run-id]", 7)
    driver.find_element(By.LINK_TEXT, "train-gbm-2").click()
    wait_text(driver, "#run-title", "train-gbm-2")
    params = driver.find_element(By.ID, "params").text
    assert "learning_rate" in params and "gbm" in params
    assert "accuracy" in driver.find_element(By.ID, "metrics").text
    wait_for(driver, "#metric-charts .chart canvas", 3)
    assert (
        driver.find_element(By.CSS_SELECTOR, ".chart[data-metric='loss'] .u-title").text == "loss"
    )

    # Log scale, time axis and smoothing redraw the charts.
    driver.find_element(By.CSS_SELECTOR, "input.log-scale").click()
    Select(driver.find_element(By.CSS_SELECTOR, "select.x-axis")).select_by_value("time")
    driver.execute_script(
        "const s = document.querySelector('input.smoothing'); s.value = 0.8;"
        "s.dispatchEvent(new Event('input'));"
    )
    wait_for(driver, "#metric-charts .chart canvas", 3)

    # Zoom: drag across the loss chart.
    from selenium.webdriver.common.action_chains import ActionChains

    over = driver.find_element(By.CSS_SELECTOR, ".chart[data-metric='loss'] .u-over")
    ActionChains(driver).move_to_element_with_offset(over, -100, 0).click_and_hold().move_by_offset(
        120, 0
    ).release().perform()

    # Lineage: the dataset it read and the model version it produced.
    graph = wait_for(driver, "#lineage-graph .node", 3)
    labels = " ".join(n.text for n in graph)
    assert "dataset" in labels and "wine" in labels and "model" in labels
    model_link = driver.find_element(By.CSS_SELECTOR, "#lineage-graph a")
    assert model_link.get_dom_attribute("href").endswith("#/models/wine-classifier/versions/3")
    shot(driver, shots, "ui-run", 2000)

    # A task run's upstream task: linked run to run through the Prefect result it consumed.
    load_id, split_id = seeded.ids["task_run_ids"][:2]
    driver.get(f"{seeded.url}/#/runs/{split_id}")
    wait_text(driver, "#run-title", "split")
    upstream = wait_for(driver, "#lineage-graph a .node")[0]
    assert "load" in upstream.text
    link = driver.find_element(By.CSS_SELECTOR, "#lineage-graph a")
    assert link.get_dom_attribute("href") == f"#/runs/{load_id}"


def test_browse_artifacts(ui: Callable[..., Any], seeded: Seeded) -> None:
    from selenium.webdriver.common.by import By

    driver = ui(f"#/runs/{seeded.ids['train_run_ids'][0]}")
    wait_for(driver, "#artifact-tree button[data-path='config.json']")
    driver.find_element(By.CSS_SELECTOR, "button[data-path='config.json']").click()
    pre = wait_for(driver, "#artifact-preview pre.preview-text")[0]
    assert '"learning_rate": 0.1' in pre.text

    driver.find_element(By.CSS_SELECTOR, "button[data-path='data']").click()
    wait_for(driver, "button[data-path='data/sample.csv']")[0].click()
    table = wait_for(driver, "#artifact-preview table.preview-table")[0]
    assert "quality" in table.text and "12,5" in table.text  # a quoted comma stays in its cell

    driver.find_element(By.CSS_SELECTOR, "button[data-path='data/predictions.parquet']").click()
    wait_text(driver, "#artifact-preview", "200 of 500 rows")

    driver.find_element(By.CSS_SELECTOR, "button[data-path='plots']").click()
    wait_for(driver, "button[data-path='plots/curve-0.png']")[0].click()
    image = wait_for(driver, "#artifact-preview img.artifact-image")[0]
    until(driver, lambda d: image.get_attribute("naturalWidth") == "48")

    driver.find_element(By.CSS_SELECTOR, "button[data-path='model']").click()
    wait_for(driver, "button[data-path='model/MLmodel']")[0].click()
    wait_text(driver, "#artifact-preview pre", "python_function")
    driver.find_element(By.CSS_SELECTOR, "button[data-path='config.yaml']").click()
    wait_text(driver, "#artifact-preview pre", "learning_rate: 0.1")


def test_compare_three_runs(ui: Callable[..., Any], seeded: Seeded, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    exp = seeded.ids["experiment_id"]
    driver = ui(f"#/experiments/{exp}")
    wait_for(driver, "#runs tbody tr[data-run-id]", 7)
    chosen = seeded.ids["train_run_ids"][1:4]
    for run_id in chosen:
        driver.find_element(
            By.CSS_SELECTOR, f"tr[data-run-id='{run_id}'] input[type=checkbox]"
        ).click()
    button = driver.find_element(By.ID, "compare-selected")
    assert button.text == "Compare (3)"
    button.click()
    wait_text(driver, "h1", "Comparing 3 runs")
    wait_for(driver, "#compare-chart canvas")
    legend = driver.find_element(By.CSS_SELECTOR, "#compare-chart .u-legend").text
    assert all(name in legend for name in ("train-rf-1", "train-gbm-2", "train-gbm-3"))
    Select(driver.find_element(By.ID, "compare-metric")).select_by_value("loss")
    wait_text(driver, "#compare-chart .u-title", "loss")

    assert len(driver.find_elements(By.CSS_SELECTOR, "#parallel-coordinates polyline")) == 3
    axes = driver.find_element(By.ID, "parallel-coordinates").text
    assert "params.learning_rate" in axes and "metrics.accuracy" in axes
    Select(driver.find_element(By.ID, "scatter-x")).select_by_value("params.max_depth")
    Select(driver.find_element(By.ID, "scatter-y")).select_by_value("metrics.f1")
    wait_for(driver, "#scatter-chart canvas")

    diff = driver.find_element(By.ID, "diff-table")
    differs = [
        r.get_attribute("data-key") for r in diff.find_elements(By.CSS_SELECTOR, "tr.differs")
    ]
    assert "learning_rate" in differs and "seed" not in differs
    driver.find_element(By.ID, "only-diff").click()
    assert "seed" not in driver.find_element(By.ID, "diff-table").text
    shot(driver, shots, "ui-compare", 1500)


def test_open_a_registered_model(ui: Callable[..., Any], shots: Path) -> None:
    from selenium.webdriver.common.by import By

    driver = ui("#/")
    driver.find_element(By.CSS_SELECTOR, "[data-nav='models']").click()
    wait_text(driver, "#models", "wine-classifier")
    assert "@champion → v3" in driver.find_element(By.ID, "models").text
    driver.find_element(By.LINK_TEXT, "wine-classifier").click()
    wait_for(driver, "#versions tr[data-version]", 3)
    assert "Staging" in driver.find_element(By.CSS_SELECTOR, "tr[data-version='2']").text
    audit = driver.find_element(By.ID, "audit").text
    assert "version_registered" in audit and "approval_granted" in audit
    driver.find_element(By.LINK_TEXT, "v3").click()
    wait_text(driver, "#version-title", "wine-classifier v3")
    signature = wait_for(driver, "#signature table")[0].text
    assert "alcohol" in signature and "double" in signature
    wait_text(driver, "#input-example pre", "acidity")
    decision = driver.find_element(By.CSS_SELECTOR, "#audit tr[data-action='approval_granted']")
    assert "beats champion on f1" in decision.text
    shot(driver, shots, "ui-model-version", 1300)


def test_the_ui_reports_a_missing_run(ui: Callable[..., Any]) -> None:
    driver = ui("#/runs/" + "0" * 32)
    error = wait_for(driver, ".error")[0]
    assert "RESOURCE_DOES_NOT_EXIST" in error.text
    driver.get_log("browser")  # the 404 itself is logged by Chromium: expected here
