"""scripts/device_wheels.py: which wheels an offline machine needs (pure parts; no network)."""

from __future__ import annotations

import pytest

from tests.conftest import REPO
from tests.scripts.helpers import load_script

dw = load_script("device_wheels")


def test_names_normalize_and_pins_parse() -> None:
    assert dw.normalize("Array_Record") == dw.normalize("array-record") == "array-record"
    lines = ["# pip freeze", "", "jax==0.11.2", "Flax", "-e git+https://x/y", "x @ file:///z"]
    assert dw.parse_pins(lines) == {"jax": "0.11.2", "flax": None}
    with pytest.raises(ValueError, match=r"installed package 'jax>=1' not allowed"):
        dw.parse_pins(["jax>=1"])


def test_constraints_take_the_targets_versions_over_the_locks() -> None:
    lock = {"jax": "0.10.2", "promise": "2.3", "numpy": "2.4.6"}
    installed = {"jax": "0.11.2", "numpy": None, "torch": "2.11.0"}
    assert dw.constraints(lock, installed) == ["jax==0.11.2", "promise==2.3", "torch==2.11.0"]


def test_missing_is_the_resolution_minus_the_installed_set() -> None:
    resolved = {"jax": "0.11.2", "tensorflow_datasets": "4.9.10", "promise": "2.3"}
    assert dw.missing(resolved, ["JAX", "numpy"]) == {
        "promise": "2.3",
        "tensorflow-datasets": "4.9.10",
    }


def test_the_gpu_machines_list_keeps_their_builds_and_lacks_the_projects_extras() -> None:
    installed = dw.parse_pins(dw.GPU_MACHINE_PACKAGES)
    assert installed["jax"] == installed["jaxlib"] == "0.11.2" and installed["torch"] == "2.11.0"
    needed = {dw.normalize(r.split(">")[0].split("=")[0]) for r in dw.project_requirements(
        REPO / "pyproject.toml")}  # fmt: skip
    lacking = needed - set(installed)
    assert {"tensorflow-datasets", "array-record", "ml-collections", "dm-pix"} <= lacking
    assert {"tensorboardx", "submitit"} <= lacking and "jax" not in lacking


def test_wheel_names_and_stale_files() -> None:
    name = "array_record-0.8.6-cp312-cp312-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    assert dw.wheel_name_version(name) == ("array-record", "0.8.6")
    with pytest.raises(ValueError, match="not a wheel file name"):
        dw.wheel_name_version("promise-2.3.tar.gz")
    files = [
        "promise-2.3-py3-none-any.whl",
        "promise-2.2-py3-none-any.whl",
        "six-1-py3-none-any.whl",
    ]
    assert dw.stale(files, {"promise": "2.3"}) == files[1:]


def test_size_limit_counts_the_tree_too() -> None:
    assert dw.fits(10 * 2**20, 4 * 2**20)
    assert not dw.fits(61 * 2**20, 3 * 2**20)


def test_packages_without_a_wheel_are_read_off_both_of_pips_wordings() -> None:
    plain = "ERROR: No matching distribution found for promise (from tensorflow-datasets)"
    listed = (
        "Additionally, some packages in these conflicts have no matching distributions "
        "available for your environment:\n    promise\n    other-pkg\n\nTo fix this you could"
    )
    assert dw.without_wheel(plain) == ["promise"]
    assert dw.without_wheel(listed) == ["promise", "other-pkg"]
    assert dw.without_wheel("ERROR: ResolutionImpossible") == []


def test_target_options_select_python_312_manylinux() -> None:
    opts = dw.target_options("3.12")
    assert "--only-binary=:all:" in opts and opts[opts.index("--python-version") + 1] == "3.12"
    platforms = {opts[i + 1] for i, o in enumerate(opts) if o == "--platform"}
    assert {"manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"} <= platforms


def test_bad_python_version_is_one_line() -> None:
    with pytest.raises(SystemExit, match=r"--python-version '312' not allowed; allowed: 3.N"):
        dw.main(["--python-version", "312"])
