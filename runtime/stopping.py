"""Stop the live loop the same orderly way whatever asks it to: Ctrl-C, SIGTERM, SIGHUP.

`systemctl stop` sends SIGTERM and a dropped ssh session SIGHUP; by default either kills
the process at once, and an .mp4 whose writer was not released has no index (no frame can
be read back). Inside `stop_signals()` each of them raises KeyboardInterrupt in the main
thread, as Ctrl-C does, so the loop's `finally` releases the recording. Later signals are
ignored while the loop shuts down, so that a second one cannot cut the release short.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

STOP_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP")


@dataclass
class StopRequest:
    signal: int | None = None  # the first stop signal received, if any

    @property
    def name(self) -> str:
        return signal.Signals(self.signal).name if self.signal is not None else ""

    @property
    def exit_code(self) -> int:
        """128 + the signal number, as a shell reports a process stopped by it."""
        return 128 + (self.signal or signal.SIGINT)


@contextlib.contextmanager
def stop_signals() -> Iterator[StopRequest]:
    """Within the block, SIGINT, SIGTERM and SIGHUP raise KeyboardInterrupt once."""
    request = StopRequest()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        if request.signal is not None:
            return  # already stopping
        request.signal = signum
        raise KeyboardInterrupt

    previous: dict[int, object] = {}
    if threading.current_thread() is threading.main_thread():
        for name in STOP_SIGNALS:
            number = getattr(signal, name, None)
            if number is not None:
                previous[number] = signal.signal(number, on_signal)
    try:
        yield request
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)  # type: ignore[arg-type]
