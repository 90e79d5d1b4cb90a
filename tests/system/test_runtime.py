"""Parsing of the run path's speed switches (cnn_jax.system.runtime); no timing here."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest

from cnn_jax.system import runtime

FLAG = runtime.DEFAULT_XLA_FLAGS[0] if runtime.DEFAULT_XLA_FLAGS else "--xla_made_up=1"


@pytest.fixture
def fresh(monkeypatch):
    """A runtime that believes no backend exists yet and never touches jax.config."""
    cache_dirs: list[str] = []
    monkeypatch.setattr(runtime, "backend_initialized", lambda: False)
    monkeypatch.setattr(runtime, "_jaxlib_version", lambda: runtime.FLAGS_TESTED_ON[0] + "0")
    monkeypatch.setattr(runtime, "enable_compilation_cache", lambda d: cache_dirs.append(str(d)))
    monkeypatch.setattr(runtime, "DEFAULT_XLA_FLAGS", (FLAG,))
    return cache_dirs


@pytest.mark.parametrize("value", ["0", "false", "No", " off "])
def test_off_values(value):
    assert runtime.is_off(value)


@pytest.mark.parametrize("value", [None, "", "1", "yes", "/tmp/cache"])
def test_not_off_values(value):
    assert not runtime.is_off(value)


def test_merge_keeps_user_flags_and_their_values():
    name = runtime.flag_name(FLAG)
    merged, added = runtime.merge_xla_flags(f"--xla_a=1 --{name}=mine", (FLAG, "--xla_b=2"))
    assert merged.split() == ["--xla_a=1", f"--{name}=mine", "--xla_b=2"]
    assert added == ("--xla_b=2",)


def test_flag_name():
    assert runtime.flag_name("--xla_foo=a=b") == "xla_foo"
    assert runtime.flag_name("--xla_bar") == "xla_bar"


def test_apply_sets_flags_and_default_cache(fresh, tmp_path):
    env = {"XLA_FLAGS": "--xla_a=1", "XDG_CACHE_HOME": str(tmp_path)}
    applied = runtime.apply(env)
    assert env["XLA_FLAGS"].split() == ["--xla_a=1", FLAG]
    assert applied.xla_flags == (FLAG,)
    assert fresh == [str(tmp_path / "cnn_jax" / "jax_compilation_cache")]
    assert applied.compilation_cache_dir == fresh[0] and applied.skipped == ()


def test_cache_dir_from_environment(fresh, tmp_path):
    applied = runtime.apply({runtime.ENV_CACHE: str(tmp_path / "c")})
    assert fresh == [str(tmp_path / "c")] and applied.compilation_cache_dir == fresh[0]


def test_each_switch_turns_its_setting_off(fresh):
    env = {runtime.ENV_XLA: "0", runtime.ENV_CACHE: "off"}
    applied = runtime.apply(env)
    assert "XLA_FLAGS" not in env and fresh == []
    assert applied.xla_flags == () and applied.compilation_cache_dir is None
    assert set(applied.skipped) == {f"{runtime.ENV_XLA}=0", f"{runtime.ENV_CACHE}=0"}


def test_master_switch_turns_everything_off(fresh):
    env = {runtime.ENV_ALL: "false", "XLA_FLAGS": "--xla_a=1"}
    applied = runtime.apply(env)
    assert env["XLA_FLAGS"] == "--xla_a=1" and fresh == []
    assert applied.xla_flags == () and applied.compilation_cache_dir is None


def test_flags_are_not_added_after_the_backend_exists(fresh, monkeypatch):
    monkeypatch.setattr(runtime, "backend_initialized", lambda: True)
    env: dict[str, str] = {runtime.ENV_CACHE: "0"}
    applied = runtime.apply(env)
    assert "XLA_FLAGS" not in env and applied.xla_flags == ()
    assert any("backend already" in s for s in applied.skipped)


def test_flags_are_not_added_on_an_untested_jaxlib(fresh, monkeypatch):
    monkeypatch.setattr(runtime, "_jaxlib_version", lambda: "99.0.0")
    env: dict[str, str] = {runtime.ENV_CACHE: "0"}
    applied = runtime.apply(env)
    assert "XLA_FLAGS" not in env
    assert any("untested on jaxlib 99.0.0" in s for s in applied.skipped)


def test_loaded_allocator_names_a_known_malloc():
    assert runtime.loaded_allocator() in ("tcmalloc", "jemalloc", "glibc", "unknown")


def test_allocator_env_preloads_an_installed_library(tmp_path):
    lib = tmp_path / "libtcmalloc_minimal.so.4"
    lib.write_bytes(b"")
    env = runtime.allocator_env({runtime.ENV_ALLOCATOR: str(lib), "LD_PRELOAD": "/x/libother.so"})
    assert env is not None
    assert env["LD_PRELOAD"] == f"{lib}:/x/libother.so"
    assert env[runtime.REEXEC_MARK] == "1"
    assert runtime.allocator_env(env) is None  # the re-executed process does not loop


@pytest.mark.parametrize(
    "environ",
    [
        {runtime.ENV_ALLOCATOR: "0"},
        {runtime.ENV_ALL: "off"},
        {runtime.ENV_ALLOCATOR: "/no/such/libtcmalloc.so"},
        {"LD_PRELOAD": "/usr/lib/libtcmalloc_minimal.so.4"},
        {runtime.REEXEC_MARK: "1"},
    ],
)
def test_allocator_env_does_nothing_when_off_missing_or_loaded(environ):
    assert runtime.allocator_env(environ) is None


def test_allocator_env_without_tcmalloc_installed(monkeypatch):
    monkeypatch.setattr(runtime, "TCMALLOC_CANDIDATES", ("/no/such/lib.so",))
    assert runtime.tcmalloc_path() is None
    assert runtime.allocator_env({}) is None


def _allocator_after_preload(extra_env: dict[str, str]) -> str:
    code = (
        "from cnn_jax.system import runtime as r; r.preload_allocator(); "
        "print(r.loaded_allocator())"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", runtime.REEXEC_MARK)}
    out = subprocess.run(
        [sys.executable, "-c", code], env={**env, **extra_env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


@pytest.mark.skipif(runtime.tcmalloc_path() is None, reason="libtcmalloc-minimal4 not installed")
def test_preload_allocator_reexecutes_with_tcmalloc():
    assert _allocator_after_preload({}) == "tcmalloc"


def test_preload_allocator_switched_off_keeps_glibc():
    assert _allocator_after_preload({runtime.ENV_ALLOCATOR: "0"}) == "glibc"


def test_an_unusable_compilation_cache_is_one_warning_and_no_cache(tmp_path, caplog):
    (tmp_path / "file").write_text("")  # a file where the cache's folder should be
    env = {"XDG_CACHE_HOME": str(tmp_path / "file" / "x"), runtime.ENV_XLA: "0"}
    with caplog.at_level(logging.WARNING, logger=runtime.__name__):
        applied = runtime.apply(env)
    assert applied.compilation_cache_dir is None
    (reason,) = [s for s in applied.skipped if "compilation cache" in s]
    assert "is unusable (Not a directory)" in reason and "CNN_JAX_COMPILATION_CACHE" in reason
    assert [r.getMessage() for r in caplog.records] == [reason]
