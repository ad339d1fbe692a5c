"""The shared formats: what the daemon writes is what central reads, and network data is validated."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from warpd import formats as F

IID = "0b7d6f1e-3c4a-4d2b-9e8f-1a2b3c4d5e6f"
SHA = "a" * 64


def test_annotation_round_trip_through_upload_line() -> None:
    ann = F.make_annotation(SHA, "Ablative Shell", "sci consoles", ml_name="Ablative Hull",
                            bbox=(10, 20, 49, 64), when=dt.datetime(2026, 3, 23, 14, 0, tzinfo=dt.timezone.utc))
    assert ann.slot == "Science Consoles" and ann.date == "2026-03-23"
    assert ann.confirmed_at == "2026-03-23T14:00:00Z"
    line = json.loads(ann.upload_line())
    assert set(line) == {"crop_sha256", "name", "slot", "date", "ml_name"}  # no bbox, no local time
    back = F.parse_annotation(line)
    assert (back.crop_sha256, back.name, back.slot, back.ml_name) == (SHA, "Ablative Shell", "Science Consoles",
                                                                       "Ablative Hull")


@pytest.mark.parametrize("record, fragment", [
    ({"crop_sha256": "xyz", "name": "A", "slot": "Deflector"}, "crop_sha256"),
    ({"crop_sha256": SHA, "name": "A", "slot": "Made Up Slot"}, "not a known slot"),
    ({"crop_sha256": SHA, "name": "", "slot": "Deflector"}, "empty"),
    ({"crop_sha256": SHA, "name": "A\x00B", "slot": "Deflector"}, "control"),
    ({"crop_sha256": SHA, "name": "x" * 300, "slot": "Deflector"}, "characters long"),
    ({"crop_sha256": SHA, "name": "Bob", "slot": "Ship Name"}, "never stored"),
    ({"crop_sha256": SHA, "name": "A", "slot": "Deflector", "date": "23/03/2026"}, "YYYY-MM-DD"),
    ({"crop_sha256": SHA, "name": "A", "slot": "Deflector", "bbox": [1, 2, -3, 4]}, "bbox"),
])
def test_bad_annotations_are_refused_with_the_reason(record: dict, fragment: str) -> None:
    with pytest.raises(F.FormatError, match=fragment):
        F.parse_annotation(record)


def test_jsonl_keeps_good_lines_and_counts_bad_ones() -> None:
    good = F.make_annotation("b" * 32, "Ship Type Name", "Ship Type", ml_name="Sh1p")  # 32-hex: predecessor
    text = good.upload_line() + "\n{not json\n" + json.dumps({"crop_sha256": SHA, "name": "X", "slot": "?"}) + "\n\n"
    parsed = F.parse_annotation_lines(text)
    assert [r.crop_sha256 for r in parsed.records] == ["b" * 32]
    assert parsed.records[0].is_text
    assert [n for n, _ in parsed.rejected] == [2, 3]


def test_staging_paths_round_trip_and_refuse_escapes() -> None:
    assert F.parse_staging_path(F.staging_crop_path(IID, SHA)) == F.StagingPath(IID, "crop", SHA)
    assert F.parse_staging_path(F.staging_annotations_path(IID)).kind == "annotations"
    batch = F.staging_batch_annotations_path(IID, "0123abcd")
    assert F.parse_staging_path(batch) == F.StagingPath(IID, "batch", "0123abcd")
    screen = F.parse_staging_path(F.staging_screen_path(IID, "TRAITS", SHA))
    assert (screen.kind, screen.screen_type) == ("screen", "TRAITS")
    for bad in [f"staging/{IID}/../x.png", "/etc/passwd", f"staging\\{IID}\\crops\\{SHA}.png",
                f"staging/not-a-uuid/crops/{SHA}.png", f"staging/{IID}/crops/{SHA}.exe",
                f"staging/{IID}/screen_types/GAMEPLAY/{SHA}.png", f"staging/{IID}/crops/\x00.png"]:
        with pytest.raises(F.FormatError):
            F.parse_staging_path(bad)
    with pytest.raises(F.FormatError):
        F.staging_crop_path("../../x", SHA)


def test_trained_at_is_a_time_not_a_string() -> None:
    older = F.parse_model_version({"trained_at": "2026-03-23T09:00:00Z"})
    newer = F.parse_model_version({"trained_at": "2026-03-23T10:30:00+01:00"})  # 09:30 UTC
    assert "2026-03-23T09:00:00Z" < "2026-03-23T10:30:00+01:00"  # as strings the older looks older: wrong reason
    assert newer.is_newer_than(older) and not older.is_newer_than(newer)
    late_string = F.parse_model_version({"trained_at": "2026-03-23T09:45:00+05:00"})  # 04:45 UTC
    assert not late_string.is_newer_than(older)  # "…09:45…" > "…09:00…" as text, yet it is older
    assert older.is_newer_than(None)
    with pytest.raises(F.FormatError, match="ISO-8601"):
        F.parse_model_version({"trained_at": "March 23rd"})
    with pytest.raises(F.FormatError, match="missing"):
        F.parse_model_version({"version": "x"})


def test_model_version_files_are_checked_and_round_trip() -> None:
    entry = F.file_entry(b"onnx bytes")
    mv = F.parse_model_version({"trained_at": "2026-01-01T00:00:00Z", "n_classes": 3, "val_acc": 0.9,
                                "files": {"models/label_map.json": entry}, "ece": 0.02})
    again = F.parse_model_version(json.loads(json.dumps(mv.to_json())))
    assert again == mv and again.extra == {"ece": 0.02}
    with pytest.raises(F.FormatError):
        F.parse_model_version({"trained_at": "2026-01-01T00:00:00Z", "files": {"../x": entry}})
    with pytest.raises(F.FormatError):
        F.parse_model_version({"trained_at": "2026-01-01T00:00:00Z", "files": {"a": {"sha256": "zz", "size": 1}}})


def test_label_maps_must_be_contiguous_and_valid() -> None:
    names = ["Ablative Shell", "Plasma Beam Array"]
    assert F.parse_label_map(json.dumps(F.label_map_json(names))) == names
    for bad in ['{"0": "a", "2": "b"}', '{"x": "a"}', '{"0": "a", "1": "a"}', '{"0": ""}', "[1]", "not json"]:
        with pytest.raises(F.FormatError):
            F.parse_label_map(bad)
    assert F.parse_screen_labels({"0": "BOFFS", "1": "UNKNOWN"}) == ["BOFFS", "UNKNOWN"]
    with pytest.raises(F.FormatError):
        F.parse_screen_labels({"0": "GAMEPLAY"})


def test_knowledge_corrections_and_manifest() -> None:
    table = F.parse_knowledge(json.dumps(F.knowledge_json({"0123456789abcdef": "Item A"})))
    assert table == {"0123456789abcdef": "Item A"}
    assert F.parse_knowledge({"knowledge": {"short": "x", "0123456789ABCDEF": "Item B", "fedcba9876543210": 5}}) == {
        "0123456789abcdef": "Item B"}
    assert F.parse_corrections({"F1eet Support Cruiser": "Fleet Support Cruiser", "x": ""}) == {
        "F1eet Support Cruiser": "Fleet Support Cruiser"}
    manifest = F.manifest_json(["c" * 64, "c" * 64, "d" * 32])
    assert manifest["count"] == 2 and F.parse_manifest(manifest) == {"c" * 64, "d" * 32}


@pytest.mark.parametrize("path", ["a/../b", "./a", "a//b", "C:/x", "a\\b", "", "a/\x07"])
def test_remote_paths_that_could_escape_are_refused(path: str) -> None:
    with pytest.raises(F.FormatError):
        F.validate_remote_path(path)
