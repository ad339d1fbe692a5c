"""The distribution: every package is shipped, and the daemon's import path stays free of torch."""

from __future__ import annotations

import subprocess
import sys
import tomllib

from conftest import REPO

# What the tray process imports. torch/torchvision belong to training (the [train] extra) only.
DAEMON_MODULES = ["warpd", "warpd.cli", "warpd.config", "warpd.catalog", "warpd.slots", "warpd.paths",
                  "warpd.doctor"]


def test_every_package_folder_is_listed():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(meta["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(REPO).parts) for top in ("warpd", "central")
             for p in (REPO / top).rglob("__init__.py")}
    assert found <= listed, f"add to [tool.setuptools] packages: {sorted(found - listed)}"
    assert "warpd.defaults" in listed  # config/ shipped inside the package


def test_train_extra_pins_torch_exactly():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    train = meta["project"]["optional-dependencies"]["train"]
    assert "torch==2.14.1" in train and "torchvision==0.29.1" in train
    assert not any(dep.startswith("torch") for dep in meta["project"]["dependencies"])
    assert any(dep.startswith("opencv-python-headless") for dep in meta["project"]["dependencies"])


def test_daemon_import_path_does_not_import_torch():
    code = ("import sys\n" + "".join(f"import {m}\n" for m in DAEMON_MODULES) +
            "from warpd.cli import build_parser\nbuild_parser()\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'torch', 'torchvision', 'pystray'})\n"
            "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO)
    assert out.stdout.strip() == "", f"imported on the daemon path: {out.stdout}"


def test_catalogue_and_overlays_are_vendored_with_attribution():
    data = REPO / "warpd" / "data"
    for name in ("ships.json", "equipment.json", "traits.json", "starship_traits.json", "boff_abilities.json"):
        assert (data / "catalog" / name).stat().st_size > 1000
    assert "CC BY-SA" in (data / "catalog" / "SOURCE.md").read_text()
