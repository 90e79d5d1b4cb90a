"""`load_run` reads the checkpoint its results.json describes, or refuses in one line; it never
falls back to an older step and never writes, cleans or renames anything in the run."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from cnn_jax.outputs.writers import read_json
from cnn_jax.runs.load import load_run
from cnn_jax.system.checkpoint import NoReadableCheckpointError
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture(scope="module")
def finished(tmp_path_factory, data_dir: Path) -> Path:
    """A finished smoke run with a checkpoint at every step (the newest three kept)."""
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 128}
    config.train.update(checkpoint_every_steps=1, keep_checkpoints=3)
    workdir = tmp_path_factory.mktemp("load") / "run"
    train_and_evaluate(config, workdir)
    return workdir


def listing(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def damage(step_dir: Path) -> None:
    for path in step_dir.rglob("*"):
        if path.is_file() and path.parent.name == "d":
            path.unlink()


def test_the_step_results_json_describes_is_loaded(finished: Path):
    assert load_run(finished).step == read_json(finished / "results.json")["steps"]


@pytest.mark.parametrize("how", ["damaged", "missing"])
def test_no_older_step_stands_in_for_the_final_one(finished: Path, tmp_path: Path, how: str):
    run = Path(shutil.copytree(finished, tmp_path / "run"))
    final = run / "checkpoints" / str(read_json(run / "results.json")["steps"])
    damage(final) if how == "damaged" else shutil.rmtree(final)
    (run / "checkpoints" / "99.orbax-checkpoint-tmp-1").mkdir()  # as a live save leaves it
    before = listing(run)
    with pytest.raises(NoReadableCheckpointError, match=f"checkpoint step {final.name}") as refused:
        load_run(run)
    assert "\n" not in str(refused.value)
    assert listing(run) == before  # nothing renamed, cleaned or written
