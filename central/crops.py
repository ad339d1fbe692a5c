"""Training crops for the icon classifier: the icon library turned into what the game's screenshots show.

Why synthesis: at cold start the only labelled data is the icon library (SETS's image cache, one
49x64 icon per item). A crop the daemon classifies is not that icon: the game composites a rarity
frame on it, scales it into a slot whose size follows the resolution and UI scale (720p to 4K, about
0.5x to 2.1x of 64 px high, and a slightly different aspect per panel), the capture adds tone
changes, blur and JPEG, and the layout's bbox sits a few pixels off. :func:`synth_crops` reproduces
that chain (the same constants as ``warpd.synth.screens``/``effects``) so a model trained on the
library recognises real slots.

What is deliberately *not* done: horizontal (or vertical) flips, rotations and colour-hue shifts. The
game never mirrors an icon, and mirrored/recoloured look-alikes are exactly what tells items of one
family apart (badges sit at fixed places, the energy word picks the hue).

Speed: everything that can be batched is (rarity compositing over a whole batch, the normalisation
as one table look-up); what is inherently one image at a time (resizing to a per-sample slot size,
Gaussian blur, the JPEG round trip) uses OpenCV, which releases the GIL, so a background thread can
produce batches while torch trains. One core makes several thousand crops a second.

The model input is always exactly :func:`warpd.preprocess.icon_tensor`'s, batched by
:func:`warpd.preprocess.icon_batch` (a test pins them together), the one function the daemon uses too.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from warpd.preprocess import TENSOR_SIZE, as_rgb, resize, to_model_size
from warpd.synth import effects
from warpd.synth.icons import ICON_H, ICON_W, OVERLAY_DIR, RARITY_FILES, name_from_icon_file, render_icon

# Rarity frames in the order of the overlay stack built by :func:`rarity_overlays`; index 0 is "no
# frame" (the bare library icon, traits, boff abilities).
RARITIES: tuple[str, ...] = ("none", "common", "uncommon", "rare", "veryrare", "ultrarare", "epic")


# ----------------------------------------------------------------------------- icon bank
@dataclass
class IconBank:
    """One clean icon per class: ``icons`` uint8 ``(N, 64, 49, 3)`` RGB, ``names[i]`` its item name."""

    names: list[str]
    icons: np.ndarray

    def __post_init__(self) -> None:
        if len(self.names) != len(self.icons):
            raise ValueError(f"{len(self.names)} names but {len(self.icons)} icons")
        if len(set(self.names)) != len(self.names):
            raise ValueError("class names must be unique")

    def __len__(self) -> int:
        return len(self.names)


def _icon_array(img: Image.Image | np.ndarray) -> np.ndarray:
    """An icon as uint8 RGB at the library size 64x49 (alpha dropped: icons are opaque)."""
    arr = as_rgb(np.asarray(img.convert("RGBA") if isinstance(img, Image.Image) else img))
    if arr.shape[:2] != (ICON_H, ICON_W):
        arr = resize(arr, (ICON_H, ICON_W))
    return np.ascontiguousarray(arr)


def render_bank(names: Iterable[str], kind_of: Callable[[str], str] | None = None) -> IconBank:
    """Render the synthetic library icon of every name (``warpd.synth.icons``; ~1-2 ms each)."""
    uniq = list(dict.fromkeys(n for n in names if n and n.strip()))
    icons = [_icon_array(render_icon(n, kind_of(n) if kind_of else "equipment")) for n in uniq]
    return IconBank(uniq, np.stack(icons) if icons else np.zeros((0, ICON_H, ICON_W, 3), np.uint8))


def load_bank(icons_dir: str | Path, names: Iterable[str] | None = None) -> IconBank:
    """Read a SETS-layout icon library (``<quote_plus(name)>.png``); ``names`` restricts and orders it.

    Unreadable files are skipped rather than fatal: one broken download must not stop the cron run
    (the class then simply has no synthetic data; community crops may still teach it).
    """
    folder = Path(icons_dir)
    files = {name_from_icon_file(p): p for p in sorted(folder.glob("*.png"))}
    wanted = list(dict.fromkeys(names)) if names is not None else sorted(files)
    out_names, out_icons = [], []
    for n in wanted:
        p = files.get(n)
        if p is None:
            continue
        try:
            with Image.open(p) as im:
                out_icons.append(_icon_array(im))
        except (OSError, ValueError):
            continue
        out_names.append(n)
    return IconBank(out_names, np.stack(out_icons) if out_icons else np.zeros((0, ICON_H, ICON_W, 3), np.uint8))


def rarity_overlays(size_hw: tuple[int, int] = (ICON_H, ICON_W)) -> tuple[np.ndarray, np.ndarray]:
    """The vendored rarity frames as float32 ``rgb (R, H, W, 3)`` in 0..255 and ``alpha (R, H, W, 1)``.

    Index order is :data:`RARITIES`; index 0 (no frame) has zero alpha. Scaled with LANCZOS exactly
    like ``warpd.synth.icons.apply_rarity`` so compositing matches the renderer (to rounding).
    """
    h, w = size_hw
    rgb = np.zeros((len(RARITIES), h, w, 3), np.float32)
    alpha = np.zeros((len(RARITIES), h, w, 1), np.float32)
    for i, key in enumerate(RARITIES[1:], start=1):
        with Image.open(OVERLAY_DIR / RARITY_FILES[key]) as im:
            ov = im.convert("RGBA")
            if ov.size != (w, h):
                ov = ov.resize((w, h), Image.Resampling.LANCZOS)
            arr = np.asarray(ov, np.float32)
        rgb[i], alpha[i] = arr[..., :3], arr[..., 3:] / 255.0
    return rgb, alpha


def composite_rarity(icons: np.ndarray, rarity_idx: np.ndarray,
                     overlays: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Frame a whole batch at once: ``icon * (1 - a) + frame * a`` (uint8 ``(N, 64, 49, 3)``)."""
    rgb, alpha = overlays
    f = icons.astype(np.float32)
    out = rgb[rarity_idx]  # icon + (frame - icon) * a, in place: a third fewer full-size temporaries
    out -= f
    out *= alpha[rarity_idx]
    out += f
    out += 0.5
    return np.clip(out, 0, 255, out=out).astype(np.uint8)


# ----------------------------------------------------------------------------- augmentation
@dataclass
class AugmentConfig:
    """How a synthetic crop is made; defaults follow ``warpd.synth.screens``/``effects``.

    Scales are the on-screen icon height over the library's 64 px: 720p at UI scale 0.8 is ~0.47,
    1080p ~0.88, 4K at 1.2 ~2.1. Sampled log-uniformly so every octave gets the same share.
    """

    scale: tuple[float, float] = (0.5, 2.1)
    aspect: tuple[float, float] = (0.74, 0.88)  # cell w/h: boff 0.75, equipment ~0.8, traits ~0.85
    offset_px: float = 2.5  # bbox offset error, screen pixels (the layout's BBOX_SLACK_PX)
    bbox_scale_err: float = 0.05  # relative bbox size error, each axis
    pad_frac: float = 0.25  # background around the slot that a misplaced bbox can catch
    rarity_weights: tuple[float, ...] = (1.0, 1.0, 1.0, 1.5, 2.0, 1.5, 2.0)  # per RARITIES entry
    blur_p: float = 0.3
    blur_sigma: tuple[float, float] = (0.3, 1.1)
    jpeg_p: float = 0.5
    jpeg_quality: tuple[int, int] = (60, 95)
    tone_p: float = 0.4
    brightness: tuple[float, float] = (0.8, 1.2)
    gamma: tuple[float, float] = (0.8, 1.25)
    hdr_p: float = 0.08
    noise_p: float = 0.2
    noise_sigma: float = 3.0
    # real community crops are already real captures: only re-cut them a little
    community_offset_px: float = 2.0
    community_scale_err: float = 0.04


def _resize_exact(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Area averaging when shrinking, bilinear when enlarging (like the game's and preprocess's)."""
    ih, iw = img.shape[:2]
    interp = cv2.INTER_AREA if h <= ih and w <= iw else cv2.INTER_LINEAR
    return cv2.resize(img, (w, h), interpolation=interp)


def _jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    """JPEG round trip (OpenCV expects BGR: convert so luma/chroma split like a real encoder's)."""
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return img
    return cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _capture(canvas: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """The capture chain of ``effects.apply_capture`` on the slot's neighbourhood: tone, blur, JPEG."""
    if rng.random() < cfg.tone_p or rng.random() < cfg.hdr_p:
        hdr = rng.random() < cfg.hdr_p
        lut = effects.tone_lut(float(rng.uniform(*cfg.brightness)), float(rng.uniform(*cfg.gamma)),
                               float(rng.uniform(*effects.HDR_BLACK_LIFT)) if hdr else 0.0,
                               float(rng.uniform(*effects.HDR_CURVE_EXPONENT)) if hdr else 1.0)
        canvas = cv2.LUT(canvas, lut)
        if hdr:
            canvas = effects.desaturate(canvas, float(rng.uniform(*effects.HDR_SATURATION)))
    if rng.random() < cfg.blur_p:
        canvas = cv2.GaussianBlur(canvas, (0, 0), sigmaX=float(rng.uniform(*cfg.blur_sigma)))
    if rng.random() < cfg.noise_p:
        noise = rng.normal(0.0, cfg.noise_sigma, canvas.shape).astype(np.float32)
        canvas = np.clip(canvas.astype(np.float32) + noise, 0, 255).astype(np.uint8)
    if rng.random() < cfg.jpeg_p:
        canvas = _jpeg(canvas, int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1)))
    return canvas


def _recut(canvas: np.ndarray, box: tuple[float, float, float, float], rng: np.random.Generator,
           offset_px: float, scale_err: float) -> np.ndarray:
    """Cut ``box`` (x, y, w, h) with a detector's error: a few pixels of offset and a few % of size."""
    x, y, w, h = box
    sw = 1.0 + rng.uniform(-scale_err, scale_err)
    sh = 1.0 + rng.uniform(-scale_err, scale_err)
    nw, nh = max(4.0, w * sw), max(4.0, h * sh)
    nx = x + (w - nw) / 2 + rng.uniform(-offset_px, offset_px)
    ny = y + (h - nh) / 2 + rng.uniform(-offset_px, offset_px)
    H, W = canvas.shape[:2]
    x0 = int(round(min(max(nx, 0.0), W - 4)))
    y0 = int(round(min(max(ny, 0.0), H - 4)))
    x1 = int(round(min(max(nx + nw, x0 + 4.0), W)))
    y1 = int(round(min(max(ny + nh, y0 + 4.0), H)))
    return canvas[y0:y1, x0:x1]


def synth_crop(framed: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """One screenshot crop of a framed 64x49 icon: slot scaling, surroundings, capture, bbox error.

    Returns the crop at its screenshot size (uint8 RGB); feed it to icon_tensor/icon_batch.
    """
    s = float(np.exp(rng.uniform(np.log(cfg.scale[0]), np.log(cfg.scale[1]))))
    h = max(12, int(round(ICON_H * s)))
    w = max(9, int(round(h * rng.uniform(*cfg.aspect))))
    slot = _resize_exact(framed, w, h)
    pad = max(3, int(np.ceil(cfg.pad_frac * h)))
    # the panel around a slot: a dark UI colour, sometimes a lighter cell edge line
    bg = rng.integers(0, 70, size=3).astype(np.uint8)
    canvas = np.empty((h + 2 * pad, w + 2 * pad, 3), np.uint8)
    canvas[:] = bg
    if rng.random() < 0.5:
        edge = rng.integers(40, 160, size=3).astype(np.uint8)
        cv2.rectangle(canvas, (pad - 1, pad - 1), (pad + w, pad + h), edge.tolist(), 1)
    canvas[pad:pad + h, pad:pad + w] = slot
    canvas = _capture(canvas, rng, cfg)
    off = cfg.offset_px * max(1.0, s)  # a bbox error scales (a little) with the screen resolution
    return _recut(canvas, (pad, pad, w, h), rng, off, cfg.bbox_scale_err)


def synth_crops(bank: IconBank, labels: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
                overlays: tuple[np.ndarray, np.ndarray] | None = None) -> list[np.ndarray]:
    """Screenshot crops (variable sizes) of ``bank`` classes ``labels``, one random rarity each."""
    overlays = overlays if overlays is not None else rarity_overlays()
    p = np.asarray(cfg.rarity_weights, np.float64)
    rarity = rng.choice(len(RARITIES), size=len(labels), p=p / p.sum())
    framed = composite_rarity(bank.icons[labels], rarity, overlays)
    return [synth_crop(f, rng, cfg) for f in framed]


def synth_batch(bank: IconBank, labels: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig,
                overlays: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """Model-ready uint8 ``(N, 64, 48, 3)`` crops of ``labels`` (normalise with :func:`normalise_batch`)."""
    crops = synth_crops(bank, labels, rng, cfg, overlays)
    if not crops:
        return np.zeros((0, *TENSOR_SIZE, 3), np.uint8)
    return np.stack([to_model_size(c) for c in crops])


def recut_community(crop: np.ndarray, rng: np.random.Generator, cfg: AugmentConfig) -> np.ndarray:
    """A real stored crop (64x64) re-cut with a small bbox error, at model size (uint8 HWC)."""
    img = as_rgb(crop)
    h, w = img.shape[:2]
    pad = max(2, int(np.ceil(cfg.community_offset_px)) + 1)
    canvas = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return to_model_size(_recut(canvas, (pad, pad, w, h), rng, cfg.community_offset_px, cfg.community_scale_err))


# ----------------------------------------------------------------------------- groups and splits
def stable_unit(key: str, seed: int) -> float:
    """A number in [0, 1) fixed by (key, seed) on every machine (sha256, not Python's salted hash)."""
    digest = hashlib.sha256(f"{seed}\x1f{key}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / float(1 << 64)


def group_split(groups: Sequence[str], val_fraction: float, seed: int) -> np.ndarray:
    """Boolean mask of validation rows: whole groups go to one side, decided by a seeded hash.

    Hashing the group id (not drawing a permutation) keeps a group's side stable when other groups
    come and go between runs, so val accuracy stays comparable from one model version to the next.
    """
    return np.array([stable_unit(str(g), seed) < val_fraction for g in groups], bool)


def near_duplicate_groups(crops: Sequence[np.ndarray], base_groups: Sequence[str] | None = None,
                          max_distance: int = 6) -> list[str]:
    """Group ids that put near-duplicates (pHash Hamming distance <= ``max_distance``) and crops that
    share a base group (e.g. one screenshot) together, via union-find; O(n^2/64) popcounts.
    """
    from warpd.icon_index import crop_phash, hamming

    n = len(crops)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        ri, rj = find(i), find(j)
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)

    if base_groups is not None:
        first: dict[str, int] = {}
        for i, g in enumerate(base_groups):
            union(i, first.setdefault(str(g), i))
    hashes = np.array([crop_phash(c) for c in crops], np.uint64)
    for i in range(n):
        close = np.flatnonzero(hamming(hashes[i + 1:], int(hashes[i])) <= max_distance)
        for j in close:
            union(i, i + 1 + int(j))
    return [f"g{find(i)}" for i in range(n)]


@dataclass
class CommunityCrop:
    """A confirmed real crop: 64x64 RGB, its item name, a group id (screenshot or near-duplicate
    cluster: never split across train/val) and whether it was a hard case (the model had it wrong)."""

    crop: np.ndarray
    label: str
    group: str = ""
    hard: bool = False
    weight: float = 1.0
    extra: dict = field(default_factory=dict)
