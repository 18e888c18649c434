"""Pipecat's own TTS services pointed at our server: `DeepgramTTSService(base_url=...)` on /v1/speak and
`ElevenLabsTTSService(url=...)` on multi-stream-input, each in a real Pipecat pipeline fed LLM
tokens. The audio they push is our synthesis; the first sentence's audio arrives while the reply is
still being written; an interruption (Pipecat sends Deepgram's Clear / ElevenLabs' close_context)
leaves no audio of the interrupted reply in the next one."""

from __future__ import annotations

import asyncio
import contextlib

import numpy as np
import pytest

from waiting import event_or_failure, wait_until

pytestmark = pytest.mark.slow

TOL = 1e-3 + 1.0 / 32767
RATE = 22050  # the voice's own rate: audio compares sample for sample with offline synthesis
# Pipecat speaks a sentence once the next one starts, and our server once the next one's first
# character arrives: the first sentence is heard while the third is being written.
REPLY = ["Hello there, this is the first sentence.", "And here comes the second one.",
         "The third one follows it.", "Finally the last arrives late."]


def tokens(sentences: list[str]) -> list[str]:
    """An LLM's output: pieces that cut words."""
    text = " ".join(sentences)
    return [text[i:i + 5] for i in range(0, len(text), 5)]


@pytest.fixture
def pipecat():
    return pytest.importorskip("pipecat")


class _Recorder:
    """The end of the pipeline: what the TTS service pushes downstream."""

    def __init__(self) -> None:
        from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

        recorder = self

        class Sink(FrameProcessor):
            async def process_frame(self, frame, direction):
                await super().process_frame(frame, direction)
                if direction == FrameDirection.DOWNSTREAM:
                    recorder.frames.append(frame)
                await self.push_frame(frame, direction)

        self.frames: list = []
        self.processor = Sink()

    def of(self, kind) -> list:
        return [f for f in self.frames if isinstance(f, kind)]

    def audio(self, context_id) -> np.ndarray:
        from pipecat.frames.frames import TTSAudioRawFrame

        pcm = b"".join(f.audio for f in self.of(TTSAudioRawFrame) if f.context_id == context_id)
        return np.frombuffer(pcm, "<i2").astype(np.float32) / 32767

    def contexts(self) -> list:
        """Context ids of the replies spoken, in order (the silence after a reply has none)."""
        from pipecat.frames.frames import TTSAudioRawFrame

        ids = [f.context_id for f in self.of(TTSAudioRawFrame) if f.context_id is not None]
        return list(dict.fromkeys(ids))


@contextlib.asynccontextmanager
async def pipeline(service):
    """A running Pipecat pipeline: the service, then a recorder."""
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.worker import PipelineParams, PipelineWorker
    from pipecat.workers.runner import WorkerRunner

    recorder = _Recorder()
    worker = PipelineWorker(
        Pipeline([service, recorder.processor]), params=PipelineParams(audio_out_sample_rate=RATE),
        cancel_on_idle_timeout=False,
    )
    started = asyncio.Event()

    @worker.event_handler("on_pipeline_started")
    async def _started(worker, frame):
        started.set()

    runner = WorkerRunner(handle_sigint=False)
    await runner.add_workers(worker)
    running = asyncio.create_task(runner.run())
    await event_or_failure(started, running, timeout=60, what="the Pipecat pipeline to start")
    try:
        yield worker, recorder
    finally:
        await worker.cancel()
        await asyncio.wait_for(running, 30)


async def reply(worker, recorder, sentences: list[str]) -> None:
    """An LLM reply streamed token by token; the last sentence only once the first one's audio
    has arrived (so that audio came while the reply was still being written)."""
    from pipecat.frames.frames import LLMFullResponseEndFrame, LLMFullResponseStartFrame, LLMTextFrame, TTSAudioRawFrame

    heard_before = len(recorder.contexts())
    await worker.queue_frame(LLMFullResponseStartFrame())
    for token in tokens(sentences[:-1]):
        await worker.queue_frame(LLMTextFrame(token))
    await wait_until(lambda: len(recorder.contexts()) > heard_before, timeout=120,
                     what="audio of the first sentence before the last one is written")
    assert recorder.of(TTSAudioRawFrame)
    for token in tokens([""] + sentences[-1:]):
        await worker.queue_frame(LLMTextFrame(token))
    await worker.queue_frame(LLMFullResponseEndFrame())


def stopped(recorder, context_id) -> bool:
    from pipecat.frames.frames import TTSStoppedFrame

    return any(f.context_id == context_id for f in recorder.of(TTSStoppedFrame))


def assert_spoken(recorder, context_id, sentences, offline) -> None:
    got = recorder.audio(context_id)
    want = np.concatenate([offline(s) for s in sentences])
    assert len(got) == len(want) and np.max(np.abs(got - want)) <= TOL


async def speak_interrupt_and_speak_again(worker, recorder, offline) -> None:
    """A reply streamed and spoken; a second one interrupted while its first sentence plays; a
    third one then carries exactly its own audio."""
    from pipecat.frames.frames import (
        InterruptionFrame,
        LLMFullResponseEndFrame,
        LLMFullResponseStartFrame,
        LLMTextFrame,
    )

    await reply(worker, recorder, REPLY)
    first = recorder.contexts()[0]
    await wait_until(lambda: stopped(recorder, first), timeout=120, what="the end of the first reply")
    assert_spoken(recorder, first, REPLY, offline)

    long = ["This reply is interrupted after its first sentence starts.",
            "Its second sentence must never be heard, whatever happens.", "Nor this one.", "Nor that."]
    await worker.queue_frame(LLMFullResponseStartFrame())
    for token in tokens(long):
        await worker.queue_frame(LLMTextFrame(token))
    await wait_until(lambda: len(recorder.contexts()) > 1, timeout=120, what="audio of the second reply")
    await worker.queue_frame(InterruptionFrame())
    await worker.queue_frame(LLMFullResponseEndFrame())

    again = ["Spoken after the interruption.", "This is a fresh reply.", "It has four sentences.", "The end."]
    await reply(worker, recorder, again)
    third = recorder.contexts()[-1]
    await wait_until(lambda: stopped(recorder, third), timeout=120, what="the end of the third reply")
    assert_spoken(recorder, third, again, offline)


async def test_pipecat_deepgram_service(server, offline, pipecat):
    from pipecat.services.deepgram.tts import DeepgramTTSService

    service = DeepgramTTSService(api_key="unused", base_url=server.url, sample_rate=RATE,
                                 settings=DeepgramTTSService.Settings(voice="aura-2-thalia-en"))
    async with pipeline(service) as (worker, recorder):
        await speak_interrupt_and_speak_again(worker, recorder, offline)


async def test_pipecat_elevenlabs_service(server, offline, pipecat):
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    service = ElevenLabsTTSService(api_key="unused", url=server.url, sample_rate=RATE,
                                   settings=ElevenLabsTTSService.Settings(voice="joe_ar"))
    async with pipeline(service) as (worker, recorder):
        await speak_interrupt_and_speak_again(worker, recorder, offline)


async def test_pipecat_elevenlabs_words_of_consecutive_sentences(server, pipecat):
    """Pipecat's word timestamps from our alignment: the words of consecutive sentences come apart
    ("clinic." then "How"), each once, in order, and the first word of a sentence at its own time
    (without the space between the sentences' alignments Pipecat read "clinic.How" as one word
    and gave "How" the time of "clinic.")."""
    from pipecat.frames.frames import TTSTextFrame
    from pipecat.services.elevenlabs.tts import ElevenLabsTTSService

    sentences = ["Please call the clinic.", "How are you feeling today?", "Fine, thanks."]
    service = ElevenLabsTTSService(api_key="unused", url=server.url, sample_rate=RATE,
                                   settings=ElevenLabsTTSService.Settings(voice="joe_ar"))
    async with pipeline(service) as (worker, recorder):
        await reply(worker, recorder, sentences)
        context = recorder.contexts()[0]
        await wait_until(lambda: stopped(recorder, context), timeout=120, what="the end of the reply")
        words = [f for f in recorder.of(TTSTextFrame) if f.context_id == context]
    assert [w.text.strip() for w in words] == " ".join(sentences).split()
    times = [w.pts for w in words][:len(" ".join(sentences[:2]).split())]  # the last ones Pipecat times at its end
    assert all(a < b for a, b in zip(times, times[1:])), times
