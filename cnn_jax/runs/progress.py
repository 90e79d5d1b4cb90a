"""One progress display per study: runs done / total across all its phases, elapsed time, ETA
and the unit being trained, on stderr (stdout stays the study's own output).

A study's command opens it (`experiments.cli` wraps every command in `study(...)`) and
`sweep.run_sweep` reports into the open one: each sweep adds its runs to the total as it starts
(a study that knows its whole total can `expect` it first), names the unit it trains, and
counts each finished run, so the count goes on across phases instead of restarting. Runs found
finished (cached) count as done but not toward the speed, so the ETA is the runs left at the
speed of training. Per-run lines (`say`) are printed to stdout only with `verbose`
(`--verbose`); with no study open (a sweep called from code) they are printed as before and
no bar is drawn. The bar appears with the first unit, so a command that stops early on a bad
setting prints its one error line and nothing else.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import IO, Any

from tqdm import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} runs [{elapsed}<{remaining}{postfix}]"
_open: StudyProgress | None = None


class StudyProgress:
    """The display of one study (see the module docstring)."""

    def __init__(self, desc: str, verbose: bool = False, file: IO[str] | None = None):
        self.desc, self.verbose, self.file = desc, verbose, file or sys.stderr
        self.total, self.declared, self.done, self.cached = 0, False, 0, 0
        self.bar: tqdm | None = None

    def expect(self, total: int) -> None:
        """Declares the study's whole number of runs; sweeps then add nothing."""
        self.total, self.declared = int(total), True
        self._sync()

    def add(self, runs: int) -> None:
        """A sweep's runs join the total (unless the study declared it)."""
        if not self.declared:
            self.total += int(runs)
            self._sync()

    def unit(self, name: str) -> None:
        """The unit now training (its name is shown beside the count)."""
        self._show().set_postfix_str(f"now {name}", refresh=True)

    def finished(self, runs: int = 1, *, cached: bool = False) -> None:
        """`runs` more runs are done (`cached`: found finished, not trained now)."""
        self.done += runs
        self.cached += runs if cached else 0
        if self.bar is not None or not cached:
            self._sync()

    def say(self, text: str) -> None:
        """A per-run line: printed (stdout) only when verbose."""
        if self.verbose:
            (tqdm.write if self.bar is not None else print)(text, file=sys.stdout)

    def close(self) -> None:
        """Ends the display (its last state stays on screen)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _show(self) -> tqdm:
        if self.bar is None:
            interactive = hasattr(self.file, "isatty") and self.file.isatty()
            self.bar = tqdm(total=self.total, desc=self.desc, file=self.file, smoothing=0,
                            bar_format=BAR_FORMAT, mininterval=0.5 if interactive else 30.0,
                            dynamic_ncols=interactive)  # fmt: skip
            self._sync()
        return self.bar

    def _sync(self) -> None:
        """Brings the bar to the counts: cached runs as its `initial`, outside the speed."""
        if self.bar is None:
            if self.done > self.cached:
                self._show()
            return
        self.bar.total = max(self.total, self.done)
        self.bar.initial = self.cached
        self.bar.n = self.done
        self.bar.refresh()


def current() -> StudyProgress | None:
    """The open study's display, if any."""
    return _open


def say(text: str) -> None:
    """A per-run line: with a study open, printed only when it is verbose; else printed."""
    if _open is None:
        print(text, flush=True)
    else:
        _open.say(text)


@contextlib.contextmanager
def study(desc: str, verbose: bool = False, file: IO[str] | None = None) -> Iterator[Any]:
    """Opens the study's display for the duration of the block (nested: the outer one)."""
    global _open
    if _open is not None:
        yield _open
        return
    _open = StudyProgress(desc, verbose, file)
    try:
        yield _open
    finally:
        _open.close()
        _open = None
