"""Process and device plumbing: devices, checkpoints, signals, allocator, locks, memory.

- `parallel`: data parallelism, `jax.jit` over a 1-axis `Mesh('data')`, multi-host start.
- `checkpoint`: every Orbax call (fingerprinted checkpoints).
- `preemption`: SIGTERM / SIGINT / NaN handling.
- `runtime`: CPU speed defaults of the run path, each with an off switch.
- `workdir_lock`: one writer per workdir.
- `memory`: the memory a config will need, checked before anything compiles.

Floor 3: imports `nn`, `config`, `datasets`, `stats`.
"""
