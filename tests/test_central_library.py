"""`warpd-central icons`: the icon library mirrored from a Hub repo, over the real client and a local Hub."""

from __future__ import annotations

import io
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from central.cli import main
from central.library import MANIFEST, fetch_library
from tests.hubserver import HubServer

REPO = "sets-sto/icon-library"


def _png(seed: int, size: tuple[int, int] = (49, 64)) -> bytes:
    rgb = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    if size[0] > 64:  # a large flat image: a small file that only the decoder's size check refuses
        rgb[:] = seed
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="PNG")
    return buf.getvalue()


def _hub(server: HubServer):
    from warpd.hub import HttpHub, RetryPolicy

    return HttpHub(server.url, None, timeout_s=10.0, retry=RetryPolicy(attempts=2, base_s=0.01, max_s=0.02))


@pytest.fixture()
def seeded(hub_server: HubServer):
    hub = _hub(hub_server)
    hub.ensure_repo(REPO, repo_type="dataset")
    hub.commit(REPO, {"Phaser+Beam+Array.png": _png(1), "Plasma+Torpedo.png": _png(2), "Tractor+Beam.png": _png(3),
                      "Broken+Icon.png": b"\x89PNG\r\n\x1a\nnot really", "sub/Nested.png": _png(4),
                      "README.md": b"# icons\n", "Huge+Icon.png": _png(5, (600, 600))},
               "icons", repo_type="dataset")
    return hub


def test_a_fetch_mirrors_valid_icons_and_refuses_the_rest(seeded, tmp_path: Path) -> None:
    out = tmp_path / "icons"
    out.mkdir()
    (out / "Mine.png").write_bytes(_png(9))  # placed by hand: never touched
    report = fetch_library(seeded, REPO, out, sleep=lambda s: None)
    assert report.downloaded == 3 and report.listed == 5 and not report.failed
    assert sorted(p.name for p in out.glob("*.png")) == ["Mine.png", "Phaser+Beam+Array.png", "Plasma+Torpedo.png",
                                                          "Tractor+Beam.png"]
    assert report.rejected == {"not a flat .png name": 2, "not a usable PNG": 2}  # nested, README; broken, huge
    assert (out / "Plasma+Torpedo.png").read_bytes() == _png(2)
    manifest = json.loads((out / MANIFEST).read_text())
    assert set(manifest["icons"]) == {"Phaser+Beam+Array.png", "Plasma+Torpedo.png", "Tractor+Beam.png"}
    assert set(manifest["refused"]) == {"Broken+Icon.png", "Huge+Icon.png"}

    again = fetch_library(seeded, REPO, out, sleep=lambda s: None)
    assert again.downloaded == 0 and again.unchanged == 3, "an unchanged library downloads nothing"
    assert again.rejected == {"not a flat .png name": 2, "refused before, unchanged": 2}

    seeded.commit(REPO, {"Plasma+Torpedo.png": _png(20)}, "new art", repo_type="dataset",
                  deletions=["Tractor+Beam.png"])
    third = fetch_library(seeded, REPO, out, sleep=lambda s: None)
    assert (third.downloaded, third.removed) == (1, 1)
    assert (out / "Plasma+Torpedo.png").read_bytes() == _png(20)
    assert not (out / "Tractor+Beam.png").exists() and (out / "Mine.png").read_bytes() == _png(9)


def test_the_command_reports_json_and_a_dead_hub_leaves_the_folder_alone(
        seeded, hub_server: HubServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "icons"
    assert main(["icons", "--repo", REPO, "--out", str(out), "--endpoint", hub_server.url, "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["downloaded"] == 3 and len(report["revision"]) == 40
    before = sorted((p.name, p.read_bytes()) for p in out.iterdir())
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{s.getsockname()[1]}"
    code = main(["icons", "--repo", REPO, "--out", str(out), "--endpoint", dead, "--retries", "1",
                 "--timeout-s", "2"])
    assert code == 1
    assert sorted((p.name, p.read_bytes()) for p in out.iterdir()) == before
