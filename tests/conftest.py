"""Shared fixtures. Every test runs with its own config and data folders, never the user's."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

# huggingface_hub reads these at import time: keep every test off the network.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `tests.*` helpers (hubserver, modelkit) import as a package
    sys.path.insert(0, str(REPO))

from tests.hubserver import hub_server  # noqa: E402,F401  (the local Hub fixture, for every test module)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private HOME/XDG tree so platform folders and config never touch the real user's."""
    home = tmp_path_factory.mktemp("home")
    for var, sub in (("HOME", ""), ("XDG_CONFIG_HOME", ".config"), ("XDG_DATA_HOME", ".local/share"),
                     ("XDG_CACHE_HOME", ".cache"), ("XDG_STATE_HOME", ".local/state")):
        monkeypatch.setenv(var, str(home / sub) if sub else str(home))
    for var in list(os.environ):
        if var.startswith("WARPD_"):
            monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def catalog():
    from warpd.catalog import Catalog

    return Catalog.load()
