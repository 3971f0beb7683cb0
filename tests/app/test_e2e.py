"""The web app end to end: a real server, the real page, headless Chromium (Debian's, through Playwright).

Skipped when Playwright or a Chromium is missing (``make setup`` installs both where it can;
no browser is ever downloaded). Screenshots go to ``$KELLY_SCREENSHOTS`` when set, else the
test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
sync_api = pytest.importorskip("playwright.sync_api")

CHROMIUM = os.environ.get("KELLY_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(not CHROMIUM, reason="no Chromium (Debian's chromium package)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    from kelly.app.server import create_app

    port = _free_port()
    folder = tmp_path_factory.mktemp("app")
    app = create_app(folder, engine_socket=str(folder / "no-engine.sock"))  # never a developer's running engine
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "the server did not start"
    yield f"http://127.0.0.1:{port}/"
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("KELLY_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def page(server):
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.goto(server)
        pg.wait_for_function("document.body.dataset.state === 'ready'")
        yield pg
        browser.close()
        assert not errors, f"the page raised: {errors}"


def _wait_composed(pg, before: str | None) -> str:
    import json

    pg.wait_for_function(f"document.body.dataset.composition && document.body.dataset.composition !== "
                         f"{json.dumps(before)} && document.body.dataset.state === 'ready'", timeout=60_000)
    return pg.evaluate("document.body.dataset.composition")


def _ink(pg, testid: str) -> int:
    """How many pixels of a canvas are drawn (not the background)."""
    return pg.evaluate(f"""() => {{
        const c = document.querySelector('[data-testid="{testid}"]');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        const bg = [d[0], d[1], d[2]]; let n = 0;
        for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - bg[0]) + Math.abs(d[i+1] - bg[1]) + Math.abs(d[i+2] - bg[2]) > 30) n++;
        return n; }}""")


def test_type_compose_see_play_download(page, server, shots):
    from kelly.song import read_midi_bytes

    pg = page
    pg.get_by_test_id("text-input").fill("I feel grief, but I'm starting to hope")
    pg.get_by_test_id("bars").fill("8")
    pg.get_by_test_id("compose-button").click()
    cid = _wait_composed(pg, None)
    assert len(cid) == 32
    assert "hope" in pg.get_by_test_id("emotion-card").inner_text().lower() or \
        "grief" in pg.get_by_test_id("emotion-card").inner_text().lower()
    assert _ink(pg, "roll-canvas") > 2000, "the piano roll is empty"
    pg.screenshot(path=str(shots / "compose.png"), full_page=True)
    href = pg.get_by_test_id("download-mid").get_attribute("href")
    song = read_midi_bytes(pg.request.get(server.rstrip("/") + href if href.startswith("/") else href).body())
    assert sum(len(t.notes) for t in song.tracks) > 50

    from kelly.render.audio import SoundfontError, find_soundfont, synth_available

    try:
        find_soundfont()
        playable = synth_available()
    except SoundfontError:
        playable = False
    if playable:
        pg.evaluate("document.querySelector('[data-testid=audio]').play().catch(() => {})")
        pg.wait_for_function("['ready', 'error'].includes(document.querySelector('[data-testid=audio]').dataset.state)",
                             timeout=60_000)
        assert pg.get_by_test_id("audio").get_attribute("data-state") == "ready"


def test_drag_the_pad_and_compose(page, shots):
    pg = page
    before = pg.evaluate("document.body.dataset.composition || null")
    pg.get_by_test_id("text-input").fill("")
    pad = pg.get_by_test_id("va-pad")
    box = pad.bounding_box()
    pg.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.1, steps=8)
    pg.mouse.up()
    v, a = float(pad.get_attribute("data-valence")), float(pad.get_attribute("data-arousal"))
    assert v < -0.5 and a > 0.8, (v, a)
    pg.get_by_test_id("bars").fill("4")
    pg.get_by_test_id("compose-button").click()
    _wait_composed(pg, before)
    card = pg.get_by_test_id("emotion-card").inner_text().lower()
    assert card
    pg.screenshot(path=str(shots / "pad.png"), full_page=True)
    # the keyboard moves the pad too
    pad.focus()
    pad.press("ArrowRight")
    assert float(pad.get_attribute("data-valence")) == pytest.approx(v + 0.05, abs=0.011)


def test_library_keeps_and_rates(page, shots):
    pg = page
    pg.locator("#tab-library").click()
    pg.wait_for_function("document.body.dataset.state === 'ready'")
    items = pg.get_by_test_id("library-list").locator("li.lib-item")
    assert items.count() >= 2
    items.first.get_by_label("Rate 4 of 5").click()
    pg.wait_for_function("document.body.dataset.state === 'ready'")
    pg.screenshot(path=str(shots / "library.png"), full_page=True)


def test_start_a_tiny_training_run_and_watch_it_advance(page, shots):
    pg = page
    pg.locator("#tab-training").click()
    pg.wait_for_function("document.body.dataset.state === 'ready'")
    pg.get_by_test_id("train-model").select_option("dynamicsengine")
    pg.get_by_test_id("train-data").select_option("synthetic")
    pg.get_by_test_id("train-epochs").fill("4")
    pg.get_by_test_id("train-start").click()
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = pg.evaluate("document.body.dataset.training || ''")
        seen.add(pg.evaluate("document.body.dataset.trainingEpoch || ''"))
        if status in ("finished", "failed", "cancelled"):
            break
        time.sleep(0.05)
    assert pg.evaluate("document.body.dataset.training") == "finished", pg.get_by_test_id("train-status").inner_text()
    assert pg.evaluate("document.body.dataset.trainingEpoch") == "4"
    assert len(seen - {""}) >= 2, f"the page showed no progress between start and finish: {seen}"
    assert pg.get_by_test_id("train-progress").get_attribute("value") == "4"
    assert _ink(pg, "train-curve") > 500, "no loss curve"
    pg.screenshot(path=str(shots / "training.png"), full_page=True)


def test_models_validate_in_the_page(page):
    pg = page
    pg.locator("#tab-models").click()
    pg.wait_for_function("document.body.dataset.state === 'ready'")
    row = pg.locator("tr[data-model='DDSP voice']")
    row.get_by_test_id("model-validate").click()
    pg.wait_for_function("document.querySelector(\"tr[data-model='DDSP voice'] [data-testid=model-check]\")"
                         ".dataset.ok !== undefined", timeout=30_000)
    assert row.get_by_test_id("model-check").get_attribute("data-ok") == "true"
    assert row.get_by_test_id("model-export").get_attribute("href").endswith("/api/models/ddsp/export")


def test_live_tab_says_when_no_engine_is_running(page):
    pg = page
    pg.locator("#tab-live").click()
    pg.get_by_test_id("live-connect").click()
    pg.wait_for_function("document.body.dataset.live === 'disconnected'", timeout=15_000)
    assert "kelly engine" in pg.get_by_test_id("panel-live").inner_text()
