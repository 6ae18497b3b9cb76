"""The demo page in headless Chromium: pick a real tile, wait for the answer, and check the
screenshot's pixels (the image is shown, the winning bar is drawn), not just the HTML. And
``/docs``: Swagger UI renders the endpoints from the service's own scripts (this machine has no
internet access, so a CDN script would leave the page blank).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (dev extra).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import httpx
import pytest
from PIL import Image, ImageStat

from tests.conftest import real_images
from tests.integration.api_process import running_api

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
TOP_BAR_RGB = (0x1B, 0x7F, 0x3B)  # .bar.top in static/index.html
POST_BADGE_RGB = (0x49, 0xCC, 0x90)  # .opblock-post .opblock-summary-method in swagger-ui.css

pytestmark = [
    pytest.mark.browser,
    pytest.mark.timeout(600),
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="headless browser test needs chromium and chromedriver "
                              "(apt-get install -y chromium chromium-driver)"),
]


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip install selenium)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1100,800", "--force-device-scale-factor=1"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_demo_page_classifies_a_picked_image(served_model: Path, tmp_path: Path, browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    tile = next(p for p in real_images() if p.parent.name == "Forest")
    with running_api(served_model, tmp_path) as api:
        expected = httpx.post(f"{api.url}/predict", files={"file": (tile.name, tile.read_bytes(), "image/jpeg")},
                              timeout=60).json()
        browser.get(api.url + "/")
        browser.find_element(By.ID, "file").send_keys(str(tile))
        WebDriverWait(browser, 60).until(
            lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-state") in ("done", "error"))
        assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-state") == "done", \
            browser.find_element(By.ID, "error").text

        assert browser.find_element(By.ID, "label").text == expected["label"]
        rows = browser.find_elements(By.CSS_SELECTOR, "#bars .row")
        assert sorted(r.get_attribute("data-class") for r in rows) == sorted(expected["probabilities"])
        top_bar = browser.find_element(By.CSS_SELECTOR, "#bars .bar.top")
        preview = browser.find_element(By.ID, "preview")
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(
            "return arguments[0].complete && arguments[0].naturalWidth > 0", preview))
        png = browser.get_screenshot_as_png()
    (tmp_path / "demo.png").write_bytes(png)  # kept for a human when this fails

    shot = Image.open(io.BytesIO(png)).convert("RGB")
    assert ImageStat.Stat(shot).stddev[0] > 10  # not a blank page

    bar = top_bar.rect  # the winning class's bar, at its drawn position and width
    assert bar["width"] >= 2 and bar["height"] >= 8
    centre = (int(bar["x"] + bar["width"] / 2), int(bar["y"] + bar["height"] / 2))
    assert all(abs(a - b) <= 12 for a, b in zip(shot.getpixel(centre), TOP_BAR_RGB)), shot.getpixel(centre)

    box = preview.rect  # the uploaded tile is shown: its pixels vary like a satellite image does
    shown = shot.crop((int(box["x"]), int(box["y"]), int(box["x"] + box["width"]), int(box["y"] + box["height"])))
    assert box["width"] >= 160 and max(ImageStat.Stat(shown).stddev) > 3


def test_the_docs_page_renders_the_endpoints_without_internet_access(served_model: Path, tmp_path: Path,
                                                                     browser) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    with running_api(served_model, tmp_path) as api:
        browser.get(api.url + "/docs")
        WebDriverWait(browser, 60).until(
            lambda d: d.find_elements(By.CSS_SELECTOR, '.opblock-post [data-path="/predict"]'))
        paths = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, "[data-path]")}
        method = browser.find_element(By.CSS_SELECTOR, ".opblock-post .opblock-summary-method")
        png = browser.get_screenshot_as_png()
    (tmp_path / "docs.png").write_bytes(png)  # kept for a human when this fails

    assert {"/predict", "/predict/batch", "/healthz", "/readyz", "/model", "/metrics"} <= paths
    shot = Image.open(io.BytesIO(png)).convert("RGB")
    badge = method.rect  # Swagger UI's green POST badge, drawn by its own stylesheet
    centre = (int(badge["x"] + badge["width"] / 2), int(badge["y"] + 3))
    assert all(abs(a - b) <= 12 for a, b in zip(shot.getpixel(centre), POST_BADGE_RGB)), shot.getpixel(centre)
