"""warpd.store: round trips, dedupe, atomic confirmations, sync bookkeeping, kill -9 and concurrency."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import random
import signal
import sqlite3
import struct
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path

import pytest

from warpd.formats import FormatError, make_annotation, parse_annotation_lines, sha256_hex
from warpd.paths import DataPaths
from warpd.store import (
    PendingItem,
    Store,
    StoreError,
    item_crop_png,
    png_size,
    scrub_ship_name,
)

REPO = Path(__file__).resolve().parent.parent


def make_png(width: int, height: int, seed: int) -> bytes:
    """A small valid RGB PNG whose pixels depend on ``seed`` (no cv2: the kill -9 child uses it too)."""
    rnd = random.Random(seed)
    raw = b"".join(b"\x00" + bytes(rnd.randrange(256) for _ in range(width * 3)) for _ in range(height))

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def shot(n: int | str) -> str:
    return hashlib.sha256(f"screenshot-{n}".encode()).hexdigest()


class Clock:
    """An injectable UTC clock the tests move by hand."""

    def __init__(self, when: dt.datetime):
        self.when = when

    def __call__(self) -> dt.datetime:
        return self.when


@pytest.fixture
def paths(tmp_path: Path) -> DataPaths:
    return DataPaths(tmp_path / "data")


@pytest.fixture
def clock() -> Clock:
    return Clock(dt.datetime(2026, 3, 23, 12, 0, 0, tzinfo=dt.timezone.utc))


@pytest.fixture
def store(paths: DataPaths, clock: Clock):
    with Store(paths, clock=clock) as s:
        yield s


def ask_item(store: Store, n: int, *, slot: str = "Deflector", crop_seed: int | None = None,
             candidates=(("Alpha", 0.6), ("Beta", 0.5)), ml_name: str = "Alpha") -> int:
    sha = shot(n)
    store.claim(sha, f"/shots/{n}.png")
    return store.add_pending(sha, slot, file=f"/shots/{n}.png", index=0, bbox=[10, 20, 49, 64],
                             candidates=candidates, ml_name=ml_name, ml_conf=0.6,
                             crop=make_png(64, 64, n if crop_seed is None else crop_seed))


# --------------------------------------------------------------------------------------------------
# schema and screenshots
# --------------------------------------------------------------------------------------------------
def test_schema_is_versioned_and_wal(store: Store, paths: DataPaths):
    assert store.schema_version() == 1
    con = sqlite3.connect(paths.state_db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    con.execute("UPDATE schema_version SET version = 99")
    con.commit()
    con.close()
    with pytest.raises(StoreError, match="newer warpd"):
        Store(paths)


def test_reopen_is_a_no_op_migration(paths: DataPaths):
    with Store(paths) as s:
        assert s.claim(shot(1), "/a.png")
    with Store(paths) as s:
        assert s.schema_version() == 1 and s.screenshot(shot(1)).status == "queued"


def test_claim_dedupes_by_content_and_known_skips_by_stat(store: Store, tmp_path: Path):
    a, b = tmp_path / "a.png", tmp_path / "b.png"
    a.write_bytes(b"same")
    b.write_bytes(b"same")
    sha = sha256_hex(b"same")
    assert store.claim(sha, a, a.stat()) is True
    assert store.claim(sha, b, b.stat()) is False  # same content under another name
    assert store.claim(sha, a, a.stat()) is False
    assert store.screenshot(sha).paths == (str(a), str(b))
    assert store.known(a, a.stat()) and store.known(b, b.stat())
    assert len(store.queued()) == 1
    os.utime(a, ns=(a.stat().st_atime_ns, a.stat().st_mtime_ns + 1_000_000))
    assert not store.known(a, a.stat())  # touched: must be read again
    assert not store.known(tmp_path / "c.png", a.stat())


def test_claim_is_atomic_across_threads(store: Store):
    wins: list[bool] = []
    barrier = threading.Barrier(6)

    def worker(i: int) -> None:
        barrier.wait()
        wins.append(store.claim(shot("race"), f"/race/{i}.png"))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 5 + [True]
    assert len(store.screenshot(shot("race")).paths) == 6


def test_screenshot_round_trip_and_ship_name_scrubbed(store: Store):
    sha = shot(1)
    store.claim(sha, "/shots/1.png")
    assert store.start(sha) and not store.start(sha)
    result = {"file": "/shots/1.png", "screen_type": "SPACE_EQ", "screen_confidence": 0.9,
              "ship": {"type": "Fleet Support Cruiser", "tier": "T6", "confidence": 0.8, "name": "U.S.S. Secret",
                       "name_bbox": [1, 2, 3, 4]},
              "slots": [{"slot": "Deflector", "index": 0, "bbox": [1, 1, 5, 5], "state": "item", "item": "X",
                         "confidence": 0.9, "decision": "auto", "source": "index", "candidates": [["X", 0.9]]},
                        {"slot": "Ship Name", "index": 0, "bbox": [1, 1, 5, 5], "item": "U.S.S. Secret"}],
              "error": None}
    store.finish(sha, result, ship_key="Fleet Support Cruiser T6")
    got = store.screenshot(sha)
    assert got.status == "done" and got.screen_type == "SPACE_EQ" and got.ship_key == "Fleet Support Cruiser T6"
    assert got.attempts == 1
    assert got.result["slots"][0] == result["slots"][0]
    assert got.result["ship"]["name_bbox"] == [1, 2, 3, 4]
    assert "Secret" not in json.dumps(got.result)  # never stored
    assert "Secret" not in json.dumps(store.build("Fleet Support Cruiser T6"))
    assert store.queued() == []


def test_fail_keeps_error_and_last_error(store: Store):
    sha = shot(2)
    store.claim(sha, "/shots/2.png")
    store.fail(sha, "cannot decode")
    assert store.screenshot(sha).status == "failed" and store.screenshot(sha).error == "cannot decode"
    assert store.get_state("last_error")["error"] == "cannot decode"
    with pytest.raises(StoreError):
        store.finish(shot("never"), {})


def test_resume_requeues_interrupted_work_and_gives_up_on_crash_loops(paths: DataPaths):
    with Store(paths, max_attempts=2) as s:
        for n in (1, 2, 3):
            s.claim(shot(n), f"/{n}.png")
        s.start(shot(1))  # killed while processing
        s.start(shot(3))
        s.finish(shot(3), {"screen_type": "TRAITS"})
    with Store(paths, max_attempts=2) as s:  # the restarted daemon
        assert [x.sha for x in s.resume()] == [shot(1), shot(2)]
        assert s.screenshot(shot(3)).status == "done"
        s.start(shot(1))  # second attempt, killed again
    with Store(paths, max_attempts=2) as s:
        assert [x.sha for x in s.resume()] == [shot(2)]
        assert s.screenshot(shot(1)).status == "failed" and "interrupted 2 times" in s.screenshot(shot(1)).error


def test_finish_queues_questions_in_the_same_transaction_once(store: Store):
    sha = shot(3)
    store.claim(sha, "/3.png")
    pending = [PendingItem(sha, "Tactical Consoles", index=i, crop=make_png(64, 64, i),
                           candidates=[["A", 0.5]]) for i in range(3)]
    ids = store.finish(sha, {"screen_type": "SPACE_EQ"}, pending=pending)
    assert len(set(ids)) == 3
    assert store.finish(sha, {"screen_type": "SPACE_EQ"}, pending=pending) == ids  # reprocess: no duplicates
    assert store.counts()["waiting"] == 3
    # a bad question rolls the whole finish back: the screenshot stays queued
    sha2 = shot(4)
    store.claim(sha2, "/4.png")
    with pytest.raises(ValueError):
        store.finish(sha2, {}, pending=[PendingItem(sha2, "Deflector", crop=b"not a png")])
    assert store.screenshot(sha2).status == "queued"


# --------------------------------------------------------------------------------------------------
# pending questions
# --------------------------------------------------------------------------------------------------
def test_pending_round_trip(store: Store):
    pid = ask_item(store, 5, slot="tac consoles", candidates=[["Alpha", 0.61], ["Beta\n", 0.5], ["", 0.1]],
                   ml_name="Al\npha\x00")
    (item,) = store.waiting()
    assert item.id == pid and item.slot == "Tactical Consoles" and item.kind == "item"
    assert item.file == "/shots/5.png" and item.index == 0 and item.bbox == (10, 20, 49, 64)
    assert item.candidates == [("Alpha", 0.61), ("Beta", 0.5)]
    assert item.ml_name == "" and item.ml_conf == pytest.approx(0.6)  # junk OCR/ML text dropped, not fatal
    assert item.crop == make_png(64, 64, 5) and item.status == "waiting"
    same = store.add_pending(shot(5), "Tactical Consoles", bbox=(10, 20, 49, 64), crop=make_png(64, 64, 9))
    assert same == pid  # same slot, index and place: same row
    other_seat = store.add_pending(shot(5), "Tactical Consoles", bbox=(300, 20, 49, 64), crop=make_png(64, 64, 9))
    assert other_seat != pid  # two boff seats of one profession share slot and index, not their place
    assert store.counts() == {"waiting": 2, "confirmed": 0, "skipped": 0, "none": 0}
    assert store.waiting(limit=0) == []


def test_ship_name_is_refused_everywhere(store: Store):
    store.claim(shot(6), "/6.png")
    for slot in ("Ship Name", "ship name", " Ship  Name "):
        with pytest.raises(ValueError, match="Ship Name"):
            store.add_pending(shot(6), slot, kind="item", crop=make_png(64, 64, 1))
        with pytest.raises(ValueError):
            store.add_pending(shot(6), slot, kind="ship_type", crop=make_png(200, 20, 1))
    with pytest.raises(FormatError):
        store.add_annotation(make_annotation("a" * 64, "U.S.S. Secret", "Ship Name"), make_png(64, 64, 1))
    assert store.counts()["waiting"] == 0
    scrubbed = scrub_ship_name({"ship": {"name": "X", "name_bbox": [1, 2, 3, 4]},
                                "slots": [{"slot": "ship name", "item": "X", "bbox": [1, 2, 3, 4]}]})
    assert "X" not in json.dumps(scrubbed) and scrubbed["ship"]["name_bbox"] == [1, 2, 3, 4]


def test_crop_shapes_are_checked(store: Store):
    store.claim(shot(7), "/7.png")
    with pytest.raises(ValueError, match="64x64"):
        store.add_pending(shot(7), "Deflector", crop=make_png(48, 64, 1))
    with pytest.raises(ValueError, match="needs its crop"):
        store.add_pending(shot(7), "Deflector")
    with pytest.raises(ValueError, match="224"):
        store.add_pending(shot(7), kind="screen_type", crop=make_png(300, 100, 1))
    with pytest.raises(ValueError):
        store.add_pending(shot(7), "Not A Slot", crop=make_png(64, 64, 1))
    with pytest.raises(ValueError, match="Ship Tier"):
        store.add_pending(shot(7), "Ship Type", kind="ship_tier", crop=make_png(40, 20, 1))
    assert store.add_pending(shot(7), kind="ship_tier", crop=make_png(40, 20, 1)) > 0


def test_item_crop_png_is_deterministic_64px():
    np = pytest.importorskip("numpy")
    crop = np.random.default_rng(0).integers(0, 255, (64, 49, 3), dtype=np.uint8)
    data = item_crop_png(crop)
    assert png_size(data) == (64, 64) and item_crop_png(crop) == data


# --------------------------------------------------------------------------------------------------
# answers
# --------------------------------------------------------------------------------------------------
def test_confirm_writes_crop_record_and_mirror(store: Store, paths: DataPaths, clock: Clock):
    pid = ask_item(store, 8)
    annotation, crop = store.confirm(pid, "Beta")
    sha = sha256_hex(make_png(64, 64, 8))
    assert crop == make_png(64, 64, 8)
    assert annotation.crop_sha256 == sha and annotation.name == "Beta" and annotation.slot == "Deflector"
    assert annotation.ml_name == "Alpha" and annotation.bbox == (10, 20, 49, 64)
    assert annotation.confirmed_at == "2026-03-23T12:00:00Z" and annotation.date == "2026-03-23"
    assert (paths.crops / f"{sha}.png").read_bytes() == crop
    assert store.pending(pid).status == "confirmed" and store.pending(pid).answer == "Beta"
    assert store.annotations() == [(1, annotation)]
    mirror = parse_annotation_lines((paths.training_data / "annotations.jsonl").read_text())
    assert mirror.records == [annotation] and not mirror.rejected
    assert store.confirmed_name(sha) == "Beta"
    # the recognised name was right: ml_name is empty
    pid2 = ask_item(store, 9)
    assert store.confirm(pid2, "Alpha").annotation.ml_name == ""


def test_confirm_is_idempotent_and_refuses_a_second_opinion(store: Store):
    pid = ask_item(store, 10)
    first = store.confirm(pid, "Beta")
    assert store.confirm(pid, "Beta") == first
    with pytest.raises(StoreError, match="already answered"):
        store.confirm(pid, "Alpha")
    with pytest.raises(StoreError):
        store.skip(pid)
    with pytest.raises(StoreError, match="no question"):
        store.confirm(999, "Beta")
    assert len(store.annotations()) == 1


def test_crash_inside_the_confirm_transaction_leaves_nothing(store: Store, paths: DataPaths,
                                                             monkeypatch: pytest.MonkeyPatch):
    pid = ask_item(store, 11)
    crop_file = paths.crops / f"{sha256_hex(make_png(64, 64, 11))}.png"
    seen: list[bool] = []

    def crash(self, con, annotation, pending_id):
        seen.append(crop_file.is_file())  # the crop is on disk before the commit
        raise RuntimeError("power cut")

    monkeypatch.setattr(Store, "_insert_annotation", crash)
    with pytest.raises(RuntimeError):
        store.confirm(pid, "Beta")
    assert seen == [True]
    assert store.pending(pid).status == "waiting"  # the UPDATE before the crash was rolled back
    assert store.annotations() == []
    assert not (paths.training_data / "annotations.jsonl").exists()
    assert not crop_file.exists()  # created by this call and unreferenced: removed (kill -9 would leave it)
    monkeypatch.undo()
    assert store.confirm(pid, "Beta").annotation.name == "Beta"  # and it can be confirmed afterwards


def test_failed_confirm_keeps_a_crop_another_record_uses(store: Store, paths: DataPaths,
                                                         monkeypatch: pytest.MonkeyPatch):
    first, second = ask_item(store, 12, crop_seed=77), ask_item(store, 13, crop_seed=77)
    store.confirm(first, "Beta")
    monkeypatch.setattr(Store, "_insert_annotation", lambda *a: (_ for _ in ()).throw(RuntimeError("x")))
    with pytest.raises(RuntimeError):
        store.confirm(second, "Beta")
    assert (paths.crops / f"{sha256_hex(make_png(64, 64, 77))}.png").is_file()


def test_confirm_rewrites_a_crop_removed_before_its_commit(store: Store, paths: DataPaths,
                                                           monkeypatch: pytest.MonkeyPatch):
    """Another caller's failed confirmation of the same crop may delete the file in between."""
    pid = ask_item(store, 23)
    crop_file = paths.crops / f"{sha256_hex(make_png(64, 64, 23))}.png"
    real = Store._insert_annotation

    def racing(self, con, annotation, pending_id):
        crop_file.unlink()
        return real(self, con, annotation, pending_id)

    monkeypatch.setattr(Store, "_insert_annotation", racing)
    store.confirm(pid, "Beta")
    assert crop_file.read_bytes() == make_png(64, 64, 23)


def test_skip_and_none_of_these(store: Store):
    a, b, c = ask_item(store, 14), ask_item(store, 15), ask_item(store, 16)
    store.skip(a)
    assert store.none_of_these(b) is None
    confirmed = store.none_of_these(c, "Gamma")
    assert confirmed.annotation.name == "Gamma" and confirmed.annotation.ml_name == "Alpha"
    assert store.pending(a).status == "skipped" and store.pending(b).status == "none"
    assert store.pending(b).candidates == [("Alpha", 0.6), ("Beta", 0.5)]  # the wrong candidates are kept
    assert store.pending(c).status == "none" and store.pending(c).answer == "Gamma"
    assert [x.name for _, x in store.annotations()] == ["Gamma"]
    assert store.counts() == {"waiting": 0, "confirmed": 0, "skipped": 1, "none": 2}
    assert store.confirm(a, "Beta").annotation.name == "Beta"  # a skipped question can still be answered


def test_ship_tier_and_type_text_crops(store: Store):
    store.claim(shot(17), "/17.png")
    tier = store.add_pending(shot(17), kind="ship_tier", crop=make_png(40, 16, 1), ml_name="T6-X2",
                             candidates=[["T6-X2", 0.7]])
    kind = store.add_pending(shot(17), kind="ship_type", crop=make_png(200, 16, 2), ml_name="F1eet Support Cruiser")
    with pytest.raises(ValueError, match="tier"):
        store.confirm(tier, "T9")
    assert store.confirm(tier, "T6-X").annotation.slot == "Ship Tier"
    ann = store.confirm(kind, "Fleet Support Cruiser").annotation
    assert ann.slot == "Ship Type" and ann.ml_name == "F1eet Support Cruiser" and ann.is_text


def test_confirm_screen_type(store: Store, paths: DataPaths):
    sha = shot(18)
    store.claim(sha, "/18.png")
    store.finish(sha, {"screen_type": "UNKNOWN"})
    pid = store.add_pending(sha, kind="screen_type", candidates=[["SPACE_EQ", 0.4], ["TRAITS", 0.35]],
                            crop=make_png(224, 126, 3))
    with pytest.raises(StoreError, match="confirm_screen_type"):
        store.confirm(pid, "SPACE_EQ")
    with pytest.raises(ValueError):
        store.confirm_screen_type(pid, "NOT_A_TYPE")
    sample = store.confirm_screen_type(pid, "TRAITS")
    assert sample.path == paths.screen_types / "TRAITS" / f"{sha256_hex(make_png(224, 126, 3))}.png"
    assert sample.path.read_bytes() == make_png(224, 126, 3)
    assert store.screenshot(sha).screen_type == "TRAITS" and store.pending(pid).status == "confirmed"
    assert store.confirm_screen_type(pid, "TRAITS") == sample
    with pytest.raises(StoreError):
        store.confirm_screen_type(pid, "BOFFS")
    # bytes may also come at confirmation time
    pid2 = store.add_pending(shot(18), kind="screen_type", index=1)
    with pytest.raises(ValueError, match="PNG"):
        store.confirm_screen_type(pid2, "BOFFS")
    assert store.confirm_screen_type(pid2, "BOFFS", make_png(100, 56, 4)).screen_type == "BOFFS"


def test_repair_mirror(store: Store, paths: DataPaths):
    for n in (19, 20, 21):
        store.confirm(ask_item(store, n), "Beta")
    mirror = paths.training_data / "annotations.jsonl"
    assert store.repair_mirror() is False
    lines = mirror.read_text().splitlines()
    mirror.write_text(lines[0] + "\n" + lines[1][:20] + "\n")  # torn and missing lines
    assert store.repair_mirror() is True
    assert [r for r in parse_annotation_lines(mirror.read_text()).records] == [a for _, a in store.annotations()]
    mirror.unlink()
    assert store.repair_mirror() is True and len(mirror.read_text().splitlines()) == 3


def test_orphan_crops_and_temp_sweep(store: Store, paths: DataPaths):
    store.confirm(ask_item(store, 22), "Beta")
    paths.crops.mkdir(parents=True, exist_ok=True)
    orphan = paths.crops / f"{'b' * 64}.png"
    orphan.write_bytes(make_png(64, 64, 1))
    tmp = paths.crops / ".x.png.1.2.tmp"
    tmp.write_bytes(b"half")
    os.utime(tmp, (time.time() - 7200, time.time() - 7200))
    assert store.orphan_crops() == [orphan]
    assert store.sweep_temp_files() == 1 and not tmp.exists()


# --------------------------------------------------------------------------------------------------
# hashes, sync bookkeeping, the daily counter
# --------------------------------------------------------------------------------------------------
def test_32_and_64_hex_hashes(store: Store, paths: DataPaths):
    crop64, crop32 = make_png(64, 64, 30), make_png(64, 64, 31)
    full, cut = sha256_hex(crop64), sha256_hex(crop32)[:32]
    store.add_annotation(make_annotation(full, "Alpha", "Deflector"), crop64)
    store.add_annotation(make_annotation(cut, "Beta", "Shields"), crop32)
    assert (paths.crops / f"{full}.png").is_file() and (paths.crops / f"{cut}.png").is_file()
    assert {i.sha for i in store.unsynced()} == {full, cut}
    assert store.mark_synced([full, cut.upper()], "0123456789abcdef") == 2
    assert store.is_synced("crop", cut) == "Beta" and store.unsynced() == []
    with pytest.raises(ValueError, match="hash"):
        store.add_annotation(make_annotation("c" * 64, "Alpha", "Deflector"), crop64)
    assert store.claim(shot(32)[:32].upper(), "/32.png") is True
    assert store.screenshot(shot(32)[:32]).sha == shot(32)[:32]
    for bad in ("abc", "g" * 64, "a" * 40):
        with pytest.raises(ValueError):
            store.claim(bad, "/x.png")


def test_unsynced_dedupes_by_crop_and_follows_a_new_name(store: Store):
    a, b = ask_item(store, 40, crop_seed=5), ask_item(store, 41, crop_seed=5)  # one icon, two screenshots
    store.confirm(a, "Beta")
    store.confirm(b, "Beta")
    items = store.unsynced()
    assert len(items) == 1 and items[0].label == "Beta" and items[0].path.is_file()
    assert items[0].annotation.upload_line() == store.annotations()[1][1].upload_line()
    store.mark_synced([items[0].sha], store.batch_id_for(items))
    assert store.unsynced() == []
    c = ask_item(store, 42, crop_seed=5)
    store.confirm(c, "Gamma")  # the user changed their mind: the new vote goes up
    assert [i.label for i in store.unsynced()] == ["Gamma"]
    assert len(store.unsynced(limit=0)) == 0


def test_batch_is_sent_before_and_counted_once_after(paths: DataPaths, clock: Clock):
    with Store(paths, clock=clock) as s:
        for n in range(5):
            s.confirm(ask_item(s, 50 + n), "Beta")
        pid = s.add_pending(shot(50), kind="screen_type", crop=make_png(224, 126, 9))
        s.confirm_screen_type(pid, "SPACE_EQ")
        items = s.unsynced(limit=4)
        assert [i.kind for i in items] == ["crop"] * 4
        batch = s.begin_batch(items)
        assert s.begin_batch(items).batch_id == batch.batch_id  # content-derived: the same batch again
        assert [i.kind for i in s.unsynced()] == ["crop", "screen"]  # in-flight items are not offered twice
    # crash after the remote commit, before the mark: the batch is still there after a restart
    with Store(paths, clock=clock) as s:
        (again,) = s.open_batches()
        assert again.batch_id == batch.batch_id and [i.key for i in again.items] == [i.key for i in items]
        assert s.mark_synced(None, again.batch_id) == 4
        assert s.mark_synced(None, again.batch_id) == 0  # idempotent: counted once
        assert s.uploads_on("2026-03-23") == 4 and s.open_batches() == []
        rest = s.unsynced()
        aborted = s.begin_batch(rest)
        assert s.abort_batch(aborted.batch_id) == 2 and len(s.unsynced()) == 2
        with pytest.raises(StoreError):
            s.mark_synced(None, "ffffffffffffffff")


def test_daily_counter_survives_reopen_and_rolls_at_utc_midnight(paths: DataPaths):
    clock = Clock(dt.datetime(2026, 3, 23, 23, 59, 59, tzinfo=dt.timezone.utc))
    with Store(paths, clock=clock) as s:
        assert s.add_uploads(None, 150) == 150
        s.confirm(ask_item(s, 60), "Beta")
        batch = s.begin_batch(s.unsynced())  # begun before midnight...
    clock.when = dt.datetime(2026, 3, 24, 0, 0, 1, tzinfo=dt.timezone.utc)
    with Store(paths, clock=clock) as s:
        assert s.uploads_on() == 0 and s.uploads_on("2026-03-23") == 150
        assert s.mark_synced(None, batch.batch_id) == 1  # ...counts against the day it was sent
        assert s.uploads_on("2026-03-23") == 151
        s.add_uploads(None, 2)
        # a local time just after midnight in UTC+2 is still the 23rd in UTC
        local = dt.datetime(2026, 3, 24, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
        assert s.uploads_on(local) == 151 and s.uploads_on("2026-03-24") == 2
        with pytest.raises(ValueError):
            s.uploads_on("24.03.2026")


# --------------------------------------------------------------------------------------------------
# key/value state and builds
# --------------------------------------------------------------------------------------------------
def test_state_is_shared_between_processes(paths: DataPaths, clock: Clock):
    with Store(paths, clock=clock) as daemon:
        daemon.set_status({"folders": ["/shots"], "queue": 3})
        daemon.set_state("model_version", "2026-03-20")
        daemon.claim(shot(70), "/70.png")
        code = ("import json, sys; from pathlib import Path; from warpd.paths import DataPaths; "
                "from warpd.store import Store; print(json.dumps(Store(DataPaths(Path(sys.argv[1]))).status()))")
        out = subprocess.run([sys.executable, "-c", code, str(paths.root)], capture_output=True, text=True,
                             timeout=60, cwd=REPO, check=True)
    status = json.loads(out.stdout)
    assert status["folders"] == ["/shots"] and status["queue"] == 3 and status["model_version"] == "2026-03-20"
    assert status["updated_at"] == "2026-03-23T12:00:00Z" and status["screenshots"]["queued"] == 1


def test_builds_keep_the_latest_per_ship_and_screen(store: Store):
    for n in (80, 81, 82):
        store.claim(shot(n), f"/{n}.png")
    store.finish(shot(80), {"screen_type": "SPACE_EQ", "n": 80}, ship_key="ship-a", taken_ns=2_000)
    store.finish(shot(81), {"screen_type": "SPACE_EQ", "n": 81}, ship_key="ship-a", taken_ns=1_000)  # older file
    store.finish(shot(82), {"screen_type": "TRAITS", "n": 82}, ship_key="ship-a", taken_ns=3_000)
    assert {k: v["n"] for k, v in store.build("ship-a").items()} == {"SPACE_EQ": 80, "TRAITS": 82}
    assert store.put_build("ship-b", "BOFFS", {"n": 1}) is True
    assert {k for k, _ in store.ships()} == {"ship-a", "ship-b"} and store.build("nope") == {}


# --------------------------------------------------------------------------------------------------
# kill -9 and concurrency
# --------------------------------------------------------------------------------------------------
CHILD = r'''
import hashlib, random, struct, sys, zlib
from pathlib import Path
from warpd.paths import DataPaths
from warpd.store import PendingItem, Store

def make_png(w, h, seed):
    rnd = random.Random(seed)
    raw = b"".join(b"\x00" + bytes(rnd.randrange(256) for _ in range(w * 3)) for _ in range(h))
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")

root, rnd = Path(sys.argv[1]), int(sys.argv[2])
store = Store(DataPaths(root))

def process(sha, seed):
    store.start(sha)
    crop = make_png(64, 64, seed if seed % 5 else 5)  # mostly new crop files, every 5th one shared
    ids = store.finish(sha, {"screen_type": "SPACE_EQ", "slots": []}, ship_key="ship",
                       pending=[PendingItem(sha, "Deflector", crop=crop, candidates=[["A", 0.5], ["B", 0.4]],
                                            ml_name="A")])
    print("D", sha, flush=True)
    ann, _ = store.confirm(ids[0], "B")
    print("A", ids[0], ann.crop_sha256, flush=True)

for n, s in enumerate(store.resume()):
    process(s.sha, rnd * 100000 + 90000 + n)
i = 0
while True:
    sha = hashlib.sha256(f"{rnd}-{i}".encode()).hexdigest()
    if store.claim(sha, f"/shots/{rnd}-{i}.png"):
        print("C", sha, flush=True)
    process(sha, rnd * 100000 + i)
    i += 1
'''


def _lines(text: str) -> list[list[str]]:
    """Complete lines only: the kill may cut the last one."""
    complete = text[: text.rfind("\n") + 1] if "\n" in text else ""
    return [line.split() for line in complete.splitlines() if line.strip()]


def test_kill_9_loses_nothing_committed(tmp_path: Path):
    paths = DataPaths(tmp_path / "data")
    Store(paths).close()
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    claimed, done, confirmed = set(), set(), {}
    for round_no in range(6):
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(paths.root), str(round_no)], cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.25, 0.9))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, f"child died early (seed {seed}): {err[-2000:]}"
        for parts in _lines(out):
            if parts[0] == "C":
                claimed.add(parts[1])
            elif parts[0] == "D":
                done.add(parts[1])
            elif parts[0] == "A":
                confirmed[int(parts[1])] = parts[2]
        with Store(paths) as s:
            assert s.integrity_check() == "ok", f"seed {seed}"
            for sha in done:
                assert s.screenshot(sha).status == "done", f"seed {seed}"
            for pid, crop_sha in confirmed.items():
                item = s.pending(pid)
                assert item is not None and item.status == "confirmed", f"seed {seed}"
            for _, ann in s.annotations():  # no record without its crop
                crop = paths.crops / f"{ann.crop_sha256}.png"
                assert crop.is_file(), f"seed {seed}: annotation committed without its crop"
                assert sha256_hex(crop.read_bytes()) == ann.crop_sha256, f"seed {seed}"
            con = s._con()
            assert con.execute("SELECT COUNT(*) FROM pending p JOIN screenshots t ON t.sha = p.screenshot_sha "
                               "WHERE t.status != 'done'").fetchone()[0] == 0  # questions only for done shots
            assert con.execute("SELECT COUNT(*) FROM screenshots t WHERE t.status = 'done' AND NOT EXISTS "
                               "(SELECT 1 FROM pending p WHERE p.screenshot_sha = t.sha)").fetchone()[0] == 0
    assert confirmed, f"no confirmation finished in any round (seed {seed}); machine too slow?"
    with Store(paths) as s:
        left = {x.sha for x in s.resume()}
        for sha in claimed:  # nothing lost: every claimed shot is done or will be processed again
            status = s.screenshot(sha).status
            assert (status == "done") != (sha in left), f"seed {seed}: {sha[:8]} {status}"
        s.repair_mirror()
        mirror = parse_annotation_lines((paths.training_data / "annotations.jsonl").read_text())
        assert mirror.records == [a for _, a in s.annotations()]


WRITER = r'''
import hashlib, sys, time
from pathlib import Path
from warpd.paths import DataPaths
from warpd.store import Store
store = Store(DataPaths(Path(sys.argv[1])), busy_timeout_ms=10000)
tag, end, n = sys.argv[2], time.monotonic() + float(sys.argv[3]), 0
while time.monotonic() < end:
    sha = hashlib.sha256(f"{tag}-{n}".encode()).hexdigest()
    store.claim(sha, f"/{tag}/{n}.png")
    store.finish(sha, {"screen_type": "TRAITS"})
    store.set_status({"writer": tag, "n": n})
    n += 1
print(n)
'''


def test_concurrent_readers_and_writers_do_not_hit_database_locked(paths: DataPaths):
    Store(paths).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(paths.root), tag, "2.0"], cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for tag in ("w1", "w2")]
    reads = 0
    with Store(paths, busy_timeout_ms=10000) as reader:
        while any(w.poll() is None for w in writers):
            status = reader.status()
            assert set(status["pending"]) == {"waiting", "confirmed", "skipped", "none"}
            reader.queued()
            reads += 1
        written = []
        for w in writers:
            out, err = w.communicate(timeout=30)
            assert w.returncode == 0, err[-2000:]
            written.append(int(out))
        assert reader.screenshot_counts()["done"] == sum(written) and min(written) > 0
    assert reads > 10  # the reader kept reading while both wrote
