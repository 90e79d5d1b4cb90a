"""One process per workdir: an exclusive `flock` on `<workdir>/.lock` while a run writes there.

A second process on the same workdir stops at once with one line naming the holder (pid,
host, start time) instead of interleaving its metrics and checkpoints with the first one's.
The kernel releases a `flock` when its process dies, so a lock file left by a killed run
is simply taken over. The file is removed on release (under the lock; an acquirer checks
that the file it locked is still the one on disk), so a finished workdir holds no lock file.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import socket
import time
from pathlib import Path

LOCK_NAME = ".lock"


class WorkdirLockedError(ValueError):
    """Another live process holds the workdir."""


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text())
        started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(info["start"]))
        return f"pid {info['pid']} on host {info['host']} since {started}"
    except (OSError, ValueError, KeyError, TypeError):
        return "another process (no holder information yet)"


class WorkdirLock:
    """Context manager holding the workdir's lock; raises WorkdirLockedError when taken."""

    def __init__(self, workdir: str | os.PathLike):
        self.path = Path(workdir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Takes the lock (creating the workdir's lock file) or raises WorkdirLockedError."""
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise WorkdirLockedError(
                    f"workdir: {self.path.parent} is in use by {_holder(self.path)}; allowed: "
                    "wait for that run to finish (or stop it), or use another --workdir"
                ) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)  # the holder removed the file as we locked it: lock the new one
        info = {"pid": os.getpid(), "host": socket.gethostname(), "start": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        self._fd = fd

    def _open(self) -> int:
        """The lock file's descriptor, never through a symbolic link (a `.lock` link would
        make the lock write into whatever it points to)."""
        try:
            return os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as e:
            if e.errno not in (errno.ELOOP, errno.EISDIR):
                raise
            what = "a symbolic link" if self.path.is_symlink() else "a directory"
            raise WorkdirLockedError(
                f"workdir: {self.path} is {what}, not this project's lock file; allowed: a "
                "workdir whose .lock the trainer made (remove that entry if you made it)"
            ) from None

    def release(self) -> None:
        """Removes the lock file and releases the lock; idempotent."""
        if self._fd is None:
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._fd)
        self._fd = None

    def __enter__(self) -> WorkdirLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
