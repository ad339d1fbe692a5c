"""Democratic voting over the collected staging set: which label each icon gets, and what is trained on.

The seed's rules, kept (``shared/reference/community-pipeline.md``, "Voting facts"):

* one vote per install per crop; a later line of the same install overwrites its earlier vote;
* the label with most votes wins; a tie goes to the first uploader's label;
* OCR corrections: one vote per install per ``ml_name``, majority wins;
* a screen type with more than 150 samples (and at least 30) is cut to 150 at random;
* skip training when the winning crop set equals the last manifest or fewer than 10 crops are new;
* the screen classifier trains only with at least 7 screenshots.

What the predecessor got wrong, fixed here:

* **Ballots, not byte hashes.** Two installs almost never upload byte-identical crops (a pixel of
  offset, another compression), so keyed by sha256 its "democracy" was self-labelling. Crops are
  grouped into ballots: same bytes, or near-duplicates of one icon, for crops labelled in a common
  slot, closed with union-find. Near-duplicate = three tests, cheapest first:
  (1) 64-bit pHash (:func:`warpd.icon_index.crop_phash`) within ``phash_max_distance`` bits;
  (2) mean colour (blurred LAB) within ``max_tint_shift`` / ``max_light_shift``;
  (3) :func:`pixel_distance` <= ``pixel_max_distance``.
  Why not pHash alone: on STO-like icon families ("Advanced Fleet Disruptor Dual Heavy Cannons" vs
  "... Plasma ...": same shape, other tint or badge) different icons are often 0-6 pHash bits apart
  while a 1-px offset plus JPEG of the *same* icon can be 8-12 bits away; pHash is only a cheap
  candidate filter. The pixel check aligns two crops to sub-pixel precision (phase correlation),
  blurs away JPEG blocks and compares per LAB channel in 8x8-pixel windows: a badge or glyph is a
  large local difference, a shift or recompression is not; a tint change is caught by (2), since
  recompression and offsets keep the mean colour. A false merge silently deletes a class (one label
  wins for two items), a false split only loses the cross-install vote, so the bounds favour
  splitting. Measured on 400-500 synthetic icons (warpd.synth.icons, 4 kinds): 1-2 px offsets, JPEG
  q60-75, a 0.75x rescale and combinations score <= 8.6 in (3) (98-100 % under the bound 8.5) and
  <= 2.5 in (2); different icons within 12 pHash bits score >= 10.2 in (3) and the closest of those
  >= 3.9 in (2). A crop taken at a very different resolution (0.6x, 1.3x + JPEG) scores 14-20 and
  stays in its own ballot. Cost: 1,000 crops of 50 icons (20 copies each) vote in about 1 s.
* **Poisoning.** Labels are checked against the catalogue at collection. Here: a ballot won by a
  single install whose label the current model contradicts with confidence >= ``model_min_prob`` is
  held back; and no install contributes more than ``max_per_class`` crops of one class or more than
  ``max_share`` of the winning set through ballots nobody else supports (excess dropped by a seeded
  choice). Crops in ballots a second install supports are exempt from the caps: another install
  agreeing is exactly what a cap cannot add, and such crops cannot carry a wrong label past a
  majority. (Sybil installs -- many ids, one person -- are not addressed; install ids are free.)
* **Optional reliability weights** (``reliability_weighted``): a one-coin Dawid-Skene EM estimates
  each install's accuracy from agreement with the others; votes then count ``log(p (K-1) / (1-p))``.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from central.collect import Collected, ScreenSample, TextVote, Vote
from warpd.icon_index import crop_phash, hamming

ModelCheck = Callable[[list[np.ndarray]], list[tuple[str, float]]]


@dataclass
class VoteOptions:
    """Voting settings (central is configured by CLI flags mapped onto these)."""

    phash_max_distance: int = 12
    """pHash bits two crops may differ by to be candidates for one ballot (a filter, not the decision:
    near-duplicates measured up to 12 bits apart)."""
    pixel_max_distance: float = 8.5
    """Largest LAB 8x8-window mean difference (after alignment and blur) of two crops in one ballot."""
    max_tint_shift: float = 2.75
    """Largest difference of the two crops' mean a and b (LAB, 0-255 scale): near-duplicates measured
    <= 2.5, sibling icons that differ by tint >= 3.0."""
    max_light_shift: float = 4.0
    """Largest difference of the two crops' mean L (near-duplicates measured <= 2.2)."""
    max_shift_px: float = 3.0
    """Largest offset (pixels at 64x64) the alignment may correct."""
    max_share: float = 0.20
    """Most of the winning set one install may supply through ballots nobody else supports."""
    min_share_floor: int = 50
    """The share cap never goes below this many crops (a young community with few installs)."""
    max_per_class: int = 50
    """Most crops of one class one install may supply through ballots nobody else supports."""
    model_min_prob: float = 0.90
    """A single-supporter label is held back when the model says otherwise with at least this probability."""
    seed: int = 0
    """Seed for the cap's and the screen capping's random choices (reproducible runs)."""
    reliability_weighted: bool = False
    """Weight votes by a Dawid-Skene (one-coin) estimate of each install's accuracy."""
    screen_cap: int = 150
    """Screen-type classes with more samples than this are cut to it..."""
    screen_cap_min: int = 30
    """...when they also have at least this many (the predecessor's rule)."""
    min_screens: int = 7
    """The screen classifier trains only with at least this many screenshots."""
    min_new_crops: int = 10
    """Training is skipped when fewer winning crops than this are new since the last manifest."""


@dataclass(frozen=True)
class Winner:
    """A decided ballot: every crop in ``crop_shas`` is trained as ``name`` (after caps).

    ``votes`` installs supported ``name`` out of ``installs`` that voted; ``margin`` is votes minus the
    runner-up's (weighted votes when reliability weighting is on); ``supporters`` are those installs."""

    ballot_id: str
    crop_shas: tuple[str, ...]
    name: str
    slot: str
    votes: int
    installs: int
    margin: float
    supporters: tuple[str, ...] = ()
    tally: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class HeldBack:
    """A single-supporter label the current model contradicts: not trained on, reported."""

    ballot_id: str
    name: str
    slot: str
    install_id: str
    model_name: str
    model_prob: float
    crop_shas: tuple[str, ...]


@dataclass
class InstallStats:
    """How one install fared: votes counted, ballots won/lost, crops held back or capped, its weight."""

    votes: int = 0
    won: int = 0
    lost: int = 0
    held_back: int = 0
    capped: int = 0
    weight: float = 1.0


@dataclass
class VoteResult:
    """Winners (caps applied), what was held back or capped, and per-install statistics."""

    winners: list[Winner]
    held_back: list[HeldBack]
    capped: list[tuple[str, str, str]]  # (install id, crop sha, name) dropped by a cap
    per_install: dict[str, InstallStats]
    ballots: int = 0

    @property
    def winning_shas(self) -> set[str]:
        """The crop hashes trained on (what training_manifest.json records)."""
        return {sha for w in self.winners for sha in w.crop_shas}


# ----------------------------------------------------------------------------------- ballots

class _UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _pixel_features(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """LAB float32 (for alignment, from the raw crop) and its blurred copy (for comparison)."""
    lab = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2LAB).astype(np.float32)
    return lab, cv2.GaussianBlur(lab, (0, 0), 2.0)


_WINDOW = np.float32(cv2.createHanningWindow((64, 64), cv2.CV_32F))


def pixel_distance(a: np.ndarray | tuple, b: np.ndarray | tuple, max_shift_px: float = 3.0) -> float:
    """How different two 64x64 crops of maybe the same icon are, after undoing a small offset.

    Sub-pixel offset by phase correlation on L (capped at ``max_shift_px``), both blurred (sigma 2
    px: JPEG blocks and resampling vanish), then the largest 8x8-window mean absolute difference per
    LAB channel, 4-px border excluded (what the shift brought in). A badge, glyph or tint change is a
    large local difference; a shift or recompression is not.
    """
    fa = a if isinstance(a, tuple) else _pixel_features(a)
    fb = b if isinstance(b, tuple) else _pixel_features(b)
    (sx, sy), _ = cv2.phaseCorrelate(fa[0][:, :, 0], fb[0][:, :, 0], _WINDOW)
    sx, sy = float(np.clip(sx, -max_shift_px, max_shift_px)), float(np.clip(sy, -max_shift_px, max_shift_px))
    moved = cv2.warpAffine(fb[1], np.float32([[1, 0, -sx], [0, 1, -sy]]), (64, 64), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    diff = np.abs(fa[1] - moved)[4:-4, 4:-4]
    return float(cv2.boxFilter(diff, -1, (8, 8), normalize=True, borderType=cv2.BORDER_REFLECT).max())


def build_ballots(slots_of: Mapping[str, set[str]], crops: Mapping[str, np.ndarray],
                  opts: VoteOptions) -> list[list[str]]:
    """Group crop hashes into ballots: near-duplicates labelled in a common slot meet in one.

    Candidates are pairs in the same slot within ``phash_max_distance`` pHash bits whose mean colours
    (blurred LAB, 4-px border excluded) differ by at most ``max_tint_shift`` in a and b and
    ``max_light_shift`` in L -- recompression and offsets keep the mean colour, a sibling icon's tint
    does not; both tests are vectorised over all candidates. Survivors are confirmed by
    :func:`pixel_distance` unless union-find already joined them. Ballots and their members come out
    sorted, so the result does not depend on input order.
    """
    shas = sorted(slots_of)
    index = {sha: i for i, sha in enumerate(shas)}
    hashes = np.array([crop_phash(crops[sha]) for sha in shas], dtype=np.uint64)
    features = [_pixel_features(crops[sha]) for sha in shas]
    means = np.array([f[1][4:-4, 4:-4].reshape(-1, 3).mean(axis=0) for f in features], np.float32).reshape(-1, 3)
    limits = np.array([opts.max_light_shift, opts.max_tint_shift, opts.max_tint_shift], np.float32)
    uf = _UnionFind(len(shas))
    by_slot: dict[str, set[int]] = defaultdict(set)
    for sha in shas:
        for slot in slots_of[sha]:
            by_slot[slot].add(index[sha])
    for slot in sorted(by_slot):
        members = np.array(sorted(by_slot[slot]), dtype=np.int64)
        for k in range(len(members) - 1):
            i = int(members[k])
            rest = members[k + 1:]
            near = (hamming(hashes[rest], int(hashes[i])) <= opts.phash_max_distance) & np.all(
                np.abs(means[rest] - means[i]) <= limits, axis=1)
            for j in (int(x) for x in rest[near]):
                if uf.find(i) != uf.find(j) and \
                        pixel_distance(features[i], features[j], opts.max_shift_px) <= opts.pixel_max_distance:
                    uf.union(i, j)
    groups: dict[int, list[str]] = defaultdict(list)
    for sha in shas:
        groups[uf.find(index[sha])].append(sha)
    return sorted(groups.values())


def ballot_id(shas: Sequence[str]) -> str:
    """A stable id for a ballot: 16 hex of the sha256 of its sorted member hashes.

    Used as the group id of leak-free splits; it changes when a ballot gains a member, which moves
    that one group between train and validation at most."""
    return hashlib.sha256("\n".join(sorted(shas)).encode()).hexdigest()[:16]


# ------------------------------------------------------------------------------------ voting

def latest_votes(votes: Iterable[Vote]) -> dict[tuple[str, str], Vote]:
    """One vote per (install, crop): the one with the highest ``order`` (a later line overwrites)."""
    out: dict[tuple[str, str], Vote] = {}
    for v in votes:
        key = (v.install_id, v.crop_sha)
        if key not in out or v.order > out[key].order:
            out[key] = v
    return out


def decide(ballot_votes: Sequence[Vote], weights: Mapping[str, float] | None = None
           ) -> tuple[str, dict[str, float], list[str]]:
    """The winning label of one ballot: (name, tally, supporters).

    One vote per install: its latest vote on any crop of the ballot. Most (weighted) votes win; a
    tie goes to the label of the install that uploaded into this ballot first (its earliest vote),
    or, if that install's label is not among the tied, to the tied label whose first vote came first.
    """
    latest: dict[str, Vote] = {}
    first_seen: dict[str, int] = {}
    for v in ballot_votes:
        if v.install_id not in latest or v.order > latest[v.install_id].order:
            latest[v.install_id] = v
        first_seen[v.install_id] = min(first_seen.get(v.install_id, v.order), v.order)
    tally: dict[str, float] = defaultdict(float)
    for iid, v in latest.items():
        tally[v.name] += 1.0 if weights is None else weights.get(iid, 1.0)
    best = max(tally.values())
    tied = {name for name, n in tally.items() if math.isclose(n, best, rel_tol=1e-9, abs_tol=1e-12)}
    for iid in sorted(latest, key=lambda i: first_seen[i]):
        if latest[iid].name in tied:
            name = latest[iid].name
            break
    supporters = sorted(iid for iid, v in latest.items() if v.name == name)
    return name, dict(tally), supporters


def reliability_weights(ballot_votes: Sequence[Sequence[Vote]], *, iterations: int = 20,
                        prior: tuple[float, float] = (4.0, 1.0)) -> dict[str, float]:
    """One-coin Dawid-Skene: each install is right with probability p_i, wrong uniformly otherwise.

    E-step: per ballot, the posterior over its candidate labels is proportional to
    prod_i (p_i if label == vote_i else (1 - p_i) / (K - 1)); M-step: p_i = (expected correct + a) /
    (votes + a + b) with a Beta(a, b) prior, so an install seen on one ballot is not "perfect".
    K is the number of distinct labels overall. Returns the vote weight log(p (K-1) / (1-p)) per
    install, floored at a small positive value (an unreliable install still counts a little).
    """
    per_ballot = [{v.install_id: v.name for v in sorted(b, key=lambda v: v.order)} for b in ballot_votes]
    installs = sorted({iid for b in per_ballot for iid in b})
    k = max(2, len({name for b in per_ballot for name in b.values()}))
    p = {iid: prior[0] / (prior[0] + prior[1]) for iid in installs}
    for _ in range(iterations):
        correct = defaultdict(float)
        total = defaultdict(float)
        for b in per_ballot:
            labels = sorted(set(b.values()))
            logpost = np.array([sum(math.log(p[i]) if v == lab else math.log((1 - p[i]) / (k - 1))
                                    for i, v in b.items()) for lab in labels])
            post = np.exp(logpost - logpost.max())
            post /= post.sum()
            for iid, v in b.items():
                correct[iid] += float(post[labels.index(v)])
                total[iid] += 1.0
        p = {iid: min(0.999, max(0.001, (correct[iid] + prior[0]) / (total[iid] + prior[0] + prior[1])))
             for iid in installs}
    return {iid: max(0.05, math.log(p[iid] * (k - 1) / (1 - p[iid]))) for iid in installs}


def vote(votes: Sequence[Vote], crops: Mapping[str, np.ndarray], *, options: VoteOptions | None = None,
         model_check: ModelCheck | None = None) -> VoteResult:
    """Ballots, winners, held-back labels and caps for the icon votes of one collection.

    ``votes`` must be icon votes (text slots are handled by :func:`corrections`); votes whose crop is
    not in ``crops`` are ignored. ``model_check`` maps crops to the current model's (top-1 name,
    probability); without it nothing is held back.
    """
    opts = options or VoteOptions()
    usable = [v for v in latest_votes(votes).values() if v.crop_sha in crops]
    slots_of: dict[str, set[str]] = defaultdict(set)
    for v in usable:
        slots_of[v.crop_sha].add(v.slot)
    groups = build_ballots(slots_of, crops, opts)
    by_sha: dict[str, list[Vote]] = defaultdict(list)
    for v in usable:
        by_sha[v.crop_sha].append(v)
    ballot_votes = [[v for sha in group for v in by_sha[sha]] for group in groups]
    weights = reliability_weights(ballot_votes) if opts.reliability_weighted else None
    stats: dict[str, InstallStats] = defaultdict(InstallStats)
    winners = []
    for group, bvotes in zip(groups, ballot_votes):
        winners.append(_winner(group, bvotes, weights, stats))
    if weights:
        for iid, w in weights.items():
            stats[iid].weight = w
    first_uploader = _first_uploaders(usable)
    winners, held = _hold_back(winners, crops, first_uploader, model_check, opts, stats)
    winners, capped = _apply_caps(winners, first_uploader, opts, stats)
    return VoteResult(winners, held, capped, dict(stats), ballots=len(groups))


def _winner(group: list[str], bvotes: list[Vote], weights: Mapping[str, float] | None,
            stats: dict[str, InstallStats]) -> Winner:
    name, tally, supporters = decide(bvotes, weights)
    voters = {v.install_id for v in bvotes}
    for iid in voters:
        stats[iid].votes += 1
        if iid in supporters:
            stats[iid].won += 1
        else:
            stats[iid].lost += 1
    ranked = sorted(tally.values(), reverse=True)
    slot = min((v for v in bvotes if v.name == name), key=lambda v: v.order).slot
    return Winner(ballot_id(group), tuple(group), name, slot, len(supporters), len(voters),
                  ranked[0] - (ranked[1] if len(ranked) > 1 else 0.0), tuple(supporters), tally)


def _first_uploaders(votes: Iterable[Vote]) -> dict[str, str]:
    """crop sha -> the install whose vote on it came first (whom a crop is credited to)."""
    best: dict[str, Vote] = {}
    for v in votes:
        if v.crop_sha not in best or v.order < best[v.crop_sha].order:
            best[v.crop_sha] = v
    return {sha: v.install_id for sha, v in best.items()}


def _hold_back(winners: list[Winner], crops: Mapping[str, np.ndarray], first_uploader: Mapping[str, str],
               model_check: ModelCheck | None, opts: VoteOptions, stats: dict[str, InstallStats]
               ) -> tuple[list[Winner], list[HeldBack]]:
    """Hold back single-supporter winners the model confidently contradicts (one batched model call,
    on the supporter's own crop of each such ballot)."""
    if model_check is None:
        return winners, []
    lonely = [w for w in winners if w.votes < 2]
    if not lonely:
        return winners, []
    reps = [next((s for s in w.crop_shas if first_uploader.get(s) in w.supporters), w.crop_shas[0])
            for w in lonely]
    answers = model_check([crops[s] for s in reps])
    held_ids: set[str] = set()
    held: list[HeldBack] = []
    for w, (model_name, prob) in zip(lonely, answers):
        if model_name != w.name and prob >= opts.model_min_prob:
            held_ids.add(w.ballot_id)
            iid = w.supporters[0] if w.supporters else ""
            stats[iid].held_back += 1
            held.append(HeldBack(w.ballot_id, w.name, w.slot, iid, model_name, float(prob), w.crop_shas))
    return [w for w in winners if w.ballot_id not in held_ids], held


def _apply_caps(winners: list[Winner], first_uploader: Mapping[str, str], opts: VoteOptions,
                stats: dict[str, InstallStats]) -> tuple[list[Winner], list[tuple[str, str, str]]]:
    """Per-install caps on crops from ballots nobody else supports: ``max_per_class`` crops of one
    class, then ``max(min_share_floor, max_share * winning crops)`` in all. Which crops go is a seeded
    random choice over the sorted candidates (reproducible, independent of input order). A ballot
    that loses all its crops is dropped."""
    total = sum(len(w.crop_shas) for w in winners)
    share_cap = max(opts.min_share_floor, int(opts.max_share * total))
    owned: dict[str, dict[str, list[tuple[str, str]]]] = defaultdict(lambda: defaultdict(list))
    for w in winners:
        if w.votes >= 2:
            continue  # confirmed by a second install: exempt
        for sha in w.crop_shas:
            owned[first_uploader.get(sha, "")][w.name].append((sha, w.ballot_id))
    dropped: set[str] = set()
    capped: list[tuple[str, str, str]] = []
    for iid in sorted(owned):
        rng = np.random.default_rng([opts.seed, int(hashlib.sha256(iid.encode()).hexdigest()[:8], 16)])
        kept_all: list[tuple[str, str, str]] = []
        for name in sorted(owned[iid]):
            items = sorted(owned[iid][name])
            keep, drop = _seeded_split(items, opts.max_per_class, rng)
            kept_all += [(sha, bid, name) for sha, bid in keep]
            capped += [(iid, sha, name) for sha, _ in drop]
            dropped.update(sha for sha, _ in drop)
        kept_all.sort()
        _, drop = _seeded_split(kept_all, share_cap, rng)
        capped += [(iid, sha, name) for sha, _, name in drop]
        dropped.update(sha for sha, _, _ in drop)
    for iid, _sha, _name in capped:
        stats[iid].capped += 1
    out = []
    for w in winners:
        shas = tuple(s for s in w.crop_shas if s not in dropped)
        if shas:
            out.append(w if len(shas) == len(w.crop_shas) else _with_shas(w, shas))
    return out, capped


def _seeded_split(items: list, limit: int, rng: np.random.Generator) -> tuple[list, list]:
    """(kept, dropped): all kept when within ``limit``, else a seeded random ``limit`` of them."""
    if len(items) <= limit:
        return items, []
    chosen = set(rng.permutation(len(items))[:limit].tolist())
    return ([x for i, x in enumerate(items) if i in chosen], [x for i, x in enumerate(items) if i not in chosen])


def _with_shas(w: Winner, shas: tuple[str, ...]) -> Winner:
    from dataclasses import replace

    return replace(w, crop_shas=shas)


# ------------------------------------------------------------------------------- other outputs

def training_set(collected: Collected, result: VoteResult) -> list[tuple[np.ndarray, str, str]]:
    """(64x64 RGB crop, label, group id) for every winning crop; the group id is the ballot id, so
    near-duplicates of one icon never straddle a train/validation split."""
    out = []
    for w in sorted(result.winners, key=lambda w: w.ballot_id):
        for sha in w.crop_shas:
            if sha in collected.crops:
                out.append((collected.crops[sha], w.name, w.ballot_id))
    return out


def corrections(text_votes: Iterable[TextVote]) -> dict[str, str]:
    """The OCR corrections map ``{ml_name: name}`` from Ship Type / Ship Tier confirmations.

    Only pairs where OCR was wrong (``ml_name`` non-empty and different from ``name``) vote; one vote
    per install per ``ml_name`` (its latest line); the majority wins, a tie goes to the label of the
    install that voted on that ``ml_name`` first.
    """
    by_reading: dict[str, list[Vote]] = defaultdict(list)
    for t in text_votes:
        if t.ml_name and t.ml_name != t.name:
            by_reading[t.ml_name].append(Vote(t.install_id, t.crop_sha, t.name, t.slot, t.date, t.line_no, t.order))
    return {reading: decide(vs)[0] for reading, vs in sorted(by_reading.items())}


def cap_screens(screens: Mapping[str, Sequence[ScreenSample]], *, cap: int = 150, min_n: int = 30,
                seed: int = 0) -> dict[str, list[ScreenSample]]:
    """Cut each screen type with n >= ``min_n`` and n > ``cap`` samples to ``cap`` at random.

    The choice is over the samples sorted by (install, sha) with a per-type seeded generator, so the
    same staging set and seed always keep the same samples, whatever order they were listed in.
    """
    out: dict[str, list[ScreenSample]] = {}
    for stype in sorted(screens):
        items = sorted(screens[stype], key=lambda s: (s.install_id, s.sha))
        if len(items) >= min_n and len(items) > cap:
            rng = np.random.default_rng([seed, int(hashlib.sha256(stype.encode()).hexdigest()[:8], 16)])
            keep = sorted(rng.choice(len(items), size=cap, replace=False).tolist())
            items = [items[i] for i in keep]
        out[stype] = items
    return out


def screen_train_ok(n_total: int, minimum: int = 7) -> bool:
    """Whether there are enough screenshots (at least ``minimum``) to train the screen classifier."""
    return n_total >= minimum


def should_train(winning_shas: Iterable[str], manifest_shas: set[str] | None, force: bool = False, *,
                 min_new: int = 10) -> tuple[bool, str]:
    """(train?, why). Always with ``force`` or without a manifest; skipped when the winning set equals
    the manifest or fewer than ``min_new`` winning crops are new.

    Known limit (the manifest format): a relabelled crop (same hash, new winning label) is not a
    change; use ``force`` after a large relabelling."""
    winning = set(winning_shas)
    if force:
        return True, "forced"
    if manifest_shas is None:
        return True, "no previous manifest"
    if winning == set(manifest_shas):
        return False, "winning crop set unchanged since the last manifest"
    new = len(winning - set(manifest_shas))
    if new < min_new:
        return False, f"only {new} new crop(s) since the last manifest (fewer than {min_new})"
    return True, f"{new} new crops"


__all__ = [
    "HeldBack", "InstallStats", "VoteOptions", "VoteResult", "Winner", "ballot_id", "build_ballots",
    "cap_screens", "corrections", "decide", "latest_votes", "pixel_distance", "reliability_weights",
    "screen_train_ok", "should_train", "training_set", "vote",
]
