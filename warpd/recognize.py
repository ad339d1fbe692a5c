"""The recognition engine: one screenshot in, the JSON contract of ``warpd process`` out.

The stages run in one direction, each in its own module:

1. :mod:`warpd.load` decodes safely (bombs, truncation, non-images become a clear ``error``);
2. :mod:`warpd.layout` finds panels, rows and cells from the image; :mod:`warpd.screen_type`
   names the screen (layout and label evidence, the ONNX screen model as a cross-check);
3. icons are identified per cell among the catalogue's items for that slot, by up to four
   sources — pHash knowledge, the template + colour index, the ONNX icon classifier, the user's
   confirmed examples — each giving a calibrated probability; :func:`fuse` turns them into one
   confidence, and the configured bands into a decision (auto / ask / reject);
4. :mod:`warpd.shiptext` reads ship type and tier (the ship's own name is never read).

Building SETS files from results is :mod:`warpd.build`'s job; the daemon and ``warpd process``
both call :class:`Engine`. Nothing here raises for a bad screenshot: the result carries ``error``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import cv2
import numpy as np

from warpd.catalog import Catalog
from warpd.icon_index import Calibrator, IconIndex, SessionExamples, match_features
from warpd.layout import Layout, find_layout
from warpd.load import ImageLoadError, LoadedImage, load_image
from warpd.models import ModelSet, load_model_set
from warpd.preprocess import canonical_crop, crop_to_icon, icon_batch
from warpd.screen_type import classify
from warpd.shiptext import ShipMatcher
from warpd.slots import BOFF_PROFESSIONS, BOFF_SPECIALIZATIONS, SLOT_GROUPS, ScreenType, trait_slot_in

log = logging.getLogger(__name__)

# Screens that show the ship's type/tier band above the space equipment.
SHIP_SCREENS = frozenset({ScreenType.SPACE_EQ, ScreenType.SPACE_MIXED})
SOURCES = ("knowledge", "template", "model", "session")


@dataclass(frozen=True)
class Settings:
    """The ``[recognition]`` values the engine uses (see config/warpd.toml for what each means)."""

    auto_accept: float = 0.75
    reject: float = 0.40
    candidates: int = 5
    phash_max_distance: int = 8
    phash_confidence: float = 0.97
    max_pixels: int = 50_000_000
    onnx_threads: int = 1
    opencv_threads: int = 1
    screen_auto_accept: float = 0.80
    relabel_min_probability: float = 0.5
    relabel_min_share: float = 0.6
    refine_scales: tuple[float, ...] = (0.9, 1.1, 1.2)
    refine_slots: tuple[str, ...] = ("Personal Space Traits", "Starship Traits", "Space Reputation",
                                     "Active Space Rep", "Personal Ground Traits", "Ground Reputation",
                                     "Active Ground Rep", "Kit Modules")
    refine_min_gain: float = 0.03

    @classmethod
    def from_config(cls, cfg: Any) -> "Settings":
        section = cfg.recognition
        values = {f.name: getattr(section, f.name, f.default) for f in fields(cls)}
        values["refine_scales"] = tuple(float(v) for v in values["refine_scales"])
        values["refine_slots"] = tuple(str(v) for v in values["refine_slots"])
        return cls(**values)

    def decide(self, confidence: float) -> str:
        """The configured bands: auto at or above ``auto_accept``, reject below ``reject``, else ask."""
        if confidence >= self.auto_accept:
            return "auto"
        if confidence < self.reject:
            return "reject"
        return "ask"


@dataclass
class Vote:
    """One source's answer for one cell: its best name and the calibrated probability it is right.

    ``eligible`` is False for an answer the slot cannot hold (a library icon outside the slot's
    candidates that fits better): it cannot win, but it can make the winner doubtful.
    """

    source: str
    name: str
    probability: float
    eligible: bool = True


def fuse(votes: Sequence[Vote]) -> tuple[Vote | None, float]:
    """The winning vote and the slot's single confidence.

    The most probable eligible answer wins. Agreeing sources keep the best probability (they are
    not independent, so multiplying would overclaim); a source that confidently names a
    *different* item caps the confidence at ``1 - p_other``, so "auto" needs the sources not to
    disagree.
    """
    eligible = [v for v in votes if v.eligible]
    if not eligible:
        return None, 0.0
    best = max(eligible, key=lambda v: v.probability)
    dissent = max((v.probability for v in votes if v.name != best.name), default=0.0)
    return best, float(min(best.probability, 1.0 - dissent))


# Which slot groups a panel kind can hold (a row is only ever named within its panel's kind).
PANEL_SLOT_KINDS: dict[str, frozenset[str]] = {
    "equipment": frozenset({"equipment"}), "traits": frozenset({"trait", "starship_trait"}),
    "boffs": frozenset({"boff"}),
}


@dataclass
class CellJob:
    """One item cell to identify, with where it is and which names are allowed there."""

    slot: str
    environment: str | None
    index: int
    bbox: tuple[int, int, int, int]
    crop: np.ndarray
    candidates: list[str]
    votes: list[Vote] = field(default_factory=list)
    ranked: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class _RowWork:
    """One layout row on its way to contract entries: its (possibly renamed) slot and its cells."""

    slot: str | None
    env: str
    env_unseen: bool
    kinds: frozenset[str]
    entries: list[dict[str, Any]] = field(default_factory=list)
    jobs: list[tuple[dict[str, Any], CellJob]] = field(default_factory=list)


class Engine:
    """Recognition with its resources loaded once; thread-safe for one worker plus UI callbacks.

    The icon index is built on first use (a daemon that never sees a screenshot never pays for
    it); :meth:`reload_models` swaps the model set atomically (a community update, no restart).
    """

    def __init__(self, catalog: Catalog, *, icons_dir: Path | None, models: ModelSet | None = None,
                 settings: Settings | None = None, ocr: Any = None, cache_dir: Path | None = None,
                 calibrator: Calibrator | None = None):
        self.catalog = catalog
        self.icons_dir = icons_dir
        self.settings = settings or Settings()
        self.ocr = ocr
        self.cache_dir = cache_dir
        self.calibrator = calibrator or Calibrator.load()
        self.session = SessionExamples()
        self._models = models or ModelSet()
        self._matcher = ShipMatcher(catalog, self._models.corrections)
        self._index: IconIndex | None = None
        self._boff_candidates: dict[tuple[str, str, bool], list[str]] = {}
        self._lock = threading.Lock()
        cv2.setNumThreads(max(1, int(self.settings.opencv_threads)))  # OpenCV's pool fights BLAS on 2 cores

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: Any, *, icons: str | Path | None = None, catalog: str | Path | None = None,
                    models: str | Path | None = None) -> "Engine":
        """An engine from config, with ``warpd process``'s optional folder overrides."""
        from warpd.ocr import OcrEngine
        from warpd.paths import catalog_dir, data_paths, icons_dir

        settings = Settings.from_config(cfg)
        cat = Catalog.load(Path(catalog) if catalog else catalog_dir(cfg))
        paths = data_paths(cfg)
        model_folder = Path(models) if models else paths.models
        model_set = load_model_set(model_folder, settings.onnx_threads)
        ocr = OcrEngine.from_config(cfg)
        if not ocr.available():
            log.warning("OCR is not available (%s): slot labels and the ship's type and tier will not be read. "
                        "Run 'warpd doctor' for the fix.", ocr.describe())
            ocr = None
        return cls(cat, icons_dir=Path(icons) if icons else icons_dir(cfg), models=model_set, settings=settings,
                   ocr=ocr, cache_dir=paths.root / "cache")

    @property
    def models(self) -> ModelSet:
        return self._models

    def reload_models(self, folder: str | Path) -> ModelSet:
        """Load a models folder and swap it in; the old set keeps serving until the swap."""
        fresh = load_model_set(folder, self.settings.onnx_threads)
        matcher = ShipMatcher(self.catalog, fresh.corrections)
        with self._lock:
            self._models, self._matcher = fresh, matcher
        log.info("Models loaded from %s: %s", folder, fresh.describe())
        return fresh

    def icon_index(self) -> IconIndex | None:
        """The library index, built (or read from its cache) on first use; None without a library."""
        if self._index is not None:
            return self._index
        with self._lock:
            if self._index is None and self.icons_dir is not None and self.icons_dir.is_dir():
                self._index = IconIndex.build(self.icons_dir, names=self.catalog.all_names,
                                              cache_dir=self.cache_dir)
                log.info("Icon library %s: %d icons indexed in %.1f s%s", self.icons_dir, len(self._index),
                         self._index.stats.seconds, " (cached)" if self._index.stats.from_cache else "")
                if not len(self._index):
                    log.warning("The icon library %s has no icons of catalogue items: items will not be "
                                "recognised. Point [paths] icons_dir at SETS's image cache.", self.icons_dir)
        return self._index

    def remember(self, name: str, slot: str, crop_rgb: np.ndarray) -> None:
        """A user's confirmation, used by the very next screenshot (the session-examples stage)."""
        self.session.add(name, slot, crop_rgb)

    # ------------------------------------------------------------------ entry points
    def process_file(self, path: str | Path) -> dict[str, Any]:
        """Recognise one screenshot file; a file that cannot be read gives a result with ``error``."""
        t0 = time.perf_counter()
        try:
            loaded = load_image(path, self.settings.max_pixels)
        except ImageLoadError as exc:
            return error_result(str(path), str(exc), exc.reason_code)
        load_ms = _ms(t0)
        result = self.process_image(loaded.rgb, str(path), loaded=loaded)
        result.setdefault("timings_ms", {}).update({"load": load_ms, "total": _ms(t0)})
        return result

    def process_image(self, rgb: np.ndarray, file: str = "", *, loaded: LoadedImage | None = None) -> dict[str, Any]:
        """Recognise a decoded RGB screenshot; never raises for image content."""
        timings: dict[str, float] = {}
        try:
            return self._process(rgb, file, loaded, timings)
        except Exception as exc:  # noqa: BLE001 - the daemon must survive any one screenshot
            log.exception("Recognition failed on %s", file or "an image")
            result = error_result(file, f"recognition failed: {type(exc).__name__}: {exc}", "internal")
            result["timings_ms"] = timings
            return result

    # ------------------------------------------------------------------ stages
    def _process(self, rgb: np.ndarray, file: str, loaded: LoadedImage | None,
                 timings: dict[str, float]) -> dict[str, Any]:
        models = self._models
        t = time.perf_counter()
        layout = find_layout(rgb, self.ocr)
        timings["layout"] = _ms(t)
        t = time.perf_counter()
        screen, screen_conf, evidence = classify(rgb, layout, onnx_session=models.screen)
        timings["screen_type"] = _ms(t)
        result = empty_result(file)
        result.update({"screen_type": screen.value, "screen_confidence": round(float(screen_conf), 4),
                       "screen_decision": "auto" if screen_conf >= self.settings.screen_auto_accept else "ask",
                       "width": int(rgb.shape[1]), "height": int(rgb.shape[0]),
                       "sha256": loaded.sha256 if loaded else None, "timings_ms": timings})
        if screen == ScreenType.UNKNOWN:
            return result
        t = time.perf_counter()
        result["slots"] = self._read_slots(rgb, layout, models, screen)
        timings["icons"] = _ms(t)
        t = time.perf_counter()
        result["ship"] = self._read_ship(layout, screen)
        timings["ship"] = _ms(t)
        return result

    def _candidates(self, slot: str, env: str, env_guessed: bool) -> list[str]:
        """Names the slot can hold. Boff seats also take their specialisation's abilities (a
        Tactical/Intelligence officer slots Intelligence abilities), and a boff panel whose
        environment was not seen takes both environments' abilities; cached per key."""
        group = SLOT_GROUPS[slot]
        if group.kind != "boff":
            return self.catalog.items_for_slot(slot, env)
        key = (slot, env, env_guessed)
        if key not in self._boff_candidates:
            envs = ("space", "ground") if env_guessed else (env,)
            seats = [slot] + ([f"Boff {s}" for s in BOFF_SPECIALIZATIONS]
                              if slot.removeprefix("Boff ") in BOFF_PROFESSIONS else [])
            self._boff_candidates[key] = sorted({n for e in envs for seat in seats
                                                 for n in self.catalog.items_for_slot(seat, e)})
        return self._boff_candidates[key]

    def _read_slots(self, rgb: np.ndarray, layout: Layout, models: ModelSet,
                    screen: ScreenType) -> list[dict[str, Any]]:
        """Every row's cells as contract entries; item cells identified in one batch.

        A row the layout could not name is still read: its icons are matched against the whole
        library and the row takes the slot those icons belong to (:meth:`_relabel_row`). Rows that
        stay nameless are left out (the contract needs a slot name).
        """
        rows: list[_RowWork] = []
        screen_env = _screen_environment(screen)
        for panel in layout.panels:
            kinds = PANEL_SLOT_KINDS.get(panel.kind)
            if not kinds:
                continue
            for row in panel.rows:
                slot = row.slot if row.slot in SLOT_GROUPS else None
                # (a screenshot shows one set of trait panels: the screen's environment decides)
                slot = trait_slot_in(slot, screen_env)
                env_unseen = panel.environment is None and screen_env is None
                env = (SLOT_GROUPS[slot].environment if slot and SLOT_GROUPS[slot].kind != "boff" else None) or (
                    panel.environment or screen_env or "space")
                work = _RowWork(slot, env, env_unseen, kinds)
                for cell in row.cells:
                    entry = slot_entry(slot or "", cell.index, cell.bbox, cell.state)
                    work.entries.append(entry)
                    if cell.state == "item":
                        cands = self._candidates(slot, env, env_unseen) if slot else []
                        work.jobs.append((entry, CellJob(slot or "", env, cell.index, tuple(cell.bbox),
                                                         crop_to_icon(rgb, cell.bbox), cands)))
                rows.append(work)
        jobs = [job for work in rows for _, job in work.jobs]
        if jobs:
            self._identify(jobs, models)
            redo = [job for work in rows for job in self._relabel_row(work)]
            redo += self._refine_boxes(rgb, jobs)  # (relabelled jobs were reset: unranked, not refined)
            if redo:
                self._identify(redo, models)
            for work in rows:
                for entry, job in work.jobs:
                    entry["bbox"] = list(job.bbox)
                    self._fill_entry(entry, job)
        entries = []
        for work in rows:
            if work.slot:
                for entry in work.entries:
                    entry["slot"] = work.slot
                    entries.append(entry)
        _renumber_split_rows(entries)
        return entries

    def _refine_boxes(self, rgb: np.ndarray, jobs: list[CellJob]) -> list[CellJob]:
        """Re-cut the cells that would not be accepted as found, at nearby box sizes; returns the jobs
        whose box changed, their votes reset, to identify again.

        Why: the layout finds a cell's box from its pixels, and a round trait icon, a dark icon or
        a glow make it a few pixels short or tall. The matcher compares whole icons, so a box 10%
        short can rank the right icon out of the top five while the right box scores it 0.97. Each
        variant costs a match (~1 ms), so only cells whose fused confidence is below ``auto_accept``,
        in the slots where boxes come out short (``refine_slots``: round trait icons, glowing kit
        modules), are tried.
        Measured on seeds 2001-2160: 37 of the 43 cells it put right were traits, 6 kit modules and
        none equipment; on clean SPACE_EQ screens it cost ~40 ms a screenshot and changed nothing.
        """
        s = self.settings
        index = self.icon_index()
        weak = [j for j in jobs if j.candidates and j.ranked and fuse(j.votes)[1] < s.auto_accept
                and j.slot in s.refine_slots]
        if index is None or not weak or not s.refine_scales:
            return []
        variants: list[tuple[CellJob, tuple[int, int, int, int]]] = []
        for job in weak:
            x, y, w, h = job.bbox
            for scale in s.refine_scales:
                nh = int(round(h * scale))
                for top in {y, y + (h - nh) // 2, y + h - nh}:  # grown / shrunk at the bottom, both ends, the top
                    variants.append((job, (x, top, w, nh)))
        crops = [crop_to_icon(rgb, box) for _, box in variants]
        ranked = index.match_with_rivals(crops, [job.candidates for job, _ in variants], k=1)
        best: dict[int, tuple[float, int]] = {}  # job -> (score, variant index)
        for i, ((job, _box), (hits, _rival)) in enumerate(zip(variants, ranked)):
            if hits and hits[0][1] > best.get(id(job), (job.ranked[0][1] + s.refine_min_gain, -1))[0]:
                best[id(job)] = (hits[0][1], i)
        changed = []
        for job in weak:
            if id(job) in best:
                i = best[id(job)][1]
                job.bbox, job.crop = variants[i][1], crops[i]
                job.votes, job.ranked = [], []
                changed.append(job)
        return changed

    def _relabel_row(self, work: "_RowWork") -> list[CellJob]:
        """Name (or rename) a row by its icons; returns its jobs, reset, to identify again.

        Label OCR can misname a row or not read it at all (a trait panel's headers are far from
        its rows). When most of a row's item cells are matched clearly better by icons its slot
        cannot hold, and those icons belong to one other slot of the same kind of panel and
        environment, the icons are the better evidence. The cells are then identified again
        among that slot's items.
        """
        jobs = [job for _, job in work.jobs]
        strong = [v for job in jobs for v in job.votes
                  if not v.eligible and v.probability >= self.settings.relabel_min_probability]
        if not jobs or len(strong) < self.settings.relabel_min_share * len(jobs):
            return []
        support: dict[str, tuple[int, bool, int, bool]] = {}
        envs: dict[str, str] = {}
        for slot, group in SLOT_GROUPS.items():
            if slot == work.slot or group.kind == "spec":
                continue
            # boff seats serve both environments; every other slot names its own
            envs[slot] = work.env if group.kind == "boff" else group.environment
            allowed = set(self._candidates(slot, envs[slot], work.env_unseen))
            hits = sum(1 for v in strong if v.name in allowed)
            if hits:
                # most supporting cells first; then a slot of the panel's own kind (a trait grid the
                # layout merged into an equipment panel may still be renamed, given the icons); then
                # the most specific slot
                # (Universal and Operations seats take the same abilities: the icons cannot tell
                # them apart, and the game names such seats Universal)
                support[slot] = (hits, group.kind in work.kinds, -len(allowed), slot == "Boff Universal")
        if not support:
            return []
        best = max(support, key=lambda k: support[k])
        if support[best][0] < self.settings.relabel_min_share * len(jobs):
            return []
        log.debug("row %s named %s by its icons (%d of %d cells)", work.slot, best, support[best][0], len(jobs))
        work.slot, work.env = best, envs[best]
        cands = self._candidates(best, work.env, work.env_unseen)
        for job in jobs:
            job.slot, job.environment, job.votes, job.ranked, job.candidates = best, work.env, [], [], cands
        return jobs

    def _identify(self, jobs: list[CellJob], models: ModelSet) -> None:
        """Collect each source's vote for every job (the index and the model run batched)."""
        s = self.settings
        k = max(s.candidates, 2)
        if models.knowledge is not None and len(models.knowledge):
            for job in jobs:
                hit = models.knowledge.lookup(canonical_crop(job.crop), s.phash_max_distance)
                if hit and hit[0] in job.candidates:
                    job.votes.append(Vote("knowledge", hit[0], self._phash_probability(hit[1])))
        index = self.icon_index()
        if index is not None and len(index):
            ranked = index.match_with_rivals([j.crop for j in jobs], [j.candidates for j in jobs], k=k)
            for job, (hits, rival) in zip(jobs, ranked):
                job.ranked = hits
                if hits:
                    top1, margin = match_features(hits)
                    job.votes.append(Vote("template", hits[0][0], self.calibrator.probability(top1, margin, "icon")))
                if rival is not None:
                    # an icon the slot cannot hold, scored like an answer against the best candidate
                    best_in = hits[0][1] if hits else -1.0
                    p = self.calibrator.probability(rival[1], rival[1] - best_in, "icon")
                    job.votes.append(Vote("template", rival[0], p, eligible=False))
        if models.icon is not None:
            self._model_votes(jobs, models, k)
        if len(self.session):
            for job in jobs:
                hit = self.session.match(job.crop, job.candidates, job.slot)
                if hit:
                    rival = max((sc for n, sc in job.ranked if n != hit[0]), default=-1.0)
                    p = self.calibrator.probability(hit[1], hit[1] - rival, "session")
                    job.votes.append(Vote("session", hit[0], p))

    def _model_votes(self, jobs: list[CellJob], models: ModelSet, k: int) -> None:
        """The ONNX icon classifier over all crops at once, its probabilities renormalised per slot."""
        clf = models.icon
        assert clf is not None
        column = {name: i for i, name in enumerate(clf.labels)}
        probs = clf.probabilities(icon_batch([j.crop for j in jobs]))
        for job, p in zip(jobs, probs):
            cols = [column[n] for n in job.candidates if n in column]
            if not cols:
                continue
            sub = p[cols]
            total = float(sub.sum())
            if total <= 0:
                continue
            best = int(np.argmax(sub))
            job.votes.append(Vote("model", clf.labels[cols[best]], float(sub[best] / total)))
            if not job.ranked:  # no icon library: the model's ranking feeds the confirmation menu
                order = np.argsort(-sub)[:k]
                job.ranked = [(clf.labels[cols[i]], float(sub[i] / total)) for i in order]

    def _phash_probability(self, distance: int) -> float:
        """A knowledge hit's confidence: ``phash_confidence`` at distance 0, ``auto_accept`` at the bound.

        Knowledge entries are community-voted crops, so an exact hash is near-certain; at the
        Hamming bound it is only as good as the auto-accept line, so a further dissenting source
        pulls it down to "ask".
        """
        s = self.settings
        frac = min(1.0, distance / max(1, s.phash_max_distance))
        return float(s.phash_confidence - (s.phash_confidence - s.auto_accept) * frac)

    def _fill_entry(self, entry: dict[str, Any], job: CellJob) -> None:
        winner, confidence = fuse(job.votes)
        candidates = [[n, round(float(sc), 4)] for n, sc in job.ranked[: self.settings.candidates]]
        if winner is not None and all(c[0] != winner.name for c in candidates):
            candidates.insert(0, [winner.name, round(winner.probability, 4)])
            candidates = candidates[: self.settings.candidates]
        decision = self.settings.decide(confidence) if winner else "reject"
        entry.update({"item": winner.name if winner and decision != "reject" else None,
                      "confidence": round(confidence, 4), "decision": decision,
                      "source": winner.source if winner else "template", "candidates": candidates})

    def _read_ship(self, layout: Layout, screen: ScreenType) -> dict[str, Any]:
        """Ship type (catalogue name) and tier from the band above the space equipment."""
        ship = empty_ship()
        band = layout.ship_text
        if screen not in SHIP_SCREENS or band is None:
            return ship
        ship["name_bbox"] = list(band.name_bbox) if band.name_bbox else None
        ship["type_bbox"] = list(band.type_bbox) if band.type_bbox else None
        if not band.lines:
            return ship
        ocr_conf = float(np.mean(band.confidences)) if band.confidences else None
        match = self._matcher.match_lines(band.lines, ocr_conf)
        ship.update({"type": match.ship_name, "tier": match.tier,
                     "confidence": round(float(match.confidence if match.ship_name else 0.0), 4),
                     "type_text": match.raw_type, "tier_text": match.raw_tier})
        return ship


def _renumber_split_rows(entries: list[dict[str, Any]]) -> None:
    """Give one index sequence to the pieces of a row the layout split (a gap, a cursor).

    Pieces of one slot on one line are one row, counted from its leftmost cell by the cell
    pitch. Boff seats are left alone: two seats of one profession legitimately share a line.
    """
    lines: dict[str, list[list[dict[str, Any]]]] = {}
    for entry in entries:
        if entry["slot"].startswith("Boff "):
            continue
        groups = lines.setdefault(entry["slot"], [])
        y, h = entry["bbox"][1], entry["bbox"][3]
        for group in groups:
            gy, gh = group[0]["bbox"][1], group[0]["bbox"][3]
            if abs((y + h / 2) - (gy + gh / 2)) < 0.5 * max(h, gh):
                group.append(entry)
                break
        else:
            groups.append([entry])
    for groups in lines.values():
        for group in groups:
            if len({e["index"] for e in group}) == len(group):
                continue  # already one sequence
            group.sort(key=lambda e: e["bbox"][0])
            xs = [e["bbox"][0] for e in group]
            steps = [b - a for a, b in zip(xs, xs[1:]) if b > a]
            pitch = min(steps) if steps else 1
            base = group[0]["index"]
            for e in group:
                e["index"] = base + int(round((e["bbox"][0] - xs[0]) / pitch))


def _screen_environment(screen: ScreenType) -> str | None:
    """The environment a screen type implies for panels that do not show theirs (boff panels)."""
    if screen in (ScreenType.GROUND_EQ, ScreenType.GROUND_MIXED):
        return "ground"
    if screen in (ScreenType.SPACE_EQ, ScreenType.SPACE_MIXED):
        return "space"
    return None


# ---------------------------------------------------------------------- result shapes
def empty_ship() -> dict[str, Any]:
    return {"type": None, "tier": None, "confidence": 0.0, "name_bbox": None}


def empty_result(file: str) -> dict[str, Any]:
    """The contract's keys with nothing recognised."""
    return {"file": file, "screen_type": ScreenType.UNKNOWN.value, "screen_confidence": 0.0,
            "ship": empty_ship(), "slots": [], "error": None}


def error_result(file: str, message: str, reason: str) -> dict[str, Any]:
    """A screenshot that could not be read: UNKNOWN, no slots, the reason in ``error``."""
    result = empty_result(file)
    result.update({"error": message, "error_reason": reason, "timings_ms": {}})
    return result


def slot_entry(slot: str, index: int, bbox: Sequence[int], state: str) -> dict[str, Any]:
    """One cell of the contract; empty and locked cells are certain outcomes with no item."""
    return {"slot": slot, "index": int(index), "bbox": [int(v) for v in bbox], "state": state, "item": None,
            "confidence": 1.0 if state != "item" else 0.0, "decision": "auto" if state != "item" else "reject",
            "source": "template", "candidates": []}


def _ms(t0: float) -> float:
    return round((time.perf_counter() - t0) * 1e3, 1)


def summary_line(result: Mapping[str, Any]) -> str:
    """A person's one-line view of a result (``warpd process`` without ``--json``)."""
    name = Path(str(result.get("file") or "?")).name
    if result.get("error"):
        return f"{name}: cannot be read: {result['error']}"
    slots = result.get("slots") or []
    items = [s for s in slots if s.get("state") == "item"]
    decided = {d: sum(1 for s in items if s.get("decision") == d) for d in ("auto", "ask", "reject")}
    ship = result.get("ship") or {}
    ship_text = f", ship {ship.get('type')} {ship.get('tier') or ''}".rstrip() if ship.get("type") else ""
    return (f"{name}: {result.get('screen_type')} ({float(result.get('screen_confidence') or 0):.0%}){ship_text}; "
            f"{len(slots)} slots, {len(items)} items: {decided['auto']} sure, {decided['ask']} to confirm, "
            f"{decided['reject']} unread")
