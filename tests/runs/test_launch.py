"""The `launcher` config section: one-line errors, the launcher it builds, local jobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from cnn_jax.config import launcher
from cnn_jax.config_validation import validate_config
from cnn_jax.runs import launch
from experiments.configs import smoke


@pytest.mark.parametrize(
    "section, message",
    [
        ({"name": "pbs"}, r"^launcher\.name: 'pbs' not allowed; allowed: local, slurm$"),
        ({"nmae": "slurm"}, r"^launcher\.nmae: unknown key \['nmae'\]; allowed: name, "),
        ({"timeout_min": 0}, r"^launcher\.timeout_min: 0 not allowed; allowed: an integer >= 1$"),
        ({"cpus_per_task": 1.5}, r"^launcher\.cpus_per_task: 1\.5 not allowed; allowed: an int"),
        ({"gpus_per_node": True}, r"^launcher\.gpus_per_node: True not allowed"),
        ({"mem_gb": "lots"}, r"^launcher\.mem_gb: 'lots' not allowed; allowed: a number >= 0$"),
        ({"partition": 3}, r"^launcher\.partition: 3 not allowed; allowed: a string$"),
        ({"max_pending_min": 0}, r"^launcher\.max_pending_min: 0 not allowed; allowed: a num"),
    ],
)
def test_bad_fields_are_one_line(section, message):
    with pytest.raises(ValueError, match=message):
        launch.make_launcher(section, workdir="w")


def test_validate_config_checks_the_section_before_training():
    config = smoke.get_config()
    config.launcher.name = "lsf"
    with pytest.raises(ValueError, match=r"^launcher\.name: 'lsf' not allowed"):
        validate_config(config)


def test_local_is_the_default_and_slurm_gets_the_resources(tmp_path: Path):
    assert isinstance(launch.make_launcher(None), launch.LocalLauncher)
    assert launch.configured(smoke.get_config(), tmp_path) is None  # base config: local
    section = dict(launcher.default_config().to_dict(), name="slurm", partition="gpu")
    section.update(timeout_min=30, gpus_per_node=1, mem_gb=8, array_parallelism=4)
    slurm = launch.make_launcher(section, workdir=tmp_path)
    assert isinstance(slurm, launch.SlurmLauncher)
    assert slurm.folder == tmp_path / "slurm"
    assert slurm.max_pending_min == 1440  # the default: a day
    assert slurm.parameters == {
        "timeout_min": 30,
        "cpus_per_task": 4,
        "gpus_per_node": 1,
        "slurm_array_parallelism": 4,
        "slurm_partition": "gpu",
        "mem_gb": 8.0,
    }
    with pytest.raises(ValueError, match=r"^launcher\.folder: not set"):
        launch.make_launcher({"name": "slurm"})


def test_local_launcher_and_unit_outside_a_job_just_call_the_function():
    calls = []
    jobs = [(f"u{i}", lambda **kw: calls.append(kw) or kw["i"], {"i": i}) for i in range(3)]
    assert launch.LocalLauncher().run(jobs) == [0, 1, 2]
    assert launch.SlurmUnit(lambda x: x + 1)(x=1) == 2  # no submitit signal handler here
    assert [c["i"] for c in calls] == [0, 1, 2]


class _FakeJob:
    """The part of a submitit job `SlurmLauncher._wait` reads."""

    def __init__(self, folder: Path, job_id: str, error: Exception | None = None):
        self.job_id, self._error = job_id, error
        result = folder / f"{job_id}_0_result.pkl"  # written: the job has ended
        result.write_bytes(b"")
        self.paths = type("Paths", (), {"stderr": folder / f"{job_id}_0_log.err"})()
        self.paths.result_pickle = result

    def exception(self) -> Exception | None:
        return self._error

    def result(self) -> str:
        if self._error is not None:
            raise self._error
        return f"ok {self.job_id}"


def test_failed_units_are_one_line_and_exit_status_1(tmp_path: Path, capsys):
    from experiments import cli

    slurm = launch.make_launcher({"name": "slurm"}, workdir=tmp_path)
    slurm.verbose = False
    error = RuntimeError("Traceback (most recent call last):\n  ...\nValueError: boom")
    jobs = [_FakeJob(tmp_path, "11"), _FakeJob(tmp_path, "12", error)]
    with pytest.raises(launch.UnitsFailed) as raised:
        slurm._wait(["a", "b"], jobs)
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("1 of 2 SLURM jobs failed: b (job 12: ValueError: boom; log ")
    assert slurm._wait(["a"], jobs[:1]) == ["ok 11"]

    def fail() -> None:
        raise raised.value

    with pytest.raises(SystemExit) as exited:
        cli.run_guarded(fail)
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("UnitsFailed: 1 of 2 SLURM jobs failed")
