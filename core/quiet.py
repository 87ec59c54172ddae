"""Silence file descriptors 1 and/or 2 at the OS level.

Native libraries (TensorFlow's converter, the LiteRT interpreter announcing XNNPACK)
write with fprintf, which no Python logger, `sys.stderr` swap or environment variable
reaches; pointing the fds themselves at a temporary file does.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import threading
from collections.abc import Iterator

# fds 1 and 2 belong to the whole process: two threads that swapped them at once would
# restore each other's sink, and everything written after would vanish. One at a time.
_FD_LOCK = threading.RLock()


@contextlib.contextmanager
def quiet_fds(*fds: int) -> Iterator[list[str]]:
    """Point `fds` (default: 1 and 2) at a temporary file for the block; yields a list that
    receives the captured text afterwards. Where the process has no real fd (e.g. a test
    runner replaced sys.stderr), nothing is redirected and nothing is captured."""
    with _FD_LOCK:
        with _quiet(fds or (1, 2)) as captured:
            yield captured


@contextlib.contextmanager
def _quiet(fds: tuple[int, ...]) -> Iterator[list[str]]:
    captured: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    try:
        saved = [os.dup(fd) for fd in fds]
    except (OSError, ValueError):
        yield captured
        return
    with tempfile.TemporaryFile(mode="w+b") as sink:
        for fd in fds:
            os.dup2(sink.fileno(), fd)
        try:
            yield captured
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd, copy in zip(fds, saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            captured.append(sink.read().decode("utf-8", "replace"))
