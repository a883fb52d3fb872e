"""JupyterLab in headless Chromium runs the quickstart on the scripted engine; checks go through the DOM.

Needs Debian's chromium (``scripts/run.sh test`` installs it) and Python Playwright, which drives that
binary: no browser is downloaded. Screenshots land in ``.artifacts/screenshots``.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import nbformat
import pytest

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / ".artifacts" / "screenshots"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
SLOW_CELLS = [
    '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "250", "X-Scripted-Deltas": "16"}',
    "%%interact --thinking low --image --schema Move --chain rich\nAlice moved to Paris in 2019.",
    'def get_weather(city: str) -> dict:\n    """The weather now."""\n    return {"city": city, "temp": 21}',
    "%%interact --tools get_weather --chain tools\nWhat does get_weather say?",
    "%%interact --image --chain gallery\nDraw three images of a kite",
    '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "60", "X-Scripted-Deltas": "400"}',
    "%%interact --chain slow\nTell me a very long story, with a list and a table.",
]


SLOW_ROWS = [  # ~1 s a row, two at a time: long enough to watch, and to Stop
    '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "250", "X-Scripted-Deltas": "4"}',
    'many = pd.DataFrame({"text": [f"note number {n}" for n in range(200)]})',
    "%%interact --over many --concurrency 2 -o slow\nSay {{row.text}}",
]


@contextlib.contextmanager
def notebook_run(lab: tuple[str, str], notebook: str) -> Iterator[Any]:
    """Chromium on ``notebook`` in JupyterLab with Run All Cells clicked; the page; closed at the end."""
    from playwright.sync_api import sync_playwright

    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield run_all(browser, base, token, notebook)
        finally:
            browser.close()


def run_all(browser: Any, base: str, token: str, notebook: str) -> Any:
    """A page with ``notebook`` open in JupyterLab, its kernel idle, and Run All Cells clicked."""
    return run_all_cells(open_notebook(browser, base, token, notebook))


def open_notebook(browser: Any, base: str, token: str, notebook: str, width: int = 1280, height: int = 1000) -> Any:
    """A page with ``notebook`` open in JupyterLab and its kernel idle."""
    return goto_notebook(browser.new_page(viewport={"width": width, "height": height}), base, token, notebook)


def goto_notebook(page: Any, base: str, token: str, notebook: str) -> Any:
    page.goto(f"{base}/lab/tree/{notebook}?token={token}&reset")
    page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
                           timeout=90_000)  # fmt: skip
    return page


def run_all_cells(page: Any) -> Any:
    page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
    page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()
    return page


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Debian's chromium is missing: run `bash scripts/run.sh test`, which installs it")
    work = tmp_path_factory.mktemp("lab")
    notebook = nbformat.read(ROOT / "notebooks" / "quickstart.ipynb", as_version=4)
    notebook.cells.extend(nbformat.v4.new_code_cell(source) for source in SLOW_CELLS)
    nbformat.write(notebook, work / "quickstart.ipynb")  # Lab autosaves: never open the source notebook
    shutil.copy(ROOT / "notebooks" / "mcp_and_agents.ipynb", work / "mcp_and_agents.ipynb")
    extraction = nbformat.read(ROOT / "notebooks" / "extraction.ipynb", as_version=4)
    extraction.cells.extend(nbformat.v4.new_code_cell(source) for source in SLOW_ROWS)
    nbformat.write(extraction, work / "extraction.ipynb")
    settings = Path(sys.prefix) / "share" / "jupyter" / "lab" / "settings"
    settings.mkdir(parents=True, exist_ok=True)
    (settings / "overrides.json").write_text(json.dumps({
        "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
        "@jupyter-widgets/jupyterlab-manager:plugin": {"saveState": True},
        "@jupyterlab/notebook-extension:tracker": {"windowingMode": "none"},
    }))  # fmt: skip
    env = dict(os.environ)
    for name in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GEMINI_BASE_URL", "GEMINI_MAGICS_AGENT_STEP_SECONDS"):
        env.pop(name, None)  # (the agent keeps its real pacing here: the browser watches its progress live)
    home = work / "home"
    for sub in ("cfg", "data", "rt", "ipython", "mpl", "xdg_config", "xdg_cache"):
        (home / sub).mkdir(parents=True)
    env.update(GEMINI_MAGICS_ENGINE="scripted", JUPYTER_CONFIG_DIR=str(home / "cfg"), JUPYTER_DATA_DIR=str(home / "data"),
               JUPYTER_RUNTIME_DIR=str(home / "rt"), IPYTHONDIR=str(home / "ipython"), MPLCONFIGDIR=str(home / "mpl"),
               JUPYTER_PLATFORM_DIRS="1", XDG_CONFIG_HOME=str(home / "xdg_config"), XDG_CACHE_HOME=str(home / "xdg_cache"),
               GEMINI_MAGICS_CACHE_DIR=str(home / "gemini-magics"))  # its own row cache and journal  # fmt: skip
    port, token = free_port(), secrets.token_hex(16)
    log = open(work / "lab.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", f"--port={port}", f"--IdentityProvider.token={token}",
         "--ServerApp.ip=127.0.0.1", f"--ServerApp.root_dir={work}"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2).status_code
                    == 200
                ):
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                raise AssertionError("JupyterLab did not start:\n" + (work / "lab.log").read_text()[-3000:])
            time.sleep(0.25)
        yield f"http://127.0.0.1:{port}", token
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


def test_quickstart_in_jupyterlab(lab: tuple[str, str]) -> None:
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    SHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            page = run_all(browser, base, token, "quickstart.ipynb")

            # a slow structured answer: folded thoughts, an image with Save, a JSON tree growing as it streams
            rich = page.locator(".gm-live").first
            expect(rich.locator(".gm-json .jp-RenderedJSON")).to_contain_text("person", timeout=90_000)
            expect(rich.locator(".gm-thought")).to_contain_text("Thoughts")
            expect(rich.locator(".gm-image")).to_be_visible()
            expect(rich.locator(".gm-caption").first).to_contain_text("image/jpeg · 320×200")
            expect(rich.locator(".gm-save")).to_be_visible()
            expect(rich.locator(".gm-footer")).to_contain_text("chain rich")
            rich.scroll_into_view_if_needed()
            rich.screenshot(path=str(SHOTS / "live-rich.png"))

            # a tool-call cell: one card a call, ✓ with its result and its own duration, while the answer streams
            tooled = page.locator(".gm-live", has=page.locator(".gm-tool-card.gm-tool-ok", has_text="get_weather(city="))
            expect(tooled).to_be_visible(timeout=90_000)
            expect(tooled.locator(".gm-tool-card")).to_have_count(1)
            expect(tooled.locator(".gm-tool-card", has_text="✓ get_weather(city=")).to_contain_text(" s · {")
            tooled.scroll_into_view_if_needed()
            tooled.screenshot(path=str(SHOTS / "live-tools.png"))

            # several images in one answer: a gallery, each image with its Save button
            gallery = page.locator(".gm-live .gm-gallery")
            expect(gallery.locator(".gm-image")).to_have_count(3, timeout=90_000)
            expect(gallery.locator(".gm-save")).to_have_count(3)
            gallery.scroll_into_view_if_needed()
            gallery.screenshot(path=str(SHOTS / "gallery.png"))

            # the last cell streams slowly: the live view shows Markdown as it arrives, with a Stop button
            live = page.locator(".gm-live", has=page.locator(".gm-footer", has_text="chain slow"))
            expect(live.locator(".gm-markdown").first).to_contain_text("Scripted reply", timeout=90_000)
            expect(live.locator(".gm-stop")).to_be_visible()
            expect(live.locator(".gm-header")).to_contain_text("in_progress")
            live.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "streaming.png"))
            live.screenshot(path=str(SHOTS / "live-view.png"))

            # the earlier cells' results: Markdown, folded thoughts, an image, a JSON tree, the usage footer
            outputs = page.locator(".jp-OutputArea-output")
            expect(page.locator(".jp-RenderedMarkdown", has_text="Your name is Phil.")).to_have_count(1)
            # the quickstart's thinking cell, and the rich cell (whose saved output is Markdown with every part)
            expect(page.locator(".jp-RenderedMarkdown details summary", has_text="Thoughts")).to_have_count(2)
            expect(
                page.locator(".jp-RenderedMarkdown details", has_text="Thinking about the request")
            ).to_have_count(2)
            expect(page.locator(".jp-RenderedJSON", has_text="Paris")).to_have_count(1)
            # the tool-call cell's saved output shows the call and its result as readable Markdown
            expect(page.locator(".jp-RenderedMarkdown details summary", has_text="✓ get_weather(city=")).to_have_count(1)
            # --image --schema: the saved output shows the JSON and the image, not the JSON alone
            rich_result = page.locator(".jp-RenderedMarkdown", has=page.locator("code", has_text="Paris"))
            expect(rich_result.locator("img")).to_have_count(1)
            expect(rich_result.locator("details summary", has_text="Thoughts")).to_have_count(1)
            image = outputs.locator("img").first
            expect(image).to_be_visible()
            assert image.evaluate("i => i.naturalWidth") == 320
            expect(
                page.locator(".jp-RenderedMarkdown sub", has_text="tokens · chain default").first
            ).to_be_visible()
            page.locator(".jp-RenderedJSON", has_text="Paris").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "results.png"))
            # the background cell's status line followed its interaction to the end
            finished = page.locator(".jp-RenderedMarkdown", has_text="Background interaction")
            expect(finished.first).to_contain_text("completed")
            expect(page.locator(".gm-background .gm-cancel")).to_have_count(0)
            expect(finished.first).to_contain_text("bound to report")
            # the finished cells left no live view behind: only the streaming one is live
            expect(page.locator(".gm-live")).to_have_count(1)

            # Stop cancels the slow stream at once; the cell ends in a grey badge (no red block) and Run All stops there
            live.locator(".gm-stop").click()
            expect(page.locator(".gm-stopped", has_text="the answer so far")).to_have_count(1, timeout=15_000)
            expect(page.locator(".gm-live")).to_have_count(0)
            # the partial answer stays visible above the badge, marked as stopped
            stopped_cell = page.locator(".jp-CodeCell", has=page.locator(".gm-stopped"))
            expect(stopped_cell.locator(".jp-RenderedMarkdown", has_text="Scripted reply")).to_have_count(1)
            expect(stopped_cell.locator(".jp-RenderedMarkdown sub", has_text="stopped by you: partial answer")).to_have_count(1)
            page.locator(".gm-stopped").scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "stopped.png"))

            # saved and reopened: the stopped cell keeps its partial answer, the background cell its final state
            page.keyboard.press("Control+s")
            page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
            saved = httpx.get(f"{base}/api/contents/quickstart.ipynb?token={token}", timeout=10).json()["content"]
            texts = [json.dumps(c.get("outputs", [])) for c in saved["cells"] if c["cell_type"] == "code"]
            assert any("stopped by you: partial answer" in t and "Scripted reply" in t for t in texts)
            assert any("**completed**; bound to `report`" in t for t in texts)
            assert not any('"data": {}' in t for t in texts)  # no emptied live view left behind
            page.reload()
            page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
                                   timeout=90_000)  # fmt: skip
            reopened = page.locator(".jp-CodeCell", has=page.locator(".gm-stopped"))
            expect(reopened.locator(".jp-RenderedMarkdown", has_text="Scripted reply")).to_have_count(1)
            reopened.scroll_into_view_if_needed()
            reopened.screenshot(path=str(SHOTS / "stopped-reopened.png"))
            background = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text="--background"))
            expect(background.first).to_contain_text("completed")
            background.first.scroll_into_view_if_needed()
            background.first.screenshot(path=str(SHOTS / "background-reopened.png"))
        finally:
            browser.close()


def test_agent_progress_in_jupyterlab(lab: tuple[str, str]) -> None:
    """An agent cell's widget shows status, elapsed time and thought summaries live, then its report."""
    from playwright.sync_api import expect

    with notebook_run(lab, "mcp_and_agents.ipynb") as page:
        agent = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text="--agent deep-research"))
        live = agent.locator(".gm-background")
        expect(live.locator(".gm-status")).to_have_text("in_progress", timeout=90_000)
        expect(live.locator(".gm-elapsed")).to_contain_text(" s")
        expect(live.locator(".gm-cancel")).to_be_visible()
        expect(live.locator(".gm-steps li", has_text="Thought: Thinking about the request: Plan:")).to_have_count(1)
        expect(live.locator(".gm-steps li", has_text="Tool: search · What makes oolong")).to_have_count(1, timeout=15_000)
        live.scroll_into_view_if_needed()
        live.screenshot(path=str(SHOTS / "agent-progress.png"))

        # the end: the widget gives way to the run's line and its report, bound to report
        report = agent.locator(".jp-RenderedMarkdown", has_text="Research report")
        expect(report).to_contain_text("Sources", timeout=30_000)
        expect(report).to_contain_text("completed; bound to report")
        expect(agent.locator(".gm-background")).to_have_count(0)
        summary = page.locator(".jp-RenderedMarkdown", has_text="Summarise the report in one line.")
        expect(summary).to_contain_text("chain research (turn 2)", timeout=30_000)
        report.scroll_into_view_if_needed()
        report.screenshot(path=str(SHOTS / "agent-report.png"))


def test_extraction_progress_and_stop_in_jupyterlab(lab: tuple[str, str]) -> None:
    """An --over cell's progress bar counts rows live; Stop ends the run, finished rows kept and cached."""
    from playwright.sync_api import expect

    with notebook_run(lab, "extraction.ipynb") as page:
        slow = page.locator(".jp-CodeCell", has=page.locator(".jp-InputArea", has_text="--over many"))
        progress = slow.locator(".gm-rows")
        expect(progress.locator(".gm-rows-bar")).to_be_visible(timeout=90_000)
        expect(progress.locator(".gm-rows-status")).to_contain_text("/200 rows", timeout=30_000)
        expect(progress.locator(".gm-rows-status")).to_contain_text("rows/s", timeout=30_000)
        expect(progress.locator(".gm-rows-status")).to_contain_text("ETA")
        progress.scroll_into_view_if_needed()
        progress.screenshot(path=str(SHOTS / "rows-progress.png"))
        progress.locator(".gm-stop").click()
        expect(slow.locator(".jp-OutputArea-output", has_text="stopped by you: the")).to_have_count(1, timeout=15_000)
        expect(slow.locator(".gm-rows")).to_have_count(0)
        expect(slow.locator(".jp-OutputArea-output", has_text="not run (stopped by you)")).to_have_count(1)
        # the notebook's own cells above: the extraction's DataFrames and the batch job's (the live run, the
        # --check run, the run over the CSV file, the batch job's final display, and %interact wait's result)
        expect(page.locator(".jp-RenderedHTMLCommon", has_text="12 rows: 11 ok, 1 failed (1 validation)")).to_have_count(5)
        expect(page.locator(".jp-OutputArea-output", has_text="succeeded · 11/11 requests done")).to_have_count(1)
        slow.scroll_into_view_if_needed()
        slow.screenshot(path=str(SHOTS / "rows-stopped.png"))


THEME_CELLS = [
    "%load_ext gemini_magics",
    '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "40", "X-Scripted-Deltas": "6"}',
    "%%interact --image --chain look\nA kite over the sea",
    "%%interact --audio --chain say\nHello from the notebook.",
    "%%interact --video --duration 2 -o clip\nA kite over the sea",
    "%interact wait",
    '%config InteractMagics.headers = {"X-Scripted-Delay-Ms": "120", "X-Scripted-Deltas": "400"}',
    "%%interact --chain long\nTell me a very long story.",
]
CONTRAST = """el => {
  const rgb = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = c => { const [r, g, b] = c.slice(0, 3).map(v => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
                     return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
  let node = el, back = null;
  while (node) { const c = rgb(getComputedStyle(node).backgroundColor); if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) { back = c; break; } node = node.parentElement; }
  back = back || [255, 255, 255];
  const fore = rgb(getComputedStyle(el).color);
  const [a, b] = [lum(fore), lum(back)].sort((x, y) => y - x);
  return (a + 0.05) / (b + 0.05);
}"""


@pytest.mark.parametrize("theme", ["JupyterLab Light", "JupyterLab Dark"])
def test_theme_contrast_narrow_layout_and_neutral_stop_in_jupyterlab(lab: tuple[str, str], theme: str) -> None:
    """In light and dark, at 600 px: the live header and footer and the Stopped badge read at ≥ 4.5:1, Stop
    keeps its size, and the saved notebook holds each image once."""
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    name = f"theme-{theme.split()[-1].lower()}.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in THEME_CELLS],
                                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})  # fmt: skip
    httpx.put(f"{base}/api/contents/{name}?token={token}", timeout=10,
              json={"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(notebook))})  # fmt: skip
    shot = theme.split()[-1].lower()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--autoplay-policy=no-user-gesture-required"])
        try:
            page = open_notebook(browser, base, token, name, width=600, height=900)
            page.locator(".lm-MenuBar-itemLabel", has_text="Settings").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Theme").first.hover()
            page.locator(".lm-Menu-itemLabel", has_text=theme).first.click()
            dark = theme.endswith("Dark")
            page.wait_for_function(f"() => document.body.dataset.jpThemeLight === '{str(not dark).lower()}'", timeout=30_000)
            run_all_cells(page)

            live = page.locator(".gm-live")
            expect(live.locator(".gm-footer")).to_contain_text("chain long", timeout=90_000)
            for part in (".gm-header", ".gm-footer"):
                ratio = live.locator(part).first.evaluate(CONTRAST)
                assert ratio >= 4.5, (theme, part, ratio)
            stop = live.locator(".gm-stop")
            box = stop.bounding_box()
            assert box is not None and box["width"] >= 79 and stop.evaluate("b => b.scrollWidth <= b.clientWidth + 1")
            live.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"narrow-live-{shot}.png"))
            stop.click()

            badge = page.locator(".gm-stopped")
            expect(badge).to_contain_text("Stopped", timeout=15_000)
            assert badge.evaluate(CONTRAST) >= 4.5, theme
            stopped = page.locator(".jp-CodeCell", has=badge)
            expect(stopped.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']")).to_have_count(0)
            expect(stopped.locator(".jp-RenderedMarkdown", has_text="stopped by you: partial answer")).to_have_count(1)
            expect(page.locator(".jp-RenderedMarkdown em", has_text="stand-in drawn by the embedded local server")).to_have_count(1)
            # the finished answers' Save and Copy: readable in both themes, labels whole at 600 px
            for action in page.locator(".gm-Action").all():
                assert action.evaluate(CONTRAST) >= 4.5, (theme, action.inner_text())
                assert action.evaluate("b => b.scrollWidth <= b.clientWidth + 1"), action.inner_text()
            expect(page.locator(".gm-Action", has_text="Save image")).to_have_count(1)
            # the spoken answer plays: its <audio> element loads (a real WAV) and advances when played
            player = page.locator(".jp-RenderedMarkdown audio")
            expect(player).to_have_count(1)
            seconds = player.evaluate("a => new Promise(r => { if (a.readyState >= 1) r(a.duration); else { a.onloadedmetadata = () => r(a.duration); a.load(); } })")
            assert seconds > 0.5, seconds
            played = player.evaluate("a => { a.muted = true; return a.play().then(() => new Promise(r => setTimeout(() => r(a.currentTime), 400))); }")
            assert played > 0, played
            # the generated video (a background run) shows its poster, loads, and plays
            film = page.locator(".jp-RenderedMarkdown video").first
            expect(film).to_have_attribute("poster", re.compile("^data:image/jpeg;base64,"))
            length = film.evaluate("v => new Promise(r => { if (v.readyState >= 1) r(v.duration); else { v.onloadedmetadata = () => r(v.duration); v.load(); } })")
            assert 1.5 < length < 2.5, length
            ran = film.evaluate("v => { v.muted = true; return v.play().then(() => new Promise(r => setTimeout(() => r(v.currentTime), 400))); }")
            assert ran > 0, ran
            badge.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"narrow-stopped-{shot}.png"))

            page.keyboard.press("Control+s")
            page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
            saved = httpx.get(f"{base}/api/contents/{name}?token={token}", timeout=10).json()["content"]
            image_cell = json.dumps(saved["cells"][2]["outputs"])
            assert "<audio controls" in json.dumps(saved["cells"][3]["outputs"])
            (embedded,) = set(re.findall(r"data:image/jpeg;base64,([A-Za-z0-9+/=]{200})", image_cell))
            assert image_cell.count(embedded) == 1  # each image once in the .ipynb
        finally:
            browser.close()


ACTION_CELLS = [
    "%load_ext gemini_magics",
    '%config InteractMagics.save_dir = "saved"',
    "%%interact --chain hi -o hello\nSay hello to the 🌍 in one line.",
    "print(repr(hello.text))",
    "%%interact --image --chain pics\nDraw two images of a kite over the sea",
    "from pydantic import BaseModel\n\nclass City(BaseModel):\n    name: str",
    "%%interact --schema City --chain data\nExtract the city: I moved to Paris last year.",
]


def test_finished_outputs_keep_copy_and_save_in_jupyterlab(lab: tuple[str, str]) -> None:
    """The finished answers carry Copy and Save (the package's JupyterLab extension): Copy puts the answer, its JSON
    or an image on the clipboard, Save writes full-size files under names from the prompt to save_dir through the
    kernel; the .ipynb holds each image once and no widget; once the kernel is gone, Save downloads what the
    notebook holds, and a reopened notebook shows the same actions, with no widget error."""
    from playwright.sync_api import expect, sync_playwright

    base, token = lab
    name = "actions.ipynb"
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in ACTION_CELLS],
                                        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})  # fmt: skip
    httpx.put(f"{base}/api/contents/{name}?token={token}", timeout=10,
              json={"type": "notebook", "format": "json", "content": json.loads(nbformat.writes(notebook))})  # fmt: skip

    def saved(path: str) -> dict[str, Any]:
        return httpx.get(f"{base}/api/contents/saved/{path}?token={token}&content=0", timeout=10).json()

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            context = browser.new_context(viewport={"width": 1100, "height": 1000}, accept_downloads=True,
                                          permissions=["clipboard-read", "clipboard-write"])  # fmt: skip
            page = goto_notebook(context.new_page(), base, token, name)
            run_all_cells(page)
            cells = page.locator(".jp-CodeCell")
            answer, image, data = cells.nth(2), cells.nth(4), cells.nth(6)
            expect(data.locator(".gm-ActionBar")).to_have_count(1, timeout=90_000)
            clipboard = "() => navigator.clipboard.readText()"

            # Copy: exactly the answer's text (no footer), an emoji included
            expected = eval(cells.nth(3).locator(".jp-OutputArea-output").inner_text().strip())  # noqa: S307 - our own repr
            answer.locator(".gm-Action", has_text="Copy text").click()
            expect(answer.locator(".gm-ActionStatus")).to_have_text("copied")
            assert page.evaluate(clipboard) == expected and "🌍" in expected
            data.locator(".gm-Action", has_text="Copy JSON").click()
            expect(data.locator(".gm-ActionStatus")).to_have_text("copied")
            assert json.loads(page.evaluate(clipboard)) == {"name": "Paris"}

            # Save: through the kernel, to save_dir, named after the prompt; the button does not move
            save = answer.locator(".gm-ActionBar > .gm-Action", has_text="Save answer")
            before = save.bounding_box()
            save.click()
            expect(answer.locator(".gm-ActionStatus")).to_have_text("saved to saved/say-hello-to-the-in-one.md")
            after = save.bounding_box()
            assert before and after and (after["x"], after["width"]) == (before["x"], before["width"])
            assert saved("say-hello-to-the-in-one.md")["type"] == "file"
            figures = image.locator(".gm-Figure")
            expect(figures).to_have_count(2)
            figures.nth(1).locator(".gm-Action", has_text="Save image").click()
            second = figures.nth(1).locator(".gm-ActionStatus")
            expect(second).to_have_text(re.compile(r"^saved to saved/draw-two-images-of-a-kite-2\.(png|jpg)$"))
            assert saved(second.inner_text().split("/")[-1])["mimetype"].startswith("image/")
            figures.nth(0).locator(".gm-Action", has_text="Copy image").click()
            expect(figures.nth(0).locator(".gm-ActionStatus")).to_have_text("copied")
            kinds = page.evaluate("() => navigator.clipboard.read().then(items => items.flatMap(i => i.types))")
            assert "image/png" in kinds
            image.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / "finished-actions.png"))

            # the .ipynb: each image once, the actions entry, no widget in a finished answer
            page.keyboard.press("Control+s")
            page.wait_for_function("() => !document.querySelector('.jp-mod-dirty')", timeout=30_000)
            stored = httpx.get(f"{base}/api/contents/{name}?token={token}", timeout=10).json()["content"]
            for n in (2, 4, 6):
                (output,) = [o for o in stored["cells"][n]["outputs"] if o["output_type"] in ("execute_result", "display_data")]
                assert "application/vnd.gemini-magics.actions+json" in output["data"], n
                assert "application/vnd.jupyter.widget-view+json" not in output["data"], n
            pictures = json.dumps(stored["cells"][4]["outputs"])
            embedded = re.findall(r"data:image/(?:png|jpeg);base64,([A-Za-z0-9+/=]+)", pictures)
            assert len(set(embedded)) == 2 and all(pictures.count(e) == 1 for e in embedded)

            # the kernel that made the answers is gone: Save downloads what the notebook holds, and says so
            page.locator(".lm-MenuBar-itemLabel", has_text="Kernel").first.click()
            page.locator(".lm-Menu-itemLabel", has_text="Restart Kernel…").first.click()
            page.locator(".jp-Dialog-button.jp-mod-accept").click()
            page.wait_for_function("() => /\\| Idle/.test(document.querySelector('#jp-main-statusbar')?.innerText || '')",
                                   timeout=60_000)  # fmt: skip
            with page.expect_download() as download:
                figures.nth(0).locator(".gm-Action", has_text="Save image").click()
            assert re.fullmatch(r"draw-two-images-of-a-kite-1\.(png|jpg)", download.value.suggested_filename)
            expect(figures.nth(0).locator(".gm-ActionStatus")).to_contain_text("(the kernel that made it is gone)")

            # reopened: the same actions, and nothing that fails to render
            page = goto_notebook(context.new_page(), base, token, name)
            expect(page.locator(".jp-CodeCell").nth(6).locator(".gm-Action", has_text="Copy JSON")).to_have_count(1, timeout=30_000)
            expect(page.locator(".gm-Figure")).to_have_count(2)
            expect(page.get_by_text("Error displaying widget")).to_have_count(0)
        finally:
            browser.close()
