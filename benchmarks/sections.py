"""The benchmark sections: each returns (Markdown text, figures dict) for `benchmarks.run`.

Train-step figures come from worker processes run in turns (`interleave.py`); the loop
figures (`loop.py`) and the end-to-end runs come from subprocesses started with the run
path's settings, so the parent's own environment does not leak into any figure.
"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

from benchmarks import common
from benchmarks.interleave import Contender, Worker, interleave, ratio, rows, spread

MNIST_BATCH = 128
PRESET_COST = {"resnet_small": 3.0}  # ~3x mnist_cnn's FLOPs per image: fewer images per round
SMOKE_RUNS = (  # (experiment module, its smoke config)
    ("experiments.train", "experiments/configs/smoke.py"),
    ("experiments.anatomy.activations", "experiments/anatomy/configs/activations_smoke.py"),
    ("experiments.anatomy.hyperparameters", "experiments/anatomy/configs/hyperparameters_smoke.py"),
    ("experiments.regularization.main", "experiments/regularization/configs/smoke.py"),
    ("experiments.invariance.main", "experiments/invariance/configs/smoke.py"),
    ("experiments.anatomy.feature_maps", "experiments/anatomy/configs/feature_maps.py"),
)


E2E_COLUMNS = ("experiment", "config", "wall s", "test accuracy", "status")


@dataclasses.dataclass(frozen=True)
class Budget:
    """How long to time: images per contender per round, rounds, loop sizes."""

    images_per_round: int
    rounds: int
    seeds: int
    seed_steps: int
    pipeline_steps: int
    # K-seed strategies timed: the three that can win. The lax.map ones ('sequential',
    # 'chunked') ran at 0.03-0.11x K runs with K = 4, took most of a `--quick` run's 5.6 min,
    # and would take minutes at K = 8; `python -m benchmarks.loop seeds --strategies` times any.
    seed_strategies: tuple[str, ...] = ("unrolled", "chained", "vmap")

    def steps(self, batch: int, cost: float = 1.0) -> int:
        """Steps per round: `images_per_round` images (divided by `cost` for slow models)."""
        return max(2, round(self.images_per_round / cost / batch))


QUICK = Budget(images_per_round=640, rounds=3, seeds=4, seed_steps=3, pipeline_steps=10)
FULL = Budget(images_per_round=3840, rounds=7, seeds=8, seed_steps=10, pipeline_steps=60)


def _jax(preset: str, batch: int, **spec) -> dict:
    return {"backend": "jax", "preset": preset, "batch": batch, **spec}


def _torch(batch: int, preset: str = "mnist_cnn", **spec) -> dict:
    return {"backend": "torch", "preset": preset, "batch": batch, **spec}


def torch_available() -> bool:
    try:
        import importlib.util

        return importlib.util.find_spec("torch") is not None
    except ValueError:
        return False


TORCH_BEST = "torch channels_last +tcmalloc"
TORCH_COMPILE = "torch.compile channels_last +tcmalloc"


def torch_contenders(
    batch: int, preset: str = "mnist_cnn", *, eager: bool = True, compile: bool = False
) -> list[Contender]:
    """PyTorch eager as installed, its best eager setting here (channels_last, tcmalloc) and
    torch.compile (inductor, CPU) on top of that. Names say when tcmalloc is missing."""
    if not torch_available():
        return []
    tc = {"LD_PRELOAD": common.tcmalloc_path()} if common.tcmalloc_path() else {}
    suffix = "" if tc else " (no tcmalloc)"
    out = [Contender("torch eager", _torch(batch, preset))] if eager else []
    out.append(Contender(TORCH_BEST + suffix, _torch(batch, preset, channels_last=True), tc))
    if compile:
        spec = _torch(batch, preset, channels_last=True, compile=True)
        out.append(Contender(TORCH_COMPILE + suffix, spec, {**tc, **inductor_env()}))
    return out


_INDUCTOR_CACHE: list[str] = []


def inductor_env() -> dict[str, str]:
    """An inductor cache dir private to this benchmark run, so compile times are cold."""
    if not _INDUCTOR_CACHE:
        _INDUCTOR_CACHE.append(tempfile.mkdtemp(prefix="bench_inductor_"))
    return {"TORCHINDUCTOR_CACHE_DIR": _INDUCTOR_CACHE[0]}


def settings(budget: Budget, peak: float | None) -> tuple[str, dict]:
    """Each speed setting on and off, mnist_cnn at batch 128, next to PyTorch."""
    b = MNIST_BATCH
    tc = common.tcmalloc_path()
    flags = common.run_path_env(tcmalloc=False)
    contenders = [Contender("jax baseline (glibc, XLA defaults)", _jax("mnist_cnn", b))]
    if tc:
        contenders.append(Contender("jax +tcmalloc", _jax("mnist_cnn", b), {"LD_PRELOAD": tc}))
    if flags:
        contenders.append(Contender("jax +XLA flags", _jax("mnist_cnn", b), flags))
    run_path = common.run_path_env()
    contenders += [
        Contender("jax run path", _jax("mnist_cnn", b), run_path),
        Contender("jax run path, no tile pooling", _jax("mnist_cnn", b, tile_pool=False), run_path),
    ]
    contenders += torch_contenders(b)
    results = interleave(contenders, budget.steps(b), budget.rounds)
    by = {r.name: r for r in results}
    text = common.markdown_table(rows(results, results[0], peak))
    figures = {"rows": rows(results, results[0], peak)}
    notes = [] if tc else ["tcmalloc not installed: its rows are missing."]
    if "torch eager" in by:
        jax_best = by["jax run path"]
        figures["jax_over_torch_eager"] = ratio(jax_best, by["torch eager"])
        figures["jax_over_torch_best"] = ratio(jax_best, results[-1])
        notes.append(
            f"Run path / PyTorch eager: {spread(jax_best, by['torch eager'])} (median "
            f"[min, max] of per-round ratios); run path / {results[-1].name}: "
            f"{spread(jax_best, results[-1])}."
        )
    else:
        notes.append("PyTorch not installed (`pip install torch==2.13.0`): no PyTorch rows.")
    return text + "\n\n" + "\n".join(notes), figures


def conv_fence(budget: Budget) -> tuple[str, dict]:
    """The run path with and without `cnn_jax.nn.conv_fence`, at batch 128, in turns."""
    table, figures = [], {}
    for preset in ("resnet_small", "mnist_cnn"):
        on = Contender("fenced", _jax(preset, MNIST_BATCH), common.run_path_env())
        off = Contender("unfenced", _jax(preset, MNIST_BATCH, conv_fence=False), on.env)
        steps = budget.steps(MNIST_BATCH, PRESET_COST.get(preset, 1.0))
        fenced, unfenced = interleave([on, off], steps, budget.rounds)
        figures[preset] = ratio(fenced, unfenced)
        table.append(
            {
                "preset": preset,
                "img/s fenced": fenced.median,
                "img/s unfenced": unfenced.median,
                "x unfenced [min, max]": spread(fenced, unfenced),
            }
        )
    note = (
        "mnist_cnn has no convolution fed straight by batch norm, so both of its programs are "
        "the same: its row shows how far two identical contenders differ here."
    )
    return common.markdown_table(table) + "\n\n" + note, figures


def presets(
    names: list[str], batches: list[int], budget: Budget, peak: float | None, compile: bool
) -> tuple[str, dict]:
    """Every preset x batch: the run path vs PyTorch's best eager setting and torch.compile,
    then the targets (>= 1.3x both; >= 60% of the matmul peak at batch 128)."""
    table: list[dict] = []
    targets: list[dict] = []
    for preset in names:
        shape = common.PRESET_INPUTS[preset]
        for b in batches:
            contenders = [Contender("jax run path", _jax(preset, b), common.run_path_env())]
            contenders += torch_contenders(b, preset, eager=False, compile=compile)
            steps = budget.steps(b, PRESET_COST.get(preset, 1.0))
            results = interleave(contenders, steps, budget.rounds)
            for row in rows(results, results[0], peak):
                row = {"preset": preset, "input": "x".join(map(str, shape)), **row}
                row.pop(f"x {results[0].name} [min, max]")
                table.append(row)
            targets.append(_target_row(preset, b, results, peak))
            print(common.markdown_table(table[-len(results) :]), flush=True)
    text = common.markdown_table(table)
    text += "\n\n**Targets** (run path / PyTorch: median [min, max] of per-round ratios):\n\n"
    text += common.markdown_table(targets)
    if not compile and torch_available():
        text += (
            "\n\ntorch.compile rows skipped (`--quick`, or `--no-torch-compile`): inductor "
            "compiles each preset and batch for 0.5-7 minutes on this machine."
        )
    return text, {"rows": table, "targets": targets}


def _target_row(preset: str, batch: int, results: list, peak: float | None) -> dict:
    jax_r, out = results[0], {"preset": preset, "batch": batch}
    pct = 100 * jax_r.gflops / peak if peak else float("nan")
    out["run path % peak"] = pct
    for r in results[1:]:
        label = "torch.compile" if r.name.startswith("torch.compile") else "torch best eager"
        out[f"x {label}"] = spread(jax_r, r)
        out[f"{label} >= 1.3"] = "met" if ratio(jax_r, r) >= 1.3 else "missed"
    if batch == 128 and preset in ("mnist_cnn", "resnet_small"):
        out[">= 60% peak"] = "met" if pct >= 60 else "missed"
    return out


def compilation_cache(names: list[str]) -> tuple[str, dict]:
    """Train-step compile time with an empty persistent cache, then with a filled one."""
    table = []
    with tempfile.TemporaryDirectory() as cache:
        for preset in names:
            row: dict = {"preset": preset}
            for label in ("no cache", "cold cache", "warm cache"):
                spec = _jax(
                    preset, MNIST_BATCH, **({} if label == "no cache" else {"cache_dir": cache})
                )
                worker = Worker(Contender(label, spec, common.run_path_env()))
                row[f"{label} s"] = worker.result.compile_sec
                worker.close()
            table.append(row)
    return common.markdown_table(table), {"rows": table}


def loop(what: str, args: list[str]) -> dict:
    """Runs `benchmarks.loop` with the run path's settings; its JSON figures."""
    env = {**common.run_path_env(), "CNN_JAX_FAST": "0", "PYTHONPATH": str(common.REPO)}
    out = common.run_module("benchmarks.loop", [what, *args], env=env)
    return json.loads(out.strip().splitlines()[-1])


def pipeline(budget: Budget) -> tuple[str, dict]:
    """Real loader vs device-resident batch (mnist_cnn, MNIST or digits, batch 128)."""
    args = ["--steps", str(budget.pipeline_steps), "--rounds", str(budget.rounds)]
    fig = loop("pipeline", args)
    table = [
        {"input": "device-resident batch", "img/s": fig["resident"], "overhead %": 0.0},
        {
            "input": "loader + prefetch 2",
            "img/s": fig["loader"],
            "overhead %": fig["loader_overhead_pct"],
        },
        {
            "input": "loader, no prefetch",
            "img/s": fig["loader_no_prefetch"],
            "overhead %": fig["loader_no_prefetch_overhead_pct"],
        },
    ]
    met = "met" if fig["loader_overhead_pct"] < 5 else "not met"
    note = f"\n\nTarget overhead < 5%: {met}."
    if fig.get("dataset") != "mnist":
        note += " MNIST not prepared (run `make data`): measured on the embedded digits."
    return common.markdown_table(table) + note, fig


def pooling(budget: Budget) -> tuple[str, dict]:
    """Tile max pooling vs reduce_window: forward + gradient of [128, 28, 28, 32]."""
    fig = loop("pool", ["--steps", str(budget.seed_steps * 2), "--rounds", str(budget.rounds)])
    table = [
        {"2x2 max pooling, fwd + grad": "pooling.tile_max_pool", "ms": fig["tile_ms"]},
        {
            "2x2 max pooling, fwd + grad": "nn.max_pool (reduce_window)",
            "ms": fig["reduce_window_ms"],
        },
    ]
    return common.markdown_table(table) + f"\n\nTiles are {fig['speedup']:.1f}x faster.", fig


def seeds(budget: Budget) -> tuple[str, dict]:
    """K-seed training: each seed strategy vs K sequential steps (mnist_cnn, batch 128)."""
    args = ["--seeds", str(budget.seeds), "--steps", str(budget.seed_steps)]
    args += ["--strategies", ",".join(budget.seed_strategies)]
    fig = loop("seeds", [*args, "--rounds", str(budget.rounds)])
    labels = {
        "vmap": "jax.vmap (seeds as conv feature groups)",
        "sequential": "lax.map over seeds (one program)",
        "chunked": "lax.map over pairs, vmap within",
        "unrolled": "K single-seed steps side by side in one program",
        "chained": "K single-seed steps one after another in one program (barriers)",
        "K runs": "K sequential single-seed steps",
    }
    labels = {n: label for n, label in labels.items() if f"{n}_over_K_runs" in fig}
    table = []
    for name, label in labels.items():
        med, lo, hi = fig[f"{name}_over_K_runs"]
        table.append(
            {
                "K seeds as": label,
                "img/s": fig[name],
                "x K runs [min, max]": f"{med:.2f} [{lo:.2f}, {hi:.2f}]",
            }
        )
    best = max((n for n in labels if n != "K runs"), key=lambda n: fig[n])
    met = "met" if fig[f"{best}_over_K_runs"][0] >= 1.0 else "missed"
    text = (
        common.markdown_table(table) + f"\n\nK = {fig['num_seeds']}; fastest strategy here: {best} "
        f"({fig[f'{best}_over_K_runs'][0]:.2f}x K runs, target >= 1.0: {met}); the trainer's "
        f"rule on this backend picks {fig['rule']} (`cnn_jax.seed_strategy`). First step "
        f"(compile included), s: {fig['first_step_sec']}."
    )
    return text, fig


def end_to_end(smoke: bool, mnist: bool) -> tuple[str, dict]:
    """Wall time of each experiment's smoke config (and the MNIST CNN to 99% if asked),
    each a fresh process started as a user would, from an empty compilation cache."""
    runs = list(SMOKE_RUNS) if smoke else []
    if mnist:  # the target: >= 99.0% test accuracy in < 5 minutes on 2 cores
        runs.append(("experiments.train", "experiments/configs/mnist.py"))
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        env = {  # the run path's settings, with a compilation cache that starts empty
            **common.run_path_env(),
            "PYTHONPATH": str(common.REPO),
            "CNN_JAX_COMPILATION_CACHE": str(Path(tmp) / "cache"),
        }
        for i, (module, config) in enumerate(runs):
            workdir = Path(tmp) / str(i)
            t0 = time.perf_counter()
            try:
                common.run_module(module, [f"--config={config}", f"--workdir={workdir}"], env=env)
                status = "ok"
            except RuntimeError as e:
                status = "failed: " + str(e).strip().splitlines()[-1][:120]
            row = {"experiment": module, "config": config, "wall s": time.perf_counter() - t0}
            results = workdir / "results.json"
            if results.exists() and "test_accuracy" in (data := json.loads(results.read_text())):
                row["test accuracy"] = data["test_accuracy"]
            row["status"] = status
            table.append(row)
            print(common.markdown_table(table[-1:], E2E_COLUMNS), flush=True)
    text = common.markdown_table(table, E2E_COLUMNS)
    if mnist and "test accuracy" in table[-1]:
        acc, wall = table[-1]["test accuracy"], table[-1]["wall s"]
        met = "met" if acc >= 0.99 and wall < 300 else "not met"
        text += (
            f"\n\nMNIST CNN: {100 * acc:.2f}% in {wall:.0f} s (target >= 99.0% in < 300 s: {met})."
        )
    return text, {"rows": table}


def cpu_profile(budget: Budget) -> tuple[str, dict]:
    """perf samples at batch 128: mnist_cnn (baseline, run path, PyTorch eager) and
    resnet_small (run path, PyTorch channels_last): where the time of a missed target goes."""
    from benchmarks import profile

    if not profile.available():
        return "`perf` not installed (Debian: linux-perf): no profile.", {}
    b = MNIST_BATCH
    contenders = [
        Contender("jax baseline, mnist_cnn", _jax("mnist_cnn", b)),
        Contender("jax run path, mnist_cnn", _jax("mnist_cnn", b), common.run_path_env()),
    ] + torch_contenders(b)[:1]
    contenders.append(
        Contender("jax run path, resnet_small", _jax("resnet_small", b), common.run_path_env())
    )
    contenders += torch_contenders(b, "resnet_small", eager=False)
    steps = {
        c.name: budget.steps(b, 3.0 if "resnet" in c.spec["preset"] else 1.0) for c in contenders
    }
    results = [profile.profile(c, steps[c.name]) for c in contenders]
    return "\n\n".join(profile.markdown(r) for r in results), {"rows": results}
