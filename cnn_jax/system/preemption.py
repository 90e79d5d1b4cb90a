"""SIGTERM / SIGINT during training: finish the step, save a checkpoint, exit resumable."""

from __future__ import annotations

import signal
import threading
from types import FrameType


class Preempted(RuntimeError):
    """Raised by the trainer after saving a checkpoint in response to SIGTERM/SIGINT."""

    exit_code = 3


class NonFiniteError(FloatingPointError):
    """The loss or gradient became NaN/Inf; the last good checkpoint is kept."""

    exit_code = 1


class PreemptionGuard:
    """Context manager: while active, SIGTERM and SIGINT set `requested` instead of killing.

    Installed only from the main thread (signal handlers can only be set there); a second
    signal while a save is pending restores the default behaviour, so Ctrl-C twice still
    stops a hung run.
    """

    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        del frame
        if self.requested is not None:  # second signal: give up waiting
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            signal.raise_signal(signum)
        self.requested = signum

    def __enter__(self) -> PreemptionGuard:
        if threading.current_thread() is threading.main_thread():
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
