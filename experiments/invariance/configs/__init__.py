"""The invariance study's configs: `--config=invariance/<name>`."""
