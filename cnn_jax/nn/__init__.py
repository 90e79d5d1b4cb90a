"""The model: layers, pooling and activation kinds, model specs and the `CNN` module.

- `pool_kinds`, `activation_kinds`: registries; each kind describes itself.
- `layers`: pooling, padding helpers, global average pool, noise.
- `model_spec`: `BlockSpec` / `HeadSpec` / `ModelSpec`, presets, config -> spec.
- `models`: `CNN(spec)`, a Linen module returning `(logits, intermediates)`.
- `summary`, `receptive_field`: per-layer shapes, parameters, FLOPs; receptive fields.
- `conv_fence`: a CPU-only exact identity that keeps XLA from re-computing batch norm.

Floor 2: imports `config` only.
"""
