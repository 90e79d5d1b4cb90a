"""Runs on disk: make many (sweeps, launchers), read them back, compare and publish them.

- `sweep`: variants x seeds as resumable units, identity-checked.
- `launch`: train units here or as SLURM jobs (submitit).
- `load`: load a trained run for analysis.
- `compare`: `cnn-jax-compare`, runs side by side with only the fields that differ.
- `record`, `provenance`: publish a study's results of record to `results/` with provenance.
- `readme_blocks`: the generated result blocks of every Markdown file, and their check.
- `verdict_changes`: which verdicts changed between two versions of a record.

Floor 5: imports the training core and everything below it.
"""
