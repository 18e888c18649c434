"""What a test needs from outside the package (a command, a browser, an optional module): when it
is missing the test is skipped on a developer's machine, but fails under CI (the CI environment
variable set to anything but "", 0, false or no), where a skip would silently hide an untested
feature. Every message names what to install.
"""

from __future__ import annotations

import importlib
import os
import shutil
from types import ModuleType
from typing import NoReturn

import pytest

TEST_EXTRAS = "pip install -e '.[test]' (or `make test`)"


def under_ci() -> bool:
    return os.environ.get("CI", "").lower() not in ("", "0", "false", "no")


def unavailable(missing: str, install: str) -> NoReturn:
    """Skip (locally) or fail (under CI) because `missing` is missing; `install` says how to get it."""
    reason = f"{missing}; install: {install}"
    if under_ci():
        pytest.fail(f"{reason} (CI is set, so a missing test dependency is a failure, not a skip)")
    try:  # reported at the test, not at this line (as pytest.importorskip does)
        skip = pytest.skip.Exception(reason, _use_item_location=True)
    except TypeError:  # a pytest without that keyword
        skip = pytest.skip.Exception(reason)
    raise skip


def require_module(name: str, install: str = TEST_EXTRAS) -> ModuleType:
    """The imported module `name`, or unavailable() if it cannot be imported."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        unavailable(f"the Python module {name!r} cannot be imported ({exc})", install)


def require_command(name: str, install: str) -> str:
    """The path of the command `name` on PATH, or unavailable()."""
    path = shutil.which(name)
    if path is None:
        unavailable(f"the command {name!r} is not on PATH", install)
    return path


def require_file(path: str, what: str, install: str) -> str:
    """`path` if it exists, or unavailable()."""
    if not os.path.exists(path):
        unavailable(f"{what} ({path}) is missing", install)
    return path
