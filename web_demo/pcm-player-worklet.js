// AudioWorklet that plays a FIFO of mono float32 PCM gaplessly.
//
// The page posts, in order:
//   {type: "push", gen, seg, pos, pcm: Float32Array}  audio of sentence `seg` (utterance `gen`),
//                                                    `pos` = offset of pcm[0] within the sentence
//   {type: "end", gen, seg}        no more audio will come for sentence `seg` (sentence_end)
//   {type: "clear", gen}           barge-in: drop everything queued now, and reject later
//                                  pushes of utterance `gen` or older
//   {type: "config", prebufferMs}  jitter buffer (see below)
//
// Playback starts (and restarts after a gap) once `prebuffer` samples are queued or the queued
// audio is complete (its sentence has ended), so a slow second chunk does not cause a gap.
//
// Counters (posted to the page as {type: "stats"}; cumulative for the life of this node):
//   received  samples accepted from "push"        played   samples written to the output
//   dropped   samples discarded by "clear"        rejected samples of late pushes after "clear"
//   underruns gaps *between chunks of one sentence*: the queue ran dry while that sentence was
//             still open (no "end" yet) and more audio of the same sentence arrived afterwards.
//             Running dry after a sentence's "end" (end of sentence / of the utterance) is never
//             an underrun; a stop ("clear") is not one either.
//   sentenceGaps  the queue ran dry at a sentence end and the next sentence of the same
//             utterance arrived later (an audible pause between sentences; not an underrun)
//   playing   audio is being output now
"use strict";

const DECLICK = 64; // samples of linear ramp to 0 when output stops abruptly (stop / gap)

class PcmPlayer extends AudioWorkletProcessor {
  constructor(options) {
    super();
    const o = (options && options.processorOptions) || {};
    this.prebuffer = Math.round(((o.prebufferMs ?? 250) * sampleRate) / 1000);
    this.levelBlock = Math.max(128, Math.round(sampleRate / 50)); // one level per 20 ms
    this.chunks = []; // {data, off, seg, pos, gen}
    this.queued = 0;
    this.minGen = 0; // pushes of a lower generation are rejected (cleared utterances)
    this.openSeg = null; // last pushed sentence that has not ended yet
    this.playing = false;
    this.dry = false; // ran dry while openSeg was open: an underrun if more of it arrives
    this.drySeg = null;
    this.drained = null; // {gen, seg}: ran dry right after sentence `seg` ended
    this.lastOut = 0;
    this.lastSeg = null; // sentence of the last sample played
    this.lastSegGen = -1;
    this.c = {
      received: 0, played: 0, dropped: 0, rejected: 0, underruns: 0, sentenceGaps: 0,
      processCalls: 0,
    };
    // level meter: RMS / peak per block of played samples, tagged with the sentence
    this.lvl = { seg: null, pos: 0, sum: 0, peak: 0, n: 0 };
    this.levels = [];
    this.lastPost = 0;
    this.dirty = true;
    this.port.onmessage = (e) => this.onMessage(e.data);
  }

  onMessage(m) {
    switch (m.type) {
      case "push": {
        const n = m.pcm.length;
        if (m.gen < this.minGen) {
          this.c.rejected += n;
          break;
        }
        if (this.dry) {
          if (m.seg === this.drySeg) this.c.underruns += 1; // a gap inside a sentence
          this.dry = false;
        }
        if (this.drained) {
          if (this.drained.gen === m.gen && this.drained.seg !== m.seg) this.c.sentenceGaps += 1;
          this.drained = null;
        }
        this.chunks.push({ data: m.pcm, off: 0, seg: m.seg, pos: m.pos || 0, gen: m.gen });
        this.queued += n;
        this.c.received += n;
        this.openSeg = m.seg;
        break;
      }
      case "end":
        if (this.openSeg === m.seg) this.openSeg = null;
        if (this.dry && this.drySeg === m.seg) {
          // the sentence's last chunk had already been played out: a normal end
          this.dry = false;
          this.drained = { gen: m.gen, seg: m.seg };
        }
        break;
      case "clear":
        this.minGen = Math.max(this.minGen, m.gen + 1);
        this.c.dropped += this.queued;
        this.chunks = [];
        this.queued = 0;
        this.openSeg = null;
        this.dry = false;
        this.drained = null;
        this.playing = false;
        this.flushLevel();
        this.levels.push({ seg: null, pos: 0, rms: 0, peak: 0 });
        this.port.postMessage({ type: "cleared", gen: m.gen, stats: this.stats() });
        this.dirty = true;
        break;
      case "config":
        if (typeof m.prebufferMs === "number") {
          this.prebuffer = Math.round((m.prebufferMs * sampleRate) / 1000);
        }
        break;
    }
    this.dirty = true;
  }

  stats() {
    return Object.assign({}, this.c, {
      queued: this.queued,
      playing: this.playing,
      frame: currentFrame,
      sampleRate,
      prebuffer: this.prebuffer,
    });
  }

  flushLevel() {
    const l = this.lvl;
    if (l.n > 0) {
      this.levels.push({ seg: l.seg, pos: l.pos, rms: Math.sqrt(l.sum / l.n), peak: l.peak });
    }
    l.n = 0;
    l.sum = 0;
    l.peak = 0;
  }

  meter(seg, pos, data, from, to) {
    const l = this.lvl;
    for (let i = from; i < to; i++) {
      if (l.n === 0 || l.seg !== seg) {
        if (l.n > 0) this.flushLevel();
        l.seg = seg;
        l.pos = pos + (i - from);
      }
      const v = data[i];
      l.sum += v * v;
      const a = v < 0 ? -v : v;
      if (a > l.peak) l.peak = a;
      if (++l.n >= this.levelBlock) this.flushLevel();
    }
  }

  process(inputs, outputs) {
    const out = outputs[0][0];
    if (!out) return true;
    const n = out.length;
    this.c.processCalls += 1;
    let i = 0;
    if (!this.playing && this.queued > 0 && (this.queued >= this.prebuffer || this.openSeg === null)) {
      this.playing = true;
      this.dirty = true;
    }
    if (this.playing) {
      while (i < n && this.chunks.length > 0) {
        const ch = this.chunks[0];
        const take = Math.min(n - i, ch.data.length - ch.off);
        out.set(ch.data.subarray(ch.off, ch.off + take), i);
        this.meter(ch.seg, ch.pos + ch.off, ch.data, ch.off, ch.off + take);
        this.lastSeg = ch.seg;
        this.lastSegGen = ch.gen;
        ch.off += take;
        i += take;
        this.queued -= take;
        this.c.played += take;
        if (ch.off >= ch.data.length) this.chunks.shift();
      }
      if (i < n) {
        // the queue ran dry inside this render quantum
        this.playing = false;
        this.dirty = true;
        this.flushLevel();
        this.levels.push({ seg: null, pos: 0, rms: 0, peak: 0 });
        if (this.openSeg !== null) {
          this.dry = true; // counted as an underrun only if more of this sentence arrives
          this.drySeg = this.openSeg;
        } else {
          this.drained = { gen: this.lastSegGen, seg: this.lastSeg };
        }
      }
    }
    if (i < n) {
      // silence; ramp down from the last output sample so a stop or a gap does not click
      let start = i > 0 ? out[i - 1] : this.lastOut;
      const ramp = Math.min(n - i, DECLICK);
      for (let k = 0; k < ramp; k++) out[i + k] = start * (1 - (k + 1) / ramp);
      out.fill(0, i + ramp);
    }
    this.lastOut = out[n - 1];
    for (let ch = 1; ch < outputs[0].length; ch++) outputs[0][ch].set(out);

    const now = currentFrame;
    if ((this.dirty && now - this.lastPost >= 128) || now - this.lastPost >= sampleRate / 25) {
      this.port.postMessage({ type: "stats", stats: this.stats(), levels: this.levels });
      this.levels = [];
      this.lastPost = now;
      this.dirty = false;
    }
    return true;
  }
}

registerProcessor("pcm-player", PcmPlayer);
