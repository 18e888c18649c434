"""Reading what clients send: JSON that cannot take the server down, whatever its shape, and
request bodies no larger than a limit."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request

from .events import SessionError, check_unicode


def loads_json(raw: str | bytes) -> Any:
    """json.loads, with every way a hostile document can fail as one ValueError (deep nesting
    raises RecursionError, bytes that are not UTF-8 raise UnicodeDecodeError, a subclass); and
    SessionError `invalid_text` for a document that is JSON but not valid Unicode (a string or
    key with an unpaired surrogate, escaped or, in bytes, encoded)."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    check_strings(value)
    return value


def text_body(raw: bytes) -> tuple[dict[str, Any], str]:
    """A REST body that must be a JSON object with a non-blank string `text`: the object and its
    text, or SessionError `invalid_json`, `invalid_text`, `missing_text` (no string `text`) or
    `empty_text` (a blank one). Each API answers these in its own status and shape."""
    try:
        data = loads_json(raw or b"null")
    except ValueError:
        raise SessionError("invalid_json", "the request body is not valid JSON") from None
    if not isinstance(data, dict) or not isinstance(data.get("text"), str):
        raise SessionError("missing_text", 'the request body must be a JSON object with a string "text"')
    if not data["text"].strip():
        raise SessionError("empty_text", "text must not be empty")
    return data, data["text"]


def check_strings(value: Any) -> None:
    """SessionError `invalid_text` if any string in a parsed document (keys too) is not valid
    Unicode. Iterative: a parsed document may be as deep as its parser allowed."""
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            check_unicode(item, "a string in the message")
        elif isinstance(item, dict):
            todo += item.keys()
            todo += item.values()
        elif isinstance(item, list):
            todo += item


class BodyTooLarge(Exception):
    """The request body is over its limit (answered 413)."""


class BodyTooSlow(Exception):
    """The request body did not arrive in time (answered 408; server.request_timeout_seconds)."""


async def read_body(request: Request, limit: int, timeout: float = 0.0) -> bytes:
    """A Starlette request's body, refused before it is read when it says it is too large, or as
    soon as it is; and refused when it has not all come within `timeout` seconds (0: no limit)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    try:
        async with asyncio.timeout(timeout or None):
            async for piece in request.stream():
                body += piece
                if len(body) > limit:
                    raise BodyTooLarge
    except TimeoutError:
        raise BodyTooSlow from None
    return bytes(body)
