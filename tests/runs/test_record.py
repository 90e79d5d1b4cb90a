"""cnn_jax.runs.record: provenance, refusals, atomic publish, no silent overwrite; README blocks."""

from __future__ import annotations

import json
import os
import platform
import socket
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

from cnn_jax.datasets import Dataset, Split
from cnn_jax.runs import readme_blocks, record
from tests.conftest import REPO
from tests.runs.conftest import CLEAN_TREE


def _split(n: int, seed: int) -> Split:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (n, 4, 4, 1), dtype=np.uint8)
    return Split(images, rng.integers(0, 10, n).astype(np.int32))


def _dataset(name: str = "toy", seed: int = 0) -> Dataset:
    return Dataset(
        name, _split(6, seed), _split(3, seed + 1), _split(4, seed + 2), 10, (4, 4, 1),
        (0.5,), (0.2,), tuple("0123456789"),
    )  # fmt: skip


@pytest.fixture
def workdir(tmp_path):
    wd = tmp_path / "wd"
    (wd / "plots").mkdir(parents=True)
    (wd / "readme.md").write_text("| variant | acc |\n|---|---|\n| a | 0.9 |\n")
    (wd / "summary.csv").write_text("variant,acc\na,0.9\n")
    (wd / "plots" / "acc.png").write_bytes(b"\x89PNG fake")
    return wd


def _publish(workdir, root, config=None, files=("readme.md", "*.csv", "plots"), **kw):
    config = config or ml_collections.ConfigDict({"train": {"num_epochs": 3}})
    kw.setdefault("dataset", _dataset())
    return record.publish(
        "toy_study", workdir, list(files), config=config, wall_time_sec=61.5,
        results_root=root, **kw,
    )  # fmt: skip


def test_provenance_fields(workdir, tmp_path):
    ds = _dataset()
    out = _publish(workdir, tmp_path / "results", dataset=ds, load_at_start=(1.0, 2.0, 3.0))
    assert out == tmp_path / "results" / "toy_study"
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()) == [
        "plots/acc.png", "provenance.json", "readme.md", "summary.csv",
    ]  # fmt: skip
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["study"] == "toy_study"
    # pytest's own command (`python -m pytest`, or an xdist worker's `python -c ...`)
    assert prov["command"].startswith("python -") and str(REPO) not in prov["command"]
    assert prov["config"] == {"train": {"num_epochs": 3}}
    assert prov["datasets"][0]["name"] == "toy"
    assert prov["datasets"][0]["checksum_sha256"] == record.dataset_checksum(ds)
    assert prov["datasets"][0]["sizes"] == {"train": 6, "validation": 3, "test": 4}
    assert prov["machine"]["hostname"] == socket.gethostname()
    assert prov["machine"]["cpu_count"] == os.cpu_count()
    assert prov["machine"]["platform"] == platform.platform()
    assert prov["load_average"]["at_start"] == [1.0, 2.0, 3.0]
    assert len(prov["load_average"]["at_publish"]) == 3
    assert prov["wall_time_sec"] == 61.5
    assert prov["date_utc"].endswith("Z") and prov["date_utc"][:2] == "20"
    assert prov["versions"]["python"] == platform.python_version()
    assert prov["versions"]["numpy"] == np.__version__
    assert prov["versions"]["jax"] and prov["versions"]["flax"]
    assert prov["git"] == CLEAN_TREE
    assert prov["files"]["summary.csv"]["bytes"] == len("variant,acc\na,0.9\n")


def _run_results(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(fields))


def test_training_time_sums_each_program_once_and_the_footer_reads_it_back(workdir, tmp_path):
    """A resumed study's own wall time is short; the record also says what its runs cost."""
    _run_results(workdir, wall_time_sec=9.0)  # the study's own results.json: not a program
    _run_results(workdir / "runs" / "a", run_identity="x", wall_time_sec=100.0)
    _run_results(workdir / "runs" / "a" / "seed_0", run_identity="x", vmapped_parent="..",
                 wall_time_sec=100.0)  # fmt: skip
    _run_results(workdir / "runs" / "b" / "seed_1", run_identity="y", wall_time_sec=20.5)
    (workdir / "runs" / "c").mkdir()
    (workdir / "runs" / "c" / "results.json").write_text("{not json")
    out = _publish(workdir, tmp_path / "results")
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["training"] == {"programs": 2, "wall_time_sec": 120.5}
    footer = readme_blocks.footer("toy_study", prov)
    assert "wall 1 min 02 s (training: 2 programs, 2 min 00 s summed)" in footer
    assert "training" not in readme_blocks.footer("toy_study", {**prov, "training": None})


def test_explicit_command(workdir, tmp_path):
    out = _publish(workdir, tmp_path / "r", command="python -m experiments.x --config=c.py")
    assert json.loads((out / "provenance.json").read_text())["command"].endswith("--config=c.py")


def test_maybe_publish_only_with_record_as(workdir, tmp_path):
    config = ml_collections.ConfigDict({"experiment": {"record_as": ""}})
    kw = dict(dataset=_dataset(), wall_time_sec=1.0, results_root=tmp_path / "r")
    assert record.maybe_publish(config, workdir, ["readme.md"], **kw) is None
    assert not (tmp_path / "r").exists()
    config.experiment.record_as = "study_x"
    assert record.maybe_publish(config, workdir, ["readme.md"], **kw) == tmp_path / "r" / "study_x"


def test_checksum_follows_the_data():
    a, b = _dataset(), _dataset()
    assert record.dataset_checksum(a) == record.dataset_checksum(b)
    b.test.images[0, 0, 0, 0] ^= 1  # one pixel
    assert record.dataset_checksum(a) != record.dataset_checksum(b)
    c = _dataset()
    c.validation.labels[0] = (c.validation.labels[0] + 1) % 10  # one label
    assert record.dataset_checksum(a) != record.dataset_checksum(c)
    assert record.dataset_checksum(a) == record.dataset_checksum(_dataset(name="renamed"))


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("pred.npz", b"x", "pred.npz"),
        ("arr.npy", b"x", "arr.npy"),
        ("big.png", b"0" * (record.MAX_FILE_BYTES + 1), "big.png: 2.0 MB"),
        ("checkpoints/10/state", b"x", "checkpoints/10/state: a checkpoint"),
    ],
)
def test_refuses_with_one_line(workdir, tmp_path, name, content, needle):
    (workdir / name).parent.mkdir(parents=True, exist_ok=True)
    (workdir / name).write_bytes(content)
    with pytest.raises(ValueError) as e:
        _publish(workdir, tmp_path / "results", files=["readme.md", name])
    assert needle in str(e.value) and "\n" not in str(e.value)
    assert not (tmp_path / "results" / "toy_study").exists()


def test_refuses_missing_glob_and_checkpoint_folder(workdir, tmp_path):
    with pytest.raises(ValueError, match=r"'\*.svg' matches nothing"):
        _publish(workdir, tmp_path / "r", files=["readme.md", "*.svg"])
    (workdir / "checkpoints").mkdir()
    with pytest.raises(ValueError, match="a checkpoint"):
        _publish(workdir, tmp_path / "r", files=["checkpoints"])
    with pytest.raises(ValueError, match="study"):
        record.publish("../x", workdir, ["readme.md"], config={}, dataset=_dataset(),
                       wall_time_sec=1, results_root=tmp_path)  # fmt: skip


def test_identical_rerun_is_a_no_op(workdir, tmp_path):
    out = _publish(workdir, tmp_path / "results")
    before = (out / "provenance.json").read_text()
    assert _publish(workdir, tmp_path / "results") == out
    assert (out / "provenance.json").read_text() == before  # first provenance kept
    assert not (tmp_path / "results" / record.SUPERSEDED).exists()


def test_different_record_is_moved_aside_not_overwritten(workdir, tmp_path, capsys):
    root = tmp_path / "results"
    out = _publish(workdir, root)
    (workdir / "summary.csv").write_text("variant,acc\na,0.8\n")
    assert _publish(workdir, root) == out
    assert (out / "summary.csv").read_text().endswith("0.8\n")
    (aside,) = (root / record.SUPERSEDED / "toy_study").iterdir()
    assert (aside / "summary.csv").read_text().endswith("0.9\n")
    assert "moved to" in capsys.readouterr().out
    # a changed config alone (same files) is a different record too
    _publish(workdir, root, config=ml_collections.ConfigDict({"train": {"num_epochs": 9}}))
    assert len(list((root / record.SUPERSEDED / "toy_study").iterdir())) == 2
    assert json.loads((out / "provenance.json").read_text())["config"]["train"]["num_epochs"] == 9


def test_failed_copy_leaves_old_record_and_no_temp(workdir, tmp_path, monkeypatch):
    root = tmp_path / "results"
    out = _publish(workdir, root)
    (workdir / "summary.csv").write_text("changed\n")

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(record.shutil, "copyfile", boom)
    with pytest.raises(OSError, match="disk full"):
        _publish(workdir, root)
    assert (out / "summary.csv").read_text().endswith("0.9\n")
    assert sorted(p.name for p in root.iterdir()) == ["toy_study"]


# README blocks -------------------------------------------------------------------------------


def _readme(tmp_path, body: str):
    path = tmp_path / "README.md"
    path.write_text(body)
    return path


def _cli(readme, results, *flags):
    return readme_blocks.main([*flags, "--readme", str(readme), "--results", str(results)])


def test_readme_block_regenerated_and_check(workdir, tmp_path, capsys):
    results = tmp_path / "results"
    _publish(workdir, results, command="/x/.venv/bin/python -m experiments.toy --config=c.py")
    readme = _readme(tmp_path, "# P\n<!-- results:toy_study -->\nhand typed\n"
                     "<!-- /results:toy_study -->\ntail\n")  # fmt: skip
    assert _cli(readme, results, "--check") == 1
    assert "stale: README block results:toy_study" in capsys.readouterr().err
    assert _cli(readme, results) == 0
    text = readme.read_text()
    assert "hand typed" not in text and "| a | 0.9 |" in text and text.endswith("tail\n")
    assert "`python -m experiments.toy --config=c.py`" in text and "wall 1 min 02 s" in text
    assert _cli(readme, results, "--check") == 0
    assert _cli(readme, results) == 0 and readme.read_text() == text  # idempotent
    # new results make the README stale again
    (workdir / "readme.md").write_text("| variant | acc |\n| a | 0.5 |\n")
    _publish(workdir, results)
    assert _cli(readme, results, "--check") == 1


def test_readme_notes_a_study_without_block(workdir, tmp_path, capsys):
    _publish(workdir, tmp_path / "results")
    assert _cli(_readme(tmp_path, "# P\n"), tmp_path / "results", "--check") == 0
    assert "toy_study has no README block" in capsys.readouterr().out


def test_readme_relinks_record_files(workdir, tmp_path):
    (workdir / "readme.md").write_text(
        "![acc](plots/acc.png) [w](https://x.org/a.png) [m](nope.png)\n"
    )
    _publish(workdir, tmp_path / "results")
    readme = _readme(tmp_path, "<!-- results:toy_study -->\n<!-- /results:toy_study -->\n")
    assert _cli(readme, tmp_path / "results") == 0
    text = readme.read_text()
    assert "](results/toy_study/plots/acc.png)" in text
    assert "](https://x.org/a.png)" in text and "](nope.png)" in text


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ("<!-- results:gone -->\n<!-- /results:gone -->\n", "results:gone: "),
        ("<!-- results:a -->\n", "never closed"),
        ("<!-- results:a -->\n<!-- results:b -->\n", "opens inside a"),
        ("<!-- /results:a -->\n", "closes no open block"),
    ],
)
def test_readme_bad_markers_one_line(tmp_path, capsys, body, needle):
    (tmp_path / "results").mkdir()
    assert _cli(_readme(tmp_path, body), tmp_path / "results", "--check") == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1


def test_readme_without_markers_is_unchanged(tmp_path):
    readme = _readme(tmp_path, "# P\nsyntax: `<!-- results:<study> -->`\n")
    assert _cli(readme, tmp_path / "results", "--check") == 0
    assert _cli(readme, tmp_path / "results") == 0
    assert readme.read_text() == "# P\nsyntax: `<!-- results:<study> -->`\n"


@pytest.mark.parametrize("study", ["", "''", ".hidden", "a/b", "..", "with space"])
def test_publish_refuses_a_study_name_that_is_not_a_plain_folder_name(workdir, tmp_path, study):
    with pytest.raises(ValueError, match="^study: "):
        record.publish(
            study,
            workdir,
            ["*.md"],
            config={},
            dataset=None,
            wall_time_sec=1.0,
            results_root=tmp_path / "results",
        )
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_the_checkouts_tree_state_is_gits():
    head = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, cwd=REPO)
    if head.returncode != 0:
        pytest.skip("no git checkout")
    from cnn_jax.runs.provenance import _git_state

    state = _git_state(record.repo_root())
    assert state["revision"] == head.stdout.strip() and isinstance(state["dirty"], bool)


DIRTY_TREE = {"revision": "0123456789abcdef", "dirty": True, "dirty_files": ["cnn_jax/a.py"]}


def test_a_dirty_tree_is_refused_unless_allowed(workdir, tmp_path, monkeypatch):
    monkeypatch.setattr(record, "tree_state", lambda: dict(DIRTY_TREE))
    with pytest.raises(ValueError) as info:
        _publish(workdir, tmp_path / "r")
    message = str(info.value)
    assert "\n" not in message and "cnn_jax/a.py" in message
    assert "experiment.record_allow_dirty=True" in message and not (tmp_path / "r").exists()
    out = _publish(workdir, tmp_path / "r", allow_dirty=True)
    git = json.loads((out / "provenance.json").read_text())["git"]
    assert git["dirty"] is True and git["dirty_allowed"] is True
    footer = readme_blocks.footer("toy_study", json.loads((out / "provenance.json").read_text()))
    assert "(dirty tree, published with experiment.record_allow_dirty)" in footer


def test_a_config_allows_a_dirty_tree_and_is_checked_before_the_study(workdir, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    monkeypatch.setattr(record, "tree_state", lambda: dict(DIRTY_TREE))
    config = ml_collections.ConfigDict({"experiment": {"record_as": "study_x"}})
    with pytest.raises(ValueError, match="^record: study_x would be published from a tree"):
        record.check_publishable(config)
    config.experiment.record_allow_dirty = True
    record.check_publishable(config)
    kw = dict(dataset=_dataset(), wall_time_sec=1.0, results_root=tmp_path / "r")
    assert record.maybe_publish(config, workdir, ["readme.md"], **kw) == tmp_path / "r" / "study_x"
    record.check_publishable(ml_collections.ConfigDict({"experiment": {"record_as": ""}}))


def test_the_recorded_command_names_a_module_and_no_machine_path(workdir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    script = tmp_path / "experiments" / "toy.py"
    command = f"{sys.executable} {script} --workdir={tmp_path / 'runs' / 'a'} --config=c.py"
    out = _publish(workdir, tmp_path / "r", command=command)
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["command"] == "python -m experiments.toy --workdir=runs/a --config=c.py"


def test_footers_of_older_records_lose_the_machine_paths():
    prov = {"command": "/srv/repo/experiments/hyperparameters.py --config=x.py "
                       "--workdir=/srv/repo/runs/h", "cwd": "/srv/repo",
            "git": {"revision": "abcdef0123456", "dirty": True}}  # fmt: skip
    footer = readme_blocks.footer("s", prov)
    assert "`python -m experiments.hyperparameters --config=x.py --workdir=runs/h`" in footer
    assert "/srv" not in footer and "(dirty tree)" in footer
