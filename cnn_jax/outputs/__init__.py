"""What runs and studies write: atomic files, metric logs, predictions and plots.

- `writers`: atomic JSON / text, `metrics.jsonl`, TensorBoard.
- `predictions`: per-image predictions of a trained run (what the statistics read).
- `plots`: the project's figure style (distinct colours, intervals).

Floor 3: imports `config` and lower floors.
"""
