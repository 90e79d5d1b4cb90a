"""A K-member run's records: each member's results.json points back to the run that trained it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cnn_jax import run_results
from cnn_jax.outputs.writers import read_json
from cnn_jax.runs import compare
from cnn_jax.runs.load import load_run
from cnn_jax.train import train_and_evaluate
from experiments.configs import smoke


@pytest.fixture(scope="module")
def two_seeds(tmp_path_factory, data_dir: Path) -> Path:
    config = smoke.get_config()
    config.dataset.data_dir = str(data_dir)
    config.dataset.options = {"canvas_size": 16, "train_subset": 128}
    config.train.update(num_epochs=1, num_seeds=2, eval_train_at_end=False)
    root = tmp_path_factory.mktemp("k2")
    train_and_evaluate(config, root / "run")
    train_and_evaluate(config, root / "other")  # a second, equally valid K-member run
    return root


def test_a_member_leads_back_to_the_run_that_trained_it(two_seeds: Path):
    member = two_seeds / "run" / "seed_1"
    results = read_json(member / "results.json")
    assert run_results.member_parent(member, results).resolve() == (two_seeds / "run").resolve()
    assert load_run(member).step == read_json(two_seeds / "run" / "results.json")["steps"]


@pytest.mark.parametrize(
    "parent",
    [".", "OTHER_RUN", "/etc", "", 3, None],
    ids=["itself", "another-finished-run", "absolute", "empty", "number", "null"],
)
def test_a_redirect_the_parent_does_not_list_is_refused(tmp_path: Path, two_seeds: Path, parent):
    if parent == "OTHER_RUN":  # a real K-member run, but not the one that trained this member
        parent = str(two_seeds / "other")
    member = tmp_path / "run" / "seed_1"
    member.mkdir(parents=True)
    results = dict(read_json(two_seeds / "run" / "seed_1" / "results.json"), vmapped_parent=parent)
    (member / "results.json").write_text(json.dumps(results))
    message = f"{member / 'results.json'}: vmapped_parent {parent!r} is not the run that trained"
    with pytest.raises(ValueError, match="is not the run that trained") as refused:
        run_results.member_parent(member, results)
    assert str(refused.value).startswith(message) and "\n" not in str(refused.value)
    for reader in (load_run, compare.load_run):  # every reader refuses it the same way
        with pytest.raises(ValueError, match="is not the run that trained"):
            reader(member)
