"""A headless Debian Chromium driven by Selenium, fully offline.

Selenium Manager never runs: the driver path is given (``/usr/bin/chromedriver``) and
``SE_OFFLINE=1`` forbids it any download; Chromium starts with every background network
feature off and a fresh profile.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
CHROMEDRIVER_PATH = "/usr/bin/chromedriver"
WAIT = 60  # seconds: generous, the machine is shared
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
)


def chromium_path() -> str | None:
    """Debian's chromium binary, or None when it is not installed."""
    for path in CHROMIUM_PATHS:
        if os.path.exists(path):
            return path
    return None


def missing_reason() -> str | None:
    """Why browser tests cannot run here (None: they can)."""
    if chromium_path() is None or not os.path.exists(CHROMEDRIVER_PATH):
        return (
            "Chromium and its driver are not installed: apt-get install -y chromium "
            "chromium-driver (.ci/run does this)"
        )
    try:
        import selenium  # noqa: F401
    except ImportError:
        return 'selenium is not installed: pip install -e ".[test]"'
    return None


def start_browser(profile_dir: Path) -> Any:
    """A headless Chromium with a fresh ``--user-data-dir`` under ``profile_dir``."""
    os.environ["SE_OFFLINE"] = "1"  # Selenium Manager: never download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium_path() or ""
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=profile_dir)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(executable_path=CHROMEDRIVER_PATH, log_output=os.devnull)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    driver.implicitly_wait(0)
    driver._flowml_profile = profile  # removed by stop_browser
    return driver


def stop_browser(driver: Any) -> None:
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver._flowml_profile, ignore_errors=True)


def until(driver: Any, condition: Callable[[Any], Any], timeout: float = WAIT) -> Any:
    """``condition(driver)`` once truthy; pages redraw their tables, so stale elements retry."""
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout, ignored_exceptions=[StaleElementReferenceException])
    return wait.until(condition)


def wait_for(driver: Any, css: str, count: int = 1, timeout: float = WAIT) -> list[Any]:
    """The elements matching ``css`` once there are at least ``count`` of them."""
    from selenium.webdriver.common.by import By

    def found(d: Any) -> Any:
        elements = d.find_elements(By.CSS_SELECTOR, css)
        return elements if len(elements) >= count else False

    return until(driver, found, timeout)


def wait_text(driver: Any, css: str, text: str) -> Any:
    from selenium.webdriver.common.by import By

    def found(d: Any) -> Any:
        for el in d.find_elements(By.CSS_SELECTOR, css):
            if text in el.text:
                return el
        return False

    return until(driver, found)
