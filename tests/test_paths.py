"""Data folders and the anonymous install id."""

from __future__ import annotations

import subprocess
import sys
import uuid

from warpd.config import load_config
from warpd.paths import data_paths, install_id, output_dir


def test_platform_data_folder_and_override(isolated_home, tmp_path):
    cfg = load_config()
    assert str(data_paths(cfg).root).startswith(str(isolated_home))
    assert output_dir(cfg) == data_paths(cfg).root / "builds"
    cfg = load_config(overrides=[f'paths.data_dir="{tmp_path}"'])
    assert data_paths(cfg).root == tmp_path and data_paths(cfg).crops == tmp_path / "training_data" / "crops"


def test_install_id_is_a_stable_uuid4(tmp_path):
    paths = data_paths(load_config(overrides=[f'paths.data_dir="{tmp_path}"']))
    assert install_id(paths, create=False) is None
    first = install_id(paths)
    assert uuid.UUID(first).version == 4
    assert install_id(paths) == first == install_id(paths, create=False)
    paths.install_id_file.write_text("garbage")
    replaced = install_id(paths)
    assert replaced != first and uuid.UUID(replaced).version == 4


def test_first_real_run_creates_the_install_id_but_doctor_does_not(tmp_path):
    base = [sys.executable, "-m", "warpd", "--set", f'paths.data_dir="{tmp_path}"']
    subprocess.run(base + ["doctor"], capture_output=True, timeout=120)
    assert not (tmp_path / "install_id.txt").exists()
    subprocess.run(base + ["synth", "--out", str(tmp_path / "s"), "--count", "0"], check=True, capture_output=True,
                   timeout=120)
    assert uuid.UUID((tmp_path / "install_id.txt").read_text().strip())
