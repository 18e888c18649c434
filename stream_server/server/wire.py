"""Reading what clients send: JSON that cannot take the server down, whatever its shape."""

from __future__ import annotations

import json
from typing import Any


def loads_json(raw: str | bytes) -> Any:
    """json.loads, with every way a hostile document can fail as one ValueError (deep nesting
    raises RecursionError, bytes that are not UTF-8 raise UnicodeDecodeError, a subclass)."""
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
