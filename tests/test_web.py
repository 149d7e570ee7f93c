"""The web page in a real browser: Debian's Chromium driven by Playwright, a WAV file as the
microphone (Chromium's fake capture device), against `voiceflow serve` on loopback."""

from __future__ import annotations

import subprocess
import time
import wave
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.conftest import DATA, ROOT, SERVER_KEY

pytestmark = pytest.mark.slow
CHROMIUM = Path("/usr/lib/chromium/chromium")
SHOTS = ROOT / "out" / "screenshots"  # kept after the run (.gitignore keeps /out/ out)
SAY = "Generate a painting of a lighthouse at dawn."


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium, started once; its microphone says SAY, again and again. Module scope:
    Playwright's sync API keeps an event loop running, so it must close before other
    modules call asyncio.run()."""
    if not CHROMIUM.is_file():
        pytest.fail(f"{CHROMIUM} is missing (scripts/setup.sh installs Debian's chromium)")
    folder = tmp_path_factory.mktemp("mic")
    said, wav = folder / "said.wav", folder / "command.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "130", "-w", str(said), SAY], check=True)
    with wave.open(str(said)) as r, wave.open(str(wav), "wb") as w:
        w.setparams(r.getparams())  # the command, then 4 s of silence before it repeats
        w.writeframes(
            r.readframes(r.getnframes()) + b"\0" * r.getsampwidth() * 4 * r.getframerate()
        )
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--use-fake-ui-for-media-stream",
                "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={wav}",
                "--autoplay-policy=no-user-gesture-required",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def page(browser, voiceflow_server):
    context = browser.new_context()
    context.grant_permissions(["microphone"], origin=voiceflow_server.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(voiceflow_server.url)
    yield page
    context.close()
    assert not errors, errors  # no script error, whatever the test did


def wait_until(page, script: str, timeout_s: float = 30) -> None:
    """Poll ``script`` in the page (wait_for_function evaluates strings, which the page's
    Content-Security-Policy rightly forbids)."""
    deadline = time.monotonic() + timeout_s
    while not page.evaluate(script):
        assert time.monotonic() < deadline, f"timed out waiting for {script}"
        page.wait_for_timeout(100)


def unlock(page) -> None:
    """The server has an API key: the page asks for it."""
    page.wait_for_selector("#key-box:not([hidden])")
    page.fill("#key", SERVER_KEY)
    page.dispatch_event("#key", "change")
    wait_until(page, "document.getElementById('graph').textContent.includes('speech')")


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def test_page_shows_the_graph_and_its_plugins(page):
    unlock(page)
    graph = page.text_content("#graph")
    assert "paint (image.generate)" in graph and "archive" in graph
    csp = page.evaluate("fetch('/').then(r => r.headers.get('content-security-policy'))")
    assert "script-src 'self'" in csp
    shot(page, "graph")


def test_spoken_painting_command_shows_the_image(page):
    unlock(page)
    page.click("#record")
    page.wait_for_selector("#state.listening")
    page.wait_for_timeout(4500)  # the command takes about 3 s to say
    page.click("#record")
    page.wait_for_selector("li[data-type=ImageResult] img", timeout=240_000)
    command = page.text_content("li[data-type=Command]")
    assert "paint" in command and "lighthouse" in command.lower().replace(
        "light house", "lighthouse"
    )
    width = page.eval_on_selector("li[data-type=ImageResult] img", "i => i.naturalWidth")
    assert width == 64  # the tiny pipeline's picture, loaded from the server
    shot(page, "painting")


def test_uploaded_spanish_clip_shows_es_and_subtitles(page):
    unlock(page)
    page.set_input_files("#files", str(DATA / "fleurs" / "fleurs-es-000.ogg"))
    page.check("#translate")
    page.click("#upload-form button")
    page.wait_for_selector("#transcripts .translation", timeout=240_000)
    item = page.locator("#transcripts li").first
    assert item.locator(".lang").text_content() == "es"
    reference = (DATA / "fleurs" / "fleurs-es-000.txt").read_text().split()[:3]
    assert reference[0].lower().strip(",.") in item.text_content().lower()
    names = item.locator("a").evaluate_all("links => links.map(a => a.download)")
    assert names == ["fleurs-es-000.es.srt", "fleurs-es-000.es.vtt"]
    shot(page, "upload")


def test_question_answer_citation_plays_its_span(page):
    unlock(page)
    page.fill("#question", "What can you do for your country?")
    page.click("#ask-form button")
    page.wait_for_selector("#answer .cite", timeout=120_000)
    cite = page.locator("#answer .cite").first
    assert "jfk.flac" in cite.text_content()
    cite.click()
    wait_until(page, "document.getElementById('player').currentTime > 0.5")
    src = page.get_attribute("#player", "src")
    assert "#t=" in src
    shot(page, "answer")


def test_word_statistics_chart_has_bars(page):
    unlock(page)
    page.fill("#phrase", "country")
    page.click("#stats-form button")
    page.wait_for_selector("#chart .bar")
    assert '"country": 2 times' in page.text_content("#stats-total")
    assert page.locator("#chart .row").count() == 1
    shot(page, "stats")


def test_markup_in_a_transcript_is_shown_as_text(page):
    unlock(page)
    evil = '<img src=x onerror="window.pwned=1"><script>window.pwned=1</script>'
    page.fill("#typed", evil)
    page.click("#type-form button")
    page.wait_for_selector("li[data-type=Transcript]")
    assert evil in page.text_content("li[data-type=Transcript]")
    assert page.evaluate("window.pwned") is None
    assert page.locator("#results img").count() == 0
