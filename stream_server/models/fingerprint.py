"""Names for a model's weights, for the sentence cache's keys: a digest of the files themselves.

Two servers with the same weights files (on the same kind of device) share cache entries; any
change to a file gives new keys, so stale audio is never replayed.
"""

from __future__ import annotations

import functools
import hashlib
import secrets
from pathlib import Path

# Random weights (tests of the mechanics, benchmarks) differ per process: never shared.
PROCESS_NONCE = secrets.token_hex(8)


@functools.cache
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def file_digest(path: str | Path) -> str:
    """sha256 of a weights file (memoised per size and mtime: hashed once per process)."""
    st = Path(path).stat()
    return _file_digest(str(path), st.st_size, st.st_mtime_ns)


def files_digest(paths: tuple[Path, ...]) -> str:
    return "".join(file_digest(p) for p in paths) if paths else f"unsaved-{PROCESS_NONCE}"
