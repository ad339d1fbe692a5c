"""Icon identification: one feature matrix for the whole icon library, scored with matrix products.

Why: the predecessor compared each slot crop with ~3,000 library icons through 3,000 separate
``cv2.matchTemplate`` calls (0.8 x TM_CCOEFF_NORMED + 0.2 x H-S histogram correlation). Both terms are
dot products of normalised vectors, so the whole library fits in one matrix and a screenshot's ~40
crops are scored in one ``(crops x features) @ (features x icons)`` product.

The feature (:func:`icon_features`), built identically for bare library icons and for framed crops:

* **appearance** - the icon resized to the game's 49x64, lightly blurred (JPEG blocks, blur and
  resampling differences fall below it), converted to a weighted, per-channel zero-mean,
  unit-norm vector at 12x16 (W x H). The weight is small where the game's rarity frame is opaque
  (left columns, bottom rows, Epic/Ultra-Rare top band: the maximum alpha of the vendored SETS
  overlays), so a frame the bare library icon lacks barely counts. Per-channel normalisation makes
  the score blind to brightness, contrast and colour-balance changes; the cosine of two such
  vectors is the weighted normalised cross-correlation (NCC).
* **colour** - an 8x8 hue-saturation histogram of the same weighted pixels, zero-mean and unit-norm,
  so its dot product is the Pearson correlation ``cv2.compareHist(HISTCMP_CORREL)`` computes.

The stored library row is ``[APPEARANCE_WEIGHT * a, COLOUR_WEIGHT * c]`` and a crop's row ``[a, c]``:
their dot product is the predecessor's blend, vectorised. The best ``rerank_k`` candidates are then
re-scored at 24x32 against the crop shifted by up to ``SHIFT_PX`` pixels (a layout bbox can be off
by a pixel or three), which is what separates look-alike family members ("Phaser Beam Array" /
"Advanced Phaser Beam Array" / "Fleet Phaser Beam Array" differ by a badge).

Also here: :class:`PhashKnowledge` (community pHash -> name overrides, looked up by Hamming distance
instead of the predecessor's exact dict lookup), :class:`SessionExamples` (crops the user confirmed
this session) and :class:`Calibrator` (scores -> calibrated probability).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union
from urllib.parse import unquote_plus

import cv2
import numpy as np
from PIL import Image

from warpd.preprocess import as_rgb, canonical_crop, resize

# ------------------------------------------------------------------------------------------------
# feature constants (changing any of them changes FEATURE_VERSION, which invalidates disk caches)
# ------------------------------------------------------------------------------------------------
FEATURE_VERSION = "icon-feat-3"
WORK_W, WORK_H = 48, 64  # the game icon's 49x64, less one frame column: grids are exact 2x/4x block means
BLUR_SIGMA = 0.8  # px at 49x64: hides JPEG blocks, resampling and blur differences
COARSE_W, COARSE_H = 12, 16  # first-pass appearance grid (576 floats with colour)
FINE_W, FINE_H = 24, 32  # re-rank grid
HIST_H_BINS, HIST_S_BINS = 8, 8
APPEARANCE_WEIGHT = 0.8  # the predecessor's blend: 0.8 x template NCC + 0.2 x histogram correlation
COLOUR_WEIGHT = 0.2
FRAME_WEIGHT_POWER = 2.0  # pixel weight = (1 - max frame alpha) ** power
MIN_WEIGHT = 0.02  # even fully framed pixels keep a little weight (a frame is not always there)
CHANNEL_EPS = 1e-3  # floor under a channel's norm: flat channels must not amplify noise
SHIFT_PX = 2  # default re-rank offset range, work pixels (used for library-sized examples)
BBOX_SLACK_PX = 2.5  # how far (screenshot pixels) a layout bbox may sit off the icon
MAX_SHIFT_PX = 4  # cap on the adaptive offset range in work pixels (cost grows as (2s+1)^2)
RERANK_K = 8  # candidates re-scored at the fine level
RIVAL_K = 3  # best icons outside a crop's candidates re-scored to check the slot restriction
FRAME_ZONE_ALPHA = 0.9  # overlay pixels this opaque are "frame" when guessing a crop's rarity
FRAME_ZONE_STRIDE = 3  # every 3rd frame pixel is enough to tell the frame colours apart
MAX_UNDO_ALPHA = 0.85  # undoing the frame divides by (1 - alpha): cap it so noise is not blown up
MATCH_BATCH = 128  # crops per matrix product in match_many (bounds the score matrix's memory)
CACHE_PREFIX = "icon-index-"

OVERLAY_DIR = Path(__file__).resolve().parent / "data" / "overlays"
FRAME_FILES = {"Uncommon": "uncommon.png", "Rare": "rare.png", "Very Rare": "very_rare.png",
               "Ultra Rare": "ultra_rare.png", "Epic": "epic.png"}

ImageLike = Union[np.ndarray, Image.Image]


# ------------------------------------------------------------------------------------------------
# per-pixel weights: where the rarity frame hides the icon
# ------------------------------------------------------------------------------------------------
_WEIGHTS: dict[tuple[int, int], np.ndarray] = {}
_WEIGHT_LOCK = threading.RLock()  # frame_weights -> frame_overlays re-enters


_OVERLAYS: dict[str, np.ndarray] | None = None


def frame_overlays() -> dict[str, np.ndarray]:
    """Rarity -> the vendored SETS overlay as float32 RGBA (0..1) at the work size, blurred like a crop.

    Empty when the overlay files are missing: matching then runs without frame removal.
    """
    global _OVERLAYS
    with _WEIGHT_LOCK:
        if _OVERLAYS is None:
            out = {}
            for rarity, fname in FRAME_FILES.items():
                path = OVERLAY_DIR / fname
                if path.is_file():
                    with Image.open(path) as im:
                        rgba = np.asarray(im.convert("RGBA"), np.float32) / 255.0
                    rgba = cv2.resize(rgba, (WORK_W, WORK_H), interpolation=cv2.INTER_AREA)
                    out[rarity] = cv2.GaussianBlur(rgba, (0, 0), BLUR_SIGMA)
            _OVERLAYS = out
        return _OVERLAYS


def _frame_alpha() -> np.ndarray:
    """Max alpha (0..1) over the rarity overlays at the work size; a proportional box if absent."""
    overlays = frame_overlays()
    if overlays:
        return np.maximum.reduce([ov[:, :, 3] for ov in overlays.values()])
    # fallback: left ~3 columns, top ~6 rows and bottom ~8 rows of 49x64 are frame
    a = np.zeros((WORK_H, WORK_W), np.float32)
    a[:, : round(0.06 * WORK_W)] = 1.0
    a[: round(0.10 * WORK_H), :] = 0.6
    a[-round(0.12 * WORK_H):, :] = 1.0
    return a


def frame_weights(size_hw: tuple[int, int] = (WORK_H, WORK_W)) -> np.ndarray:
    """Per-pixel weights (float32, H x W) at a feature grid size: low under the rarity frame."""
    with _WEIGHT_LOCK:
        w = _WEIGHTS.get(size_hw)
        if w is None:
            base = np.clip(1.0 - _frame_alpha(), 0.0, 1.0) ** FRAME_WEIGHT_POWER
            base = np.maximum(base, MIN_WEIGHT).astype(np.float32)
            w = cv2.resize(base, (size_hw[1], size_hw[0]), interpolation=cv2.INTER_AREA)
            _WEIGHTS[size_hw] = w
        return w


# ------------------------------------------------------------------------------------------------
# features
# ------------------------------------------------------------------------------------------------
def _work_image(image: ImageLike) -> np.ndarray:
    """RGB float32 [0, 1] at 49x64, blurred: the common starting point of every feature."""
    rgb = as_rgb(image)
    work = resize(rgb, (WORK_H, WORK_W)).astype(np.float32) * (1.0 / 255.0)
    return cv2.GaussianBlur(work, (0, 0), BLUR_SIGMA)


def _chromaticity(rgb: np.ndarray) -> np.ndarray:
    """rgb / (r + g + b): colour without brightness, so gamma and exposure matter less."""
    return rgb / (rgb.sum(axis=-1, keepdims=True) + 0.05)


@dataclass(frozen=True)
class _FrameModel:
    """Precomputed per-rarity frame data (the per-crop work must stay a few tens of microseconds)."""

    rarities: tuple[str, ...]
    zone_pixels: np.ndarray  # flat pixel indices where any overlay is opaque
    zone_masks: np.ndarray  # (R, P) bool: which of those pixels are frame for each rarity
    zone_chroma: np.ndarray  # (R, P, 3) overlay chromaticity there
    alpha_colour: np.ndarray  # (R, H, W, 3) capped alpha x overlay colour
    inv_clear: np.ndarray  # (R, H, W, 1) 1 / (1 - capped alpha)


_FRAME_MODEL: list[_FrameModel | None] = []


def _frame_model() -> _FrameModel | None:
    """The frame model from the vendored overlays, built once; None without overlays."""
    with _WEIGHT_LOCK:
        if not _FRAME_MODEL:
            overlays = frame_overlays()
            if not overlays:
                _FRAME_MODEL.append(None)
            else:
                rar = tuple(overlays)
                stack = np.stack([overlays[r] for r in rar])  # (R, H, W, 4)
                masks = stack[:, :, :, 3] > FRAME_ZONE_ALPHA
                pix = np.flatnonzero(masks.any(axis=0))[::FRAME_ZONE_STRIDE]  # a sample suffices
                colour = stack[:, :, :, :3].reshape(len(rar), -1, 3)[:, pix]
                alpha = np.minimum(stack[:, :, :, 3:], MAX_UNDO_ALPHA)
                _FRAME_MODEL.append(_FrameModel(
                    rar, pix, masks.reshape(len(rar), -1)[:, pix], _chromaticity(colour),
                    (alpha * stack[:, :, :, :3]).astype(np.float32), (1.0 / (1.0 - alpha)).astype(np.float32)))
        return _FRAME_MODEL[0]


def guess_frame(work: np.ndarray) -> str | None:
    """The framed rarity whose opaque frame pixels best match the crop's colours (None: no overlays).

    Never answers "Common" (no frame): whether a frame is there at all is left to the matcher,
    which scores the crop both as it is and with this frame removed.
    """
    model = _frame_model()
    if model is None:
        return None
    chroma = _chromaticity(work.reshape(-1, 3)[model.zone_pixels])  # (P, 3)
    diff = model.zone_chroma - chroma[None]
    dist = np.sqrt((diff * diff).sum(axis=-1))  # (R, P)
    err = (dist * model.zone_masks).sum(axis=1) / np.maximum(model.zone_masks.sum(axis=1), 1)
    return model.rarities[int(np.argmin(err))]


def remove_frame(work: np.ndarray, rarity: str) -> np.ndarray:
    """Undo the game's compositing ``crop = icon * (1 - a) + frame * a`` for one rarity's overlay."""
    model = _frame_model()
    if model is None or rarity not in model.rarities:
        return work
    r = model.rarities.index(rarity)
    out = (work - model.alpha_colour[r]) * model.inv_clear[r]
    return np.clip(out, 0.0, 1.0, out=out)


def _hypotheses(work: np.ndarray) -> list[np.ndarray]:
    """The crop as it is (Common: no frame) and with its most likely rarity frame removed."""
    rarity = guess_frame(work)
    return [work] if rarity is None else [work, remove_frame(work, rarity)]


def _appearance(planes: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted, per-channel zero-mean, unit-norm rows of channel-planar (S, 3, H, W) grids.

    Each channel block gets unit norm (blind to per-channel gain and offset: brightness, contrast,
    white balance); the row is scaled by 1/sqrt(3) so the whole row has unit norm and the dot
    product of two rows is the mean of the three channels' weighted NCCs.
    """
    n, c = planes.shape[:2]
    flat = planes.reshape(n, c, -1)
    wv = weights.reshape(-1)
    wsum = float(wv.sum())
    mean = (flat @ wv) / wsum  # (S, 3)
    v = (flat - mean[:, :, None]) * np.sqrt(wv)
    norms = np.sqrt(np.einsum("scp,scp->sc", v, v, optimize=False) + CHANNEL_EPS * wsum)
    v *= (1.0 / (norms * math.sqrt(c)))[:, :, None]
    return v.reshape(n, -1)


def _colour_hist(work: np.ndarray) -> np.ndarray:
    """Zero-mean unit-norm H x S histogram of the frame-weighted pixels (dot = Pearson correlation)."""
    hsv = cv2.cvtColor(work, cv2.COLOR_RGB2HSV)  # float input: H in 0..360, S in 0..1
    h_bin = np.minimum((hsv[:, :, 0] * (HIST_H_BINS / 360.0)).astype(np.int32), HIST_H_BINS - 1)
    s_bin = np.minimum((hsv[:, :, 1] * HIST_S_BINS).astype(np.int32), HIST_S_BINS - 1)
    idx = (h_bin * HIST_S_BINS + s_bin).ravel()
    hist = np.bincount(idx, weights=frame_weights().ravel(), minlength=HIST_H_BINS * HIST_S_BINS)
    hist = hist.astype(np.float32)
    hist -= hist.mean()
    return hist / max(float(np.linalg.norm(hist)), 1e-12)


def coarse_dim() -> int:
    """Length of a first-pass feature row."""
    return COARSE_W * COARSE_H * 3 + HIST_H_BINS * HIST_S_BINS


def fine_dim() -> int:
    """Length of a re-rank feature row."""
    return FINE_W * FINE_H * 3


def _planar(grid: np.ndarray) -> np.ndarray:
    """(H, W, 3) -> (3, H, W), contiguous: the layout every reduction here runs fastest on."""
    return np.ascontiguousarray(grid.transpose(2, 0, 1))


def _coarse_from_work(work: np.ndarray) -> np.ndarray:
    grid = cv2.resize(work, (COARSE_W, COARSE_H), interpolation=cv2.INTER_AREA)  # exact 4x4 block means
    app = _appearance(_planar(grid)[None], frame_weights((COARSE_H, COARSE_W)))[0]
    return np.concatenate([app, _colour_hist(work)]).astype(np.float32)


def _fine_from_works(works: np.ndarray) -> np.ndarray:
    planes = np.stack([_planar(cv2.resize(w, (FINE_W, FINE_H), interpolation=cv2.INTER_AREA)) for w in works])
    return _appearance(planes, frame_weights((FINE_H, FINE_W))).astype(np.float32)


def icon_features(image: ImageLike) -> tuple[np.ndarray, np.ndarray]:
    """(coarse row, fine row) of one icon or crop; unweighted (the library applies the blend)."""
    work = _work_image(image)
    return _coarse_from_work(work), _fine_from_works(work[None])[0]


def adaptive_shift(crop_height: int) -> int:
    """Offset range in work pixels that covers BBOX_SLACK_PX screen pixels for a crop this tall."""
    return int(min(MAX_SHIFT_PX, max(1, math.ceil(BBOX_SLACK_PX * WORK_H / max(crop_height, 1)))))


def _shifted_fine(work: np.ndarray, shift: int = SHIFT_PX) -> np.ndarray:
    """Fine rows of the crop moved by every (dx, dy) in -shift..shift: a (S, fine_dim) matrix.

    Moving the crop, not the library icon, keeps the library a fixed matrix; the border pixels
    that appear are edge-replicated and lie in the low-weight frame zone anyway.
    """
    if shift <= 0:
        return _fine_from_works(work[None])
    pad = cv2.copyMakeBorder(work, shift, shift, shift, shift, cv2.BORDER_REPLICATE)
    fy, fx = WORK_H // FINE_H, WORK_W // FINE_W
    # box means anchored at each pixel's top-left: a shifted fine grid is then a strided sample
    box = cv2.boxFilter(pad, -1, (fx, fy), anchor=(0, 0), normalize=True, borderType=cv2.BORDER_REPLICATE)
    box = _planar(box)
    grids = [box[:, shift + dy: shift + dy + WORK_H: fy, shift + dx: shift + dx + WORK_W: fx]
             for dy in range(-shift, shift + 1) for dx in range(-shift, shift + 1)]
    return _appearance(np.stack(grids), frame_weights((FINE_H, FINE_W))).astype(np.float32)


# ------------------------------------------------------------------------------------------------
# the library index
# ------------------------------------------------------------------------------------------------
def _library_files(icons_dir: Path) -> list[Path]:
    """PNG files of a SETS image-cache folder, sorted by name for a stable row order."""
    return sorted((p for p in icons_dir.iterdir() if p.suffix.lower() == ".png" and p.is_file()),
                  key=lambda p: p.name)


def _fingerprint(files: Sequence[Path]) -> str:
    """Hash of file names, sizes and mtimes (ns) plus the feature version: the cache key."""
    h = hashlib.sha256(FEATURE_VERSION.encode())
    h.update(f"{COARSE_W}x{COARSE_H}|{FINE_W}x{FINE_H}|{BLUR_SIGMA}|{HIST_H_BINS}x{HIST_S_BINS}".encode())
    for p in files:
        st = p.stat()
        h.update(f"\0{p.name}\0{st.st_size}\0{st.st_mtime_ns}".encode("utf-8", "surrogatepass"))
    return h.hexdigest()[:32]


def _read_icon(path: Path) -> np.ndarray | None:
    """An icon file as RGB; None when it cannot be decoded (a broken download must not stop the index)."""
    data = np.fromfile(str(path), np.uint8)  # fromfile + imdecode: works with non-ASCII paths on Windows
    img = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if img is None:
        return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2RGB)
    if img.shape[2] == 4:
        # transparent icon pixels show the game's dark slot background, approximated as black
        alpha = img[:, :, 3:4].astype(np.float32) / 255.0
        img = (img[:, :, :3].astype(np.float32) * alpha).astype(np.uint8)
    return cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2RGB)


@dataclass(frozen=True)
class BuildStats:
    """What :meth:`IconIndex.build` did, for logs and the bench."""

    icons: int
    skipped: int
    from_cache: bool
    seconds: float


class IconIndex:
    """All library icons as two feature matrices; scores crops with matrix products.

    ``coarse``: float32 ``(N, coarse_dim)`` rows already carrying the 0.8/0.2 blend. ``fine``:
    float16 ``(N, fine_dim)`` (only gathered for the top candidates, so half precision saves memory
    at no cost in speed). Thread-safe for concurrent matching (read-only after build).
    """

    def __init__(self, names: Sequence[str], coarse: np.ndarray, fine: np.ndarray,
                 stats: BuildStats | None = None):
        if len(names) != coarse.shape[0] or coarse.shape[0] != fine.shape[0]:
            raise ValueError("names, coarse and fine must have one row per icon")
        self.names: list[str] = list(names)
        self.coarse = np.ascontiguousarray(coarse, np.float32)
        self.fine = np.ascontiguousarray(fine, np.float16)
        self._row = {n: i for i, n in enumerate(self.names)}
        self.stats = stats or BuildStats(len(self.names), 0, False, 0.0)

    # -- construction -----------------------------------------------------------------------------
    @classmethod
    def build(cls, icons: str | Path | Mapping[str, ImageLike], names: Iterable[str] | None = None,
              cache_dir: str | Path | None = None) -> "IconIndex":
        """Index a SETS image-cache folder (``<quote_plus(name)>.png``) or a mapping name -> image.

        ``names`` restricts the library (e.g. to the catalogue's items). With ``cache_dir`` the
        feature matrices of a folder are cached as ``.npz`` keyed by the files' names, sizes and
        mtimes, so a daemon restart reads one file instead of decoding every icon.
        """
        t0 = time.perf_counter()
        wanted = set(names) if names is not None else None
        if isinstance(icons, Mapping):
            items = [(n, icons[n]) for n in sorted(icons) if wanted is None or n in wanted]
            coarse, fine, kept, skipped = _featurise((n, lambda im=im: as_rgb(im)) for n, im in items)
            return cls(kept, coarse, fine, BuildStats(len(kept), skipped, False, time.perf_counter() - t0))
        folder = Path(icons)
        files = [p for p in _library_files(folder)
                 if wanted is None or unquote_plus(p.name[:-4]) in wanted]
        cache = _cache_path(cache_dir, folder, files) if cache_dir is not None else None
        if cache is not None:
            loaded = _load_cache(cache)
            if loaded is not None:
                kept, coarse, fine, skipped = loaded
                return cls(kept, coarse, fine, BuildStats(len(kept), skipped, True, time.perf_counter() - t0))
        coarse, fine, kept, skipped = _featurise(
            (unquote_plus(p.name[:-4]), lambda p=p: _read_icon(p)) for p in files)
        if cache is not None:
            _save_cache(cache, kept, coarse, fine, skipped)
        return cls(kept, coarse, fine, BuildStats(len(kept), skipped, False, time.perf_counter() - t0))

    def __len__(self) -> int:
        return len(self.names)

    @property
    def nbytes(self) -> int:
        """Memory held by the feature matrices."""
        return int(self.coarse.nbytes + self.fine.nbytes)

    def rows(self, candidates: Sequence[str | int] | None) -> np.ndarray:
        """Library row indices of candidate names or indices; unknown names are skipped."""
        if candidates is None:
            return np.arange(len(self.names))
        out = []
        for c in candidates:
            if isinstance(c, (int, np.integer)):
                if 0 <= int(c) < len(self.names):
                    out.append(int(c))
            else:
                r = self._row.get(c)
                if r is not None:
                    out.append(r)
        return np.unique(np.asarray(out, np.int64))

    # -- matching ---------------------------------------------------------------------------------
    def match(self, crop_rgb: ImageLike, candidates: Sequence[str | int] | None = None,
              k: int = 5) -> list[tuple[str, float]]:
        """Best ``k`` (name, score) for one crop, best first; score is the blended similarity (-1..1)."""
        return self.match_many([crop_rgb], [candidates], k=k)[0]

    def match_many(self, crops: Sequence[ImageLike],
                   candidates_per_crop: Sequence[Sequence[str | int] | None] | None = None,
                   k: int = 5, rerank_k: int = RERANK_K, shift: int | None = None
                   ) -> list[list[tuple[str, float]]]:
        """Match a screenshot's crops with one matrix product; per-crop candidate lists optional.

        ``shift`` (work pixels) defaults to an offset range that covers ``BBOX_SLACK_PX`` screen
        pixels at the crop's own scale: a 2-pixel bbox error is 4 work pixels on a 35-pixel crop.
        """
        return [ranked for ranked, _ in self.match_with_rivals(crops, candidates_per_crop, k, rerank_k, shift, 0)]

    def match_with_rivals(self, crops: Sequence[ImageLike],
                          candidates_per_crop: Sequence[Sequence[str | int] | None] | None = None,
                          k: int = 5, rerank_k: int = RERANK_K, shift: int | None = None, rival_k: int = RIVAL_K
                          ) -> list[tuple[list[tuple[str, float]], tuple[str, float] | None]]:
        """:meth:`match_many` plus, per crop, the best icon *outside* its candidates (or None).

        Why: restricting candidates to the slot's items is only right when the slot was named
        right. A library icon outside the candidates that fits clearly better than every candidate
        says the row's name (or the catalogue) is wrong, and the engine must not auto-accept. The
        coarse product already scores every icon, so this costs ``rival_k`` extra fine re-scores.
        """
        if candidates_per_crop is None:
            candidates_per_crop = [None] * len(crops)
        if len(candidates_per_crop) != len(crops):
            raise ValueError("need one candidate list (or None) per crop")
        if not len(self.names) or not len(crops):
            return [([], None) for _ in crops]
        arrays = [as_rgb(c) for c in crops]
        shifts = [shift if shift is not None else adaptive_shift(a.shape[0]) for a in arrays]
        hyps = [_hypotheses(_work_image(a)) for a in arrays]
        flat = [w for h in hyps for w in h]
        feats = np.stack([_coarse_from_work(w) for w in flat])
        bounds = np.concatenate([[0], np.cumsum([len(h) for h in hyps])])  # crop i: rows bounds[i]..bounds[i+1]
        results: list[tuple[list[tuple[str, float]], tuple[str, float] | None]] = []
        for c0 in range(0, len(crops), MATCH_BATCH):
            c1 = min(c0 + MATCH_BATCH, len(crops))
            base = bounds[c0]
            scores = feats[base:bounds[c1]] @ self.coarse.T  # one product for up to MATCH_BATCH crops
            rows_of: dict[int, np.ndarray] = {}  # a screenshot's cells share a few candidate lists
            for i in range(c0, c1):
                lo, hi = bounds[i], bounds[i + 1]
                cands = candidates_per_crop[i]
                rows = None
                if cands is not None:
                    rows = rows_of.get(id(cands))
                    if rows is None:
                        rows = rows_of[id(cands)] = self.rows(cands)
                fine_of: dict[tuple[int, int], np.ndarray] = {}  # shifted fine features, once per crop
                ranked = self._rank(flat[lo:hi], feats[lo:hi], scores[lo - base:hi - base], rows, k, rerank_k,
                                    shifts[i], fine_of)
                rival = None
                if rival_k > 0 and rows is not None:
                    rival = self._rival(flat[lo:hi], feats[lo:hi], scores[lo - base:hi - base], rows, rival_k,
                                        shifts[i], fine_of)
                results.append((ranked, rival))
        return results

    def _rival(self, works: list[np.ndarray], feats: np.ndarray, scores: np.ndarray, rows: np.ndarray,
               rival_k: int, shift: int, fine_of: dict[tuple[int, int], np.ndarray] | None = None
               ) -> tuple[str, float] | None:
        """Best fine-scored icon among the top ``rival_k`` coarse matches outside ``rows``."""
        outside = scores.max(axis=0).copy()
        outside[rows] = -np.inf
        n = min(rival_k, int(np.isfinite(outside).sum()))
        if n <= 0:
            return None
        top = np.argpartition(-outside, n - 1)[:n]
        ranked = self._rank(works, feats, scores, top.astype(np.int64), 1, n, shift, fine_of)
        return ranked[0] if ranked else None

    def _rank(self, works: list[np.ndarray], feats: np.ndarray, scores: np.ndarray, rows: np.ndarray | None,
              k: int, rerank_k: int, shift: int, fine_of: dict[tuple[int, int], np.ndarray] | None = None
              ) -> list[tuple[str, float]]:
        """Top rows by coarse score (best hypothesis per icon), the best re-scored finely with shifts."""
        if rows is not None:
            if rows.size == 0:
                return []
            scores = scores[:, rows]
        hyp = int(np.argmax(scores.max(axis=1)))  # frame / no-frame: the reading that fits best
        scores = scores.max(axis=0)
        n_top = min(max(k, rerank_k), scores.shape[0])
        top = np.argpartition(-scores, n_top - 1)[:n_top] if n_top < scores.shape[0] else np.arange(scores.shape[0])
        top_rows = top if rows is None else rows[top]
        final = scores[top].astype(np.float32)
        if rerank_k > 0:
            order = np.argsort(-final)[:rerank_k]
            rr = top_rows[order]
            key = (hyp, shift)
            shifted = fine_of.get(key) if fine_of is not None else None
            if shifted is None:
                shifted = _shifted_fine(works[hyp], shift)
                if fine_of is not None:
                    fine_of[key] = shifted
            fine = shifted @ self.fine[rr].astype(np.float32).T  # (shifts, r)
            n_hist = HIST_H_BINS * HIST_S_BINS
            colour = self.coarse[rr, -n_hist:] @ feats[hyp, -n_hist:]  # already x COLOUR_WEIGHT
            final[order] = APPEARANCE_WEIGHT * fine.max(axis=0) + colour
        best = np.argsort(-final)[:k]
        return [(self.names[int(top_rows[b])], float(final[b])) for b in best]


def _featurise(items: Iterable[tuple[str, Any]]) -> tuple[np.ndarray, np.ndarray, list[str], int]:
    """Feature matrices for (name, loader) pairs; loaders returning None are skipped and counted."""
    coarse_rows, fine_rows, kept = [], [], []
    skipped = 0
    blend = np.concatenate([np.full(COARSE_W * COARSE_H * 3, APPEARANCE_WEIGHT, np.float32),
                            np.full(HIST_H_BINS * HIST_S_BINS, COLOUR_WEIGHT, np.float32)])
    for name, load in items:
        img = load()
        if img is None or img.size == 0 or not name:
            skipped += 1
            continue
        c, f = icon_features(img)
        coarse_rows.append(c * blend)
        fine_rows.append(f.astype(np.float16))
        kept.append(name)
    coarse = np.stack(coarse_rows) if coarse_rows else np.zeros((0, coarse_dim()), np.float32)
    fine = np.stack(fine_rows) if fine_rows else np.zeros((0, fine_dim()), np.float16)
    return coarse, fine, kept, skipped


# ------------------------------------------------------------------------------------------------
# disk cache (npz, never pickled)
# ------------------------------------------------------------------------------------------------
def _cache_path(cache_dir: str | Path, folder: Path, files: Sequence[Path]) -> Path:
    """One cache file per library folder; its key decides whether the content is still valid."""
    folder_id = hashlib.sha256(str(folder.resolve()).encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return Path(cache_dir) / f"{CACHE_PREFIX}{folder_id}-{_fingerprint(files)}.npz"


def _load_cache(path: Path) -> tuple[list[str], np.ndarray, np.ndarray, int] | None:
    """The cached matrices, or None when absent, unreadable or of another shape."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            names = [str(n) for n in z["names"]]
            coarse, fine = z["coarse"], z["fine"]
            skipped = int(z["skipped"])
    except (OSError, ValueError, KeyError):
        return None
    if coarse.shape != (len(names), coarse_dim()) or fine.shape != (len(names), fine_dim()):
        return None
    return names, coarse, fine, skipped


def _save_cache(path: Path, names: list[str], coarse: np.ndarray, fine: np.ndarray, skipped: int) -> None:
    """Write atomically and drop this folder's older cache files (their keys can never match again)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    folder_prefix = path.name.rsplit("-", 1)[0] + "-"
    for old in path.parent.glob(folder_prefix + "*.npz"):
        if old != path:
            try:
                old.unlink()
            except OSError:
                pass
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    os.close(fd)
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, names=np.asarray(names, dtype=str), coarse=coarse, fine=fine,
                     skipped=np.asarray(skipped))
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass


# ------------------------------------------------------------------------------------------------
# pHash knowledge: community overrides, looked up by Hamming distance
# ------------------------------------------------------------------------------------------------
PHASH_HEX_RE = re.compile(r"^[0-9a-fA-F]{16}$")
MAX_NAME_LEN = 200


def crop_phash(crop_rgb: ImageLike) -> int:
    """64-bit ``imagehash.phash`` (hash_size 8) of the 64x64 canonical crop, as an int.

    The same hash the predecessor's knowledge files hold (its 16 hex digits are this int).
    """
    import imagehash  # imported here: only the knowledge lookup needs it (and its scipy)

    h = imagehash.phash(Image.fromarray(canonical_crop(as_rgb(crop_rgb))), hash_size=8)
    return int(str(h), 16)


def hamming(hashes: np.ndarray, h: int) -> np.ndarray:
    """Bit distance of one 64-bit hash to each of a uint64 array (XOR + popcount, vectorised)."""
    x = np.bitwise_xor(hashes, np.uint64(h))
    if hasattr(np, "bitwise_count"):  # numpy >= 2.0
        return np.bitwise_count(x).astype(np.int32)
    bits = np.unpackbits(x.view(np.uint8).reshape(-1, 8), axis=1)
    return bits.sum(axis=1).astype(np.int32)


class PhashKnowledge:
    """knowledge.json ``{"knowledge": {"<16 hex pHash>": "<item name>"}, "updated_at": ...}`` as arrays.

    The predecessor looked hashes up exactly, so a crop one pixel off never matched; here the
    nearest hash within ``max_distance`` bits wins (config ``recognition.phash_max_distance``).
    Two different names at the same smallest distance give no answer: the community disagrees.
    """

    def __init__(self, hashes: np.ndarray, names: Sequence[str], skipped: int = 0):
        self.hashes = np.asarray(hashes, np.uint64)
        self.names = list(names)
        self.skipped = skipped  # malformed entries dropped on load

    @classmethod
    def from_mapping(cls, knowledge: Mapping[Any, Any]) -> "PhashKnowledge":
        """Validate entries (16 hex digits -> non-empty name of at most 200 chars); count the rest."""
        hashes, names, skipped = [], [], 0
        for key, name in knowledge.items():
            if (not isinstance(key, str) or not PHASH_HEX_RE.match(key) or not isinstance(name, str)
                    or not name.strip() or len(name) > MAX_NAME_LEN):
                skipped += 1
                continue
            hashes.append(int(key, 16))
            names.append(name.strip())
        return cls(np.asarray(hashes, np.uint64), names, skipped)

    @classmethod
    def load(cls, path: str | Path) -> "PhashKnowledge":
        """Read a knowledge file; a missing or broken file is an empty knowledge, not an error."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return cls(np.zeros(0, np.uint64), [], 0)
        know = data.get("knowledge") if isinstance(data, dict) else None
        if not isinstance(know, dict):
            return cls(np.zeros(0, np.uint64), [], 1 if data else 0)
        return cls.from_mapping(know)

    def __len__(self) -> int:
        return len(self.names)

    def lookup_hash(self, h: int, max_distance: int) -> tuple[str, int] | None:
        """(name, distance) of the nearest hash within the bound; None if none or a tie of names."""
        if not len(self.names):
            return None
        dist = hamming(self.hashes, h)
        best = int(dist.min())
        if best > max_distance:
            return None
        winners = {self.names[i] for i in np.flatnonzero(dist == best)}
        if len(winners) != 1:
            return None
        return winners.pop(), best

    def lookup(self, crop_rgb: ImageLike, max_distance: int) -> tuple[str, int] | None:
        """Look a crop up by its canonical pHash; see :meth:`lookup_hash`."""
        if not len(self.names):
            return None
        return self.lookup_hash(crop_phash(crop_rgb), max_distance)


# ------------------------------------------------------------------------------------------------
# session examples: what the user confirmed this session
# ------------------------------------------------------------------------------------------------
class SessionExamples:
    """Crops the user confirmed this session, matched with the same features as the library.

    A correction helps the very next screenshot: the user's own crops carry the exact frame,
    scale and compression of their screen. Appends come from the UI thread while the recogniser
    matches, hence the lock.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._names: list[str] = []
        self._slots: list[str] = []
        self._works: list[np.ndarray] = []
        self._coarse: list[np.ndarray] = []

    def __len__(self) -> int:
        with self._lock:
            return len(self._names)

    def add(self, name: str, slot: str, crop_rgb: ImageLike) -> None:
        """Remember a confirmed crop (any size; it is reduced to the work size like a library icon)."""
        if not name:
            raise ValueError("a confirmed example needs an item name")
        work = _work_image(canonical_crop(as_rgb(crop_rgb)))
        coarse = _coarse_from_work(work)
        with self._lock:
            self._names.append(name)
            self._slots.append(slot)
            self._works.append(work)
            self._coarse.append(coarse)

    def match(self, crop_rgb: ImageLike, candidates: Sequence[str] | None = None,
              slot: str | None = None) -> tuple[str, float] | None:
        """Best (name, score) among examples allowed by candidates/slot, or None when there are none.

        The score is the fine, shift-tolerant weighted NCC blended with colour, on the same scale
        as :meth:`IconIndex.match`. Both sides carry the frame, so no frame removal is needed.
        """
        with self._lock:
            names, slots = list(self._names), list(self._slots)
            works, coarse = list(self._works), list(self._coarse)
        allowed = set(candidates) if candidates is not None else None
        idx = [i for i, n in enumerate(names)
               if (allowed is None or n in allowed) and (slot is None or slots[i] == slot)]
        if not idx:
            return None
        work = _work_image(canonical_crop(as_rgb(crop_rgb)))
        crop_coarse = _coarse_from_work(work)
        n_hist = HIST_H_BINS * HIST_S_BINS
        lib_fine = _fine_from_works(np.stack([works[i] for i in idx]))
        fine = (_shifted_fine(work) @ lib_fine.T).max(axis=0)
        colour = np.stack([coarse[i][-n_hist:] for i in idx]) @ crop_coarse[-n_hist:]
        score = APPEARANCE_WEIGHT * fine + COLOUR_WEIGHT * colour
        best = int(np.argmax(score))
        return names[idx[best]], float(score[best])


# ------------------------------------------------------------------------------------------------
# calibration: scores -> probability that the top answer is right
# ------------------------------------------------------------------------------------------------
CALIBRATION_FILE = Path(__file__).resolve().parent / "data" / "calibration.json"
CALIBRATION_L2 = 1e-3  # ridge on the slopes: keeps the fit finite when a source has no errors
SOURCES = ("icon", "session", "phash")


def calibration_features(top1: float, margin: float) -> np.ndarray:
    """The logistic model's inputs: [1, top1 score, margin to the runner-up]."""
    return np.array([1.0, float(top1), float(margin)], np.float64)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free logistic


class Calibrator:
    """``p(correct) = sigmoid(w0 + w1 * top1 + w2 * margin)``, one coefficient set per source.

    Fitted by Newton's method (IRLS) on labelled matches; sources without their own fit use
    ``"icon"``'s. Raw similarity scores are not probabilities: the daemon's bands (auto-accept,
    ask, reject) compare against this output.
    """

    def __init__(self, coefs: Mapping[str, Sequence[float]] | None = None, meta: Mapping[str, Any] | None = None):
        self.coefs: dict[str, np.ndarray] = {k: np.asarray(v, np.float64) for k, v in (coefs or {}).items()}
        self.meta: dict[str, Any] = dict(meta or {})

    @staticmethod
    def fit_coefficients(x: np.ndarray, y: np.ndarray, l2: float = CALIBRATION_L2, iters: int = 50) -> np.ndarray:
        """Logistic regression by Newton's method; x includes the constant column; y in {0, 1}."""
        x = np.asarray(x, np.float64)
        y = np.asarray(y, np.float64)
        w = np.zeros(x.shape[1])
        reg = np.full(x.shape[1], l2)
        reg[0] = 0.0  # the intercept is not shrunk
        for _ in range(iters):
            p = _sigmoid(x @ w)
            grad = x.T @ (p - y) + reg * w
            hess = (x * (p * (1 - p))[:, None]).T @ x + np.diag(reg) + 1e-9 * np.eye(x.shape[1])
            step = np.linalg.solve(hess, grad)
            w -= step
            if float(np.abs(step).max()) < 1e-8:
                break
        return w

    def fit(self, features: np.ndarray, correct: np.ndarray, source: str = "icon") -> "Calibrator":
        """Fit one source from (N, 2) [top1, margin] rows and booleans; returns self."""
        f = np.asarray(features, np.float64).reshape(-1, 2)
        x = np.column_stack([np.ones(len(f)), f])
        self.coefs[source] = self.fit_coefficients(x, np.asarray(correct, np.float64))
        return self

    def probability(self, top1: float, margin: float, source: str = "icon") -> float:
        """Calibrated probability that the top answer is right."""
        w = self.coefs.get(source, self.coefs.get("icon"))
        if w is None:
            raise ValueError("calibrator has no coefficients")
        return float(_sigmoid(np.asarray(calibration_features(top1, margin) @ w)))

    def probabilities(self, features: np.ndarray, source: str = "icon") -> np.ndarray:
        """Vectorised :meth:`probability` for (N, 2) [top1, margin] rows."""
        w = self.coefs.get(source, self.coefs.get("icon"))
        if w is None:
            raise ValueError("calibrator has no coefficients")
        f = np.asarray(features, np.float64).reshape(-1, 2)
        return _sigmoid(np.column_stack([np.ones(len(f)), f]) @ w)

    def to_json(self) -> dict[str, Any]:
        return {"model": "logistic", "features": ["1", "top1", "margin"],
                "coefficients": {k: [float(c) for c in v] for k, v in self.coefs.items()},
                "meta": self.meta}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path | None = None) -> "Calibrator":
        """Read coefficients (default: the bundled fit); shapes are checked, nothing is executed."""
        data = json.loads(Path(path or CALIBRATION_FILE).read_text(encoding="utf-8"))
        coefs = data.get("coefficients")
        if not isinstance(coefs, dict) or not coefs:
            raise ValueError("calibration file has no coefficients")
        for k, v in coefs.items():
            if not isinstance(v, list) or len(v) != 3 or not all(isinstance(c, (int, float)) for c in v):
                raise ValueError(f"calibration coefficients for {k!r} must be three numbers")
        return cls(coefs, data.get("meta") or {})


def match_features(results: Sequence[tuple[str, float]]) -> tuple[float, float]:
    """(top1 score, margin to top2) of a ranked result list; a lone answer has margin = its score."""
    if not results:
        return 0.0, 0.0
    top1 = results[0][1]
    margin = top1 - results[1][1] if len(results) > 1 else top1
    return float(top1), float(margin)


def expected_calibration_error(prob: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """ECE: |accuracy - mean confidence| averaged over equal-width probability bins, weighted by count."""
    prob = np.asarray(prob, np.float64)
    correct = np.asarray(correct, np.float64)
    if prob.size == 0:
        return 0.0
    which = np.minimum((prob * bins).astype(int), bins - 1)
    ece = 0.0
    for b in range(bins):
        m = which == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - prob[m].mean())
    return float(ece)
