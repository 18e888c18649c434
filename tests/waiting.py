"""Waiting for what a test is waiting for, instead of sleeping for a guessed length of time.

- `wait_until` / `wait_until_sync`: poll a real condition up to a deadline; at the deadline the
  condition is asked once more, then the test fails with a message saying what never happened.
- `event_or_failure`: wait for an asyncio.Event that a task sets, surfacing the task's own error
  if it ends first (instead of waiting out a timeout on an event that can no longer come).
- `wait_out`: for behaviour whose subject is time itself (a TTL, a retry-after interval): return
  once the clock has passed an instant the test computed from something it observed.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import pytest

What = str | Callable[[], str]  # a description, or a function that describes (e.g. with logs)


def _describe(what: What) -> str:
    return what() if callable(what) else what


def _timed_out(timeout: float, what: What) -> None:
    pytest.fail(f"timed out after {timeout:g} s waiting for {_describe(what)}")


async def wait_until(predicate: Callable[[], Any], *, timeout: float, what: What, interval: float = 0.01) -> Any:
    """Poll `predicate()` (plain or async) until it returns something truthy, and return that."""
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        value = predicate()
        if inspect.isawaitable(value):
            value = await value
        if value:
            return value
        if last_try:
            _timed_out(timeout, what)
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))


def wait_until_sync(predicate: Callable[[], Any], *, timeout: float, what: What, interval: float = 0.05) -> Any:
    """`wait_until` for code outside an event loop."""
    deadline = time.monotonic() + timeout
    while True:
        last_try = time.monotonic() >= deadline
        value = predicate()
        if value:
            return value
        if last_try:
            _timed_out(timeout, what)
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))


async def event_or_failure(event: asyncio.Event, task: asyncio.Task, *, timeout: float, what: str) -> None:
    """Wait until `event` is set. If `task` (the one that should set it) ends first, raise its
    exception, or fail if it ended without one."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        done, _ = await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if event.is_set():
        return
    if task in done:
        task.result()  # raises the task's exception, if any
        pytest.fail(f"{what}: the task ended without it")
    _timed_out(timeout, what)


async def wait_out(instant: float) -> None:
    """Return once time.monotonic() >= instant. Only for waiting out an interval that is itself
    the behaviour under test; `instant` must come from an observed event, not a guess."""
    while (left := instant - time.monotonic()) > 0:
        await asyncio.sleep(left)
