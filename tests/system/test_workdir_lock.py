"""One process per workdir: a live holder is named, a dead one's lock is taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cnn_jax.system.workdir_lock import LOCK_NAME, WorkdirLock, WorkdirLockedError
from tests.conftest import child_pythonpath

HOLD = """
import sys, time
from cnn_jax.system.workdir_lock import WorkdirLock
with WorkdirLock(sys.argv[1]):
    print("HELD", flush=True)
    time.sleep(60)
"""


def test_second_holder_is_refused_naming_pid_host_and_start(tmp_path: Path):
    with WorkdirLock(tmp_path), pytest.raises(WorkdirLockedError) as refused:
        WorkdirLock(tmp_path).acquire()
    message = str(refused.value)
    assert f"pid {os.getpid()} on host {socket.gethostname()} since 20" in message
    assert message.startswith(f"workdir: {tmp_path} is in use") and "\n" not in message
    assert not (tmp_path / LOCK_NAME).exists()  # released: a finished workdir has no lock file


def test_lock_left_by_a_dead_process_is_taken_over(tmp_path: Path):
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    info = {"pid": int(dead.stdout), "host": socket.gethostname(), "start": time.time() - 99}
    (tmp_path / LOCK_NAME).write_text(json.dumps(info))
    with WorkdirLock(tmp_path):
        held = json.loads((tmp_path / LOCK_NAME).read_text())
        assert held["pid"] == os.getpid()


def test_a_live_process_in_another_interpreter_is_named(tmp_path: Path):
    env = dict(os.environ, PYTHONPATH=child_pythonpath())
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert holder.stdout.readline().strip() == "HELD"
        with pytest.raises(WorkdirLockedError, match=rf"in use by pid {holder.pid} on host"):
            WorkdirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    with WorkdirLock(tmp_path):  # the killed holder's lock is free again
        pass


@pytest.mark.parametrize("kind", ["symlink", "directory"])
def test_a_lock_entry_the_trainer_did_not_make_is_one_line_and_left_alone(
    tmp_path: Path, kind: str
):
    target = tmp_path / "precious.txt"
    target.write_text("keep me")
    lock = tmp_path / "run" / LOCK_NAME
    lock.parent.mkdir()
    if kind == "symlink":
        lock.symlink_to(target)
    else:
        lock.mkdir()
    with pytest.raises(WorkdirLockedError, match=rf"{LOCK_NAME} is a (symbolic link|directory)"):
        WorkdirLock(lock.parent).acquire()
    assert target.read_text() == "keep me"  # the link's target is never opened for writing
    assert lock.is_symlink() if kind == "symlink" else lock.is_dir()
