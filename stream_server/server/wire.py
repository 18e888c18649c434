"""Reading what clients send: JSON that cannot take the server down, whatever its shape, and
request bodies no larger than a limit."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request


def loads_json(raw: str | bytes) -> Any:
    """json.loads, with every way a hostile document can fail as one ValueError (deep nesting
    raises RecursionError, bytes that are not UTF-8 raise UnicodeDecodeError, a subclass)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


class BodyTooLarge(Exception):
    """The request body is over its limit (answered 413)."""


async def read_body(request: Request, limit: int) -> bytes:
    """A Starlette request's body, refused before it is read when it says it is too large, or as
    soon as it is."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise BodyTooLarge
    return bytes(body)
