"""central.collect against the local HTTP Hub (the real huggingface_hub client through warpd.hub.HttpHub):
pinned revision, faults retried, permanent failures counted missing, hostile input refused with reasons."""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pytest

from central.collect import CollectOptions, collect, decode_png, encode_png
from central.vote import corrections, decide, vote
from tests.hubserver import HubServer  # noqa: E402
from tests.test_central_vote import icon
from warpd import formats
from warpd.hub import HttpHub, RetryPolicy

REPO = "sets-sto/sto-icon-dataset"
SLOT = "Fore Weapons"


def iid(k: int) -> str:
    """A deterministic, valid install id (UUID4 format)."""
    return str(uuid.UUID(int=(k + 1) * 0x1000_0000_0001, version=4))


def hub(server: HubServer, attempts: int = 2) -> HttpHub:
    return HttpHub(server.url, None, timeout_s=5.0,
                   retry=RetryPolicy(attempts=attempts, base_s=0.01, max_s=0.02, jitter=0.0))


def line(sha: str, name: str, slot: str = SLOT, date: str = "2026-03-01", ml_name: str = "") -> str:
    return json.dumps({"crop_sha256": sha, "name": name, "slot": slot, "date": date, "ml_name": ml_name})


class Staging:
    """Builds an install's staging files: crops by their sha256, annotation lines, screen samples."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    def crop(self, install: str, arr: np.ndarray, *, short: bool = False) -> str:
        data = encode_png(arr)
        sha = formats.sha256_hex(data)[:32] if short else formats.sha256_hex(data)
        self.files[f"staging/{install}/crops/{sha}.png"] = data
        return sha

    def lines(self, install: str, lines: list[str], batch: str | None = None) -> None:
        path = (formats.staging_batch_annotations_path(install, batch) if batch
                else formats.staging_annotations_path(install))
        self.files[path] = ("\n".join(lines) + "\n").encode()

    def screen(self, install: str, stype: str, arr: np.ndarray) -> str:
        data = encode_png(arr)
        sha = formats.sha256_hex(data)
        self.files[formats.staging_screen_path(install, stype, sha)] = data
        return sha


NO_SLEEP = dict(sleep=lambda s: None)


def test_collects_validates_and_rejects_with_reasons(hub_server: HubServer, catalog) -> None:
    st = Staging()
    a, b, c = iid(1), iid(2), iid(3)
    pba = st.crop(a, icon("Phaser Beam Array"))
    old = st.crop(a, icon("Plasma Cannon"), short=True)  # the predecessor's 32-hex name
    ship = st.crop(a, np.full((20, 120, 3), 200, np.uint8))  # a text crop
    st.lines(a, [
        line(pba, "Phaser Beam Array"),
        line(old, "Plasma Cannon"),
        line(ship, "Support Cruiser", "Ship Type", ml_name="Supp0rt Cruiser"),
        line(ship, "T6-X9", "Ship Tier"),  # not a tier
        line(ship, "Enterprise", "Ship Name"),  # never stored
        line(pba, "CLI Test Item"),  # not an item at all
        line(pba, "Console - Advanced Tactical - Vulnerability Locator"),  # an item, not for this slot
        "{not json",
        line("0" * 64, "Phaser Beam Array"),  # no such crop uploaded
    ])
    dup = st.crop(b, icon("Phaser Beam Array", dx=1))
    bad_hash = st.crop(b, icon("Plasma Cannon", dy=1))
    st.files[f"staging/{b}/crops/{bad_hash}.png"] = encode_png(icon("Tetryon Cannon"))  # bytes != name
    big = st.crop(b, np.zeros((300, 300, 3), np.uint8))
    st.lines(b, [line(dup, "Phaser Beam Array"), line(bad_hash, "Plasma Cannon"), line(big, "Plasma Cannon")],
             batch="ab" * 8)
    screen = st.screen(c, "SPACE_EQ", np.full((126, 224, 3), 30, np.uint8))
    hostile = {"staging/../x": b"x", "staging/not-an-install/crops/" + "a" * 64 + ".png": b"x",
               f"staging/{c}/crops/{'A' * 64}.png": b"x", f"staging/{c}/notes.txt": b"x",
               f"staging/{c}/screen_types/NOT_A_TYPE/{'b' * 64}.png": b"x"}
    hub_server.seed(REPO, {**st.files, **hostile})

    got = collect(hub(hub_server), REPO, catalog=catalog, **NO_SLEEP)
    rep = got.report
    assert got.revision == hub_server.head(REPO)
    assert sorted((v.install_id, v.crop_sha, v.name) for v in got.votes) == sorted(
        [(a, pba, "Phaser Beam Array"), (a, old, "Plasma Cannon"), (b, dup, "Phaser Beam Array")])
    assert set(got.crops) == {pba, old, dup} and all(x.shape == (64, 64, 3) for x in got.crops.values())
    assert [(t.name, t.ml_name) for t in got.text_votes] == [("Support Cruiser", "Supp0rt Cruiser")]
    assert ship not in got.crops  # text crops are never icon training data
    assert [s.sha for s in got.screens["SPACE_EQ"]] == [screen]
    assert got.installs == [x for x in sorted([a, b, c])]
    for reason, n in {"unknown ship tier": 1, "ship name line": 1, "label not in catalogue": 1,
                      "label not valid for slot": 1, "not json": 1, "crop hash mismatch": 1,
                      "crop too large": 1, "vote dropped: crop not uploaded": 1,
                      "vote dropped: crop not usable": 2}.items():
        assert rep.rejected[reason] == n, (reason, rep.rejected)
    assert rep.rejected["bad path"] >= 4  # the Hub layer itself drops staging/../x before we see it
    assert "CLI Test Item" in rep.examples["label not in catalogue"][0]
    assert not any("../x" in r.path for r in hub_server.requests("resolve"))
    (w,) = [w for w in vote(got.votes, got.crops).winners if w.name == "Phaser Beam Array"]
    assert w.votes == 2 and set(w.crop_shas) == {pba, dup}  # two installs' near-duplicates, one ballot
    assert corrections(got.text_votes) == {"Supp0rt Cruiser": "Support Cruiser"}
    assert rep.missing == {} and rep.crops == 3 and rep.screens == 1 and rep.seconds > 0


def test_first_uploader_is_by_date_then_listing_and_later_lines_overwrite(hub_server: HubServer, catalog) -> None:
    st = Staging()
    a, b = iid(1), iid(2)  # a is listed first
    sha_a = st.crop(a, icon("Phaser Beam Array"))
    sha_b = st.crop(b, icon("Phaser Beam Array", jpeg=70))
    st.lines(a, [line(sha_a, "Advanced Fleet Phaser Beam Array", date="2026-03-02")])
    st.lines(b, [line(sha_b, "Advanced Phaser Beam Array", date="2026-03-01")], batch="01" * 8)  # b was first
    st.lines(b, [line(sha_b, "Phaser Beam Array", date="2026-03-05")], batch="02" * 8)  # b's later word
    hub_server.seed(REPO, st.files)
    got = collect(hub(hub_server), REPO, catalog=catalog, **NO_SLEEP)
    assert [(v.install_id, v.name) for v in sorted(got.votes, key=lambda v: v.order)] == [
        (b, "Advanced Phaser Beam Array"), (a, "Advanced Fleet Phaser Beam Array"), (b, "Phaser Beam Array")]
    assert decide(got.votes)[0] == "Phaser Beam Array"  # 1 : 1, b uploaded first, b's latest label


def test_reads_one_pinned_revision_while_a_client_commits(hub_server: HubServer, catalog) -> None:
    st = Staging()
    a, late = iid(1), iid(9)
    shas = [st.crop(a, icon(n)) for n in ("Phaser Beam Array", "Plasma Cannon")]
    st.lines(a, [line(s, n) for s, n in zip(shas, ("Phaser Beam Array", "Plasma Cannon"))])
    pinned = hub_server.seed(REPO, st.files)

    class CommitsMidway(HttpHub):
        """A client commits right after the listing: new install, new crop, rewritten annotations."""

        def list_files(self, *args, **kwargs):
            out = super().list_files(*args, **kwargs)
            more = Staging()
            s = more.crop(late, icon("Tetryon Cannon"))
            more.lines(late, [line(s, "Tetryon Cannon")])
            more.lines(a, [line(shas[0], "Advanced Fleet Phaser Beam Array")])
            hub_server.seed(REPO, more.files)
            return out

    h = CommitsMidway(hub_server.url, None, timeout_s=5.0, retry=RetryPolicy(attempts=2, base_s=0.01))
    got = collect(h, REPO, catalog=catalog, **NO_SLEEP)
    assert got.revision == pinned != hub_server.head(REPO)
    assert sorted(v.name for v in got.votes) == ["Phaser Beam Array", "Plasma Cannon"]  # the old file
    assert late not in got.installs
    assert all(f"/resolve/{pinned}/" in r.path for r in hub_server.requests("resolve"))


def test_download_faults_are_retried_and_a_lost_crop_is_missing_not_used(hub_server: HubServer, catalog) -> None:
    st = Staging()
    a, b = iid(1), iid(2)
    names = ["Phaser Beam Array", "Plasma Cannon", "Tetryon Cannon", "Disruptor Dual Cannons"]
    shas = [st.crop(a, icon(n)) for n in names]
    st.lines(a, [line(s, n) for s, n in zip(shas, names)])
    lost = st.crop(b, icon("Polaron Turret"))
    st.lines(b, [line(lost, "Polaron Turret")])
    hub_server.seed(REPO, st.files)
    hub_server.inject("500", f"GET .*/resolve/.*{shas[0]}", count=1)
    hub_server.inject("drop", f"GET .*/resolve/.*{shas[1]}", count=1)
    hub_server.inject("503", f"/resolve/.*{shas[2]}", count=3)  # outlasts the hub's 2 tries: collect retries
    permanent = hub_server.inject("500", f"/resolve/.*{lost}", count=1000)
    sleeps: list[float] = []
    got = collect(hub(hub_server), REPO, catalog=catalog, sleep=sleeps.append,
                  options=CollectOptions(attempts=3, backoff_s=0.25))
    assert set(got.crops) == set(shas)
    assert lost not in got.crops and all(v.crop_sha != lost for v in got.votes)
    assert list(got.report.missing) == [f"staging/{b}/crops/{lost}.png"]
    assert got.report.rejected["vote dropped: crop missing"] == 1
    assert permanent.hits == 6  # 3 collect tries x 2 hub tries, then given up
    assert got.report.retries == 3 and sorted(sleeps) == [0.25, 0.25, 0.5]  # one retry for shas[2], two for the lost
    assert {w.name for w in vote(got.votes, got.crops).winners} == set(names)


def test_decode_png_refuses_non_png_and_bombs_before_decoding() -> None:
    ok = decode_png(encode_png(np.zeros((64, 64, 3), np.uint8)), min_side=16, max_side=256, max_pixels=65536)
    assert ok.shape == (64, 64, 3)
    for data, msg in ((b"GIF89a" + b"\0" * 40, "not a PNG"),
                      (encode_png(np.zeros((8, 64, 3), np.uint8)), "too small"),
                      (encode_png(np.zeros((64, 64, 3), np.uint8))[:40], "corrupt")):
        with pytest.raises(ValueError, match=msg):
            decode_png(data, min_side=16, max_side=256, max_pixels=65536)
    bomb = bytearray(encode_png(np.zeros((64, 64, 3), np.uint8)))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # the header claims 100000 x 100000
    with pytest.raises(ValueError, match="too large"):
        decode_png(bytes(bomb), min_side=16, max_side=256, max_pixels=65536)


def test_throughput_20_installs_x_50_crops(hub_server: HubServer, catalog) -> None:
    """20 installs x 50 crops over HTTP with 8 workers; prints crops/s (run with -s to see it)."""
    names = catalog.items_for_slot(SLOT)[:50]
    st = Staging()
    for k in range(20):
        inst = iid(100 + k)
        shas = [st.crop(inst, icon(n, dx=k % 3 - 1, jpeg=60 + k)) for n in names]
        st.lines(inst, [line(s, n) for s, n in zip(shas, names)])
    hub_server.seed(REPO, st.files)
    started = time.monotonic()
    got = collect(hub(hub_server), REPO, catalog=catalog, workers=8, **NO_SLEEP)
    wall = time.monotonic() - started
    assert len(got.votes) == 1000 and len(got.crops) == len({p for p in st.files if "/crops/" in p})
    print(f"\ncollect: {got.report.crops} crops from 20 installs in {wall:.2f}s = "
          f"{got.report.crops / wall:.0f} crops/s ({got.report.summary()})")
    result = vote(got.votes, got.crops)
    assert len(result.winners) <= 60 and sum(w.votes for w in result.winners) >= 900
