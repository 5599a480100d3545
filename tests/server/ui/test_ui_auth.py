"""The web UI under ``flowml server --auth token``, in a real browser: it shows what the user
may read, and says so when the user may not.

A person signs in through the browser's prompt (user name, token as the password). Selenium
cannot type into that prompt, so the tests open ``http://USER:TOKEN@host/``: Chromium answers
the server's Basic challenge with those credentials and keeps them for the origin, and the
UI reloads itself without them in the address bar. The default permission is
``NO_PERMISSIONS``: alice reads only what she was granted.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from ui_browser import missing_reason, start_browser, stop_browser, until, wait_for, wait_text

from flowml.server.auth.store import AuthStore
from tests.server.conftest import FlowmlServer, start_server
from tests.server.wire_helpers import API, ok, unique

pytestmark = [
    pytest.mark.skipif(missing_reason() is not None, reason=missing_reason() or ""),
    pytest.mark.slow,
]


@dataclass
class Private:
    server: FlowmlServer
    tokens: dict[str, str]
    names: dict[str, str]  # experiments "a", "b" and models "shared", "hidden" by role
    ids: dict[str, str]  # experiment ids "a", "b"

    def signed_in(self, user: str, host: str = "127.0.0.1") -> str:
        """The URL a browser opens to sign in as ``user`` (credentials in the URL)."""
        return f"http://{user}:{self.tokens[user]}@{host}:{self.server.port}/"


@pytest.fixture(scope="module")
def private(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Private]:
    """Experiments A and B, models shared and hidden; alice may read A and shared only."""
    root = tmp_path_factory.mktemp("ui-auth")
    srv = start_server(
        f"sqlite:///{root / 'flowml.db'}",
        root,
        options=["--auth", "token", "--default-permission", "NO_PERMISSIONS"],
    )
    try:
        store = AuthStore.open(srv.store_uri)  # type: ignore[arg-type]
        tokens = {u: store.create_token(u, create_user=True)[0] for u in ("admin", "alice")}
        store.set_admin("admin", True)
        names = {
            "a": unique("exp-a"),
            "b": unique("exp-b"),
            "shared": unique("model-shared"),
            "hidden": unique("model-hidden"),
        }
        ids = {}
        headers = {"Authorization": f"Bearer {tokens['admin']}"}
        with httpx.Client(base_url=srv.url, headers=headers, timeout=30) as admin:
            for key in ("a", "b"):
                made = admin.post(f"{API}/experiments/create", json={"name": names[key]})
                ids[key] = ok(made)["experiment_id"]
                run = {"experiment_id": ids[key], "run_name": f"run-in-{key}"}
                ok(admin.post(f"{API}/runs/create", json=run))
            for key in ("shared", "hidden"):
                ok(admin.post(f"{API}/registered-models/create", json={"name": names[key]}))
            grant = {"username": "alice", "permission": "READ"}
            ok(
                admin.post(
                    f"{API}/experiments/permissions/create",
                    json={**grant, "experiment_id": ids["a"]},
                )
            )
            ok(
                admin.post(
                    f"{API}/registered-models/permissions/create",
                    json={**grant, "name": names["shared"]},
                )
            )
    except BaseException:
        srv.stop()
        raise
    yield Private(srv, tokens, names, ids)
    srv.stop()


@pytest.fixture(scope="module")
def driver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    browser = start_browser(tmp_path_factory.mktemp("chromium-auth"))
    yield browser
    stop_browser(browser)


def sign_in(driver: Any, url: str) -> None:
    """Open ``url`` (credentials in it) and wait for the UI to drop them from its address."""
    driver.get(url)
    until(driver, lambda d: "@" not in d.execute_script("return document.URL"))
    until(driver, lambda d: d.execute_script("return document.readyState") == "complete")


def current_user(driver: Any) -> str:
    """Who the server sees behind one of the page's own fetch() calls."""
    return str(
        driver.execute_async_script(
            "const done = arguments[0];"
            "fetch('api/2.0/mlflow/users/current', {credentials: 'same-origin'})"
            ".then((r) => r.json()).then((j) => done(j.user ? j.user.username : JSON.stringify(j)))"
            ".catch((e) => done(String(e)));"
        )
    )


def test_alice_sees_only_what_she_may_read(driver: Any, private: Private, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    sign_in(driver, private.signed_in("alice"))
    assert driver.current_url == f"{private.server.url}/"  # the token left the address bar
    assert current_user(driver) == "alice"  # the page's fetches carry her credentials
    names = private.names
    wait_text(driver, "#experiments", names["a"])
    assert names["b"] not in driver.find_element(By.ID, "experiments").text
    driver.get_log("browser")  # Chromium logs the first, challenged 401s itself

    # B's runs page, opened by its address: the server's refusal, not a crash or an empty page.
    driver.get(f"{private.server.url}/#/experiments/{private.ids['b']}")
    error = wait_for(driver, "#app .error")[0]
    assert "PERMISSION_DENIED" in error.text
    assert "'alice' needs READ on experiment " + private.ids["b"] in error.text
    assert "ask a user with MANAGE on it (or an admin)" in error.text
    assert not driver.find_elements(By.CSS_SELECTOR, "#runs tbody tr[data-run-id]")
    driver.save_screenshot(str(tmp_path / "permission-denied.png"))
    driver.get_log("browser")  # the 403 itself is logged by Chromium: expected here

    # A's runs page works.
    driver.get(f"{private.server.url}/#/experiments/{private.ids['a']}")
    wait_text(driver, "#runs", "run-in-a")

    # The registry lists the model she may read, not the other one.
    driver.get(f"{private.server.url}/#/models")
    wait_text(driver, "#models", names["shared"])
    assert names["hidden"] not in driver.find_element(By.ID, "models").text
    driver.get(f"{private.server.url}/#/models/{names['hidden']}")
    error = wait_for(driver, "#app .error")[0]
    assert "PERMISSION_DENIED" in error.text and names["hidden"] in error.text
    driver.get_log("browser")
    driver.get(f"{private.server.url}/#/")
    wait_text(driver, "#experiments", names["a"])

    # A 401 (a token revoked while the page is open) tells a person how to sign in again.
    shown = driver.execute_async_script(
        "const done = arguments[0];"
        "Promise.all([import('/static/js/api.js'), import('/static/js/dom.js')])"
        ".then(([api, dom]) => done(dom.errorBox("
        "new api.ApiError(401, 'UNAUTHENTICATED', 'Authentication required')).textContent))"
        ".catch((e) => done(String(e)));"
    )
    assert shown.startswith("UNAUTHENTICATED: Authentication required")
    assert "the browser's prompt your user name, with an access token as the password" in shown
    errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not errors, errors


def test_an_admin_sees_everything(driver: Any, private: Private) -> None:
    from selenium.webdriver.common.by import By

    # Another origin (localhost, not 127.0.0.1): the browser keeps one sign-in per origin.
    sign_in(driver, private.signed_in("admin", "localhost"))
    assert current_user(driver) == "admin"
    names = private.names
    wait_text(driver, "#experiments", names["a"])
    assert names["b"] in driver.find_element(By.ID, "experiments").text
    driver.get(f"http://localhost:{private.server.port}/#/models")
    wait_text(driver, "#models", names["shared"])
    assert names["hidden"] in driver.find_element(By.ID, "models").text
    driver.get(f"http://localhost:{private.server.port}/#/experiments/{private.ids['b']}")
    wait_text(driver, "#runs", "run-in-b")
