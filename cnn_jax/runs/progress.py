"""One progress display per study: runs done / total across all its phases, elapsed time, ETA
and the unit being trained, on stderr (stdout stays the study's own output).

A study's command opens it (`experiments.cli` wraps every command in `study(...)`) and
`sweep.run_sweep` reports into the open one: each sweep announces its runs as it starts, names
the unit it trains, and counts each finished run, so the count goes on across phases instead of
restarting. A study of several phases declares its whole total before the first one
(`expect_rest`: the runs its sweeps will still announce), so the total does not grow phase by
phase and the ETA covers the whole study. It counts them with its own planning code, or by
running its phases inside `planning`, where every sweep counts instead of training; once a
choice that decides a later phase is made (e.g. a tuned learning rate) it may recount the rest,
and the runs that will never finish (`drop`: a diverged variant) leave the total. Runs
found finished (cached) count as done but not toward the speed, so the ETA is the runs left at
the speed of training. Per-run lines (`say`) are printed to stdout only with `verbose`
(`--verbose`); with no study open (a sweep called from code) they are printed as before and
no bar is drawn. The bar appears with the first unit, so a command that stops early on a bad
setting prints its one error line and nothing else.
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import IO, Any

from tqdm import tqdm

BAR_FORMAT = "{desc}: {percentage:3.0f}%|{bar}| {n}/{total} runs [{elapsed}<{remaining}{postfix}]"
_open: StudyProgress | None = None
_plan: Plan | None = None


class StudyProgress:
    """The display of one study (see the module docstring)."""

    def __init__(self, desc: str, verbose: bool = False, file: IO[str] | None = None):
        self.desc, self.verbose, self.file = desc, verbose, file or sys.stderr
        self.total, self.declared, self.done, self.cached = 0, False, 0, 0
        self.added, self.dropped = 0, 0  # runs the sweeps announced; runs that never finish
        self.bar: tqdm | None = None

    def expect(self, total: int) -> None:
        """Declares the study's whole number of runs; sweeps then add nothing."""
        self.total, self.declared = int(total), True
        self._sync()

    def expect_rest(self, runs: int) -> None:
        """Declares that the study's sweeps will announce `runs` more runs from now on: the
        total is those already announced plus these (called before the first phase with the
        whole plan, and again whenever a choice made on the way fixes what is left)."""
        self.expect(self.added + int(runs))

    def add(self, runs: int) -> None:
        """A sweep's runs join the total (unless the study declared it)."""
        self.added += int(runs)
        if not self.declared:
            self.total += int(runs)
            self._sync()

    def drop(self, runs: int) -> None:
        """`runs` counted in the total will never finish (e.g. their variant diverged)."""
        self.dropped += max(int(runs), 0)
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

    def shown_total(self) -> int:
        """The total the bar shows: the declared (or announced) runs less the dropped ones,
        never below the runs done."""
        return max(self.total - self.dropped, self.done)

    def _show(self) -> tqdm:
        if self.bar is None:
            interactive = hasattr(self.file, "isatty") and self.file.isatty()
            self.bar = tqdm(total=self.shown_total(), desc=self.desc, file=self.file,
                            smoothing=0, bar_format=BAR_FORMAT,
                            mininterval=0.5 if interactive else 30.0,
                            dynamic_ncols=interactive)  # fmt: skip
            self._sync()
        return self.bar

    def _sync(self) -> None:
        """Brings the bar to the counts: cached runs as its `initial`, outside the speed."""
        if self.bar is None:
            if self.done > self.cached:
                self._show()
            return
        self.bar.total = self.shown_total()
        self.bar.initial = self.cached
        self.bar.n = self.done
        self.bar.refresh()


def current() -> StudyProgress | None:
    """The open study's display, if any."""
    return _open


def expect_rest(runs: int) -> None:
    """`StudyProgress.expect_rest` on the open study's display; nothing when none is open."""
    if _open is not None:
        _open.expect_rest(runs)


def drop(runs: int) -> None:
    """`StudyProgress.drop` on the open study's display; nothing when none is open."""
    if _open is not None:
        _open.drop(runs)


def done() -> int:
    """Runs done so far in the open study (0 when none is open)."""
    return 0 if _open is None else _open.done


@dataclasses.dataclass
class Plan:
    """A planning pass (`planning`): the runs its sweeps counted, and the stand-in results
    each planned run hands back to the study's code (only what that code reads, e.g. a
    validation accuracy that ties every choice)."""

    results: Mapping[str, Any]
    runs: int = 0

    def count(
        self, configs: Mapping[str, Any], seeds: Sequence[int], run_dir: Callable[[str, int], str]
    ) -> list[dict[str, Any]]:
        """One sweep's runs counted; its rows in `run_sweep`'s order, status 'planned'."""
        self.runs += len(configs) * len(seeds)
        return [
            {"variant": v, "seed": s, "run_dir": run_dir(v, s),
             "results": copy.deepcopy(dict(self.results)), "status": "planned"}
            for v in configs
            for s in seeds
        ]  # fmt: skip


@contextlib.contextmanager
def planning(results: Mapping[str, Any]) -> Iterator[Plan]:
    """Within the block every `run_sweep` trains and reads nothing: it counts its runs into the
    yielded `Plan` and returns rows holding `results`, and per-run lines are not printed. A
    study runs its own phases inside it to count its whole total before it trains (the
    choices made on stand-in results are stand-ins too: recount once the real ones are made)."""
    global _plan
    if _plan is not None:
        raise RuntimeError("progress.planning: already planning; plans do not nest")
    _plan = Plan(results)
    try:
        yield _plan
    finally:
        _plan = None


def planning_now() -> Plan | None:
    """The planning pass in progress, if any (`run_sweep` asks)."""
    return _plan


def say(text: str) -> None:
    """A per-run line: with a study open, printed only when it is verbose; else printed."""
    if _plan is not None:  # a planning pass: its rows are stand-ins
        return
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
