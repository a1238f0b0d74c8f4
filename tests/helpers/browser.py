"""Open a run's report.html in headless Chromium (the system's, driven through the DevTools
protocol by Playwright; no browser is ever downloaded) and check what a reader would see:
no console error, no request leaving the file, every promised chart drawn, legend clicks
hide a model, tables sort; a screenshot lands in the run folder.

`python -m tests.helpers.browser RUN_DIR` runs the same check on any run."""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

CHROMIUM_PATHS = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
LAUNCH_ARGS = ["--no-sandbox", "--headless", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOT = "report-screenshot.png"


def find_chromium() -> str | None:
    for path in (*CHROMIUM_PATHS, shutil.which("chromium") or ""):
        if path and os.access(path, os.X_OK):
            return path
    return None


def unavailable() -> str | None:
    """Why the browser check cannot run here, or None when it can."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install playwright; no browser download needed)"
    if find_chromium() is None:
        return ("no system Chromium (Debian: apt-get install -y chromium); "
                "browsers are never downloaded")
    return None


@dataclass
class PageCheck:
    promised: int = -1
    rendered: str = ""
    plots: int = 0
    console_errors: list[str] = field(default_factory=list)
    outside_requests: list[str] = field(default_factory=list)
    legend_hides: bool = False
    hover_shows: bool = False
    table_sorts: bool = False
    screenshot: Path | None = None


def check_report(html_path: Path, screenshot_dir: Path | None = None,
                 timeout_ms: int = 90_000) -> PageCheck:
    from playwright.sync_api import sync_playwright

    html_path = Path(html_path).resolve()
    result = PageCheck()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=find_chromium(), args=LAUNCH_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.on("console", lambda msg: result.console_errors.append(msg.text)
                    if msg.type == "error" else None)
            page.on("pageerror", lambda err: result.console_errors.append(str(err)))

            def guard(route):
                url = route.request.url
                if url.startswith(("file:", "data:", "blob:")):
                    return route.continue_()
                result.outside_requests.append(url)
                return route.abort()

            page.route("**/*", guard)
            page.goto(html_path.as_uri())
            page.wait_for_function("document.body.dataset.rendered !== undefined",
                                   timeout=timeout_ms)
            result.promised = int(page.get_attribute("body", "data-charts"))
            result.rendered = page.get_attribute("body", "data-rendered")
            result.plots = page.locator("div.chart.js-plotly-plot .main-svg").evaluate_all(
                "els => new Set(els.map(e => e.closest('div.chart'))).size")
            if screenshot_dir is not None:
                page.evaluate("document.getElementById('interactive-charts').scrollIntoView()")
                page.wait_for_timeout(300)
                result.screenshot = Path(screenshot_dir) / SCREENSHOT
                page.screenshot(path=str(result.screenshot))
            if result.plots:
                legend = page.locator("div.chart").first.locator(".legendtoggle").first
                legend.scroll_into_view_if_needed()
                legend.click(force=True)
                hidden = ("document.querySelector('div.chart').data"
                          ".some(trace => trace.visible === 'legendonly')")
                try:
                    page.wait_for_function(hidden, timeout=5_000)
                except Exception:  # noqa: BLE001 - reported as legend_hides=False
                    pass
                result.legend_hides = page.evaluate(hidden)
                legend.click(force=True)  # show it again
                point = page.locator("div.chart .scatterlayer .points path").first
                point.scroll_into_view_if_needed()
                point.hover(force=True)
                try:
                    page.wait_for_selector(".hoverlayer .hovertext", timeout=5_000)
                    result.hover_shows = True
                except Exception:  # noqa: BLE001 - reported as hover_shows=False
                    pass
            header = page.locator("table th").first
            if header.count():
                header.scroll_into_view_if_needed()
                header.click()
                result.table_sorts = page.evaluate(
                    "document.querySelector('table th').classList.contains('sorted-asc')")
        finally:
            browser.close()
    return result


def main(argv: list[str]) -> int:
    run_dir = Path(argv[0])
    reason = unavailable()
    if reason:
        print(f"browser check not run: {reason}")
        return 2
    result = check_report(run_dir / "report.html", run_dir)
    print(result)
    ok = (not result.console_errors and not result.outside_requests
          and result.rendered == str(result.promised) == str(result.plots))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
