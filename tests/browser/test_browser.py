"""The attention explorer in a real browser: JupyterLab + headless Chromium driven by Playwright.

Starts an isolated JupyterLab (its own HOME / JUPYTER_* / IPYTHONDIR in a temporary folder, a free port,
a random token) on tests/fixtures/explorer_demo.ipynb, runs all cells through the Run menu and checks:
the heatmaps and the controls render; moving the layer slider with the keyboard redraws the head view
with different data; clicking a tile of the model view opens that head; typing a new sentence re-runs
the model; and no request left localhost. Screenshots go to test-artifacts/browser/ (git-ignored).

Needs /usr/bin/chromium (`apt-get install -y chromium chromium-driver`; `.ci/run` installs it) and the
`playwright` Python package (never `playwright install`: we drive the system Chromium).
COURSE_CHROMIUM overrides the browser path; COURSE_EXPLORER_DEMO=random forces the random tiny model.
"""
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(420)]

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("COURSE_CHROMIUM", "/usr/bin/chromium")
NOTEBOOK = REPO / "tests" / "fixtures" / "explorer_demo.ipynb"
ARTIFACTS = REPO / "test-artifacts" / "browser"
CHROME_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync"]
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolated_env(root: Path) -> dict:
    env = dict(os.environ)
    dirs = {"HOME": root / "home", "JUPYTER_CONFIG_DIR": root / "jupyter-config", "JUPYTER_DATA_DIR": root / "jupyter-data",
            "JUPYTER_RUNTIME_DIR": root / "jupyter-runtime", "IPYTHONDIR": root / "ipython"}
    for name, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[name] = str(path)
    # no "Jupyter news" pop-up, no update check (both would also try to reach the internet)
    settings = dirs["JUPYTER_CONFIG_DIR"] / "lab" / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    (settings / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYDEVD_DISABLE_FILE_VALIDATION="1")
    env.pop("JUPYTER_PATH", None)
    return env


def _wait_for_server(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"JupyterLab exited with code {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"JupyterLab did not answer within {timeout} s:\n{log.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen):
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its kernels (own session)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


# JavaScript run in the page: what the n-th plotly figure draws (0 head view, 1 model view, 2 query/key view)
FIGURE_STATE = """(i) => {
  const gd = document.querySelectorAll('.js-plotly-plot')[i];
  if (!gd || !gd._fullData || !gd._fullData.length || !gd.layout) return null;
  const t = gd._fullData[0];  // after plotly.js decoded the typed arrays
  const ticks = (ax) => (gd.layout[ax] && gd.layout[ax].ticktext) ? Array.from(gd.layout[ax].ticktext) : [];
  return {title: (gd.layout.title && gd.layout.title.text) || '', x: Array.from(t.x || []),
          xticks: ticks('xaxis'), yticks: ticks('yaxis'),
          z: (t.z || []).map(r => Array.from(r)), w: gd.getBoundingClientRect().width,
          h: gd.getBoundingClientRect().height};
}"""


def _head_view_where(condition: str) -> str:
    """A JavaScript expression, true once the head view's state `s` satisfies `condition`."""
    return "(() => { const s = (" + FIGURE_STATE + ")(0); return !!s && (" + condition + "); })()"


def _browser_prerequisites():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"browser test skipped: Chromium not found at {CHROMIUM}. Install it with "
                    "`apt-get install -y chromium chromium-driver` (.ci/run does) or set COURSE_CHROMIUM.")
    return pytest.importorskip("playwright.sync_api", reason="browser test skipped: the playwright package is "
                               "not installed (pip install -e .[dev])")


def _in_jupyterlab(tmp_path, notebook: Path, drive):
    """Start an isolated JupyterLab on a copy of `notebook` and call drive(url of the notebook)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = _isolated_env(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(notebook, work / notebook.name)
    port, token = _free_port(), os.urandom(16).hex()
    log = ARTIFACTS / f"jupyterlab-{notebook.stem}.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip", "127.0.0.1", "--port", str(port),
             f"--IdentityProvider.token={token}", "--allow-root", f"--ServerApp.root_dir={work}",
             "--ServerApp.port_retries=0"],
            cwd=work, env=env, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        _wait_for_server(f"{base}/api/status?token={token}", proc, log)
        drive(f"{base}/lab/tree/{notebook.name}?token={token}")
    finally:
        _stop(proc)


def test_attention_explorer_in_jupyterlab(tmp_path):
    sync_api = _browser_prerequisites()
    _in_jupyterlab(tmp_path, NOTEBOOK, lambda url: _drive_browser(sync_api, tmp_path, url))


@contextlib.contextmanager
def _lab_page(sync_api, tmp_path: Path, url: str, name: str, outside: list, sockets: list | None = None):
    """A headless Chromium page on the notebook at `url`, every cell run (Run -> Run All Cells), where any request
    that leaves localhost is recorded in `outside` and refused; on failure a screenshot and the page's HTML go to
    ARTIFACTS/<name>_failure.*, and the browser console always to ARTIFACTS/<name>_console.log."""
    console: list[str] = []

    def guard(route):
        u = urlparse(route.request.url)
        if u.scheme in ("data", "blob") or u.hostname in LOCAL_HOSTS:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_api.sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=CHROMIUM, headless=True, args=CHROME_ARGS,
            viewport={"width": 1400, "height": 1500}, device_scale_factor=1)
        page = None
        try:
            ctx.route("**/*", guard)
            page = ctx.new_page()
            if sockets is not None:
                page.on("websocket", lambda ws: sockets.append(ws.url))
            page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
            page.goto(url, wait_until="domcontentloaded", timeout=120_000)
            page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=120_000)
            # wait for the kernel (Run All before it is connected opens a "Select Kernel" dialog)
            page.wait_for_selector(".jp-StatusBar-Widget:has-text('Idle')", timeout=120_000)
            page.locator(".lm-MenuBar-item", has_text="Run").first.click()
            page.locator(".lm-Menu-item[data-command='runmenu:run-all'], "
                         ".lm-Menu-item[data-command='notebook:run-all-cells']").first.click()
            dialog = page.locator(".jp-Dialog .jp-mod-accept")
            try:  # still asked to pick a kernel: take the default (Python 3)
                dialog.wait_for(timeout=3_000)
                dialog.click()
            except sync_api.TimeoutError:
                pass
            yield page
        except Exception:
            try:
                page.screenshot(path=str(ARTIFACTS / f"{name}_failure.png"))
                (ARTIFACTS / f"{name}_failure.html").write_text(page.content())
            except Exception:  # noqa: BLE001 - keep the original error
                pass
            raise
        finally:
            (ARTIFACTS / f"{name}_console.log").write_text("\n".join(console))
            ctx.close()


def _drive_browser(sync_api, tmp_path: Path, url: str):
    outside: list[str] = []
    sockets: list[str] = []
    with _lab_page(sync_api, tmp_path, url, "explorer", outside, sockets) as page:
        page.wait_for_function("document.querySelectorAll('.js-plotly-plot').length >= 3", timeout=180_000)
        page.wait_for_selector(".widget-slider", state="visible", timeout=60_000)
        page.wait_for_function(_head_view_where("s.title.includes('layer 0, head 0') && s.z.length > 3"),
                               timeout=60_000)
        explorer = page.locator(".widget-vbox", has=page.locator(".js-plotly-plot")).first
        explorer.scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # let plotly finish drawing before the screenshot
        explorer.screenshot(path=str(ARTIFACTS / "explorer_initial.png"))
        page.screenshot(path=str(ARTIFACTS / "lab_initial.png"))

        # the heatmaps and the controls are drawn
        assert page.locator(".js-plotly-plot .hm, .js-plotly-plot .heatmaplayer image").count() >= 2, \
            "no heatmap image was drawn"
        assert page.locator(".widget-slider").count() >= 2
        assert page.locator(".widget-text input").count() >= 2
        assert page.locator(".widget-dropdown select").count() >= 1
        assert page.locator(".widget-checkbox input").count() >= 2
        head0, qk0 = page.evaluate(FIGURE_STATE, 0), page.evaluate(FIGURE_STATE, 2)
        assert head0["w"] > 300 and head0["h"] > 300, f"head view is too small: {head0['w']}x{head0['h']}"
        assert len(head0["z"]) == len(head0["x"]) > 3
        assert all(abs(sum(r) - 1) < 1e-3 for r in head0["z"]), "head view rows must be probabilities"
        assert qk0 and len(qk0["x"]) == len(head0["x"])

        # change the layer through the UI: focus the layer slider's handle, press →
        handle = page.locator(".widget-slider").first.locator(".noUi-handle")
        handle.focus()
        page.keyboard.press("ArrowRight")
        page.wait_for_function(_head_view_where("s.title.includes('layer 1')"), timeout=60_000)
        head1 = page.evaluate(FIGURE_STATE, 0)
        assert head1["z"] != head0["z"], "changing the layer did not change the drawn attention"
        assert head1["x"] == head0["x"]
        page.wait_for_timeout(300)
        explorer.screenshot(path=str(ARTIFACTS / "explorer_layer1.png"))

        # click a tile of the model view (layer 0, last head) -> the head view shows that head
        model = page.evaluate(FIGURE_STATE, 1)
        n_heads, n_layers = len(model["xticks"]), len(model["yticks"])
        tile = len(model["x"]) // n_heads
        assert n_heads >= 2 and len(model["z"]) == n_layers * tile, "model view grid has an unexpected shape"
        box = page.locator(".js-plotly-plot").nth(1).locator(".nsewdrag").first.bounding_box()
        col, row = (n_heads - 1) * tile + tile // 2, tile // 2
        page.mouse.click(box["x"] + (col + 0.5) / len(model["x"]) * box["width"],
                         box["y"] + (row + 0.5) / len(model["z"]) * box["height"])
        page.wait_for_function(_head_view_where(f"s.title.includes('layer 0, head {n_heads - 1}')"),
                               timeout=60_000)

        # type a new sentence: the model re-runs and the axes show the new tokens
        box_a = page.locator(".widget-text input").first
        box_a.fill("a dog ran over the house")
        box_a.press("Enter")
        page.wait_for_function(_head_view_where("s.x.some(t => t.startsWith('dog'))"), timeout=60_000)
        page.wait_for_timeout(300)
        explorer.screenshot(path=str(ARTIFACTS / "explorer_new_text.png"))

        # the options: hide [CLS]/[SEP], average over heads
        page.locator(".widget-checkbox", has_text="hide [CLS]/[SEP]").locator("input").check()
        page.wait_for_function(_head_view_where("s.x.length > 0 && !s.x.some(t => t.startsWith('[CLS]'))"),
                               timeout=60_000)
        page.locator(".widget-checkbox", has_text="average over heads").locator("input").check()
        page.wait_for_function(_head_view_where("s.title.includes('average')"), timeout=60_000)
        page.wait_for_timeout(300)
        explorer.screenshot(path=str(ARTIFACTS / "explorer_options.png"))

        # an empty sentence shows a message, not a traceback
        box_a.fill("")
        box_a.press("Enter")
        page.wait_for_selector("text=The sentence is empty", timeout=60_000)
        assert page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']").count() == 0
        assert page.locator("text=Traceback").count() == 0
        explorer.screenshot(path=str(ARTIFACTS / "explorer_empty_text.png"))
    assert not outside, f"the page tried to load from outside localhost: {outside[:10]}"
    bad_sockets = [s for s in sockets if urlparse(s).hostname not in LOCAL_HOSTS]
    assert not bad_sockets, f"websockets outside localhost: {bad_sockets}"


# --- the next-token explorer (chapter 7) --------------------------------------------------------------------------
NEXT_TOKEN_NOTEBOOK = REPO / "tests" / "fixtures" / "next_token_demo.ipynb"
BAR_STATE = """() => {
  const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd._fullData || !gd._fullData.length || !gd.layout) return null;
  const t = gd._fullData[0];
  return {title: (gd.layout.title && gd.layout.title.text) || '', x: Array.from(t.x || []),
          y: Array.from(t.y || []), colors: Array.from((t.marker && t.marker.color) || [])};
}"""


def _bars_where(condition: str) -> str:
    return "(() => { const s = (" + BAR_STATE + ")(); return !!s && (" + condition + "); })()"


def test_next_token_explorer_in_jupyterlab(tmp_path):
    """The next-token explorer in JupyterLab: the bar chart renders; the temperature slider (keyboard) and the
    top-k slider restyle it; a token button and a click on a bar append that token to the prompt; an empty prompt
    shows a message, not a traceback; nothing is loaded from outside localhost."""
    sync_api = _browser_prerequisites()
    _in_jupyterlab(tmp_path, NEXT_TOKEN_NOTEBOOK, lambda url: _drive_next_token(sync_api, tmp_path, url))


def _drive_next_token(sync_api, tmp_path: Path, url: str):
    outside: list[str] = []
    with _lab_page(sync_api, tmp_path, url, "next_token", outside) as page:
        page.wait_for_function(_bars_where("s.x.length >= 5 && s.title.includes('top-p 0.9')"), timeout=180_000)
        explorer = page.locator(".widget-vbox", has=page.locator(".js-plotly-plot")).first
        explorer.scroll_into_view_if_needed()
        page.wait_for_timeout(500)
        explorer.screenshot(path=str(ARTIFACTS / "next_token_initial.png"))
        first = page.evaluate(BAR_STATE)
        assert all(0 <= v <= 1 for v in first["x"]), "bar lengths must be probabilities"
        assert page.locator(".widget-slider").count() >= 3
        prompt_box = page.locator(".widget-textarea textarea").first
        prompt0 = prompt_box.input_value()

        # the temperature slider, through the keyboard: the title and the probabilities change
        handle = page.locator(".widget-slider").first.locator(".noUi-handle")
        handle.focus()
        for _ in range(6):
            page.keyboard.press("ArrowRight")
        page.wait_for_function(_bars_where(f"s.title !== {json.dumps(first['title'])}"), timeout=60_000)
        hotter = page.evaluate(BAR_STATE)
        assert hotter["x"] != first["x"], "changing the temperature did not change the drawn probabilities"

        # top-k down to 1 with the keyboard (Home = the minimum, 0 = off; one step right = k 1): grey bars appear
        handle_k = page.locator(".widget-slider").nth(1).locator(".noUi-handle")
        handle_k.focus()
        page.keyboard.press("Home")
        page.keyboard.press("ArrowRight")
        page.wait_for_function(_bars_where("s.title.includes('top-k 1,') && s.title.includes('1 tokens kept')"),
                               timeout=60_000)
        cut = page.evaluate(BAR_STATE)
        assert len(set(cut["colors"])) == 2, "with top-k 1 the cut tokens should be drawn in another colour"
        page.wait_for_timeout(300)
        explorer.screenshot(path=str(ARTIFACTS / "next_token_top_k.png"))

        # a token button appends its token to the prompt
        page.locator(".widget-button", has_text="+").first.click()
        page.wait_for_function(f"document.querySelector('.widget-textarea textarea').value !== {json.dumps(prompt0)}",
                               timeout=60_000)
        prompt1 = prompt_box.input_value()
        assert prompt1.startswith(prompt0) and len(prompt1) > len(prompt0)

        # a click on the first bar appends too
        bar = page.locator(".js-plotly-plot .bars .point path").first
        bar.click(force=True)  # plotly takes clicks on its drag layer, which lies over the bars
        page.wait_for_function(f"document.querySelector('.widget-textarea textarea').value !== {json.dumps(prompt1)}",
                               timeout=60_000)
        assert prompt_box.input_value().startswith(prompt1)
        explorer.screenshot(path=str(ARTIFACTS / "next_token_appended.png"))

        # an empty prompt: a message, not a traceback
        prompt_box.fill("")
        prompt_box.blur()
        page.wait_for_selector("text=The prompt is empty", timeout=60_000)
        assert page.locator("text=Traceback").count() == 0
    assert not outside, f"the page tried to load from outside localhost: {outside[:10]}"
