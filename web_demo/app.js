// Browser demo of the native streaming protocol (docs/protocol.md). Plain JS, no build step,
// nothing loaded from outside the server's own origin.
//
// window.demoStats (for tests and curious people) holds:
//   samplesReceived / samplesPlayed / samplesQueued / underruns / playing ... the AudioWorklet's
//   counters (see pcm-player-worklet.js), summed over every AudioContext this page created;
//   sentenceEndSamples  sum of sentence_end.samples of all accepted sentences;
//   lateFramesDropped / lateSamplesDropped  audio of a stopped utterance that arrived after Stop;
//   utterances  one record per Speak (context_id, state, sentences with latency/cached/samples).
(() => {
  "use strict";

  const SCRIPT_URL = document.currentScript.src;
  const ROOT = new URL("..", SCRIPT_URL); // app.js lives at <root>/web/app.js
  const WORKLET_URL = new URL("pcm-player-worklet.js", SCRIPT_URL).href;
  // The API key when the server asks for one: open the page as /?token=KEY. A browser cannot set
  // WebSocket headers, so the socket carries it as ?token= too; it goes to this server only.
  const TOKEN = new URLSearchParams(location.search).get("token");

  const $ = (id) => document.getElementById(id);
  const ui = {
    text: $("text"), llm: $("llm"), voice: $("voice"), rate: $("rate"), prebuffer: $("prebuffer"),
    speak: $("speak"), stop: $("stop"), status: $("status"), conn: $("conn"),
    sentences: $("sentences"), meter: $("meter"),
  };

  const WORKLET_COUNTERS = [
    "received", "played", "dropped", "rejected", "underruns", "sentenceGaps", "processCalls",
  ];
  const stats = (window.demoStats = {
    ready: false,
    connection: "closed",
    session: null, // the last `ready` message
    audioSampleRate: null, // the AudioContext's actual rate
    samplesReceived: 0, samplesPlayed: 0, samplesQueued: 0, samplesDropped: 0,
    samplesRejected: 0, underruns: 0, sentenceGaps: 0, processCalls: 0, playing: false,
    framesReceived: 0, samplesAccepted: 0, sentenceEndSamples: 0,
    lateFramesDropped: 0, lateSamplesDropped: 0,
    utterances: [],
    errors: [],
    lastLevel: 0,
  });

  // ---------------------------------------------------------------- audio (AudioWorklet)
  let audio = null; // {ctx, node, rate}
  const counterBase = Object.fromEntries(WORKLET_COUNTERS.map((k) => [k, 0]));
  let lastWorklet = null; // last stats posted by the current worklet

  async function ensureAudio(rate) {
    if (audio && audio.rate === rate) {
      if (audio.ctx.state !== "running") await audio.ctx.resume();
      return audio;
    }
    if (audio) {
      // a new rate needs a new AudioContext; keep the counters cumulative
      if (lastWorklet) for (const k of WORKLET_COUNTERS) counterBase[k] += lastWorklet[k];
      lastWorklet = null;
      audio.node.port.onmessage = null;
      audio.ctx.close();
      audio = null;
    }
    const ctx = new AudioContext({ sampleRate: rate, latencyHint: "interactive" });
    const resumed = ctx.resume(); // inside the click handler: allowed to start
    await ctx.audioWorklet.addModule(WORKLET_URL);
    const node = new AudioWorkletNode(ctx, "pcm-player", {
      numberOfInputs: 0,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: { prebufferMs: prebufferMs() },
    });
    node.connect(ctx.destination);
    node.port.onmessage = (e) => onWorkletMessage(e.data);
    await resumed;
    audio = { ctx, node, rate };
    stats.audioSampleRate = ctx.sampleRate;
    $("s-rate").textContent = `${ctx.sampleRate} Hz`;
    return audio;
  }

  function prebufferMs() {
    const v = Number(ui.prebuffer.value);
    return Number.isFinite(v) && v >= 0 ? v : 250;
  }

  function post(msg, transfer) {
    if (audio) audio.node.port.postMessage(msg, transfer || []);
  }

  function applyWorkletStats(s) {
    lastWorklet = s;
    stats.samplesReceived = counterBase.received + s.received;
    stats.samplesPlayed = counterBase.played + s.played;
    stats.samplesDropped = counterBase.dropped + s.dropped;
    stats.samplesRejected = counterBase.rejected + s.rejected;
    stats.underruns = counterBase.underruns + s.underruns;
    stats.sentenceGaps = counterBase.sentenceGaps + s.sentenceGaps;
    stats.processCalls = counterBase.processCalls + s.processCalls;
    stats.samplesQueued = s.queued;
    const was = stats.playing;
    stats.playing = s.playing;
    if (s.playing && !was && current && current.firstSoundMs === null && current.state !== "cancelling") {
      current.firstSoundMs = Math.round(performance.now() - current.startedAt);
      $("s-first").textContent = `${current.firstSoundMs} ms`;
    }
    checkPlayedOut();
    renderStats();
  }

  // The utterance is over once all its audio arrived (`flushed`) and the worklet played it all.
  function checkPlayedOut() {
    const u = current;
    if (!u || u.state !== "flushed" || u.playedOutAt !== null) return;
    if (stats.playing || stats.samplesQueued > 0 || stats.samplesReceived !== stats.samplesAccepted) return;
    u.playedOutAt = performance.now();
    setStatus(`done: ${u.sentences.length} sentence(s), ` +
      `${(u.sentenceEndSamples / u.sampleRate).toFixed(2)} s of audio`);
    updateButtons();
  }

  function onWorkletMessage(m) {
    if (m.type === "cleared") {
      const u = stats.utterances.find((x) => x.gen === m.gen);
      if (u) {
        u.stopAck = {
          afterMs: performance.now() - u.stopClickedAt,
          queued: m.stats.queued,
          playing: m.stats.playing,
          received: counterBase.received + m.stats.received,
          played: counterBase.played + m.stats.played,
          dropped: m.stats.dropped,
        };
      }
      applyWorkletStats(m.stats);
      return;
    }
    if (m.type === "stats") {
      applyWorkletStats(m.stats);
      for (const l of m.levels) addLevel(l);
    }
  }

  // ---------------------------------------------------------------- level meter / waveforms
  const history = new Float32Array(180); // live meter: the last 180 level blocks (~3.6 s)
  let historyPos = 0;
  const segLevels = new Map(); // seg -> [{pos, rms, peak}]
  let drawQueued = false;

  function addLevel(l) {
    stats.lastLevel = l.rms;
    history[historyPos] = l.rms;
    historyPos = (historyPos + 1) % history.length;
    if (l.seg !== null) {
      let arr = segLevels.get(l.seg);
      if (!arr) segLevels.set(l.seg, (arr = []));
      arr.push(l);
    }
    scheduleDraw();
  }

  function scheduleDraw() {
    if (drawQueued) return;
    drawQueued = true;
    requestAnimationFrame(() => {
      drawQueued = false;
      drawMeter();
      if (current) for (const s of current.sentences) drawSentence(s);
    });
  }

  const toDb = (v) => Math.max(0, 1 + (20 * Math.log10(Math.max(v, 1e-5))) / 60); // -60..0 dB -> 0..1

  function drawMeter() {
    const c = ui.meter;
    const w = (c.width = c.clientWidth * devicePixelRatio || 720);
    const h = (c.height = c.clientHeight * devicePixelRatio || 64);
    const g = c.getContext("2d");
    g.fillStyle = "#0f172a";
    g.fillRect(0, 0, w, h);
    const n = history.length;
    const barW = w / n;
    for (let i = 0; i < n; i++) {
      const v = toDb(history[(historyPos + i) % n]);
      const bh = v * (h - 8);
      g.fillStyle = v > 0.9 ? "#f87171" : v > 0.75 ? "#fbbf24" : "#34d399";
      g.fillRect(i * barW, (h - bh) / 2, Math.max(1, barW - 1), bh);
    }
  }

  function drawSentence(s) {
    const c = s.canvas;
    if (!c) return;
    const w = (c.width = 260 * devicePixelRatio);
    const h = (c.height = 40 * devicePixelRatio);
    const g = c.getContext("2d");
    g.clearRect(0, 0, w, h);
    const total = Math.max(s.samples ?? 0, s.receivedSamples, 1);
    // buffered (received) extent
    g.fillStyle = "#e2e8f0";
    g.fillRect(0, h / 2 - 1, (s.receivedSamples / total) * w, 2);
    const lv = segLevels.get(s.seg) || [];
    g.fillStyle = s.cancelled ? "#94a3b8" : "#2563eb";
    for (const l of lv) {
      const x = (l.pos / total) * w;
      const amp = Math.min(1, l.peak * 1.2) * (h / 2 - 2);
      g.fillRect(x, h / 2 - amp, Math.max(1, w / 200), 2 * amp);
    }
  }

  // ---------------------------------------------------------------- WebSocket
  let ws = null;
  let wsKey = null;
  let readyWaiter = null;
  let frameSeg = null; // {utt, sentence} of the last sentence_start (null: drop frames)
  let frameCtx = null;

  function wsUrl(rate, voice) {
    const u = new URL("v1/tts/stream", ROOT);
    u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
    const params = { sample_rate: String(rate), voice, format: "pcm_f32le" };
    if (TOKEN) params.token = TOKEN;
    u.search = new URLSearchParams(params).toString();
    return u.href;
  }

  function setConn(state, text) {
    stats.connection = state;
    ui.conn.className = state;
    ui.conn.textContent = text || state;
  }

  function ensureSocket(rate, voice) {
    const key = `${rate}|${voice}`;
    if (ws && wsKey === key && ws.readyState === WebSocket.OPEN && stats.session) {
      return Promise.resolve(ws); // reuse the open session
    }
    if (ws) {
      ws.onclose = null;
      ws.close(1000);
    }
    setConn("connecting", "connecting…");
    stats.session = null;
    wsKey = key;
    const sock = (ws = new WebSocket(wsUrl(rate, voice)));
    sock.binaryType = "arraybuffer";
    const ready = new Promise((resolve, reject) => (readyWaiter = { resolve, reject }));
    sock.onmessage = (e) => (typeof e.data === "string" ? onControl(JSON.parse(e.data)) : onAudio(e.data));
    sock.onclose = (e) => {
      if (ws !== sock) return;
      ws = null;
      setConn("closed", "disconnected");
      const why = e.reason ? `${e.code}: ${e.reason}` : String(e.code); // 4401: no or a wrong API key
      if (readyWaiter) readyWaiter.reject(new Error(`connection closed (${why})`));
      readyWaiter = null;
      if (current && current.state === "streaming") {
        fail(`connection closed (code ${why}) before the utterance was finished`);
      }
      updateButtons();
    };
    sock.onerror = () => setStatus("WebSocket error", true);
    return ready;
  }

  function send(msg) {
    ws.send(JSON.stringify(msg));
  }

  function onControl(m) {
    switch (m.type) {
      case "ready":
        stats.session = m;
        setConn("open", `connected · ${m.voice} · ${m.sample_rate} Hz · ${m.session_id}`);
        if (readyWaiter) readyWaiter.resolve(ws);
        readyWaiter = null;
        break;
      case "sentence_start": {
        frameCtx = m.context_id;
        const u = byContext.get(m.context_id);
        if (!u || u.state === "cancelling" || u.state === "cancelled") {
          frameSeg = null;
          break;
        }
        const s = addSentence(u, m);
        frameSeg = { utt: u, sentence: s };
        break;
      }
      case "sentence_end": {
        const u = byContext.get(m.context_id);
        const s = u && u.sentences.find((x) => x.index === m.index);
        if (!s || u.state === "cancelling" || u.state === "cancelled") break;
        s.samples = m.samples;
        s.cached = !!m.cached;
        u.sentenceEndSamples += m.samples;
        stats.sentenceEndSamples += m.samples;
        if (s.receivedSamples !== m.samples) {
          stats.errors.push(`sentence ${m.index}: received ${s.receivedSamples} samples, sentence_end says ${m.samples}`);
        }
        post({ type: "end", gen: u.gen, seg: s.seg });
        renderSentence(s);
        break;
      }
      case "flushed": {
        const u = byContext.get(m.context_id);
        if (u && u.state === "streaming") {
          u.state = "flushed";
          u.flushedAt = performance.now();
          setStatus(`all audio received (${u.sentences.length} sentence(s)); playing…`);
          checkPlayedOut();
          updateButtons();
        }
        break;
      }
      case "cancelled": {
        const u = byContext.get(m.context_id);
        if (u) {
          u.state = "cancelled";
          u.cancelledAt = performance.now();
          setStatus(`stopped (${Math.round(u.cancelledAt - u.stopClickedAt)} ms for the server to confirm)`);
        }
        if (frameCtx === m.context_id) frameSeg = null;
        updateButtons();
        break;
      }
      case "error":
        stats.errors.push(`${m.code}: ${m.message}`);
        setStatus(`server error ${m.code}: ${m.message}`, true);
        break;
      default:
        break; // done / future messages
    }
  }

  function onAudio(buf) {
    stats.framesReceived += 1;
    const n = buf.byteLength >> 2;
    if (!frameSeg || frameSeg.utt.state === "cancelling" || frameSeg.utt.state === "cancelled") {
      // audio of a stopped utterance that was already on its way: never played
      stats.lateFramesDropped += 1;
      stats.lateSamplesDropped += n;
      const u = byContext.get(frameCtx);
      if (u) u.lateSamplesDropped += n;
      renderStats();
      return;
    }
    const { utt: u, sentence: s } = frameSeg;
    if (s.firstAudioAt === null) {
      s.firstAudioAt = performance.now();
      s.latencyMs = Math.round(s.firstAudioAt - completedAt(u, s));
      renderSentence(s);
    }
    const pcm = new Float32Array(buf); // pcm_f32le (every browser platform is little-endian)
    post({ type: "push", gen: u.gen, seg: s.seg, pos: s.receivedSamples, pcm }, [pcm.buffer]);
    s.receivedSamples += n;
    u.receivedSamples += n;
    stats.samplesAccepted += n;
    scheduleDraw();
  }

  // When was sentence `s` complete on the server's side? The text message that carried its end
  // plus the next character (a sentence end needs to see what follows), or the flush.
  function completedAt(u, s) {
    const idx = u.text.indexOf(s.text, u.cursor);
    if (idx >= 0) {
      const end = idx + s.text.length;
      u.cursor = end;
      if (end + 2 <= u.text.trimEnd().length) {
        const hit = u.sends.find((x) => x.cum >= end + 2);
        if (hit) return hit.t;
      }
      if (u.flushSentAt !== null) return u.flushSentAt;
    }
    const before = u.sends.filter((x) => x.t <= s.startAt);
    return before.length ? before[before.length - 1].t : u.startedAt;
  }

  // ---------------------------------------------------------------- utterances
  const byContext = new Map();
  let current = null;
  let gen = 0;

  function addSentence(u, m) {
    const s = {
      index: m.index, text: m.text, seg: `${u.gen}:${m.index}`,
      startAt: performance.now(), firstAudioAt: null, latencyMs: null,
      samples: null, cached: null, receivedSamples: 0, cancelled: false, el: null, canvas: null,
    };
    u.sentences.push(s);
    if (u === current) {
      const empty = ui.sentences.querySelector(".empty");
      if (empty) empty.remove();
      const li = document.createElement("li");
      li.innerHTML = '<span class="idx"></span><span class="txt"></span><span class="meta"></span><canvas></canvas>';
      li.querySelector(".idx").textContent = `${m.index + 1}.`;
      li.querySelector(".txt").textContent = m.text;
      s.el = li;
      s.canvas = li.querySelector("canvas");
      ui.sentences.appendChild(li);
      renderSentence(s);
    }
    return s;
  }

  function renderSentence(s) {
    if (!s.el) return;
    const meta = s.el.querySelector(".meta");
    const parts = [];
    parts.push(`<span class="badge">first audio ${s.latencyMs === null ? "…" : s.latencyMs + " ms"}</span>`);
    if (s.cancelled) parts.push('<span class="badge cancel">stopped</span>');
    else if (s.cached === null) parts.push('<span class="badge synth">streaming…</span>');
    else parts.push(s.cached ? '<span class="badge cached">cached</span>' : '<span class="badge synth">synthesized</span>');
    const rate = stats.session ? stats.session.sample_rate : 1;
    const n = s.samples ?? s.receivedSamples;
    parts.push(`<span>${(n / rate).toFixed(2)} s · ${n} samples</span>`);
    meta.innerHTML = parts.join("");
    s.el.classList.toggle("cancelled", s.cancelled);
    drawSentence(s);
  }

  async function speak() {
    const text = ui.text.value;
    if (!text.trim()) {
      setStatus("type something to speak", true);
      return;
    }
    if (current && (current.state === "streaming" || stats.playing || stats.samplesQueued > 0)) stop();
    const rate = Number(ui.rate.value);
    const voice = ui.voice.value;
    ui.speak.disabled = true;
    try {
      await ensureAudio(rate);
      post({ type: "config", prebufferMs: prebufferMs() });
      await ensureSocket(rate, voice);
    } catch (err) {
      fail(`could not start: ${err.message}`);
      return;
    }
    gen += 1;
    const u = {
      gen, contextId: `utt-${gen}-${Math.random().toString(36).slice(2, 8)}`,
      text, llm: ui.llm.checked, sampleRate: rate, voice, state: "streaming",
      startedAt: performance.now(), sends: [], flushSentAt: null, cursor: 0,
      sentences: [], sentenceEndSamples: 0, receivedSamples: 0, lateSamplesDropped: 0,
      firstSoundMs: null, flushedAt: null, playedOutAt: null,
      stopClickedAt: null, stopAck: null, cancelledAt: null,
      sessionId: stats.session && stats.session.session_id,
    };
    stats.utterances.push(u);
    byContext.set(u.contextId, u);
    current = u;
    ui.sentences.innerHTML = "";
    $("s-first").textContent = "–";
    setStatus(u.llm ? "streaming text word by word…" : "speaking…");
    updateButtons();

    const pieces = u.llm ? text.match(/\s*\S+/g) || [text] : [text];
    let cum = 0;
    for (let i = 0; i < pieces.length; i++) {
      if (u.state !== "streaming" || !ws) return; // stopped while typing
      send({ type: "text", text: pieces[i], context_id: u.contextId });
      cum += pieces[i].length;
      u.sends.push({ t: performance.now(), cum });
      if (u.llm && i + 1 < pieces.length) await sleep(35 + Math.random() * 50);
    }
    if (u.state !== "streaming" || !ws) return;
    send({ type: "flush", context_id: u.contextId });
    u.flushSentAt = performance.now();
  }

  function stop() {
    const u = current;
    if (!u || u.state === "cancelling" || u.state === "cancelled") return;
    u.stopClickedAt = performance.now();
    u.state = "cancelling"; // from now on, audio of this context is dropped
    post({ type: "clear", gen: u.gen }); // silence at once
    if (ws && ws.readyState === WebSocket.OPEN) send({ type: "cancel", context_id: u.contextId });
    else u.state = "cancelled";
    for (const s of u.sentences) {
      s.cancelled = s.samples === null; // its audio was still arriving
      renderSentence(s);
    }
    setStatus("stopping…");
    updateButtons();
  }

  // ---------------------------------------------------------------- page plumbing
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function fail(msg) {
    stats.errors.push(msg);
    setStatus(msg, true);
    if (current && current.state === "streaming") current.state = "failed";
    updateButtons();
  }

  function setStatus(text, isError) {
    ui.status.textContent = text;
    ui.status.className = isError ? "error" : "";
  }

  function updateButtons() {
    ui.speak.disabled = !stats.ready;
    const u = current;
    const active = !!u && (u.state === "streaming" || (u.state === "flushed" && u.playedOutAt === null));
    ui.stop.disabled = !active;
  }

  const fmt = (n) => n.toLocaleString("en-US");
  function renderStats() {
    $("s-received").textContent = fmt(stats.samplesReceived);
    $("s-played").textContent = fmt(stats.samplesPlayed);
    $("s-queued").textContent = fmt(stats.samplesQueued);
    $("s-underruns").textContent = String(stats.underruns);
    $("s-playing").textContent = stats.playing ? "yes" : "no";
    $("s-dropped").textContent = fmt(stats.samplesDropped + stats.samplesRejected + stats.lateSamplesDropped);
    updateButtons();
  }

  async function loadVoices() {
    try {
      const r = await fetch(new URL("v1/voices", ROOT), TOKEN ? { headers: { Authorization: `Bearer ${TOKEN}` } } : {});
      if (r.status === 401) {
        throw new Error(TOKEN ? "the API key in ?token= is not accepted" : "this server needs an API key: open this page as /?token=<key>");
      }
      const { voices } = await r.json();
      ui.voice.innerHTML = "";
      for (const v of voices) {
        const o = document.createElement("option");
        o.value = v.name;
        o.textContent = `${v.name} (${v.sample_rate} Hz)`;
        o.selected = !!v.default;
        ui.voice.appendChild(o);
      }
      const def = voices.find((v) => v.default) || voices[0];
      if (def && [...ui.rate.options].some((o) => Number(o.value) === def.sample_rate)) {
        ui.rate.value = String(def.sample_rate);
      }
      stats.ready = true;
      setStatus("ready: type or paste text and press Speak (Ctrl+Enter)");
    } catch (err) {
      fail(`could not load voices: ${err.message}`);
    }
    updateButtons();
  }

  // for tests: drive the player directly (start the AudioContext, post worklet messages)
  window.demoPlayer = { start: (rate) => ensureAudio(rate).then(() => true), post };

  ui.speak.addEventListener("click", () => speak());
  ui.stop.addEventListener("click", () => stop());
  ui.text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      speak();
    }
  });
  ui.prebuffer.addEventListener("change", () => post({ type: "config", prebufferMs: prebufferMs() }));
  window.addEventListener("resize", scheduleDraw);
  drawMeter();
  loadVoices();
})();
