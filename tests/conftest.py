"""Fixtures shared by every test area. Area-specific fixtures live in tests/<area>/conftest.py."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Keep TensorFlow quiet and single-threaded in tests; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")


@pytest.fixture(scope="session", autouse=True)
def _private_format_choice_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Format timings made by tests go to a temporary folder, not the user's cache."""
    saved = os.environ.get("HEMIFACE_CACHE_DIR")
    os.environ["HEMIFACE_CACHE_DIR"] = str(tmp_path_factory.mktemp("hemiface-cache"))
    yield
    if saved is None:
        os.environ.pop("HEMIFACE_CACHE_DIR", None)
    else:
        os.environ["HEMIFACE_CACHE_DIR"] = saved
