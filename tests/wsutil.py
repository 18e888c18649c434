"""A small native-protocol client for tests, on the `websockets` library."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

import msgpack
import numpy as np


@dataclass
class Transcript:
    """Everything a client received, in order; audio bytes grouped per sentence."""

    messages: list[dict] = field(default_factory=list)
    audio: dict[tuple[str, int], bytearray] = field(default_factory=dict)
    order: list[tuple[str, int]] = field(default_factory=list)
    current: tuple[str, int] | None = None

    def types(self) -> list[str]:
        return [m["type"] for m in self.messages]

    def add(self, msg: dict) -> None:
        self.messages.append(msg)
        kind = msg["type"]
        if kind == "sentence_start":
            assert self.current is None, "sentence started inside another sentence"
            self.current = (msg["context_id"], msg["index"])
            self.order.append(self.current)
            self.audio[self.current] = bytearray()
        elif kind == "audio":
            assert self.current == (msg["context_id"], msg["index"]), "audio outside its sentence"
            self.audio[self.current] += msg["pcm"]
        elif kind == "sentence_end":
            assert self.current == (msg["context_id"], msg["index"])
            self.current = None

    def pcm16(self, key: tuple[str, int]) -> np.ndarray:
        return np.frombuffer(bytes(self.audio[key]), dtype="<i2").astype(np.float32) / 32767.0

    def sentences(self, context_id: str = "default") -> list[str]:
        return [m["text"] for m in self.messages if m["type"] == "sentence_start" and m["context_id"] == context_id]


def decode_frame(frame: str | bytes, msgpack_mode: bool, current: tuple[str, int] | None) -> dict:
    if msgpack_mode:
        return msgpack.unpackb(frame, raw=False)
    if isinstance(frame, bytes):
        assert current is not None, "binary audio outside a sentence"
        return {"type": "audio", "context_id": current[0], "index": current[1], "pcm": frame}
    return json.loads(frame)


async def receive_until(ws, transcript: Transcript, stop: str, msgpack_mode=False, timeout=60.0):
    """Read frames into the transcript until a message of type `stop` arrives."""
    async def loop():
        while True:
            msg = decode_frame(await ws.recv(), msgpack_mode, transcript.current)
            transcript.add(msg)
            if msg["type"] == stop:
                return msg

    return await asyncio.wait_for(loop(), timeout)


def send_json(ws, **msg):
    return ws.send(json.dumps(msg))


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    assert len(a) == len(b), f"length {len(a)} != {len(b)}"
    return float(np.abs(a - b).max()) if len(a) else 0.0
