"""The committed sample in examples/ is what the documented command makes, and is consistent."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from conftest import REPO

from warpd.slots import SCREEN_TYPES
from warpd.synth.icons import icon_file_name

EXAMPLES = REPO / "examples"


def truths() -> dict[str, dict]:
    return {p.name: json.loads(p.read_text()) for p in sorted(EXAMPLES.glob("*.json"))}


def test_one_of_each_screen_type_with_images_and_icons():
    found = truths()
    assert {t["screen_type"] for t in found.values()} == set(SCREEN_TYPES)
    for name in found:
        stem = name.removesuffix(".json")
        assert any((EXAMPLES / f"{stem}{ext}").is_file() for ext in (".png", ".jpg")), stem
    icons = {p.name for p in (EXAMPLES / "icons").glob("*.png")}
    for truth in found.values():
        for slot in truth["slots"]:
            if slot["state"] == "item" and slot.get("item") and not slot["slot"].endswith("Specialization"):
                assert icon_file_name(slot["item"]) in icons, slot["item"]


def test_sample_is_what_the_documented_command_renders(tmp_path: Path):
    """Regenerating the sample gives the same ground truth (the README's command is true)."""
    subprocess.run([sys.executable, "-m", "warpd", "synth", "--out", str(tmp_path), "--count", "8", "--seed", "7",
                    "--json"], check=True, capture_output=True, timeout=300)
    fresh = {p.name: json.loads(p.read_text()) for p in sorted(tmp_path.glob("*.json"))}
    assert fresh == truths()
