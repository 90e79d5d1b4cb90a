"""Publishing in these tests happens from a committed tree whatever the checkout's state
(`record.publish` refuses a dirty one); tests of the refusal set the state themselves."""

from __future__ import annotations

import pytest

from cnn_jax.runs import record

CLEAN_TREE = {"revision": "0123456789abcdef", "dirty": False, "dirty_files": []}


@pytest.fixture(autouse=True)
def clean_tree(monkeypatch):
    monkeypatch.setattr(record, "tree_state", lambda: dict(CLEAN_TREE))
