"""A K-member run's records: each member's results.json points back to the run that trained it."""

from __future__ import annotations

import json
import shutil
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


def test_each_members_predictions_keep_its_logits(two_seeds: Path):
    import numpy as np

    from cnn_jax.outputs import predictions

    for member in sorted((two_seeds / "run").glob("seed_*")):
        saved = predictions.load(predictions.path_of(member, "test"))
        logits = saved["logits"]
        assert logits.dtype == np.float16 and logits.shape == (len(saved["labels"]), 10)
        agree = np.mean(logits.astype(np.float32).argmax(-1) == saved["top1"])
        assert agree > 0.99  # float16 rounding may only break near-ties


def test_predictions_are_read_only_as_the_run_wrote_them(
    two_seeds: Path, tmp_path: Path, caplog, monkeypatch
):
    import logging

    import numpy as np

    from cnn_jax.outputs import predictions

    run = Path(shutil.copytree(two_seeds / "run", tmp_path / "run"))
    members = sorted(run.glob("seed_*"))
    assert predictions.correct_matrix(members).shape[0] == 2
    path = predictions.path_of(members[1], "test")
    saved = predictions.load(path)
    flipped = np.where(
        saved["top1"] == saved["labels"], (saved["labels"] + 1) % 10, saved["labels"]
    )
    predictions.save(path, labels_n=saved["labels"], top1_n=flipped, p_correct_n=saved["p_correct"])
    with pytest.raises(ValueError, match="differs from the file the run wrote") as refused:
        predictions.correct_matrix(members)  # well-formed, but not what the run wrote
    assert str(refused.value).startswith(f"predictions: {path} ") and "\n" not in str(refused.value)

    for member in members:  # results written before hashes were kept: readable, said once
        results = read_json(member / "results.json")
        del results[predictions.HASHES]
        (member / "results.json").write_text(json.dumps(results))
    monkeypatch.setattr(predictions, "_unverified_noted", False)
    with caplog.at_level(logging.WARNING, "cnn_jax.outputs.predictions"):
        predictions.correct_matrix(members)
        predictions.correct_matrix(members)
    assert len([r for r in caplog.records if "read unverified" in r.getMessage()]) == 1


def test_a_damaged_predictions_file_is_one_line(two_seeds: Path, tmp_path: Path):
    from cnn_jax.outputs import predictions

    path = tmp_path / "test.npz"
    data = predictions.path_of(two_seeds / "run" / "seed_0", "test").read_bytes()
    for damaged in (data[: len(data) // 2], data[:100] + bytes(len(data) - 100)):
        path.write_bytes(damaged)
        with pytest.raises(ValueError, match=f"predictions: {path} is unreadable") as refused:
            predictions.load(path)
        assert "\n" not in str(refused.value)
