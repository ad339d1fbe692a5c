"""central.vote: the seed's voting facts, ballots of near-duplicate crops, poisoning limits, caps, skip logic."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import pytest

from central.collect import ScreenSample, TextVote, Vote, encode_png
from central.vote import (VoteOptions, build_ballots, cap_screens, corrections, pixel_distance, screen_train_ok,
                          should_train, training_set, vote)
from warpd import formats
from warpd.preprocess import canonical_crop
from warpd.synth.icons import apply_rarity, render_icon

A, B, C, D, E = "install-a", "install-b", "install-c", "install-d", "install-e"
SLOT = "Fore Weapons"
FAMILY = ["Phaser Beam Array", "Advanced Phaser Beam Array", "Fleet Phaser Beam Array",
          "Advanced Fleet Antiproton Cannon", "Advanced Fleet Tetryon Cannon"]


@lru_cache(maxsize=None)
def _base(name: str, kind: str, rarity: str) -> np.ndarray:
    return np.asarray(apply_rarity(render_icon(name, kind), rarity).convert("RGB"))


def icon(name: str, *, dx: int = 0, dy: int = 0, jpeg: int | None = None, kind: str = "equipment",
         rarity: str = "Very Rare") -> np.ndarray:
    """A 64x64 canonical crop of a synthetic icon as a screenshot would give it: the bbox ``dx, dy``
    pixels off (new edge pixels repeat the border) and optionally JPEG-compressed."""
    im = np.pad(_base(name, kind, rarity), ((3, 3), (3, 3), (0, 0)), mode="edge")[3 + dy:67 + dy, 3 + dx:52 + dx]
    if jpeg:
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(im[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, jpeg])
        im = cv2.imdecode(buf, cv2.IMREAD_COLOR)[:, :, ::-1]
    return canonical_crop(im)


def sha_of(arr: np.ndarray) -> str:
    return formats.sha256_hex(encode_png(arr))


class Book:
    """Builds votes in upload order (``order`` increases with every call) and keeps the crops."""

    def __init__(self) -> None:
        self.votes: list[Vote] = []
        self.crops: dict[str, np.ndarray] = {}

    def add(self, install: str, arr: np.ndarray, name: str, slot: str = SLOT) -> str:
        sha = sha_of(arr)
        self.crops[sha] = arr
        self.votes.append(Vote(install, sha, name, slot, "2026-01-01", len(self.votes) + 1, len(self.votes)))
        return sha


def _winner_names(result) -> list[str]:
    return sorted(w.name for w in result.winners)


# ------------------------------------------------------------------------------ seed facts

def test_one_vote_per_install_per_crop_and_a_later_line_overwrites() -> None:
    book = Book()
    crop = icon("Phaser Beam Array")
    for _ in range(3):  # A repeats "X" three times: still one vote
        book.add(A, crop, "Phaser Beam Array")
    book.add(B, crop, "Fleet Phaser Beam Array")
    book.add(C, crop, "Fleet Phaser Beam Array")
    (w,) = vote(book.votes, book.crops).winners
    assert (w.name, w.votes, w.installs) == ("Fleet Phaser Beam Array", 2, 3)

    book = Book()
    book.add(A, crop, "Phaser Beam Array")  # A's first word...
    book.add(B, crop, "Fleet Phaser Beam Array")
    book.add(C, crop, "Phaser Beam Array")
    book.add(A, crop, "Fleet Phaser Beam Array")  # ...overwritten by its later line: 2 : 1
    (w,) = vote(book.votes, book.crops).winners
    assert (w.name, w.votes, w.margin) == ("Fleet Phaser Beam Array", 2, 1)


def test_majority_wins() -> None:
    book = Book()
    crop = icon("Phaser Beam Array")
    book.add(A, crop, "Fleet Phaser Beam Array")  # first uploader, outvoted
    for who in (B, C, D):
        book.add(who, crop, "Phaser Beam Array")
    (w,) = vote(book.votes, book.crops).winners
    assert w.name == "Phaser Beam Array" and w.votes == 3 and w.margin == 2
    assert set(w.supporters) == {B, C, D}


@pytest.mark.parametrize("first", ["Phaser Beam Array", "Fleet Phaser Beam Array"])
def test_a_tie_goes_to_the_first_uploaders_label(first: str) -> None:
    other = "Fleet Phaser Beam Array" if first == "Phaser Beam Array" else "Phaser Beam Array"
    book = Book()
    crop = icon("Phaser Beam Array")
    book.add(C, crop, first)  # C uploaded first
    book.add(A, crop, other)
    (w,) = vote(book.votes, book.crops).winners
    assert w.name == first and w.margin == 0


# -------------------------------------------------------------------------------- ballots

def test_near_duplicates_from_different_installs_meet_in_one_ballot() -> None:
    variants = [icon("Phaser Beam Array"), icon("Phaser Beam Array", dx=1), icon("Phaser Beam Array", dy=-1),
                icon("Phaser Beam Array", jpeg=70), icon("Phaser Beam Array", dx=1, jpeg=75)]
    assert len({sha_of(v) for v in variants}) == len(variants)  # byte hashes never coincide
    book = Book()
    for who, arr in zip((A, B, C, D, E), variants):
        book.add(who, arr, "Phaser Beam Array" if who != E else "Fleet Phaser Beam Array")
    result = vote(book.votes, book.crops)
    (w,) = result.winners
    assert (w.name, w.votes, w.installs, len(w.crop_shas)) == ("Phaser Beam Array", 4, 5, 5)


def test_different_icons_even_of_one_family_stay_in_separate_ballots() -> None:
    crops = {}
    for name in FAMILY:
        for arr in (icon(name), icon(name, dx=1, jpeg=75)):
            crops[sha_of(arr)] = (arr, name)
    slots_of = {sha: {SLOT} for sha in crops}
    ballots = build_ballots(slots_of, {s: a for s, (a, _) in crops.items()}, VoteOptions())
    names = sorted(tuple(sorted({crops[s][1] for s in b})) for b in ballots)
    assert names == sorted((n,) for n in FAMILY)  # each icon's two copies together, never two icons
    # the pixel distance is what separates them (pHash alone would not)
    same = pixel_distance(icon("Phaser Beam Array"), icon("Phaser Beam Array", dx=1, jpeg=70))
    other = pixel_distance(icon("Advanced Fleet Antiproton Cannon"), icon("Advanced Fleet Tetryon Cannon"))
    assert same < VoteOptions().pixel_max_distance < other


def test_near_duplicates_in_different_slots_do_not_meet() -> None:
    arr1, arr2 = icon("Phaser Beam Array"), icon("Phaser Beam Array", dx=1)
    book = Book()
    book.add(A, arr1, "Phaser Beam Array", "Fore Weapons")
    book.add(B, arr2, "Phaser Beam Array", "Aft Weapons")
    assert len(vote(book.votes, book.crops).winners) == 2


def test_one_vote_per_install_per_ballot_its_latest_label() -> None:
    book = Book()
    book.add(A, icon("Phaser Beam Array"), "Phaser Beam Array")
    book.add(B, icon("Phaser Beam Array", dx=1), "Phaser Beam Array")
    book.add(C, icon("Phaser Beam Array", jpeg=70), "Fleet Phaser Beam Array")
    book.add(A, icon("Phaser Beam Array", dy=1), "Fleet Phaser Beam Array")  # A's later crop, new mind
    (w,) = vote(book.votes, book.crops).winners
    assert w.name == "Fleet Phaser Beam Array" and w.votes == 2 and w.installs == 3
    assert len(w.crop_shas) == 4  # every crop of the icon trains under the winning label


# ------------------------------------------------------------------------------ poisoning

HONEST = ["Phaser Beam Array", "Disruptor Beam Array", "Plasma Beam Array", "Tetryon Beam Array",
          "Polaron Beam Array", "Antiproton Beam Array", "Phaser Dual Beam Bank", "Disruptor Dual Beam Bank",
          "Plasma Dual Beam Bank", "Tetryon Dual Beam Bank", "Polaron Dual Beam Bank", "Antiproton Dual Beam Bank",
          "Phaser Dual Cannons", "Disruptor Dual Cannons", "Plasma Dual Cannons", "Tetryon Dual Cannons",
          "Polaron Dual Cannons", "Antiproton Dual Cannons", "Phaser Cannon", "Disruptor Cannon",
          "Plasma Cannon", "Tetryon Cannon", "Polaron Cannon", "Antiproton Cannon", "Phaser Turret",
          "Disruptor Turret", "Plasma Turret", "Tetryon Turret", "Polaron Turret", "Antiproton Turret"]
FAKE = "Phaser Quad Cannons"


def _poisoned_book(catalog) -> tuple[Book, dict[str, str]]:
    """3 honest installs label 30 icons (each their own copy: offset / JPEG); a poisoner labels its own
    copies of the same 30 icons wrongly and uploads 100 icons of other items as FAKE."""
    book, truth = Book(), {}
    for k, name in enumerate(HONEST):
        copies = {B: icon(name, dx=1), C: icon(name, jpeg=75), D: icon(name, dy=1)}
        truth[book.add(E, icon(name, dx=-1), HONEST[(k + 1) % len(HONEST)])] = name  # poisoner uploads first
        for who, arr in copies.items():
            truth[book.add(who, arr, name)] = name
    own = [n for n in catalog.items_for_slot(SLOT) if n not in HONEST and n != FAKE][:100]
    for name in own:
        truth[book.add(E, icon(name, rarity="Rare"), FAKE)] = name
    return book, truth


def test_a_poisoner_cannot_change_agreed_labels_and_its_solo_labels_are_limited(catalog) -> None:
    book, truth = _poisoned_book(catalog)
    model = lambda crops: [(truth[sha_of(c)], 0.97) for c in crops]  # noqa: E731 - a confident, right model
    result = vote(book.votes, book.crops, model_check=model)
    honest = {w.name: w for w in result.winners if w.votes >= 2}
    assert sorted(honest) == sorted(HONEST)
    assert all(w.votes == 3 and w.installs == 4 for w in honest.values())
    assert FAKE not in {w.name for w in result.winners}  # every solo FAKE contradicted by the model
    assert len(result.held_back) >= 90 and all(h.install_id == E for h in result.held_back)
    assert result.per_install[E].lost == 30 and result.per_install[E].held_back == len(result.held_back)

    # without a model the per-install cap still bounds what the poisoner adds
    result = vote(book.votes, book.crops, options=VoteOptions(max_per_class=20))
    fake = [sha for w in result.winners if w.name == FAKE for sha in w.crop_shas]
    assert len(fake) <= 20 and len(result.capped) >= 70
    assert sorted(w.name for w in result.winners if w.votes >= 2) == sorted(HONEST)


def test_held_back_only_when_alone_and_the_model_is_confidently_against() -> None:
    def run(model_prob: float, second: bool):
        book = Book()
        book.add(A, icon("Phaser Beam Array"), "Fleet Phaser Beam Array")
        if second:
            book.add(B, icon("Phaser Beam Array", dx=1), "Fleet Phaser Beam Array")
        return vote(book.votes, book.crops, model_check=lambda crops: [("Phaser Beam Array", model_prob)] * len(crops))

    held = run(0.95, second=False)
    assert not held.winners and [(h.name, h.model_name, h.install_id) for h in held.held_back] == [
        ("Fleet Phaser Beam Array", "Phaser Beam Array", A)]
    assert _winner_names(run(0.60, second=False)) == ["Fleet Phaser Beam Array"]  # model not sure
    assert _winner_names(run(0.99, second=True)) == ["Fleet Phaser Beam Array"]  # a second install agrees


def test_per_class_and_share_caps_are_seeded_and_exempt_confirmed_ballots(catalog) -> None:
    names = catalog.items_for_slot("Tactical Consoles")[:90]
    book = Book()
    for name in names[:70]:  # A alone: 70 crops of one class
        book.add(A, icon(name, rarity="Epic"), "Console - Tactical - Vulnerability Locator", "Tactical Consoles")
    for name in names[70:]:  # 20 ballots B and C agree on
        book.add(B, icon(name), name, "Tactical Consoles")
        book.add(C, icon(name, jpeg=70), name, "Tactical Consoles")
    opts = VoteOptions(max_per_class=50, max_share=0.2, min_share_floor=0)
    r1 = vote(book.votes, book.crops, options=opts)
    a_crops = {s for w in r1.winners if A in w.supporters for s in w.crop_shas}
    # per class: 70 -> 50; share: 20 % of the 110 winning crops -> 22
    assert len(a_crops) == 22 and r1.per_install[A].capped == 48
    assert sum(len(w.crop_shas) for w in r1.winners if w.votes == 2) == 40  # confirmed: untouched
    r2 = vote(book.votes, book.crops, options=opts)
    assert {s for w in r2.winners for s in w.crop_shas} == {s for w in r1.winners for s in w.crop_shas}
    r3 = vote(book.votes, book.crops, options=VoteOptions(max_per_class=50, max_share=0.2, min_share_floor=0,
                                                          seed=1))
    assert {s for w in r3.winners for s in w.crop_shas} != {s for w in r1.winners for s in w.crop_shas}


def test_caps_count_a_crop_against_its_first_uploader() -> None:
    book = Book()
    crops = [icon(n) for n in ("Phaser Beam Array", "Plasma Cannon", "Tetryon Turret")]
    for arr in crops:
        book.add(A, arr, "Phaser Beam Array")  # A first: wins each 1 : 1 tie
    for arr in crops:
        book.add(B, arr, "Plasma Cannon")
    result = vote(book.votes, book.crops, options=VoteOptions(max_per_class=1, max_share=1.0))
    assert result.per_install[A].capped == 2 and result.per_install[B].capped == 0
    assert [w.name for w in result.winners] == ["Phaser Beam Array"]


def test_reliability_weights_break_a_tie_against_a_proven_dissenter() -> None:
    book = Book()
    names = HONEST[:8]
    for k, name in enumerate(names):  # D disagrees with A, B, C on 8 icons
        for who, arr in ((A, icon(name)), (B, icon(name, dx=1)), (C, icon(name, jpeg=70))):
            book.add(who, arr, name)
        book.add(D, icon(name, dy=1), names[(k + 1) % len(names)])
    book.add(D, icon("Phaser Quad Cannons"), "Phaser Dual Heavy Cannons")  # D first on a new icon...
    book.add(E, icon("Phaser Quad Cannons", dx=1), "Phaser Quad Cannons")  # ...E disagrees: 1 : 1
    plain = {w.crop_shas[0]: w.name for w in vote(book.votes, book.crops).winners if w.installs == 2}
    weighted = vote(book.votes, book.crops, options=VoteOptions(reliability_weighted=True))
    assert list(plain.values()) == ["Phaser Dual Heavy Cannons"]  # tie -> first uploader
    assert [w.name for w in weighted.winners if w.installs == 2] == ["Phaser Quad Cannons"]
    assert weighted.per_install[D].weight < weighted.per_install[E].weight < weighted.per_install[A].weight


# ------------------------------------------------------------------------ other outputs

def test_training_set_keeps_near_duplicates_in_one_group() -> None:
    book = Book()
    book.add(A, icon("Phaser Beam Array"), "Phaser Beam Array")
    book.add(B, icon("Phaser Beam Array", dx=1), "Phaser Beam Array")
    book.add(A, icon("Plasma Cannon"), "Plasma Cannon")

    class Fake:
        crops = book.crops

    rows = training_set(Fake(), vote(book.votes, book.crops))  # type: ignore[arg-type]
    groups = {}
    for arr, label, group in rows:
        assert arr.shape == (64, 64, 3)
        groups.setdefault(label, set()).add(group)
    assert len(rows) == 3 and all(len(g) == 1 for g in groups.values())
    assert groups["Phaser Beam Array"] != groups["Plasma Cannon"]


def _tv(install: str, ml: str, name: str, order: int, slot: str = "Ship Type") -> TextVote:
    return TextVote(install, "ab" * 32, name, slot, ml, "2026-01-01", order + 1, order)


def test_corrections_majority_one_vote_per_install_and_first_uploader_on_a_tie() -> None:
    votes = [
        _tv(A, "F1eet Support Cruiser", "Fleet Support Cruiser", 0),
        _tv(B, "F1eet Support Cruiser", "Fleet Support Cruiser", 1),
        *[_tv(C, "F1eet Support Cruiser", "Fleet Support Carrier", 2 + i) for i in range(3)],  # C: still one
        _tv(D, "Odyssey Cru1ser", "Odyssey Cruiser", 10),  # first on this reading...
        _tv(E, "Odyssey Cru1ser", "Odyssey Operations Cruiser", 11),  # ...tie: D's label
        _tv(A, "Excelsior", "Excelsior", 12),  # OCR was right: no vote
        _tv(A, "", "Galaxy", 13),  # nothing to correct
        _tv(B, "T6-X 2", "T6-X2", 14, slot="Ship Tier"),
        _tv(B, "T6-X 2", "T6-X", 15, slot="Ship Tier"),  # B's later line overwrites its earlier one
    ]
    assert corrections(votes) == {"F1eet Support Cruiser": "Fleet Support Cruiser",
                                  "Odyssey Cru1ser": "Odyssey Cruiser", "T6-X 2": "T6-X"}


def _screens(n: int, stype: str = "SPACE_EQ") -> list[ScreenSample]:
    return [ScreenSample(f"i{k % 7}", f"{k:064x}", np.zeros((4, 4, 3), np.uint8)) for k in range(n)]


def test_screen_type_capping_is_seeded_reproducible_and_follows_the_rule() -> None:
    screens = {"SPACE_EQ": _screens(400), "TRAITS": _screens(150), "BOFFS": _screens(151), "UNKNOWN": _screens(12)}
    capped = cap_screens(screens, seed=3)
    assert {k: len(v) for k, v in capped.items()} == {"SPACE_EQ": 150, "TRAITS": 150, "BOFFS": 150, "UNKNOWN": 12}
    again = cap_screens({k: list(reversed(v)) for k, v in screens.items()}, seed=3)  # listing order is irrelevant
    assert [s.sha for s in again["SPACE_EQ"]] == [s.sha for s in capped["SPACE_EQ"]]
    other = cap_screens(screens, seed=4)
    assert {s.sha for s in other["SPACE_EQ"]} != {s.sha for s in capped["SPACE_EQ"]}
    assert len(cap_screens({"X": _screens(40)}, cap=20, min_n=50)["X"]) == 40  # n < min_n: kept whole
    assert len(cap_screens({"X": _screens(30)}, cap=20, min_n=30)["X"]) == 20  # n >= min_n and n > cap
    assert not screen_train_ok(6) and screen_train_ok(7)


def test_should_train_skip_logic() -> None:
    base = {f"{i:064x}" for i in range(100)}
    assert should_train(base, None) == (True, "no previous manifest")
    assert should_train(base, set(base))[0] is False
    assert should_train(base, set(base), force=True) == (True, "forced")
    nine = base | {f"{i:064x}" for i in range(1000, 1009)}
    ten = base | {f"{i:064x}" for i in range(1000, 1010)}
    assert should_train(nine, base)[0] is False and "9 new" in should_train(nine, base)[1]
    assert should_train(ten, base) == (True, "10 new crops")
