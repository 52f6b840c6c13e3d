"""The studio in a real browser (Debian's headless Chromium driven by selenium and chromedriver): the
page opens on a simulated recording; a dragged stack-size cut, a new AP size, a click on the reference
that adds an AP and clicks that remove one each bring a new image."""

from __future__ import annotations

import shutil

import pytest

from luckystack.cli import shipped_pipeline
from luckystack.studio.command import Server

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                                reason="needs Debian's chromium and chromium-driver (apt install chromium-driver)")
WAIT_S = 60


@pytest.fixture(scope="module")
def page(recordings, tmp_path_factory):
    from selenium.webdriver.chrome.service import Service

    work = tmp_path_factory.mktemp("browser")
    srv = Server(recordings / "a.ser", shipped_pipeline("planet"), work / "cache", work / "out", jobs=1).start()
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1500,1000", f"--user-data-dir={work / 'profile'}"):
        options.add_argument(arg)
    options.binary_location = CHROMIUM
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.get(srv.url)
    driver.srv, driver.work = srv, work
    yield driver
    driver.quit()
    srv.stop()


def wait(driver, condition, what: str):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # The page redraws panels as results arrive: an element found a moment ago may be replaced.
    return WebDriverWait(driver, WAIT_S, poll_frequency=0.05, ignored_exceptions=(StaleElementReferenceException,)
                         ).until(lambda d: condition(d), message=what)


def select(driver, element_id: str, value: str) -> None:
    """Choose ``value`` in the page's ``<select id=element_id>``, again if the page redrew its options
    meanwhile (a stale option)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait(driver, lambda d: Select(d.find_element(By.ID, element_id)).select_by_value(value) or True,
         f"{element_id} set to {value}")


def shown(driver) -> str | None:
    """The result image's URL once it has loaded (None while loading)."""
    return driver.execute_script("const i = document.getElementById('result-a');"
                                 "return i.complete && i.naturalWidth > 0 && i.dataset.loaded === i.getAttribute('src')"
                                 " ? i.getAttribute('src') : null;")


def new_image(driver, old: str, what: str) -> str:
    return wait(driver, lambda d: (s := shown(d)) and s != old and s, what)


def test_page_changes_stack_size_and_ap_size(page):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    wait(page, lambda d: "done" in d.find_element(By.ID, "status").get_attribute("class"), "the first run done")
    first = wait(page, shown, "the first result image")
    assert "label=P10" in first
    # scrub through the recording's frames
    wait(page, lambda d: d.find_element(By.ID, "frame-no").text == "frame 1 / 60", "the first frame")
    page.execute_script("const s = document.getElementById('scrub'); s.value = 41; s.dispatchEvent(new Event('input'))")
    wait(page, lambda d: d.find_element(By.ID, "frame-no").text == "frame 42 / 60", "frame 42")
    wait(page, lambda d: d.execute_script("return document.querySelectorAll('#graph .gnode.cached, #graph .gnode.ran')"
                                          ".length") == 9, "every node shown as cached or ran")
    # drag the P25 cut (15 of 60 frames) to the right: a new stack size, a new image
    canvas = page.find_element(By.ID, "quality")
    rect = page.execute_script("return arguments[0].getBoundingClientRect().toJSON()", canvas)
    scale = rect["width"] / 560
    x = (34 + (560 - 34 - 10) * (15 - 1) / (60 - 1)) * scale - rect["width"] / 2
    y = 100 * scale - rect["height"] / 2
    ActionChains(page).move_to_element_with_offset(canvas, round(x), round(y)).click_and_hold() \
        .move_by_offset(40, 0).move_by_offset(40, 0).release().perform()
    second = new_image(page, first, "the image of the dragged stack size")
    label = page.execute_script("return document.querySelector('#size-tabs button.on').dataset.label")
    assert label not in ("P10", "P25", "P50") and f"label={label}" in second
    percent = page.srv.session.pipeline.raw["nodes"]["stack"]["params"]["percent"]
    assert percent[0] == 10 and percent[2] == 50 and 25 < percent[1] < 50
    assert page.execute_script("return window.studioLatencies.length") == 1

    # a new AP size: align, stack, merge and post rerun, the APs drawn anew
    aps_before = page.find_element(By.ID, "ap-count").text
    select(page, "ap-size", "32")
    third = new_image(page, second, "the image with 32 px APs")
    wait(page, lambda d: d.find_element(By.ID, "ap-count").text not in ("", aps_before), "the new APs drawn")
    assert page.srv.session.pipeline.raw["nodes"]["align"]["params"]["ap_size"] == [32]
    assert {r.get_attribute("width") for r in page.find_elements(By.CSS_SELECTOR, "#ap-layer rect.ap")} == {"32"}

    # a click on the reference adds a manual AP there
    ref = page.find_element(By.ID, "ref-box")
    ActionChains(page).move_to_element_with_offset(ref, 5, 5).click().perform()
    fourth = new_image(page, third, "the image with a manual AP")
    manual = page.srv.session.pipeline.raw["nodes"]["align"]["params"]["manual"]
    assert len(manual) == 1 and manual[0][2] == 32
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ap-layer rect.manual")) == 1, "the manual AP drawn")
    assert page.execute_script("return window.studioLatencies.length") == 3
    assert fourth != first
    # in "remove" mode a click on it removes it (the earlier result comes back from the cache), and a
    # click on an automatic AP turns the layout into a manual one without that AP
    n_aps = len(page.find_elements(By.CSS_SELECTOR, "#ap-layer rect.ap"))
    select(page, "ap-click", "remove")
    ActionChains(page).move_to_element_with_offset(ref, 5, 5).click().perform()
    assert new_image(page, fourth, "the image without the manual AP") == third
    assert page.srv.session.pipeline.raw["nodes"]["align"]["params"]["manual"] == []
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ap-layer rect.manual")) == 0, "no manual AP")
    ActionChains(page).move_to_element_with_offset(ref, 5, 5).click().perform()
    fifth = new_image(page, third, "the image without an automatic AP")
    align = page.srv.session.pipeline.raw["nodes"]["align"]["params"]
    assert align["min_brightness"] == 1.0 and len(align["manual"]) == n_aps - 2  # the manual AP was among them
    wait(page, lambda d: len(d.find_elements(By.CSS_SELECTOR, "#ap-layer rect.manual")) == n_aps - 2,
         "every AP now a manual one")
    assert fifth not in (first, second, third, fourth)
    # blink and side by side against the previous setting
    select(page, "compare-mode", "side")
    wait(page, lambda d: d.execute_script("const i = document.getElementById('result-b');"
                                          "return !document.getElementById('view-b').hidden && i.complete && i.naturalWidth > 0"),
         "the comparison image side by side")
    page.find_element(By.CSS_SELECTOR, "button.zoom[data-zoom='1']").click()
    assert page.execute_script("return document.getElementById('result-a').style.transform").endswith("scale(1)")
    select(page, "compare-mode", "blink")
    seen = set()
    wait(page, lambda d: seen.add(d.execute_script("return document.getElementById('result-a').getAttribute('src')"))
         or len(seen) >= 2, "blinking between the two results")
    page.save_screenshot(str(page.work / "studio.png"))
    errors = [e for e in page.get_log("browser") if e["level"] == "SEVERE" and "favicon" not in e["message"]]
    assert not errors
