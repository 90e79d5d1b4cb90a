"""Where a train step's CPU time goes: `perf record` on a warm worker, summed by library and
by symbol (kernel page-fault handling, XLA's own code, oneDNN/YNNPACK/Eigen kernels, ...).

Needs Linux `perf` (Debian: linux-perf) allowed to sample the process (perf_event_paranoid
<= 2 for one's own processes); `available()` says whether it can run.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from benchmarks.interleave import Contender, Worker


def available() -> bool:
    return shutil.which("perf") is not None


def _report(data: Path, sort: str, top: int) -> list[tuple[float, str]]:
    """(percent, name) rows of `perf report --sort sort`, largest first."""
    out = subprocess.run(
        ["perf", "report", "-i", str(data), "--stdio", "--sort", sort, "--percent-limit", "0.5"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    rows = []
    for line in out.splitlines():
        parts = line.split(None, 1)
        if len(parts) == 2 and parts[0].endswith("%") and not line.lstrip().startswith("#"):
            rows.append((float(parts[0].rstrip("%")), " ".join(parts[1].split())))
    return rows[:top]


def profile(contender: Contender, steps: int, top: int = 10) -> dict:
    """Samples a warm worker for `steps` steps; top shared objects and symbols by CPU share."""
    worker = Worker(contender)
    try:
        worker.run(2)  # warm
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "perf.data"
            cmd = ["perf", "record", "-F", "499", "-p", str(worker.proc.pid), "-o", str(data)]
            perf = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.5)  # let perf attach
            reply = worker.run(steps)
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=60)
            return {
                "name": contender.name,
                "sec_per_step": reply["sec"] / steps,
                "dso": _report(data, "dso", top),
                "symbol": _report(data, "dso,sym", top),
            }
    finally:
        worker.close()


def markdown(result: dict) -> str:
    """Two short lists: CPU share by library and by symbol."""
    lines = [f"**{result['name']}** ({1000 * result['sec_per_step']:.1f} ms/step while sampled)"]
    lines.append("")
    lines.append("| % CPU | library |")
    lines.append("| --- | --- |")
    lines += [f"| {p:.1f} | {name} |" for p, name in result["dso"]]
    lines.append("")
    lines.append("| % CPU | library, symbol |")
    lines.append("| --- | --- |")
    lines += [f"| {p:.1f} | `{name[:110]}` |" for p, name in result["symbol"]]
    return "\n".join(lines)
