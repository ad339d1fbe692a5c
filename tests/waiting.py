"""Waiting for something another thread or process does, without fixed sleeps."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(cond: Callable[[], object], timeout: float = 30.0, poll_s: float = 0.05) -> bool:
    """Poll ``cond`` until it is true or ``timeout`` seconds pass; returns its last value's truth."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(poll_s)
    return bool(cond())
