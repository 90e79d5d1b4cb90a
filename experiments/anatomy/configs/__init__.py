"""The anatomy study's configs: `--config=anatomy/<name>`."""
