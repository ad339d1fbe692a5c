"""The recognition engine and ``warpd process``: the JSON contract, decisions, bad input, models."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from warpd import formats
from warpd.catalog import Catalog
from warpd.cli import main
from warpd.models import ModelError, load_model_set
from warpd.recognize import Engine, Settings, Vote, fuse
from warpd.slots import SCREEN_TYPES, SLOT_GROUPS

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
CONTRACT_KEYS = {"file", "screen_type", "screen_confidence", "ship", "slots", "error"}
SLOT_KEYS = {"slot", "index", "bbox", "state", "item", "confidence", "decision", "source", "candidates"}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return Catalog.load()


@pytest.fixture(scope="module")
def engine(catalog: Catalog, tmp_path_factory: pytest.TempPathFactory) -> Engine:
    from warpd.ocr import OcrEngine

    ocr = OcrEngine()
    return Engine(catalog, icons_dir=EXAMPLES / "icons", ocr=ocr if ocr.available() else None,
                  cache_dir=tmp_path_factory.mktemp("cache"))


def example_images() -> list[Path]:
    return sorted(p for p in EXAMPLES.iterdir() if p.suffix in (".png", ".jpg"))


def iou(a: list[int], b: list[int]) -> float:
    ix = max(0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    return ix * iy / max(1, a[2] * a[3] + b[2] * b[3] - ix * iy)


# ------------------------------------------------------------------------------ fusion and bands
def test_fuse_keeps_agreement_and_caps_dissent() -> None:
    winner, conf = fuse([Vote("template", "A", 0.9), Vote("model", "A", 0.8)])
    assert winner.name == "A" and conf == pytest.approx(0.9)
    winner, conf = fuse([Vote("template", "A", 0.9), Vote("model", "B", 0.6)])
    assert winner.name == "A" and conf == pytest.approx(0.4)  # a confident dissent forbids "auto"
    winner, conf = fuse([Vote("template", "A", 0.3), Vote("template", "X", 0.99, eligible=False)])
    assert winner.name == "A" and conf == pytest.approx(0.01)  # an item the slot cannot hold never wins
    assert fuse([]) == (None, 0.0)
    assert fuse([Vote("template", "X", 0.9, eligible=False)]) == (None, 0.0)


def test_decision_bands_come_from_config() -> None:
    from warpd.config import load_config

    cfg = load_config(None, ["recognition.auto_accept=0.9", "recognition.reject=0.2"], env={})
    s = Settings.from_config(cfg)
    assert [s.decide(c) for c in (0.95, 0.9, 0.89, 0.2, 0.19)] == ["auto", "auto", "ask", "ask", "reject"]


# ------------------------------------------------------------------------------ the contract
@pytest.mark.parametrize("image", example_images(), ids=lambda p: p.stem)
def test_contract_on_every_screen_type(engine: Engine, image: Path) -> None:
    result = engine.process_file(image)
    truth = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    assert CONTRACT_KEYS <= set(result) and result["error"] is None
    assert result["screen_type"] in SCREEN_TYPES and 0.0 <= result["screen_confidence"] <= 1.0
    assert {"type", "tier", "confidence", "name_bbox"} <= set(result["ship"])
    json.dumps(result)  # serialisable as is
    w, h = truth["width"], truth["height"]
    for s in result["slots"]:
        assert set(s) >= SLOT_KEYS
        assert s["slot"] in SLOT_GROUPS and s["state"] in ("item", "empty", "locked")
        assert s["decision"] in ("auto", "ask", "reject") and s["source"] in ("knowledge", "template", "model",
                                                                               "session")
        x, y, bw, bh = s["bbox"]
        assert 0 <= x and 0 <= y and x + bw <= w and y + bh <= h and bw > 0 and bh > 0
        if s["item"] is not None:
            allowed = set(engine._candidates(s["slot"], "space", True)) | set(
                engine.catalog.items_for_slot(s["slot"], "ground"))
            assert s["item"] in allowed  # an answer is always an item the slot can hold
        assert len(s["candidates"]) <= engine.settings.candidates
    if result["screen_type"] == "UNKNOWN":
        assert result["slots"] == []
    rows: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for s in result["slots"]:
        rows.setdefault((s["slot"], s["bbox"][1] // 10), []).append((s["bbox"][0], s["index"]))
    for (slot, _), cells in rows.items():  # counted left to right (two boff seats may share a line)
        indices = [i for _, i in sorted(cells)]
        if not slot.startswith("Boff "):
            assert indices == sorted(set(indices)), (slot, indices)


def test_auto_decisions_are_right_on_the_examples(engine: Engine) -> None:
    """Every item decided "auto" that lies on a true item cell names the true item."""
    auto = wrong = 0
    for image in example_images():
        result = engine.process_file(image)
        truth = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
        for s in result["slots"]:
            if s["decision"] != "auto" or s["state"] != "item":
                continue
            cell = max(truth["slots"], key=lambda c: iou(c["bbox"], s["bbox"]), default=None)
            if cell is None or iou(cell["bbox"], s["bbox"]) < 0.5:
                continue
            auto += 1
            wrong += cell["item"] != s["item"]
    assert auto >= 20, "too few auto decisions to judge"
    assert wrong == 0


def test_a_gameplay_screen_is_unknown_without_slots(engine: Engine) -> None:
    result = engine.process_file(EXAMPLES / "unknown_000014.jpg")
    assert result["screen_type"] == "UNKNOWN" and result["slots"] == []
    noise = np.random.default_rng(3).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    result = engine.process_image(noise, "noise")
    assert result["screen_type"] == "UNKNOWN" and result["slots"] == [] and result["error"] is None


def test_session_examples_answer_at_once(catalog: Catalog, tmp_path: Path) -> None:
    """A confirmed crop is recognised on the next screenshot even with no library and no model."""
    bare = Engine(catalog, icons_dir=None, ocr=None, cache_dir=tmp_path)
    image = EXAMPLES / "space_eq_000007.jpg"
    first = bare.process_file(image)
    items = [s for s in first["slots"] if s["state"] == "item"]
    assert items and all(s["item"] is None for s in items)
    truth = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    from warpd.load import load_image
    from warpd.preprocess import crop_to_icon

    rgb = load_image(image, 50_000_000).rgb
    target = next(s for s in items if any(iou(c["bbox"], s["bbox"]) > 0.7 and c["slot"] == s["slot"]
                                          for c in truth["slots"] if c["state"] == "item"))
    cell = next(c for c in truth["slots"] if c["state"] == "item" and iou(c["bbox"], target["bbox"]) > 0.7)
    bare.remember(cell["item"], cell["slot"], crop_to_icon(rgb, target["bbox"]))
    again = next(s for s in bare.process_file(image)["slots"] if s["bbox"] == target["bbox"])
    assert again["item"] == cell["item"] and again["source"] == "session"


# ------------------------------------------------------------------------------ bad input
def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png_bomb(width: int, height: int) -> bytes:
    """A well-formed PNG that claims ``width`` x ``height`` (a decompression bomb's header)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\0" * 4096))
            + _chunk(b"IEND", b""))


def test_process_reports_bad_files_and_goes_on(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WARPD_PATHS__DATA_DIR", str(tmp_path / "data"))
    good = EXAMPLES / "traits_000009.png"
    bad = {
        "zero.png": b"",
        "truncated.png": good.read_bytes()[:5000],
        "text.png": b"this is not an image, just text\n" * 20,
        "bomb.png": _png_bomb(20_000, 20_000),
    }
    for name, data in bad.items():
        (tmp_path / name).write_bytes(data)
    args = ["process", "--json", "--icons", str(EXAMPLES / "icons"), str(good)] + [str(tmp_path / n) for n in bad]
    code = main(args)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1
    assert len(lines) == 5 and lines[0]["error"] is None and lines[0]["slots"]
    for result in lines[1:]:
        assert result["error"] and result["screen_type"] == "UNKNOWN" and result["slots"] == []
    reasons = {Path(r["file"]).name: r["error_reason"] for r in lines[1:]}
    assert reasons == {"zero.png": "empty", "truncated.png": "truncated", "text.png": "not_an_image",
                       "bomb.png": "too_large"}


def test_process_writes_a_build_sets_can_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                              catalog: Catalog) -> None:
    from warpd.build import validate_sets_build

    monkeypatch.setenv("WARPD_PATHS__DATA_DIR", str(tmp_path / "data"))
    out = tmp_path / "build.json"
    code = main(["process", "--icons", str(EXAMPLES / "icons"), "--build", str(out),
                 str(EXAMPLES / "space_eq_000007.jpg")])
    assert code == 0
    build = json.loads(out.read_text(encoding="ascii"))
    assert validate_sets_build(build, catalog) == []
    assert any(x for x in build["space"]["fore_weapons"] if x)


def test_process_help_and_missing_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["process", "--help"])
    assert exc.value.code == 0 and "--build" in capsys.readouterr().out
    assert main(["process", str(tmp_path)]) == 2  # an empty folder: nothing to do, said clearly


# ------------------------------------------------------------------------------ models folder
def _models_folder(tmp_path: Path, catalog: Catalog) -> tuple[Path, list[str]]:
    from tests.modelkit import example_icons, model_files, write_models

    pytest.importorskip("onnx")
    files = model_files(temperature=0.5)
    return write_models(tmp_path / "models", files), example_icons()[0]


def test_onnx_icon_classifier_is_used_without_a_library(catalog: Catalog, tmp_path: Path) -> None:
    folder, names = _models_folder(tmp_path, catalog)
    models = load_model_set(folder, strict=True)
    assert models.icon is not None and len(models.icon.labels) == len(names) and models.icon.temperature == 0.5
    eng = Engine(catalog, icons_dir=None, models=models, ocr=None, cache_dir=tmp_path)
    result = eng.process_file(EXAMPLES / "space_eq_000007.jpg")
    items = [s for s in result["slots"] if s["state"] == "item"]
    assert items and all(s["source"] == "model" for s in items if s["item"])
    for s in items:  # the model's answers are restricted to what the slot can hold
        assert all(c[0] in eng._candidates(s["slot"], "space", False) for c in s["candidates"])
    truth = json.loads((EXAMPLES / "space_eq_000007.json").read_text(encoding="utf-8"))
    right = sum(1 for s in items for c in truth["slots"]
                if c["state"] == "item" and iou(c["bbox"], s["bbox"]) > 0.5 and c["item"] == (s["candidates"] or
                                                                                           [[None]])[0][0])
    assert right >= len(items) // 2  # a crude template model, but clearly better than chance


def test_bad_model_files_are_refused_or_left_out(catalog: Catalog, tmp_path: Path) -> None:
    folder, names = _models_folder(tmp_path, catalog)
    (folder / formats.LABEL_MAP).write_text(json.dumps(formats.label_map_json(names[:-1])), encoding="utf-8")
    with pytest.raises(ModelError, match="outputs but its label map"):
        load_model_set(folder, strict=True)
    lenient = load_model_set(folder)
    assert lenient.icon is None and lenient.problems
    (folder / formats.ICON_ONNX).write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelError, match="not a loadable ONNX model"):
        load_model_set(folder, strict=True)
    (folder / formats.ICON_ONNX).unlink()
    (folder / formats.KNOWLEDGE_FILE).write_text(json.dumps({"knowledge": {"0123456789abcdef": "Ablative Shell"}}))
    (folder / formats.CORRECTIONS).write_text(json.dumps({"F1eet Support Cruiser": "Fleet Support Cruiser"}))
    good = load_model_set(folder, strict=True)
    assert good.icon is None and len(good.knowledge) == 1 and good.corrections


def test_models_hot_reload(catalog: Catalog, tmp_path: Path) -> None:
    eng = Engine(catalog, icons_dir=None, ocr=None, cache_dir=tmp_path)
    assert eng.models.icon is None
    folder, _ = _models_folder(tmp_path, catalog)
    eng.reload_models(folder)
    assert eng.models.icon is not None


def test_pieces_of_a_split_row_get_one_index_sequence() -> None:
    from warpd.recognize import _renumber_split_rows, slot_entry

    left = [slot_entry("Devices", i, (100 + 55 * i, 50, 49, 64), "item") for i in range(2)]
    right = [slot_entry("Devices", i, (100 + 55 * (3 + i), 52, 49, 64), "item") for i in range(2)]  # one gap
    seats = [slot_entry("Boff Tactical", i, (500 + 55 * i, 300, 49, 64), "item") for i in range(2)] + [
        slot_entry("Boff Tactical", i, (800 + 55 * i, 300, 49, 64), "item") for i in range(2)]
    entries = left + right + seats
    _renumber_split_rows(entries)
    assert [e["index"] for e in left + right] == [0, 1, 3, 4]
    assert [e["index"] for e in seats] == [0, 1, 0, 1]  # two seats of one profession stay apart


def test_a_short_box_is_recut_where_the_icon_fits(catalog: Catalog, tmp_path: Path) -> None:
    """Trait cells of an example screen cut 15% short at the bottom (what a round icon's box found
    without its frame looks like): matched again at nearby heights, each cell's box grows back
    towards the true one, its best score rises and the truth is ranked first. Cells that would be
    accepted as they are, and cells of slots outside refine_slots, are left alone."""
    from warpd.load import load_image
    from warpd.preprocess import crop_to_icon
    from warpd.recognize import CellJob, fuse
    from warpd.models import ModelSet

    # (a strict auto band: every short cell is one the user would be asked about)
    eng = Engine(catalog, icons_dir=EXAMPLES / "icons", ocr=None, cache_dir=tmp_path,
                 settings=Settings(auto_accept=0.99))
    image = EXAMPLES / "traits_000009.png"
    rgb = load_image(image, 50_000_000).rgb
    truth = json.loads(image.with_suffix(".json").read_text(encoding="utf-8"))
    cells = [c for c in truth["slots"] if c["state"] == "item" and c.get("item") and not c.get("occluded")][:6]
    jobs = []
    for c in cells:
        x, y, w, h = c["bbox"]
        short = (x, y, w, int(round(0.85 * h)))
        env = SLOT_GROUPS[c["slot"]].environment or "space"
        jobs.append(CellJob(c["slot"], env, c["index"], short, crop_to_icon(rgb, short),
                            eng._candidates(c["slot"], env, False)))
    eng._identify(jobs, ModelSet())
    before = [(j.bbox, j.ranked[0][1]) for j in jobs]
    weak = [j for j in jobs if fuse(j.votes)[1] < eng.settings.auto_accept]
    assert all(j.slot in eng.settings.refine_slots for j in jobs)
    assert not Engine(catalog, icons_dir=EXAMPLES / "icons", ocr=None, cache_dir=tmp_path,
                      settings=Settings(auto_accept=0.99, refine_slots=()))._refine_boxes(rgb, jobs)
    changed = eng._refine_boxes(rgb, jobs)
    assert weak, "the short boxes should match weakly"
    assert changed and all(j in weak for j in changed)
    eng._identify(changed, ModelSet())
    for job, c, (box, score) in zip(jobs, cells, before):
        if job in changed:
            assert iou(list(job.bbox), c["bbox"]) > iou(list(box), c["bbox"])
            assert job.ranked[0][1] > score and job.ranked[0][0] == c["item"]
        else:
            assert job.bbox == box
