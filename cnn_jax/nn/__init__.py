"""The model: layers, pooling and activation kinds, model specs and the `CNN` module.

- `pool_kinds`, `activation_kinds`: registries; each kind describes itself (its apply too).
- `pooling`: the pooling primitives (padding amounts, blur filters, tiled and windowed pools).
- `layers`: the Linen layers (`Pool`, global pools, noise), padding and activation lookup.
- `model_spec`: `BlockSpec` / `HeadSpec` / `ModelSpec`, presets, config -> spec.
- `models`: `CNN(spec)`, a Linen module returning `(logits, intermediates)`.
- `summary`, `receptive_field`: per-layer shapes, parameters, FLOPs; receptive fields.
- `conv_fence`: a CPU-only exact identity that keeps XLA from re-computing batch norm.
- `onednn`: an optional CPU fast path, convolutions on oneDNN through XLA FFI custom calls.

Floor 2: imports `config` only.
"""
