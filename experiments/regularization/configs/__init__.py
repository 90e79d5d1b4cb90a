"""The regularization study's configs: `--config=regularization/<name>`."""
