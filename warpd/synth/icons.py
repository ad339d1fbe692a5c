"""Deterministic synthetic STO icons, the game's rarity overlays, and SETS image-cache file names.

Why this exists: the build machines hold no real Star Trek Online icons, yet tests and benchmarks need
an icon library (SETS's image cache: ``<quote_plus(name)>.png``, 49x64) and equipped-item crops. This
module paints one icon per name, always the same for the same name (the seed is sha256 of the name,
never Python's salted ``hash()``), so a library can be regenerated anywhere instead of stored.

Why it is deliberately hard: recognition is judged later on screens drawn by an *independent*
renderer, so icons that are trivially separable would flatter our matcher. Like the real game art,
icons come in families that share most of their pixels:

* the **energy word** (Phaser, Disruptor, Plasma, ...) picks the palette: background tint, glows,
  emitters;
* the **form words** (Beam Array, Dual Heavy Cannons, Torpedo Launcher, Deflector, Console, ...) pick
  the base shape;
* **prefix words** (Advanced, Fleet, Elite, Crafted, Prototype, Terran, ...) each add a fixed badge
  at a fixed place, so a set's items share badges across energies;
* the **remaining words** each add a small glyph chosen by that word's hash;
* the **whole name** seeds a small pose jitter, a faint background pattern and the texture noise, so
  two different names never render identically.

So "Phaser Beam Array", "Advanced Phaser Beam Array" and "Fleet Phaser Beam Array" look alike but
differ in badges; "Phaser Dual Beam Bank" keeps their colour and changes shape. Icons are painted at
2x with anti-aliased OpenCV shapes, shaded with gradients, rim light, outlines, glows and noise, then
area-downsampled, so they look like painted art rather than flat blocks. An icon takes 1-2 ms on one
core (a 3,000-icon library in a few seconds).

``kind`` changes the style: equipment shows an object; traits and starship traits are round emblems;
bridge-officer abilities are a bold symbol on a plate; specializations sit in a diamond frame.
"""

from __future__ import annotations

import colorsys
import hashlib
import re
from collections.abc import Callable, Iterable
from functools import lru_cache
from pathlib import Path
from urllib.parse import quote_plus, unquote_plus

import cv2
import numpy as np
from PIL import Image

ICON_W, ICON_H = 49, 64  # SETS's cached wiki icon size; the overlays have it too
SUPERSAMPLE = 2  # paint at 2x then area-downsample: cheap anti-aliasing of everything at once
_W, _H = ICON_W * SUPERSAMPLE, ICON_H * SUPERSAMPLE
_AA_SHIFT = 4  # OpenCV fractional bits: sub-pixel shape placement
_AA_SCALE = 1 << _AA_SHIFT

KINDS = frozenset({"equipment", "trait", "starship_trait", "boff", "spec"})

OVERLAY_DIR = Path(__file__).resolve().parent.parent / "data" / "overlays"
# normalised rarity (lower case, no spaces/underscores/hyphens) -> vendored overlay file
RARITY_FILES = {
    "common": "common.png",
    "uncommon": "uncommon.png",
    "rare": "rare.png",
    "veryrare": "very_rare.png",
    "ultrarare": "ultra_rare.png",
    "epic": "epic.png",
}

# energy word -> (hue in degrees, saturation): decides an item's main colour
ENERGY_COLOURS: dict[str, tuple[float, float]] = {
    "phaser": (26.0, 0.95),
    "disruptor": (118.0, 0.85),
    "plasma": (84.0, 0.95),
    "polaron": (278.0, 0.80),
    "tetryon": (190.0, 0.90),
    "antiproton": (212.0, 0.45),
    "chroniton": (48.0, 0.90),
    "quantum": (228.0, 0.80),
    "photon": (8.0, 0.90),
    "transphasic": (305.0, 0.75),
    "tricobalt": (350.0, 0.60),
    "proton": (330.0, 0.70),
    "gravimetric": (258.0, 0.65),
    "neutronic": (160.0, 0.75),
    "radiation": (72.0, 0.80),
    "kinetic": (35.0, 0.20),
    "tachyon": (175.0, 0.55),
    "graviton": (245.0, 0.55),
    "ionic": (200.0, 0.60),
    "nanite": (95.0, 0.35),
}

# console profession word -> hue, used when no energy word decides the colour
PROFESSION_HUES: dict[str, float] = {"tactical": 0.0, "engineering": 40.0, "science": 205.0}

# (phrase, shape); the first phrase found wins, so category words (console, hangar, kit module)
# come before the weapon words they may contain, and longer weapon forms before shorter ones
FORM_PHRASES: tuple[tuple[str, str], ...] = (
    ("console", "console"),
    ("hangar", "hangar"),
    ("kit module", "kit_module"),
    ("kit", "kit"),
    ("device", "device"),
    ("personal shield", "personal_shield"),
    ("omni directional beam array", "omni_beam"),
    ("dual heavy cannons", "dual_heavy_cannons"),
    ("dual heavy cannon", "dual_heavy_cannons"),
    ("dual beam bank", "dual_beam_bank"),
    ("quad cannons", "quad_cannons"),
    ("dual cannons", "dual_cannons"),
    ("cutting beam", "cutting_beam"),
    ("beam array", "beam_array"),
    ("torpedo launcher", "torpedo"),
    ("mine launcher", "mine"),
    ("turret", "turret"),
    ("cannons", "dual_cannons"),
    ("cannon", "cannon"),
    ("torpedo", "torpedo"),
    ("torpedoes", "torpedo"),
    ("mines", "mine"),
    ("mine", "mine"),
    ("secondary deflector", "secondary_deflector"),
    ("deflector", "deflector"),
    ("impulse engine", "impulse"),
    ("impulse engines", "impulse"),
    ("impulse", "impulse"),
    ("singularity core", "singularity"),
    ("singularity engine", "singularity"),
    ("singularity", "singularity"),
    ("warp core", "warp_core"),
    ("warp engine", "warp_core"),
    ("shield array", "shield"),
    ("shields", "shield"),
    ("shield", "shield"),
    ("ev suit", "ev_suit"),
    ("environmental suit", "ev_suit"),
    ("armor", "armor"),
    ("minigun", "minigun"),
    ("pulsewave", "pulsewave"),
    ("rifle", "rifle"),
    ("carbine", "rifle"),
    ("autocarbine", "rifle"),
    ("pistol", "pistol"),
    ("pistols", "pistol"),
    ("assault", "assault_gun"),
    ("pack", "crate"),
    ("package", "crate"),
    ("box", "crate"),
    ("lock box", "crate"),
)
# shapes for equipment names without a form word, picked by the head noun's hash
GENERIC_SHAPES = ("gem", "orb", "crystals", "canister", "crate")

# prefix word -> badge; each badge has its own place so stacked prefixes stay readable
PREFIX_BADGES: dict[str, str] = {
    "advanced": "chevrons",
    "fleet": "fleet_delta",
    "elite": "star",
    "crafted": "gear",
    "prototype": "hazard",
    "terran": "terran",
    "temporal": "hourglass",
    "defense": "hex_small",
    "experimental": "flask",
    "heavy": "bar_pair",
    "enhanced": "plus",
    "superior": "triangle_up",
}

STOPWORDS = frozenset({"of", "the", "a", "an", "and", "to", "at", "for", "in", "on", "mk", "s"})
MAX_WORD_GLYPHS = 5  # more glyphs than this would bury the base shape; extra middle words share one
# normalised (x, y) places for word glyphs, away from the rarity overlay's striped lower-left corner
GLYPH_ANCHORS: tuple[tuple[float, float], ...] = (
    (0.50, 0.10), (0.85, 0.45), (0.16, 0.40), (0.62, 0.86),
    (0.36, 0.22), (0.70, 0.66), (0.32, 0.62), (0.86, 0.80),
)
# badge -> anchor; chosen so common prefix combinations ("Advanced Fleet", "Elite Fleet") never overlap
BADGE_ANCHORS: dict[str, tuple[float, float]] = {
    "chevrons": (0.80, 0.14), "fleet_delta": (0.80, 0.84), "star": (0.20, 0.13),
    "gear": (0.50, 0.90), "hazard": (0.50, 0.05), "terran": (0.20, 0.13),
    "hourglass": (0.82, 0.33), "hex_small": (0.84, 0.55), "flask": (0.50, 0.90),
    "bar_pair": (0.17, 0.30), "plus": (0.82, 0.33), "triangle_up": (0.50, 0.90),
}
GLYPH_SHAPES = ("dot", "ring", "diamond", "triangle", "cross", "square", "bars", "arc", "ticks", "bracket")
EMBLEM_SYMBOLS = ("star", "chevron", "diamond", "cross", "crescent", "bolt", "triangle", "eye",
                  "hexagon", "arrow", "rings", "fan")
GRAIN = 2.5 / 255.0  # final per-pixel noise: keeps flat areas from being perfectly flat
JITTER_DEG = 1.5  # per-name pose rotation range: a family shares its art, so keep this small
JITTER_PX = 1.0  # per-name pose shift range, in 2x pixels
BLOTCH = 0.18  # strength of the family's soft background blotches
PATTERN_ALPHA = 0.05  # strength of the faint per-name background pattern
HUE_WOBBLE = 2.0  # degrees of per-name hue shift

_WORD_RE = re.compile(r"[\w']+", re.UNICODE)
_YY, _XX = np.mgrid[0:_H, 0:_W].astype(np.float32)
_XN, _YN = _XX / (_W - 1), _YY / (_H - 1)
_GRAD_DIAG = ((_XN + _YN) * 0.5).astype(np.float32)  # light from the top left, as in the game art
_RADIUS = np.sqrt((_XN - 0.5) ** 2 + ((_YN - 0.5) * _H / _W) ** 2).astype(np.float32)
_K3 = np.ones((3, 3), np.uint8)
_BLOOM = (np.clip(0.55 - _RADIUS, 0.0, 1.0) * 0.35).astype(np.float32)

Colour = np.ndarray  # float32 RGB in 0..1, shape (3, 1, 1) so it broadcasts over planar (3, H, W) images


# --------------------------------------------------------------------------------------------
# seeds, words and families
# --------------------------------------------------------------------------------------------
def _seed(*parts: str) -> int:
    """A 64-bit seed that is the same on every machine and run (unlike ``hash()``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def _rng(*parts: str) -> np.random.Generator:
    """A generator whose stream is fixed by the parts (PCG64 is platform independent)."""
    return np.random.Generator(np.random.PCG64(_seed(*parts)))


def _unit(*parts: str) -> float:
    """A stable pseudo-random number in [0, 1) for the parts."""
    return (_seed(*parts) >> 11) / float(1 << 53)


def _tokens(name: str) -> list[str]:
    """Lower-case words; hyphens and punctuation split words so 'Omni-Directional' matches."""
    return _WORD_RE.findall(name.lower().replace("_", " "))


def _find_form(tokens: list[str]) -> tuple[str | None, set[int]]:
    """The first form phrase present in the words, and the word positions it used."""
    for phrase, shape in FORM_PHRASES:
        words = phrase.split()
        n = len(words)
        for i in range(len(tokens) - n + 1):
            if tokens[i:i + n] == words:
                return shape, set(range(i, i + n))
    return None, set()


def _glyph_words(words: list[str]) -> list[str]:
    """At most MAX_WORD_GLYPHS glyph keys, keeping every word's influence: the first word and the
    last ones (where names usually differ: '... - Space Trait: Precise') stay single, the middle
    words share one glyph."""
    if len(words) <= MAX_WORD_GLYPHS:
        return words
    tail = MAX_WORD_GLYPHS - 2
    return [words[0], " ".join(words[1:-tail])] + words[-tail:]


def _hsv(h_deg: float, s: float, v: float) -> Colour:
    """HSV (hue in degrees) to a float RGB colour."""
    r, g, b = colorsys.hsv_to_rgb((h_deg % 360.0) / 360.0, min(max(s, 0.0), 1.0), min(max(v, 0.0), 1.0))
    return np.array([r, g, b], np.float32).reshape(3, 1, 1)


class _Family:
    """What the words of a name decide: palette, base shape, badges and glyph words."""

    def __init__(self, name: str, kind: str):
        toks = _tokens(name)
        used: set[int] = set()
        self.energy = next((t for t in toks if t in ENERGY_COLOURS), None)
        if self.energy:
            used.add(toks.index(self.energy))
        if kind == "equipment":
            self.shape, form_pos = _find_form(toks)
            used |= form_pos
        else:
            self.shape = None
        profession = next((t for t in toks if t in PROFESSION_HUES or t == "universal"), None)
        if self.shape == "console" and profession:
            used.add(toks.index(profession))
        self.badges: list[str] = []
        rest: list[str] = []
        for i, t in enumerate(toks):
            if i in used or t in STOPWORDS:
                continue
            badge = PREFIX_BADGES.get(t)
            if badge and badge not in self.badges:
                self.badges.append(badge)
            elif not badge:
                rest.append(t)
        # the family word ties look-alikes together when no energy/form word does
        head = name.split(":")[0] if ":" in name else (rest[0] if rest else (toks[0] if toks else ""))
        self.family_word = head.strip().lower()
        if kind == "equipment" and self.shape is None:
            last = rest[-1] if rest else self.family_word
            self.shape = GENERIC_SHAPES[_seed("shape", last) % len(GENERIC_SHAPES)]
        if kind != "equipment":
            self.symbol = EMBLEM_SYMBOLS[_seed("symbol", kind, self.family_word) % len(EMBLEM_SYMBOLS)]
            fam_words = set(_tokens(self.family_word))
            rest = [w for w in rest if w not in fam_words]
        self.words = _glyph_words(list(dict.fromkeys(rest)))
        self.hue, self.sat = self._colour(profession)
        # what look-alikes share: their background blotches are seeded by this
        self.key = f"{self.shape}|{self.energy or self.family_word}"

    def _colour(self, profession: str | None) -> tuple[float, float]:
        """Energy word first, then console profession, then the family word's hash."""
        if self.energy:
            return ENERGY_COLOURS[self.energy]
        if self.shape == "console" and profession in PROFESSION_HUES:
            return PROFESSION_HUES[profession], 0.8
        u = _unit("hue", self.family_word)
        return u * 360.0, 0.55 + 0.4 * _unit("sat", self.family_word)


class _Palette:
    """Colours derived from one hue: energy glow, metal body, dark background."""

    def __init__(self, hue: float, sat: float, rng: np.random.Generator):
        hue = hue + float(rng.uniform(-HUE_WOBBLE, HUE_WOBBLE))  # per-name shade, far below family spacing
        self.hue = hue
        self.energy = _hsv(hue, sat, 1.0)
        self.energy_hot = _hsv(hue, sat * 0.45, 1.0)  # white-hot core of glows
        self.metal = _hsv(hue + 180.0 * (sat < 0.3), 0.10 + 0.06 * sat, 0.60)
        self.metal_dark = _hsv(hue, 0.18, 0.38)
        self.bg_top = _hsv(hue + 8.0, 0.55 * sat + 0.2, 0.26)
        self.bg_bottom = _hsv(hue - 12.0, 0.5, 0.07)


# --------------------------------------------------------------------------------------------
# painter: masks, shading, glows on a 2x float canvas
# --------------------------------------------------------------------------------------------
def _roi(mask: np.ndarray, pad: int) -> tuple[slice, slice] | None:
    """The mask's bounding box grown by pad pixels (clipped to the canvas); None when empty."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return (slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, _H)),
            slice(max(cols[0] - pad, 0), min(cols[-1] + pad + 1, _W)))


class _Painter:
    """A 2x float RGB canvas with shape masks in normalised coordinates and a per-name pose."""

    def __init__(self, rng: np.random.Generator):
        # planar (3, H, W): masks broadcast over the channels with long inner loops (3x faster
        # than HWC with [..., None] broadcasting)
        self.img = np.zeros((3, _H, _W), np.float32)
        a = np.deg2rad(float(rng.uniform(-JITTER_DEG, JITTER_DEG)))
        self._cos, self._sin = float(np.cos(a)), float(np.sin(a))
        self._dx, self._dy = (float(v) for v in rng.uniform(-JITTER_PX, JITTER_PX, 2))
        self.posed = True

    # geometry -------------------------------------------------------------------------------
    def px(self, pts: Iterable[tuple[float, float]]) -> np.ndarray:
        """Normalised points to fixed-point pixel coordinates, through the pose when it is on."""
        p = np.asarray(list(pts), np.float32).reshape(-1, 2)
        x = (p[:, 0] - 0.5) * _W
        y = (p[:, 1] - 0.5) * _H
        if self.posed:
            x, y = x * self._cos - y * self._sin + self._dx, x * self._sin + y * self._cos + self._dy
        out = np.stack([x + _W / 2.0, y + _H / 2.0], 1)
        return np.round(out * _AA_SCALE).astype(np.int32)

    def poly(self, pts: Iterable[tuple[float, float]]) -> np.ndarray:
        """Anti-aliased filled polygon mask (float 0..1)."""
        m = np.zeros((_H, _W), np.uint8)
        cv2.fillPoly(m, [self.px(pts)], 255, cv2.LINE_AA, _AA_SHIFT)
        return m.astype(np.float32) / 255.0

    def ellipse(self, c: tuple[float, float], r: tuple[float, float], angle: float = 0.0,
                thickness: float = -1) -> np.ndarray:
        """Anti-aliased ellipse mask; radii are in fractions of the icon width (round stays round)."""
        m = np.zeros((_H, _W), np.uint8)
        centre = tuple(int(v) for v in self.px([c])[0])
        axes = (int(r[0] * _W * _AA_SCALE), int(r[1] * _W * _AA_SCALE))
        ang = angle + (np.rad2deg(np.arctan2(self._sin, self._cos)) if self.posed else 0.0)
        th = -1 if thickness < 0 else max(1, int(round(thickness * _W)))
        cv2.ellipse(m, centre, axes, float(ang), 0, 360, 255, th, cv2.LINE_AA, _AA_SHIFT)
        return m.astype(np.float32) / 255.0

    def line(self, p0: tuple[float, float], p1: tuple[float, float], width: float) -> np.ndarray:
        """Anti-aliased thick line mask; width in fractions of the icon width."""
        m = np.zeros((_H, _W), np.uint8)
        a, b = self.px([p0, p1])
        cv2.line(m, tuple(int(v) for v in a), tuple(int(v) for v in b), 255,
                 max(1, int(round(width * _W))), cv2.LINE_AA, _AA_SHIFT)
        return m.astype(np.float32) / 255.0

    def bar(self, p0: tuple[float, float], p1: tuple[float, float], width: float) -> np.ndarray:
        """A straight strip with square ends (a barrel, an array), as a polygon."""
        (x0, y0), (x1, y1) = p0, p1
        dx, dy = (x1 - x0) * _W, (y1 - y0) * _H
        n = max(np.hypot(dx, dy), 1e-6)
        ox, oy = -dy / n * width / 2.0, dx / n * width / 2.0 * _W / _H
        return self.poly([(x0 + ox, y0 + oy), (x1 + ox, y1 + oy), (x1 - ox, y1 - oy), (x0 - ox, y0 - oy)])

    # painting -------------------------------------------------------------------------------
    # Every operation works on the mask's bounding box only: most parts are small, and this keeps
    # an icon at 1-2 ms.
    def fill(self, mask: np.ndarray, colour: Colour, alpha: float = 1.0) -> None:
        """Paint a flat colour through a mask."""
        roi = _roi(mask, 0)
        if roi is None:
            return
        m = mask[roi] * alpha
        img = self.img[:, roi[0], roi[1]]
        img += m * (colour - img)

    def body(self, mask: np.ndarray, colour: Colour, rim: float = 0.35, outline: float = 0.75) -> None:
        """Paint a solid part: diagonal gradient, dark outline, bright top-left rim light."""
        roi = _roi(mask, 5)
        if roi is None:
            return
        mk = mask[roi]
        img = self.img[:, roi[0], roi[1]]
        if outline:
            edge = cv2.dilate(mk, _K3, iterations=2) - mk
            img *= 1.0 - outline * edge
        shade = colour * 1.35 - (colour * 0.9) * _GRAD_DIAG[roi]
        img += mk * (shade - img)
        if rim:
            lit = mk - np.roll(mk, (3, 3), (0, 1))
            np.clip(lit, 0.0, 1.0, out=lit)
            img += lit * rim

    def darken_around(self, mask: np.ndarray, strength: float, width: int) -> None:
        """A dark halo just outside a mask, so small marks read on any background."""
        roi = _roi(mask, width + 1)
        if roi is None:
            return
        mk = mask[roi]
        edge = cv2.dilate(mk, _K3, iterations=width) - mk
        self.img[:, roi[0], roi[1]] *= 1.0 - strength * edge

    def glow(self, mask: np.ndarray, colour: Colour, sigma: float = 5.0, gain: float = 1.0) -> None:
        """Add light around a mask (screen-like additive blend), as emitters and bolts glow."""
        roi = _roi(mask, int(3 * sigma) + 1)
        if roi is None:
            return
        g = cv2.GaussianBlur(mask[roi], (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
        self.img[:, roi[0], roi[1]] += (g * gain) * colour

    def background(self, pal: _Palette, family_rng: np.random.Generator, rng: np.random.Generator,
                   pattern: str) -> None:
        """Dark vertical gradient, a central bloom, the family's soft blotches, a faint per-name pattern."""
        img = self.img
        np.multiply(_YN, pal.bg_bottom - pal.bg_top, out=img)
        img += pal.bg_top
        img += _BLOOM * pal.energy
        blot = cv2.resize(family_rng.random((5, 4), dtype=np.float32) * BLOTCH + (1.0 - BLOTCH / 2), (_W, _H),
                          interpolation=cv2.INTER_CUBIC)
        img *= blot
        if pattern != "none":
            self.fill(_pattern_mask(pattern, rng), pal.energy_hot, PATTERN_ALPHA)

    def finish(self, rng: np.random.Generator) -> Image.Image:
        """Downsample, add grain and return an opaque 49x64 RGBA image."""
        small = cv2.resize(np.ascontiguousarray(self.img.transpose(1, 2, 0)), (ICON_W, ICON_H),
                           interpolation=cv2.INTER_AREA)
        small += rng.normal(0.0, GRAIN, small.shape).astype(np.float32)
        rgb = np.clip(small * 255.0 + 0.5, 0, 255).astype(np.uint8)
        rgba = np.dstack([rgb, np.full((ICON_H, ICON_W), 255, np.uint8)])
        return Image.fromarray(rgba, "RGBA")


def _pattern_mask(pattern: str, rng: np.random.Generator) -> np.ndarray:
    """A faint full-icon pattern (scan lines, grid, rays, dots): a texture that varies per name."""
    phase = float(rng.uniform(0, 2 * np.pi))
    period = float(rng.uniform(7.0, 12.0))
    if pattern == "lines":
        v = np.sin((_XX + _YY) * (2 * np.pi / period) + phase)
    elif pattern == "grid":
        v = np.maximum(np.sin(_XX * (2 * np.pi / period) + phase), np.sin(_YY * (2 * np.pi / period)))
    elif pattern == "rays":
        ang = np.arctan2(_YY - _H / 2, _XX - _W / 2)
        v = np.sin(ang * int(rng.integers(5, 11)) + phase)
    else:  # dots
        v = np.sin(_XX * (2 * np.pi / period) + phase) * np.sin(_YY * (2 * np.pi / period))
    return np.clip(v * 3.0 - 1.5, 0.0, 1.0).astype(np.float32)


PATTERNS = ("none", "lines", "grid", "rays", "dots")


def _regular_polygon(n: int, r: float, start: float,
                     c: tuple[float, float] = (0.5, 0.5)) -> list[tuple[float, float]]:
    """Corners of a regular n-gon of radius r (fraction of the width), round on the portrait canvas."""
    angles = start + np.arange(n) * (2 * np.pi / n)
    return [(c[0] + r * float(np.cos(a)), c[1] + r * _W / _H * float(np.sin(a))) for a in angles]


# --------------------------------------------------------------------------------------------
# equipment base shapes (normalised coordinates: x across 49 px, y down 64 px)
# --------------------------------------------------------------------------------------------
def _emitter(p: _Painter, pal: _Palette, p0, p1, width: float = 0.05) -> None:
    """A glowing energy strip: the part of a weapon that shows its energy type."""
    m = p.line(p0, p1, width)
    p.glow(m, pal.energy, 5.0, 0.6)
    p.fill(m, pal.energy)
    p.fill(p.line(p0, p1, width * 0.35), pal.energy_hot)


def _shape_beam_array(p: _Painter, pal: _Palette) -> None:
    """One long slanted array with an emitter strip and a short beam."""
    p.body(p.bar((0.12, 0.78), (0.86, 0.30), 0.20), pal.metal * 0.8)
    _emitter(p, pal, (0.18, 0.72), (0.80, 0.32))
    p.glow(p.line((0.80, 0.32), (0.98, 0.08), 0.03), pal.energy, 3.0, 1.2)


def _shape_dual_beam_bank(p: _Painter, pal: _Palette) -> None:
    """Two parallel arrays: same colour family as the beam array, a different silhouette."""
    for off in (-0.12, 0.12):
        p.body(p.bar((0.12, 0.72 + off), (0.86, 0.36 + off), 0.14), pal.metal * 0.8)
        _emitter(p, pal, (0.18, 0.69 + off), (0.80, 0.39 + off), 0.04)


def _shape_omni_beam(p: _Painter, pal: _Palette) -> None:
    """A ring array around a hub (fires in every direction)."""
    p.body(p.ellipse((0.5, 0.52), (0.40, 0.24), -20, 0.13), pal.metal)
    ring = p.ellipse((0.5, 0.52), (0.36, 0.20), -20, 0.04)
    p.glow(ring, pal.energy, 5.0, 1.0)
    p.fill(ring, pal.energy_hot)
    p.body(p.ellipse((0.5, 0.52), (0.12, 0.12)), pal.metal_dark)


def _barrels(p: _Painter, pal: _Palette, n: int, width: float, spacing: float) -> None:
    """n parallel cannon barrels with muzzle bolts, pointing to the upper right."""
    offsets = [(i - (n - 1) / 2.0) * spacing for i in range(n)]
    for off in offsets:
        p.body(p.bar((0.28 + off, 0.74 + off * 0.7), (0.74 + off, 0.26 + off * 0.7), width), pal.metal)
    for off in offsets:
        bolt = p.ellipse((0.80 + off, 0.19 + off * 0.7), (0.07, 0.045), -46)
        p.glow(bolt, pal.energy, 4.0, 1.3)
        p.fill(bolt, pal.energy_hot)


def _breech(p: _Painter, pal: _Palette, size: float) -> None:
    """The block the barrels sit in."""
    p.body(p.poly([(0.10, 0.78 - size), (0.10 + size, 0.66 - size * 0.3), (0.30 + size * 0.5, 0.92),
                   (0.14, 0.96)]), pal.metal_dark * 1.3)


def _shape_cannon(p: _Painter, pal: _Palette) -> None:
    """A single barrel."""
    _barrels(p, pal, 1, 0.13, 0.0)
    _breech(p, pal, 0.18)


def _shape_dual_cannons(p: _Painter, pal: _Palette) -> None:
    """Two slim barrels."""
    _barrels(p, pal, 2, 0.10, 0.13)
    _breech(p, pal, 0.22)


def _shape_dual_heavy_cannons(p: _Painter, pal: _Palette) -> None:
    """Two thick barrels on a big breech with fins."""
    _barrels(p, pal, 2, 0.16, 0.17)
    _breech(p, pal, 0.30)
    p.body(p.poly([(0.05, 0.55), (0.22, 0.50), (0.16, 0.66)]), pal.metal)


def _shape_quad_cannons(p: _Painter, pal: _Palette) -> None:
    """Four thin barrels."""
    _barrels(p, pal, 4, 0.07, 0.09)
    _breech(p, pal, 0.26)


def _shape_turret(p: _Painter, pal: _Palette) -> None:
    """A dome on a base plate with one upright barrel."""
    p.body(p.bar((0.5, 0.62), (0.62, 0.18), 0.10), pal.metal)
    p.body(p.ellipse((0.5, 0.70), (0.32, 0.22)), pal.metal)
    p.body(p.poly([(0.08, 0.80), (0.92, 0.80), (0.85, 0.92), (0.15, 0.92)]), pal.metal_dark * 1.2)
    bolt = p.ellipse((0.64, 0.12), (0.06, 0.06))
    p.glow(bolt, pal.energy, 4.0, 1.4)
    p.fill(bolt, pal.energy_hot)


def _shape_torpedo(p: _Painter, pal: _Palette) -> None:
    """A launcher tube and a big glowing warhead (torpedoes are mostly light)."""
    p.body(p.bar((0.12, 0.88), (0.40, 0.60), 0.22), pal.metal)
    p.glow(p.line((0.30, 0.70), (0.62, 0.36), 0.05), pal.energy, 4.0, 0.8)
    core = p.ellipse((0.64, 0.34), (0.16, 0.16))
    p.glow(core, pal.energy, 9.0, 1.6)
    p.fill(core, pal.energy)
    p.fill(p.ellipse((0.62, 0.32), (0.08, 0.08)), pal.energy_hot)


def _shape_mine(p: _Painter, pal: _Palette) -> None:
    """A spiked sphere with a glowing core."""
    spikes = []
    for k in range(8):
        a = k * np.pi / 4
        c, s = np.cos(a), np.sin(a) * _W / _H
        spikes.append(p.poly([(0.5 + 0.42 * c, 0.5 + 0.42 * s), (0.5 + 0.2 * np.cos(a + 0.35),
                               0.5 + 0.2 * np.sin(a + 0.35) * _W / _H),
                              (0.5 + 0.2 * np.cos(a - 0.35), 0.5 + 0.2 * np.sin(a - 0.35) * _W / _H)]))
    p.body(np.clip(sum(spikes), 0, 1), pal.metal_dark * 1.3)
    p.body(p.ellipse((0.5, 0.5), (0.25, 0.25)), pal.metal)
    core = p.ellipse((0.5, 0.5), (0.10, 0.10))
    p.glow(core, pal.energy, 5.0, 1.5)
    p.fill(core, pal.energy_hot)


def _shape_cutting_beam(p: _Painter, pal: _Palette) -> None:
    """A wedge blade with a cutting edge."""
    p.body(p.poly([(0.15, 0.85), (0.88, 0.18), (0.70, 0.62)]), pal.metal)
    _emitter(p, pal, (0.20, 0.82), (0.86, 0.21), 0.04)


def _shape_deflector(p: _Painter, pal: _Palette) -> None:
    """A dish: concentric rings around a glowing centre, three struts."""
    for a in (90, 210, 330):
        r = np.deg2rad(a)
        p.body(p.line((0.5, 0.5), (0.5 + 0.45 * np.cos(r), 0.5 + 0.35 * np.sin(r)), 0.06), pal.metal_dark * 1.4)
    p.body(p.ellipse((0.5, 0.5), (0.40, 0.40)), pal.metal)
    p.fill(p.ellipse((0.5, 0.5), (0.30, 0.30), 0, 0.03), pal.metal_dark)
    core = p.ellipse((0.5, 0.5), (0.17, 0.17))
    p.glow(core, pal.energy, 7.0, 1.4)
    p.fill(core, pal.energy)
    p.fill(p.ellipse((0.48, 0.48), (0.07, 0.07)), pal.energy_hot)


def _shape_secondary_deflector(p: _Painter, pal: _Palette) -> None:
    """A smaller dish on a rectangular mount."""
    p.body(p.poly([(0.18, 0.62), (0.82, 0.62), (0.82, 0.90), (0.18, 0.90)]), pal.metal_dark * 1.3)
    p.body(p.ellipse((0.5, 0.42), (0.30, 0.30)), pal.metal)
    core = p.ellipse((0.5, 0.42), (0.12, 0.12))
    p.glow(core, pal.energy, 5.0, 1.3)
    p.fill(core, pal.energy_hot)


def _shape_impulse(p: _Painter, pal: _Palette) -> None:
    """An engine block with two glowing exhausts."""
    p.body(p.poly([(0.10, 0.30), (0.90, 0.30), (0.82, 0.72), (0.18, 0.72)]), pal.metal)
    for x in (0.32, 0.68):
        ex = p.ellipse((x, 0.64), (0.13, 0.07))
        p.glow(ex, pal.energy, 6.0, 1.4)
        p.fill(ex, pal.energy_hot)
    p.fill(p.line((0.15, 0.40), (0.85, 0.40), 0.03), pal.metal_dark)


def _shape_warp_core(p: _Painter, pal: _Palette) -> None:
    """A vertical cylinder with glowing rings."""
    p.body(p.poly([(0.30, 0.10), (0.70, 0.10), (0.70, 0.90), (0.30, 0.90)]), pal.metal)
    for y in (0.24, 0.40, 0.56, 0.72):
        ring = p.ellipse((0.5, y), (0.19, 0.04))
        p.glow(ring, pal.energy, 4.0, 0.9)
        p.fill(ring, pal.energy_hot, 0.9)
    p.body(p.ellipse((0.5, 0.10), (0.22, 0.06)), pal.metal_dark * 1.4)


def _shape_singularity(p: _Painter, pal: _Palette) -> None:
    """A dark sphere inside a bright accretion ring."""
    ring = p.ellipse((0.5, 0.5), (0.42, 0.16), -25, 0.07)
    p.glow(ring, pal.energy, 6.0, 1.2)
    p.fill(ring, pal.energy)
    p.body(p.ellipse((0.5, 0.5), (0.22, 0.22)), pal.metal_dark * 0.6, rim=0.5)
    p.glow(p.ellipse((0.5, 0.5), (0.22, 0.22), 0, 0.02), pal.energy_hot, 2.0, 1.0)


def _shape_shield(p: _Painter, pal: _Palette) -> None:
    """A heater shield with an energised inner face."""
    outer = [(0.12, 0.14), (0.88, 0.14), (0.88, 0.50), (0.5, 0.90), (0.12, 0.50)]
    inner = [(0.22, 0.22), (0.78, 0.22), (0.78, 0.48), (0.5, 0.78), (0.22, 0.48)]
    p.body(p.poly(outer), pal.metal)
    face = p.poly(inner)
    p.glow(face, pal.energy, 5.0, 0.6)
    p.fill(face, pal.energy * 0.8)
    p.fill(p.line((0.5, 0.22), (0.5, 0.78), 0.02), pal.energy_hot, 0.7)


def _shape_console(p: _Painter, pal: _Palette) -> None:
    """A panel: header strip in the colour, a screen with a readout, a row of buttons."""
    p.body(p.poly([(0.08, 0.08), (0.92, 0.08), (0.92, 0.92), (0.08, 0.92)]), pal.metal * 0.8, rim=0.25)
    p.fill(p.poly([(0.08, 0.08), (0.92, 0.08), (0.92, 0.20), (0.08, 0.20)]), pal.energy, 0.9)
    p.fill(p.poly([(0.16, 0.28), (0.84, 0.28), (0.84, 0.66), (0.16, 0.66)]), pal.bg_bottom * 0.6 + 0.02)
    p.glow(p.line((0.20, 0.55), (0.80, 0.40), 0.02), pal.energy, 2.0, 1.0)
    for x in (0.22, 0.41, 0.60, 0.79):
        p.body(p.ellipse((x, 0.79), (0.07, 0.05)), pal.energy * 0.7, rim=0.3, outline=0.5)


def _shape_hangar(p: _Painter, pal: _Palette) -> None:
    """A small craft silhouette leaving a lit bay door."""
    bay = p.poly([(0.10, 0.92), (0.90, 0.92), (0.75, 0.66), (0.25, 0.66)])
    p.body(bay, pal.metal_dark * 1.2)
    p.glow(p.poly([(0.28, 0.88), (0.72, 0.88), (0.64, 0.72), (0.36, 0.72)]), pal.energy, 5.0, 0.9)
    p.body(p.poly([(0.5, 0.10), (0.82, 0.56), (0.5, 0.46), (0.18, 0.56)]), pal.metal)
    eng = p.ellipse((0.5, 0.50), (0.07, 0.04))
    p.glow(eng, pal.energy, 3.0, 1.3)


def _shape_kit_module(p: _Painter, pal: _Palette) -> None:
    """A hexagonal chip with circuit traces."""
    p.body(p.poly(_regular_polygon(6, 0.42, np.pi / 6)), pal.metal)
    for y in (0.42, 0.5, 0.58):
        p.glow(p.line((0.28, y), (0.72, y), 0.02), pal.energy, 2.0, 1.0)
    p.fill(p.ellipse((0.5, 0.5), (0.09, 0.09)), pal.energy_hot)


def _shape_kit(p: _Painter, pal: _Palette) -> None:
    """A case with a handle."""
    p.body(p.ellipse((0.5, 0.34), (0.20, 0.12), 0, 0.05), pal.metal_dark * 1.5)
    p.body(p.poly([(0.10, 0.36), (0.90, 0.36), (0.90, 0.84), (0.10, 0.84)]), pal.metal)
    p.fill(p.line((0.10, 0.52), (0.90, 0.52), 0.05), pal.energy, 0.9)


def _shape_device(p: _Painter, pal: _Palette) -> None:
    """A canister with a lit label band."""
    p.body(p.poly([(0.28, 0.18), (0.72, 0.18), (0.72, 0.88), (0.28, 0.88)]), pal.metal)
    p.body(p.poly([(0.38, 0.08), (0.62, 0.08), (0.62, 0.18), (0.38, 0.18)]), pal.metal_dark * 1.4)
    band = p.poly([(0.28, 0.44), (0.72, 0.44), (0.72, 0.60), (0.28, 0.60)])
    p.glow(band, pal.energy, 4.0, 0.8)
    p.fill(band, pal.energy)


def _shape_personal_shield(p: _Painter, pal: _Palette) -> None:
    """A round shield emblem with arc segments."""
    p.body(p.ellipse((0.5, 0.5), (0.40, 0.40)), pal.metal)
    arc = p.ellipse((0.5, 0.5), (0.28, 0.28), 0, 0.05)
    p.glow(arc, pal.energy, 4.0, 1.0)
    p.fill(arc, pal.energy_hot)


def _shape_armor(p: _Painter, pal: _Palette) -> None:
    """A torso plate."""
    p.body(p.poly([(0.20, 0.16), (0.80, 0.16), (0.92, 0.36), (0.78, 0.44), (0.74, 0.88), (0.26, 0.88),
                   (0.22, 0.44), (0.08, 0.36)]), pal.metal)
    p.glow(p.line((0.5, 0.24), (0.5, 0.80), 0.03), pal.energy, 3.0, 1.0)


def _shape_ev_suit(p: _Painter, pal: _Palette) -> None:
    """A helmet over a suit."""
    p.body(p.poly([(0.16, 0.50), (0.84, 0.50), (0.78, 0.92), (0.22, 0.92)]), pal.metal)
    p.body(p.ellipse((0.5, 0.34), (0.24, 0.24)), pal.metal)
    visor = p.ellipse((0.5, 0.35), (0.15, 0.10))
    p.glow(visor, pal.energy, 4.0, 0.9)
    p.fill(visor, pal.energy)


def _shape_rifle(p: _Painter, pal: _Palette) -> None:
    """A long hand weapon seen from the side, stock and grip, emitter along the barrel."""
    p.body(p.poly([(0.04, 0.40), (0.96, 0.30), (0.96, 0.42), (0.40, 0.50), (0.36, 0.74), (0.22, 0.74),
                   (0.22, 0.52), (0.04, 0.56)]), pal.metal)
    _emitter(p, pal, (0.30, 0.41), (0.92, 0.34), 0.035)


def _shape_pistol(p: _Painter, pal: _Palette) -> None:
    """A short hand weapon with a big grip."""
    p.body(p.poly([(0.14, 0.36), (0.86, 0.30), (0.86, 0.46), (0.46, 0.50), (0.42, 0.82), (0.22, 0.82),
                   (0.26, 0.50), (0.14, 0.50)]), pal.metal)
    _emitter(p, pal, (0.30, 0.39), (0.82, 0.35), 0.04)


def _shape_minigun(p: _Painter, pal: _Palette) -> None:
    """A rotary heavy weapon: a body and three barrels."""
    p.body(p.poly([(0.06, 0.40), (0.50, 0.36), (0.50, 0.60), (0.30, 0.62), (0.26, 0.80), (0.12, 0.80),
                   (0.14, 0.60), (0.06, 0.60)]), pal.metal)
    for dy in (-0.06, 0.0, 0.06):
        p.body(p.bar((0.50, 0.48 + dy), (0.94, 0.46 + dy), 0.05), pal.metal_dark * 1.5, outline=0.4)
    _emitter(p, pal, (0.12, 0.46), (0.44, 0.44), 0.04)


def _shape_pulsewave(p: _Painter, pal: _Palette) -> None:
    """A shotgun-like weapon with a flared muzzle."""
    p.body(p.poly([(0.06, 0.42), (0.70, 0.38), (0.94, 0.28), (0.94, 0.58), (0.70, 0.50), (0.36, 0.54),
                   (0.32, 0.78), (0.18, 0.78), (0.20, 0.54), (0.06, 0.56)]), pal.metal)
    _emitter(p, pal, (0.80, 0.34), (0.80, 0.52), 0.04)


def _shape_assault_gun(p: _Painter, pal: _Palette) -> None:
    """A bulky two-handed weapon with a top emitter housing."""
    p.body(p.poly([(0.04, 0.44), (0.90, 0.38), (0.90, 0.56), (0.44, 0.60), (0.40, 0.82), (0.24, 0.82),
                   (0.24, 0.62), (0.04, 0.62)]), pal.metal)
    p.body(p.poly([(0.30, 0.30), (0.76, 0.27), (0.76, 0.38), (0.30, 0.41)]), pal.metal_dark * 1.4)
    _emitter(p, pal, (0.34, 0.34), (0.72, 0.32), 0.04)


def _shape_crate(p: _Painter, pal: _Palette) -> None:
    """An isometric box."""
    p.body(p.poly([(0.12, 0.34), (0.5, 0.20), (0.88, 0.34), (0.5, 0.48)]), pal.metal * 1.1)
    p.body(p.poly([(0.12, 0.34), (0.5, 0.48), (0.5, 0.88), (0.12, 0.72)]), pal.metal * 0.8)
    p.body(p.poly([(0.5, 0.48), (0.88, 0.34), (0.88, 0.72), (0.5, 0.88)]), pal.metal * 0.6)
    p.glow(p.line((0.5, 0.50), (0.5, 0.86), 0.03), pal.energy, 3.0, 1.0)


def _shape_gem(p: _Painter, pal: _Palette) -> None:
    """A cut crystal."""
    p.body(p.poly([(0.5, 0.10), (0.84, 0.40), (0.5, 0.90), (0.16, 0.40)]), pal.energy * 0.8, rim=0.5)
    p.fill(p.poly([(0.5, 0.10), (0.84, 0.40), (0.5, 0.40)]), pal.energy_hot, 0.4)


def _shape_orb(p: _Painter, pal: _Palette) -> None:
    """A lit sphere."""
    orb = p.ellipse((0.5, 0.5), (0.34, 0.34))
    p.glow(orb, pal.energy, 8.0, 0.8)
    p.body(orb, pal.energy * 0.7, rim=0.5)
    p.fill(p.ellipse((0.40, 0.40), (0.10, 0.08)), pal.energy_hot, 0.8)


def _shape_crystals(p: _Painter, pal: _Palette) -> None:
    """Three crystal shards."""
    for x0, h in ((0.30, 0.40), (0.52, 0.16), (0.72, 0.36)):
        p.body(p.poly([(x0, h), (x0 + 0.10, h + 0.10), (x0 + 0.06, 0.88), (x0 - 0.06, 0.88),
                       (x0 - 0.10, h + 0.10)]), pal.energy * 0.75, rim=0.45)


def _shape_canister(p: _Painter, pal: _Palette) -> None:
    """A squat container with a glowing window."""
    p.body(p.ellipse((0.5, 0.56), (0.36, 0.42)), pal.metal)
    win = p.ellipse((0.5, 0.56), (0.16, 0.16))
    p.glow(win, pal.energy, 5.0, 1.0)
    p.fill(win, pal.energy)


EQUIPMENT_SHAPES: dict[str, Callable[[_Painter, _Palette], None]] = {
    "beam_array": _shape_beam_array, "dual_beam_bank": _shape_dual_beam_bank, "omni_beam": _shape_omni_beam,
    "cannon": _shape_cannon, "dual_cannons": _shape_dual_cannons,
    "dual_heavy_cannons": _shape_dual_heavy_cannons, "quad_cannons": _shape_quad_cannons,
    "turret": _shape_turret, "torpedo": _shape_torpedo, "mine": _shape_mine, "cutting_beam": _shape_cutting_beam,
    "deflector": _shape_deflector, "secondary_deflector": _shape_secondary_deflector, "impulse": _shape_impulse,
    "warp_core": _shape_warp_core, "singularity": _shape_singularity, "shield": _shape_shield,
    "console": _shape_console, "hangar": _shape_hangar, "kit_module": _shape_kit_module, "kit": _shape_kit,
    "device": _shape_device, "personal_shield": _shape_personal_shield, "armor": _shape_armor,
    "ev_suit": _shape_ev_suit, "rifle": _shape_rifle, "pistol": _shape_pistol, "minigun": _shape_minigun,
    "pulsewave": _shape_pulsewave, "assault_gun": _shape_assault_gun, "crate": _shape_crate, "gem": _shape_gem,
    "orb": _shape_orb,
    "crystals": _shape_crystals, "canister": _shape_canister,
}


# --------------------------------------------------------------------------------------------
# symbols: emblem centres for traits/boffs/specs, and small glyphs/badges for words
# --------------------------------------------------------------------------------------------
def _symbol_mask(p: _Painter, symbol: str, c: tuple[float, float], r: float) -> np.ndarray:
    """A symbol of radius r (fraction of width) centred at c; shared by emblems, glyphs, badges."""
    cx, cy = c
    ry = r * _W / _H  # keep symbols round on the portrait canvas

    def ring_pts(n: int, rad: float, start: float = -np.pi / 2) -> list[tuple[float, float]]:
        return _regular_polygon(n, rad, start, c)

    if symbol in ("dot", "orb"):
        return p.ellipse(c, (r, r))
    if symbol in ("ring", "rings"):
        m = p.ellipse(c, (r, r), 0, max(r * 0.3, 0.02))
        if symbol == "rings":
            m = np.maximum(m, p.ellipse(c, (r * 0.45, r * 0.45), 0, max(r * 0.2, 0.02)))
        return m
    if symbol == "diamond":
        return p.poly([(cx, cy - ry), (cx + r * 0.7, cy), (cx, cy + ry), (cx - r * 0.7, cy)])
    if symbol in ("triangle", "triangle_up"):
        return p.poly(ring_pts(3, r))
    if symbol in ("cross", "plus"):
        return np.maximum(p.line((cx - r, cy), (cx + r, cy), r * 0.45), p.line((cx, cy - ry), (cx, cy + ry), r * 0.45))
    if symbol == "square":
        return p.poly([(cx - r * 0.75, cy - ry * 0.75), (cx + r * 0.75, cy - ry * 0.75),
                       (cx + r * 0.75, cy + ry * 0.75), (cx - r * 0.75, cy + ry * 0.75)])
    if symbol in ("bars", "bar_pair"):
        return np.maximum(p.line((cx - r, cy - ry * 0.4), (cx + r, cy - ry * 0.4), r * 0.35),
                          p.line((cx - r, cy + ry * 0.4), (cx + r, cy + ry * 0.4), r * 0.35))
    if symbol in ("arc", "crescent"):
        return np.clip(p.ellipse(c, (r, r)) - p.ellipse((cx + r * 0.45, cy - ry * 0.2), (r * 0.85, r * 0.85)), 0, 1)
    if symbol == "ticks":
        return np.maximum.reduce([p.line((cx + dx * r, cy - ry), (cx + dx * r, cy + ry), r * 0.25)
                                  for dx in (-0.8, 0.0, 0.8)])
    if symbol == "bracket":
        return np.maximum(p.line((cx - r, cy - ry), (cx + r, cy - ry), r * 0.35),
                          p.line((cx - r, cy - ry), (cx - r, cy + ry), r * 0.35))
    if symbol == "star":
        pts = []
        for k in range(10):
            rad = r if k % 2 == 0 else r * 0.42
            a = -np.pi / 2 + k * np.pi / 5
            pts.append((cx + rad * np.cos(a), cy + rad * _W / _H * np.sin(a)))
        return p.poly(pts)
    if symbol in ("chevron", "chevrons"):
        m = p.poly([(cx - r, cy), (cx, cy - ry * 0.7), (cx + r, cy), (cx + r, cy + ry * 0.35),
                    (cx, cy - ry * 0.35), (cx - r, cy + ry * 0.35)])
        if symbol == "chevrons":
            m = np.maximum(m, p.poly([(cx - r, cy + ry * 0.6), (cx, cy - ry * 0.1), (cx + r, cy + ry * 0.6),
                                      (cx + r, cy + ry * 0.95), (cx, cy + ry * 0.25), (cx - r, cy + ry * 0.95)]))
        return m
    if symbol == "bolt":
        return p.poly([(cx + r * 0.3, cy - ry), (cx - r * 0.6, cy + ry * 0.15), (cx, cy + ry * 0.1),
                       (cx - r * 0.3, cy + ry), (cx + r * 0.6, cy - ry * 0.15), (cx, cy - ry * 0.1)])
    if symbol == "eye":
        return np.clip(p.ellipse(c, (r, r * 0.5)) - p.ellipse(c, (r * 0.25, r * 0.25)) * 0.8, 0, 1)
    if symbol in ("hexagon", "hex_small"):
        return p.poly(ring_pts(6, r, 0.0))
    if symbol == "arrow":
        return p.poly([(cx, cy - ry), (cx + r, cy), (cx + r * 0.35, cy), (cx + r * 0.35, cy + ry),
                       (cx - r * 0.35, cy + ry), (cx - r * 0.35, cy), (cx - r, cy)])
    if symbol == "fan":
        return np.maximum.reduce([p.line(c, (cx + r * np.cos(a), cy + ry * np.sin(a)), r * 0.25)
                                  for a in np.deg2rad([-150, -120, -90, -60, -30])])
    if symbol == "fleet_delta":
        return p.poly([(cx, cy - ry), (cx + r * 0.8, cy + ry), (cx, cy + ry * 0.45), (cx - r * 0.8, cy + ry)])
    if symbol == "gear":
        return np.clip(p.poly(ring_pts(8, r)) + p.ellipse(c, (r * 0.8, r * 0.8))
                       - p.ellipse(c, (r * 0.3, r * 0.3)), 0, 1)
    if symbol == "hazard":
        band = p.poly([(0.05, cy - 0.03), (0.95, cy - 0.03), (0.95, cy + 0.03), (0.05, cy + 0.03)])
        return band * _pattern_stripes()
    if symbol == "terran":
        return np.maximum(p.ellipse(c, (r, r), 0, r * 0.3),
                          p.line((cx, cy - ry * 1.2), (cx, cy + ry * 1.2), r * 0.35))
    if symbol == "hourglass":
        return p.poly([(cx - r * 0.7, cy - ry), (cx + r * 0.7, cy - ry), (cx, cy), (cx + r * 0.7, cy + ry),
                       (cx - r * 0.7, cy + ry), (cx, cy)])
    if symbol == "flask":
        return p.poly([(cx - r * 0.25, cy - ry), (cx + r * 0.25, cy - ry), (cx + r * 0.25, cy - ry * 0.2),
                       (cx + r, cy + ry), (cx - r, cy + ry), (cx - r * 0.25, cy - ry * 0.2)])
    raise ValueError(f"unknown symbol {symbol!r}")


@lru_cache(maxsize=1)
def _pattern_stripes() -> np.ndarray:
    """Diagonal warning stripes, computed once (the 'Prototype' badge)."""
    return (np.sin((_XX + _YY) * (2 * np.pi / 8.0)) > 0).astype(np.float32)


def _draw_badges(p: _Painter, fam: _Family) -> None:
    """Prefix badges: fixed shape, colour and place per prefix, so sets look alike across energies."""
    for badge in fam.badges:
        c = BADGE_ANCHORS[badge]
        hue = _unit("badge-hue", badge) * 360.0
        m = _symbol_mask(p, badge, c, 0.11)
        p.darken_around(m, 0.6, 2)
        p.body(m, _hsv(hue, 0.55, 0.95), rim=0.3, outline=0.0)


def _draw_word_glyphs(p: _Painter, fam: _Family) -> None:
    """One small glyph per remaining word: its shape, colour, size and place follow the word's hash."""
    taken: set[int] = set()
    for word in fam.words:
        s = _seed("glyph", word)
        slot = s % len(GLYPH_ANCHORS)
        while slot in taken and len(taken) < len(GLYPH_ANCHORS):
            slot = (slot + 1) % len(GLYPH_ANCHORS)
        taken.add(slot)
        shape = GLYPH_SHAPES[(s >> 8) % len(GLYPH_SHAPES)]
        colour = _hsv(((s >> 16) % 360), 0.35 + ((s >> 28) % 50) / 100.0, 0.75 + ((s >> 36) % 25) / 100.0)
        size = 0.075 + ((s >> 44) % 5) * 0.012
        m = _symbol_mask(p, shape, GLYPH_ANCHORS[slot], size)
        p.darken_around(m, 0.5, 1)
        p.fill(m, colour, 0.9)
        p.glow(m, colour, 2.5, 0.25)


# --------------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------------
def _paint_equipment(p: _Painter, fam: _Family, pal: _Palette) -> None:
    """The object picked by the form words, drawn in the energy palette."""
    EQUIPMENT_SHAPES[fam.shape](p, pal)


def _paint_emblem(p: _Painter, fam: _Family, pal: _Palette, kind: str) -> None:
    """Traits: round medallion; starship traits: octagon; boff: plate; spec: diamond frame."""
    p.posed = False  # frames sit square in the slot like the game's
    if kind == "trait":
        frame = p.ellipse((0.5, 0.5), (0.46, 0.46))
        inner = p.ellipse((0.5, 0.5), (0.38, 0.38))
    elif kind == "starship_trait":
        frame = p.poly(_regular_polygon(8, 0.47, np.pi / 8))
        inner = p.poly(_regular_polygon(8, 0.39, np.pi / 8))
    elif kind == "boff":
        frame = p.poly([(0.04, 0.04), (0.96, 0.04), (0.96, 0.96), (0.04, 0.96)])
        inner = p.poly([(0.10, 0.09), (0.90, 0.09), (0.90, 0.91), (0.10, 0.91)])
    else:  # spec
        frame = p.poly([(0.5, 0.03), (0.97, 0.5), (0.5, 0.97), (0.03, 0.5)])
        inner = p.poly([(0.5, 0.11), (0.88, 0.5), (0.5, 0.89), (0.12, 0.5)])
    p.body(frame, pal.metal, rim=0.4)
    shade = pal.bg_top * 1.4 * (1.0 - _RADIUS) + pal.bg_bottom
    p.img += inner * (shade - p.img)
    p.posed = True
    sym = _symbol_mask(p, fam.symbol, (0.5, 0.5), 0.30 if kind == "boff" else 0.25)
    p.glow(sym, pal.energy, 5.0, 0.9)
    p.body(sym, pal.energy_hot * 0.9, rim=0.35, outline=0.6)


# --------------------------------------------------------------------------------------------
# public API
# --------------------------------------------------------------------------------------------
def render_icon(name: str, kind: str = "equipment") -> Image.Image:
    """A 49x64 opaque RGBA icon for ``name``; the same name and kind always give the same pixels."""
    if kind not in KINDS:
        raise ValueError(f"unknown icon kind {kind!r}; expected one of {sorted(KINDS)}")
    fam = _Family(name, kind)
    rng = _rng("icon", kind, name)
    pal = _Palette(fam.hue, fam.sat, rng)
    p = _Painter(rng)
    p.background(pal, _rng("family", kind, fam.key), rng, PATTERNS[int(rng.integers(len(PATTERNS)))])
    if kind == "equipment":
        _paint_equipment(p, fam, pal)
    else:
        _paint_emblem(p, fam, pal, kind)
    p.posed = False  # badges and glyphs keep their places: they are what tells look-alikes apart
    _draw_badges(p, fam)
    _draw_word_glyphs(p, fam)
    return p.finish(rng)


def _rarity_key(rarity: str) -> str:
    """'Very Rare', 'very_rare', 'VERY-RARE' -> 'veryrare' (how SETS selects its overlay)."""
    return re.sub(r"[\s_\-]+", "", str(rarity)).lower()


@lru_cache(maxsize=None)
def _overlay(key: str, size: tuple[int, int]) -> Image.Image:
    """The vendored overlay for a rarity key, scaled to size; cached, callers must not mutate it."""
    im = Image.open(OVERLAY_DIR / RARITY_FILES[key]).convert("RGBA")
    if im.size != size:
        im = im.resize(size, Image.Resampling.LANCZOS)
    im.load()
    return im


def apply_rarity(icon: Image.Image, rarity: str) -> Image.Image:
    """The icon as equipped in the game: the rarity's frame composited on top, at the icon's size."""
    key = _rarity_key(rarity)
    if key not in RARITY_FILES:
        raise ValueError(f"unknown rarity {rarity!r}; expected one of Common, Uncommon, Rare, Very Rare, "
                         "Ultra Rare, Epic")
    base = icon.convert("RGBA")  # always a new image: the caller's icon is never modified
    return Image.alpha_composite(base, _overlay(key, base.size))


def icon_file_name(name: str) -> str:
    """SETS image-cache file name: ``quote_plus(name) + '.png'`` (sets-build-format.md 6.2)."""
    return quote_plus(name) + ".png"


def name_from_icon_file(fname: str | Path) -> str:
    """Inverse of :func:`icon_file_name`; accepts a bare file name or a path."""
    stem = Path(fname).name
    if not stem.endswith(".png"):
        raise ValueError(f"not an icon file name: {fname!r}")
    return unquote_plus(stem[:-4])


def write_icon_library(names: Iterable[str], out_dir: Path,
                       kind_of: Callable[[str], str] | None = None) -> int:
    """Write each distinct non-empty name's bare icon (no rarity frame, like SETS's cache of wiki
    icons) as ``out_dir/<quote_plus(name)>.png``; returns how many files were written."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    root = out.resolve()
    written: set[str] = set()
    for name in names:
        if not name or not name.strip() or name in written:
            continue
        path = out / icon_file_name(name)
        if path.resolve().parent != root:  # quote_plus escapes '/', so this only guards regressions
            raise ValueError(f"icon file for {name!r} would land outside {root}")
        kind = kind_of(name) if kind_of else "equipment"
        render_icon(name, kind).save(path, format="PNG")
        written.add(name)
    return len(written)
