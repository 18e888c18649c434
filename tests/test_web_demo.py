"""The browser demo at `/`, driven in real headless Chromium (Debian's /usr/bin/chromium) by
Playwright against the real server: Speak plays every sample gaplessly, Stop silences at once and
drops late audio, and a second Speak plays fully again. A screenshot goes to artifacts/.

The AudioWorklet runs on headless Chromium's real-time audio clock (no sound card needed), so
these checks see real playback timing.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from prerequisites import require_file, require_module

pytestmark = pytest.mark.slow

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")  # Debian's; `make system-deps` installs it
REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "artifacts"
DEMO_DIR = REPO / "web_demo"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
]
RATE = 24000  # not the voice's native 22050: the page must ask for it and run its AudioContext at it

SHORT = "Hello there, this is the browser demo speaking."
LONG = (
    "This is a much longer piece of text, so that there is plenty of audio left to cancel. "
    "The first sentence should start playing quickly, while the next ones are still being made. "
    "Then somebody presses the stop button in the middle of it. "
    "Everything that was queued must go silent at once. "
    "Nothing of this text may be heard after that, not even audio that was already on its way. "
    "If you can hear this sentence, the barge-in did not work."
)
THIRD = "And now a second utterance plays from start to end. It has two sentences."


@pytest.fixture(scope="module")
def browser():
    require_file(CHROMIUM, "Chromium", "`make system-deps` (apt-get install chromium)")
    sync_playwright = require_module("playwright.sync_api").sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, server):
    origin = server.http
    context = browser.new_context(viewport={"width": 1100, "height": 1000})
    foreign: list[str] = []

    def guard(route):
        # the page must not fetch anything from outside the server's own origin
        url = route.request.url
        if url.startswith(origin) or url.startswith("data:"):
            route.continue_()
        else:
            foreign.append(url)
            route.abort()

    context.route("**/*", guard)
    pg = context.new_page()
    problems: list[str] = []
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    pg.goto(origin + "/")
    pg.wait_for_function("window.demoStats && window.demoStats.ready", timeout=15_000)
    yield pg
    context.close()
    assert not foreign, f"the page fetched from other origins: {foreign}"
    assert not problems, problems


def _stats(page) -> dict:
    return page.evaluate("JSON.parse(JSON.stringify(window.demoStats))")


def _utterance(page, index: int) -> dict:
    return page.evaluate(
        f"(() => {{ const u = window.demoStats.utterances.at({index});"
        " return JSON.parse(JSON.stringify(u, (k, v) => (k === 'el' || k === 'canvas') ? undefined : v)); })()"
    )


def _last_utterance(page) -> dict:
    return _utterance(page, -1)


def _next_worklet_report(page) -> None:
    """Wait until the page applied a worklet stats message posted after this call (the worklet
    posts one at least every 40 ms of audio clock, counting its process() calls)."""
    calls = page.evaluate("window.demoStats.processCalls")
    page.wait_for_function(f"window.demoStats.processCalls > {calls}", timeout=5_000)


def _speak(page, text: str, llm: bool = False) -> None:
    """Click Speak and wait until the page has started the new utterance (its record exists)."""
    count = page.evaluate("window.demoStats.utterances.length")
    page.fill("#text", text)
    page.set_checked("#llm", llm)
    page.click("#speak")
    page.wait_for_function(f"window.demoStats.utterances.length > {count}", timeout=15_000)


def _wait_played_out(page, timeout_s: float) -> None:
    page.wait_for_function(
        """() => { const s = window.demoStats, u = s.utterances.at(-1);
                   return u && u.playedOutAt !== null; }""",
        timeout=timeout_s * 1000,
    )


def _check_full_playback(page, before: dict, text: str) -> dict:
    """One utterance played start to end: every sample the server announced arrived, went into the
    worklet and came out of it, with no gap between chunks of a sentence."""
    after = _stats(page)
    u = _last_utterance(page)
    assert u["state"] == "flushed", u["state"]
    sentences = u["sentences"]
    assert sentences, "no sentence was spoken"
    for s in sentences:
        assert s["samples"] and s["samples"] > 0, s
        assert s["receivedSamples"] == s["samples"], s
        assert isinstance(s["latencyMs"], (int, float)) and 0 <= s["latencyMs"] < 10_000, s
        assert s["cached"] in (True, False), s
    spoken = " ".join(s["text"] for s in sentences)
    assert re.sub(r"\s+", " ", spoken) == re.sub(r"\s+", " ", text.strip())
    total = sum(s["samples"] for s in sentences)
    assert total == u["sentenceEndSamples"] == u["receivedSamples"]
    received = after["samplesReceived"] - before["samplesReceived"]
    played = after["samplesPlayed"] - before["samplesPlayed"]
    assert received == total, (received, total)
    assert played == total, (played, total)
    assert after["samplesQueued"] == 0 and after["playing"] is False
    assert after["underruns"] - before["underruns"] == 0, "gap between chunks of a sentence"
    assert after["lateFramesDropped"] == before["lateFramesDropped"]
    # plausible for the text: English speech at this voice's pace is ~40-130 ms per character
    seconds = total / RATE
    per_char = seconds / len(text)
    assert 0.03 < per_char < 0.15, (seconds, len(text))
    # the worklet played on the audio clock, in real time (not drained instantly)
    wall = (u["playedOutAt"] - u["startedAt"]) / 1000
    assert wall > 0.8 * seconds, (wall, seconds)
    return {"seconds": seconds, "sentences": len(sentences), "samples": total, "wall": wall,
            "latency_ms": [s["latencyMs"] for s in sentences], "first_sound_ms": u["firstSoundMs"],
            "sentence_gaps": after["sentenceGaps"] - before["sentenceGaps"]}


def test_demo_files_are_served(server):
    with httpx.Client(base_url=server.http) as http:
        index = http.get("/")
        assert index.status_code == 200 and "text/html" in index.headers["content-type"]
        assert "web/app.js" in index.text
        for name in ("app.js", "pcm-player-worklet.js"):
            r = http.get(f"/web/{name}")
            assert r.status_code == 200, name
            assert "javascript" in r.headers["content-type"], r.headers["content-type"]
    # nothing from a CDN or the internet: no absolute http(s) URLs in the page or its scripts
    for path in DEMO_DIR.iterdir():
        urls = re.findall(r"https?://[^\s\"'`)]+", path.read_text())
        assert not urls, (path.name, urls)


WORKLET_SCRIPT = """async () => {
  const P = window.demoPlayer, S = window.demoStats;
  await P.start(24000);
  const tone = (n, pos) =>
    Float32Array.from({length: n}, (_, i) => 0.3 * Math.sin(2 * Math.PI * 440 * (pos + i) / 24000));
  const push = (seg, pos, n) => P.post({type: "push", gen: 0, seg, pos, pcm: tone(n, pos)});
  const end = (seg) => P.post({type: "end", gen: 0, seg});
  const snap = () => ({received: S.samplesReceived, played: S.samplesPlayed, queued: S.samplesQueued,
                       underruns: S.underruns, sentenceGaps: S.sentenceGaps, playing: S.playing,
                       dropped: S.samplesDropped, rejected: S.samplesRejected});
  // The worklet plays on the real-time audio clock and reports in its stats messages: each step
  // waits until those show it handled what it was given, at most `ms` (the fixed sleep it replaced).
  const until = async (what, ms, done) => {
    const deadline = performance.now() + ms;
    for (;;) {
      const lastTry = performance.now() >= deadline;
      if (done()) return;
      if (lastTry) throw new Error(`not within ${ms} ms: ${what}; worklet stats ${JSON.stringify(snap())}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const ranDry = (received) => () => S.samplesReceived >= received && S.samplesQueued === 0 && !S.playing;
  const out = {};
  P.post({type: "config", prebufferMs: 0});
  push("a", 0, 2400);
  await until("a's first chunk played out", 400, ranDry(2400)); out.dry = snap();  // ran dry, sentence still open
  push("a", 2400, 2400); end("a");
  await until("the rest of a played out", 400, ranDry(4800)); out.gap = snap();     // more of it came: 1 underrun
  push("b", 0, 2400); end("b");
  await until("b played out", 400, ranDry(7200)); out.next = snap();                // next sentence after a drain
  push("c", 0, 4800); push("c", 4800, 4800); end("c");                              // back to back: gapless
  push("d", 0, 2400); end("d");
  await until("c and d played out", 800, ranDry(19200)); out.end = snap();
  push("e", 0, 24000);
  await until("e playing", 200, () => S.samplesReceived >= 43200 && S.playing);
  P.post({type: "clear", gen: 0}); push("e", 24000, 2400);                         // stop; a late push is rejected
  await until("the Stop and the late push handled", 300,
              () => S.samplesReceived + S.samplesRejected >= 43200 + 2400 && !S.playing);
  out.stop = snap();
  return out;
}"""


def test_worklet_counts_only_gaps_inside_a_sentence(page):
    """The underrun counter, driven directly: a gap between two chunks of one sentence counts;
    running dry at a sentence end, between sentences, at the end or at a Stop does not."""
    r = page.evaluate(WORKLET_SCRIPT)
    assert r["dry"] == {**r["dry"], "received": 2400, "played": 2400, "underruns": 0, "playing": False}
    assert r["gap"]["underruns"] == 1 and r["gap"]["played"] == 4800
    assert r["next"]["underruns"] == 1 and r["next"]["sentenceGaps"] == 1
    assert r["end"]["underruns"] == 1 and r["end"]["sentenceGaps"] == 2  # "c" came after "b" drained
    assert r["end"]["played"] == r["end"]["received"] == 19200 and r["end"]["queued"] == 0
    stop = r["stop"]
    assert stop["underruns"] == 1 and stop["playing"] is False and stop["queued"] == 0
    assert stop["rejected"] == 2400 and stop["dropped"] > 0
    assert stop["played"] + stop["dropped"] == stop["received"] == 19200 + 24000


def test_speak_stop_speak_in_chromium(page, server):
    t_start = time.perf_counter()
    timings: dict[str, float] = {}
    page.select_option("#rate", str(RATE))

    # 1. Speak: everything plays, gaplessly
    before = _stats(page)
    _speak(page, SHORT)
    _wait_played_out(page, 30)
    first = _check_full_playback(page, before, SHORT)
    stats = _stats(page)
    assert stats["audioSampleRate"] == RATE
    assert stats["session"]["sample_rate"] == RATE and stats["session"]["format"] == "pcm_f32le"
    session_id = stats["session"]["session_id"]
    timings["speak 1"] = time.perf_counter() - t_start

    # 2. a longer text, streamed word by word; Stop right after its first audio
    t = time.perf_counter()
    before_long = _stats(page)
    _speak(page, LONG, llm=True)
    page.wait_for_function("window.demoStats.utterances.at(-1).receivedSamples > 0", timeout=30_000)
    page.wait_for_function("window.demoStats.playing", timeout=10_000)
    page.click("#stop")
    page.wait_for_function("window.demoStats.utterances.at(-1).stopAck !== null", timeout=5_000)
    stopped = _last_utterance(page)
    ack = stopped["stopAck"]
    # silent at once: the worklet emptied its queue and stopped in the same message turn
    assert ack["queued"] == 0 and ack["playing"] is False, ack
    assert ack["afterMs"] < 500, ack
    page.wait_for_function("window.demoStats.utterances.at(-1).state === 'cancelled'", timeout=10_000)
    # The worklet reports the Stop's silence (queue, level meter) in its next stats message.
    _next_worklet_report(page)
    s2 = _stats(page)
    u2 = _last_utterance(page)
    assert s2["samplesReceived"] == ack["received"], "the worklet accepted audio after Stop"
    assert s2["samplesPlayed"] == ack["played"], "audio played after Stop"
    assert s2["samplesQueued"] == 0 and s2["playing"] is False
    assert s2["lastLevel"] == 0
    assert u2["receivedSamples"] == stopped["receivedSamples"], "audio of the stopped context accepted"
    finished = [x for x in u2["sentences"] if x["samples"] is not None]
    assert len(finished) < 6, "Stop came too late to cut anything short"
    assert s2["underruns"] == before["underruns"], "Stop must not count as an underrun"
    cut = {"heard_s": round((ack["played"] - before_long["samplesPlayed"]) / RATE, 2),
           "dropped": ack["dropped"], "late_samples": u2["lateSamplesDropped"],
           "ack_ms": round(ack["afterMs"], 1),
           "cancelled_ms": round(u2["cancelledAt"] - u2["stopClickedAt"], 1)}
    timings["stop"] = time.perf_counter() - t

    # 3. a second Speak on the same connection plays fully. It is also the barrier for late
    # audio of the stopped context: the server sends the sentences of a session in order, so
    # whatever it could still send for the stopped context arrives before this utterance's audio.
    # Counting from s2 (right after `cancelled`), nothing may have arrived but this utterance's.
    t = time.perf_counter()
    _speak(page, THIRD)
    _wait_played_out(page, 30)
    third = _check_full_playback(page, s2, THIRD)
    assert _stats(page)["session"]["session_id"] == session_id, "the WebSocket was not reused"
    stopped_after = _utterance(page, -2)
    assert stopped_after["contextId"] == u2["contextId"]
    assert stopped_after["receivedSamples"] == stopped["receivedSamples"], "audio of the stopped context accepted"
    assert stopped_after["lateSamplesDropped"] == u2["lateSamplesDropped"], "stopped context's audio after `cancelled`"
    timings["speak 2"] = time.perf_counter() - t

    # the meter is drawn in a requestAnimationFrame callback: two frames on, the last one painted
    page.evaluate("() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "web_demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert urlsplit(page.url).netloc == urlsplit(server.http).netloc
    print(f"\nweb demo screenshot: {shot}")
    print(f"speak 1: {first}")
    print(f"stop: {cut}")
    print(f"speak 2: {third}")
    print("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in timings.items()))


def test_the_page_passes_its_token_to_a_server_with_keys(browser, keyed_server):
    """With API keys set the page stays reachable; opened as /?token=KEY it sends the key with its
    voices request and its WebSocket (which cannot carry headers) and speaks; without a key, or
    with a wrong one, it says what is missing."""
    from conftest import KEYS

    context = browser.new_context()
    try:
        pg = context.new_page()
        for query, says in (("", "needs an API key"), ("?token=wrong", "not accepted")):
            pg.goto(f"{keyed_server.http}/{query}")
            pg.wait_for_function("window.demoStats && window.demoStats.errors.length > 0", timeout=15_000)
            assert says in pg.text_content("#status")
        pg.goto(f"{keyed_server.http}/?token={KEYS[1]}")
        pg.wait_for_function("window.demoStats && window.demoStats.ready", timeout=15_000)
        _speak(pg, "Hello with a key.")
        _wait_played_out(pg, 30)
        u = _last_utterance(pg)
        assert u["state"] == "flushed" and u["receivedSamples"] > 0
        assert _stats(pg)["errors"] == []
    finally:
        context.close()
