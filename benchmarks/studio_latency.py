"""How long the studio takes from an edit to the new image on screen: ``python benchmarks/studio_latency.py``.

Simulates a recording (2000 frames of 640×480 by default, kept in ``--workdir``), starts the studio on
it, opens the page in headless Chromium (selenium + chromedriver), waits for the first run, then makes
edits on the page as a user would and prints, per edit, the seconds from the edit to its new image
loaded on the page (measured by the page) and the run's own seconds (measured by the server).
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import time
from pathlib import Path

from luckystack.cli import shipped_pipeline
from luckystack.simulate.recording import simulate_command
from luckystack.studio.command import Server

WAIT_S = 600


def _browser(width: int, height: int, profile: Path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or "chromium"
    return webdriver.Chrome(service=Service(shutil.which("chromedriver") or "chromedriver"), options=options)


def _until(driver, script: str, what: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT_S, poll_frequency=0.02).until(lambda d: d.execute_script(script), message=what)


def _edit(driver, server: Server, script: str, what: str) -> tuple[float, float]:
    """Run ``script`` on the page (an edit); (page seconds to the new image, the server's run seconds)."""
    n = driver.execute_script("return window.studioLatencies.length")
    driver.execute_script(script)
    _until(driver, f"return window.studioLatencies.length > {n}", what)
    page = driver.execute_script("return window.studioLatencies[window.studioLatencies.length - 1].seconds")
    server.session.wait(WAIT_S)
    return page, server.session.jobs_done[-1].seconds


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python benchmarks/studio_latency.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=2000)
    ap.add_argument("--size", default="640x480", metavar="WxH")
    ap.add_argument("--workdir", default="bench-studio", metavar="DIR",
                    help="recording, cache and output go here (default: ./bench-studio)")
    ap.add_argument("--jobs", type=int, default=None)
    ap.add_argument("--sizes", default="30,35,27,40,33,45,22", metavar="P1,P2,...",
                    help="the stack sizes (%%) the middle cut is set to in turn; sizes an earlier bench in the "
                         "same --workdir used are cached (default: 30,35,27,40,33,45,22)")
    ap.add_argument("--ap-size", type=int, default=64, help="the AP size set at the end (default: 64)")
    ap.add_argument("--screenshot", default=None, metavar="PNG", help="save a screenshot of the page at the end")
    args = ap.parse_args(argv)
    width, height = (int(v) for v in args.size.lower().split("x"))
    work = Path(args.workdir)
    rec = work / f"jupiter-{args.frames}-{width}x{height}.ser"
    if not rec.is_file():
        print(simulate_command("jupiter", args.frames, rec, width, height, seed=7)["line"])
    cache = work / "cache"
    t0 = time.perf_counter()
    server = Server(rec, shipped_pipeline("planet"), cache, work / "out", args.jobs).start()
    driver = _browser(1500, 1000, work / "profile")
    try:
        driver.get(server.url)
        server.session.wait(WAIT_S)
        _until(driver, "const i = document.getElementById('result-a'); return i.complete && i.naturalWidth > 0",
               "the first image")
        print(f"first run (cold unless {cache} held it): {time.perf_counter() - t0:.2f} s to the first image")
        rows: list[tuple[str, float, float]] = []
        for percent in (float(v) for v in args.sizes.split(",")):
            percent = int(percent) if percent.is_integer() else percent
            rows.append((f"stack size P25 → P{percent}",
                         *_edit(driver, server, f"window.studioSetStackSize(1, {percent})", f"P{percent}")))
        sizes = [r for r in rows]
        rows.append(("post: unsharp sharpening",
                     *_edit(driver, server, "document.getElementById('sharpen').value = 'unsharp';"
                                            "document.getElementById('sharp-apply').click()", "sharpening")))
        rows.append((f"AP size → {args.ap_size} px",
                     *_edit(driver, server, f"const s = document.getElementById('ap-size'); s.value = '{args.ap_size}';"
                                            "s.dispatchEvent(new Event('change'))", "AP size")))
        print(f"\n{'edit':<28}{'page: edit → image (s)':>24}{'run (s)':>10}")
        for what, page, run in rows:
            print(f"{what:<28}{page:>24.2f}{run:>10.2f}")
        print(f"\nstack size changes: median {statistics.median(r[1] for r in sizes):.2f} s to the image "
              f"(runs {statistics.median(r[2] for r in sizes):.2f} s), {len(sizes)} edits")
        if args.screenshot:
            driver.set_window_size(1500, 1080)
            driver.execute_script("const m = document.getElementById('compare-mode'); m.value = 'side';"
                                  "m.dispatchEvent(new Event('change'));"
                                  "document.querySelector('button.zoom[data-zoom=\"1\"]').click();"
                                  "document.getElementById('show-qmap').click()")
            time.sleep(1.5)
            driver.save_screenshot(args.screenshot)
            print(f"screenshot {args.screenshot}")
    finally:
        driver.quit()
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
