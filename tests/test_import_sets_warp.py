"""``warpd import-sets-warp``: a fake SETS-WARP folder in both annotations.json layouts.

The folder holds what real ones hold: confirmed, pending, candidate and skipped records; a warp core
confirmed under slot Engines; a record whose crop is gone; a Ship Name record; a crop the
predecessor already stored as a 64×64 PNG under its 32-hex sha; a Ship Tier text crop; a crop found
only through crop_index.json; screen-type copies; a hub token and an old install id.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from warpd import import_sets_warp as isw
from warpd.config import load_config
from warpd.paths import DataPaths
from warpd.store import Store

TOKEN = "hf_SuperSecretTokenValue0123456789"


def _png(width: int, height: int, seed: int) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _ann_id(bbox: list[int], slot: str) -> str:
    return hashlib.md5(f"{bbox[0]}_{bbox[1]}_{bbox[2]}_{bbox[3]}_{slot}".encode()).hexdigest()[:12]


@dataclass
class Fake:
    warp: Path
    names: dict[str, str]
    sha32: str
    tier_png: bytes


def _record(slot: str, name: str, state: str, bbox: list[int], **extra: object) -> dict:
    return {"bbox": bbox, "slot": slot, "name": name, "state": state, "ann_id": _ann_id(bbox, slot),
            "ml_conf": 0.5, "ml_name": "", **extra}


def make_warp(root: Path, catalog, layout: str) -> Fake:
    """A SETS-WARP warp/ folder; ``layout`` "file" (keyed by screenshot) or "sha" (``{sha16: {...}}``)."""
    td = root / "warp" / "training_data"
    crops = td / "crops"
    crops.mkdir(parents=True)
    names = {"core": catalog.items_for_slot("Warp Core")[0], "shield": catalog.items_for_slot("Shields")[0],
             "deflector": catalog.items_for_slot("Deflector")[0],
             "tac": catalog.items_for_slot("Tactical Consoles")[0],
             "sci": catalog.items_for_slot("Science Consoles")[0],
             "dev": catalog.items_for_slot("Devices")[0]}
    records = []

    def crop_for(rec: dict, seed: int, size: tuple[int, int] = (47, 56)) -> None:
        (crops / isw.crop_file_name(rec["slot"], rec["name"], rec["ann_id"])).write_bytes(_png(*size, seed))

    # 1. confirmed, crop by the predecessor's naming
    rec = _record("Warp Core", names["core"], "confirmed", [10, 10, 47, 56])
    crop_for(rec, 1)
    records.append(rec)
    # 2. confirmed, alias slot "Shield", crop_file given
    rec = _record("Shield", names["shield"], "confirmed", [10, 80, 47, 56], crop_file="crops/custom_shield.png")
    (crops / "custom_shield.png").write_bytes(_png(47, 56, 2))
    records.append(rec)
    # 3-5. pending, candidate and skipped records with crops: never imported
    for k, state in enumerate(("pending", "candidate", "skipped")):
        rec = _record("Devices", names["dev"], state, [100 + 60 * k, 10, 47, 56], slot_index=k)
        crop_for(rec, 10 + k)
        records.append(rec)
    # 6. a warp core confirmed under slot Engines
    rec = _record("Engines", names["core"], "confirmed", [10, 150, 47, 56])
    crop_for(rec, 6)
    records.append(rec)
    # 7. confirmed, crop file missing
    records.append(_record("Deflector", names["deflector"], "confirmed", [10, 220, 47, 56]))
    # 8. Ship Name (position only, no crop)
    records.append(_record("Ship Name", "U.S.S. Private Name", "confirmed", [300, 5, 200, 20]))
    # 9. a 64x64 crop the predecessor hashed itself (32-hex sha), under crops/<sha32>.png
    png64 = _png(64, 64, 9)
    sha32 = hashlib.sha256(png64).hexdigest()[:32]
    (crops / f"{sha32}.png").write_bytes(png64)
    records.append(_record("Science Consoles", names["sci"], "confirmed", [10, 290, 47, 56],
                           crop_name=f"{sha32}.png", crop_sha256=sha32))
    # 10. Ship Tier text crop (kept as is)
    tier_png = _png(120, 22, 10)
    rec = _record("Ship Tier", "T6-X2", "confirmed", [300, 30, 120, 22], crop_file="crops/tier_text.png")
    (crops / "tier_text.png").write_bytes(tier_png)
    records.append(rec)
    # 11. crop found only through crop_index.json (its file name does not follow the naming)
    rec = _record("Tactical Consoles", names["tac"], "confirmed", [10, 360, 47, 56])
    (crops / f"tac__renamed__{rec['ann_id']}.png").write_bytes(_png(47, 56, 11))
    records.append(rec)
    # 12. an unknown item name
    rec = _record("Devices", "Not An Item At All", "confirmed", [10, 430, 47, 56])
    crop_for(rec, 12)
    records.append(rec)
    index = {f"tac__renamed__{records[-2]['ann_id']}.png": {"slot": "Tactical Consoles", "name": names["tac"],
                                                           "state": "confirmed", "source": "user"},
             # 13. confirmed in the index only: no record refers to it
             "devices__orphan__abcdefabcdef.png": {"slot": "Devices", "name": names["dev"],
                                                   "state": "confirmed", "source": "user"},
             "devices__pending__bbbbbbbbbbbb.png": {"slot": "Devices", "name": names["dev"],
                                                    "state": "pending", "source": "ml"}}
    (crops / "devices__orphan__abcdefabcdef.png").write_bytes(_png(47, 56, 13))
    (crops / "devices__pending__bbbbbbbbbbbb.png").write_bytes(_png(47, 56, 14))
    (crops / "crop_index.json").write_text(json.dumps(index))
    if layout == "file":
        data = {"shot_a.png": records[:6], "shot_b.png": records[6:]}
    else:
        data = {"0123456789abcdef": {"annotations": records[:6]}, "fedcba9876543210": {"annotations": records[6:]}}
    (td / "annotations.json").write_text(json.dumps(data))
    # screen types: one copy present, one listed but gone
    (td / "screen_types" / "SPACE_EQ").mkdir(parents=True)
    (td / "screen_types" / "SPACE_EQ" / "shot_a.png").write_bytes(_png(1280, 720, 20))
    (td / "screen_types.json").write_text(json.dumps({"shot_a.png": "SPACE_EQ", "gone.png": "TRAITS"}))
    (root / "warp" / "hub_token.txt").write_text(TOKEN + "\n")
    (root / "warp" / "knowledge").mkdir()
    (root / "warp" / "knowledge" / "install_id.txt").write_text("5b1c1e0e-0000-4000-8000-000000000000\n")
    return Fake(root / "warp", names, sha32, tier_png)


def _cfg(data: Path):
    return load_config(None, [f"paths.data_dir={json.dumps(str(data))}"], env={})


def _cli(argv: list[str], cfg) -> int:
    parser = argparse.ArgumentParser()
    isw.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["import-sets-warp", *argv])
    return args.func(args, cfg)


def _json_run(capsys, argv: list[str], cfg) -> dict:
    assert _cli([*argv, "--json"], cfg) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err
    return json.loads(out)


EXPECTED_SKIPS = {isw.R_WRONG_SLOT: 1, isw.R_NO_CROP: 1, isw.R_SHIP_NAME: 1, isw.R_UNKNOWN_ITEM: 1}


@pytest.mark.parametrize("layout", ["file", "sha"])
def test_import_both_layouts_reasons_and_idempotency(tmp_path: Path, capsys, catalog, layout: str) -> None:
    fake = make_warp(tmp_path, catalog, layout)
    data = tmp_path / "data"
    cfg = _cfg(data)

    first = _json_run(capsys, [str(fake.warp)], cfg)
    assert first["layouts"] == ["by screenshot file" if layout == "file" else "by screenshot sha"]
    assert first["states"] == {"confirmed": 9, "pending": 1, "candidate": 1, "skipped": 1}
    assert first["imported"] == 6 and first["imported_text_crops"] == 1 and first["from_crop_index"] == 1
    assert first["skipped"] == EXPECTED_SKIPS
    assert first["already_present"] == 0
    assert first["screen_samples"] == {"imported": 1, "already_present": 0, "skipped": {isw.S_MISSING: 1}}
    assert first["old_install_id_found"] is True

    store = Store(DataPaths(data))
    try:
        annotations = [a for _, a in store.annotations()]
        by_slot = {a.slot: a for a in annotations}
        assert sorted(by_slot) == ["Devices", "Science Consoles", "Shields", "Ship Tier", "Tactical Consoles",
                                   "Warp Core"]
        assert by_slot["Shields"].name == fake.names["shield"]  # the alias "Shield" was normalised
        assert all(a.slot != "Ship Name" and "Private" not in a.name for a in annotations)
        # icons are stored as 64x64 canonical crops named by their sha256
        for slot in ("Warp Core", "Shields", "Tactical Consoles", "Devices"):
            png = (store.paths.crops / f"{by_slot[slot].crop_sha256}.png").read_bytes()
            assert len(by_slot[slot].crop_sha256) == 64
            assert hashlib.sha256(png).hexdigest() == by_slot[slot].crop_sha256
            assert Image.open(io.BytesIO(png)).size == (64, 64)
        # the predecessor's own 64x64 crop keeps its bytes and its 32-hex sha (no duplicate on the Hub)
        assert by_slot["Science Consoles"].crop_sha256 == fake.sha32
        assert (store.paths.crops / f"{fake.sha32}.png").read_bytes() == (
            fake.warp / "training_data" / "crops" / f"{fake.sha32}.png").read_bytes()
        # the Ship Tier text crop is kept as the text line, not squeezed to 64x64
        tier = by_slot["Ship Tier"]
        assert tier.name == "T6-X2" and (store.paths.crops / f"{tier.crop_sha256}.png").read_bytes() == fake.tier_png
        samples = list(store.paths.screen_types.glob("*/*.png"))
        assert len(samples) == 1 and samples[0].parent.name == "SPACE_EQ"
        assert max(Image.open(samples[0]).size) <= 224
        assert store.waiting() == []  # the screen-type question used to record the sample is answered
        n_annotations, n_pending = len(annotations), store.counts()
    finally:
        store.close()

    # the token: copied once, 0600, never printed
    token_file = data / "hub_token"
    assert token_file.read_text().strip() == TOKEN
    if os.name == "posix":
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert first["token"].startswith("copied")

    # twice: nothing new
    second = _json_run(capsys, [str(fake.warp)], cfg)
    assert second["imported"] == 0 and second["already_present"] == 6
    assert second["skipped"] == EXPECTED_SKIPS
    assert second["screen_samples"]["imported"] == 0 and second["screen_samples"]["already_present"] == 1
    assert second["token"].startswith("not copied")
    store = Store(DataPaths(data))
    try:
        assert len(store.annotations()) == n_annotations and store.counts() == n_pending
        assert len(list(store.paths.screen_types.glob("*/*.png"))) == 1
        assert len(store.mirror_path.read_text().splitlines()) == n_annotations
    finally:
        store.close()


def test_text_summary_training_data_path_and_no_token_in_output(tmp_path: Path, capsys, catalog) -> None:
    """PATH may be warp/training_data; the summary names the reasons and never the token."""
    fake = make_warp(tmp_path, catalog, "file")
    cfg = _cfg(tmp_path / "data")
    assert _cli([str(fake.warp / "training_data")], cfg) == 0
    out, err = capsys.readouterr()
    assert TOKEN not in out and TOKEN not in err
    assert "Private Name" not in out  # the Ship Name record's text is never shown either
    assert "imported: 6 crops" in out and isw.R_WRONG_SLOT in out and isw.R_SHIP_NAME in out
    assert "hub token: copied" in out and "not adopted" in out
    assert (tmp_path / "data" / "hub_token").read_text().strip() == TOKEN


def test_dry_run_changes_nothing(tmp_path: Path, capsys, catalog) -> None:
    fake = make_warp(tmp_path, catalog, "sha")
    data = tmp_path / "data"
    report = _json_run(capsys, [str(fake.warp), "--dry-run"], _cfg(data))
    assert report["dry_run"] and report["imported"] == 6 and report["skipped"] == EXPECTED_SKIPS
    assert report["screen_samples"]["imported"] == 1 and report["token"].startswith("would be copied")
    assert not (data / "state.sqlite3").exists() and not (data / "hub_token").exists()


def test_existing_token_is_kept_and_other_answers_win(tmp_path: Path, capsys, catalog) -> None:
    """warpd's own token stays; a crop warpd already knows under another name is not overwritten."""
    from warpd.formats import make_annotation
    from warpd.hub import save_token

    fake = make_warp(tmp_path, catalog, "file")
    data = tmp_path / "data"
    save_token(data / "hub_token", "hf_warpds_own_token")
    png64 = (fake.warp / "training_data" / "crops" / f"{fake.sha32}.png").read_bytes()
    other = catalog.items_for_slot("Science Consoles")[1]
    store = Store(DataPaths(data))
    try:
        store.add_annotation(make_annotation(fake.sha32, other, "Science Consoles"), png64)
    finally:
        store.close()
    report = _json_run(capsys, [str(fake.warp)], _cfg(data))
    assert report["imported"] == 5 and report["skipped"][isw.R_CONFLICT] == 1
    assert (data / "hub_token").read_text().strip() == "hf_warpds_own_token"
    assert report["token"].startswith("not copied")


def test_not_a_sets_warp_folder(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert _cli([str(tmp_path / "empty")], _cfg(tmp_path / "data")) == 2
    assert "neither training_data" in capsys.readouterr().err


def test_predecessor_ann_id_formula() -> None:
    bbox = [12, 34, 47, 56]
    assert isw.record_ann_id({"bbox": bbox, "slot": "Warp Core"}) == _ann_id(bbox, "Warp Core")
    assert isw.crop_file_name("Warp Core", "A Very Long Item Name That Goes On And On Forever", "abc") == \
        "warp_core__a_very_long_item_name_that_goes_on_and_o__abc.png"
