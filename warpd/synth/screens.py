"""STO-like screenshots with exact ground truth, for tests and benchmarks.

Why this exists: there are no real screenshots on the build machines, and recognition is judged on
screens drawn by an *independent* renderer built from the same public facts
(``shared/reference/sto-domain.md``). So this renderer follows those facts closely (rows in the
game's order, icons right-justified in the panel, cell width ≈ 0.75 × row height, icon height ≈
0.92 × row height, horizontal pitch ≈ 0.725 × row pitch, two-word labels on two lines,
profession-coloured boff markers, trait rows of 5) and randomises everything the facts leave open:
panel position, padding, label column width, fonts and their sizes, colours, backgrounds,
resolution, aspect ratio and UI scale. A recogniser tuned to one fixed layout fails here.

Entry points: :func:`render_screen` (image + ground-truth dict), :func:`random_options` (a
realistic mix of captures) and :func:`save_sample`. Capture effects live in
:mod:`warpd.synth.effects`, icon art in :mod:`warpd.synth.icons`.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from warpd.slots import (
    GROUND_EQUIPMENT,
    PRIMARY_SPECS,
    SCREEN_TYPES,
    SECONDARY_ONLY_SPECS,
    SLOT_GROUPS,
    SPACE_EQUIPMENT,
    tier_bonus,
)
from warpd.synth import effects
from warpd.synth.icons import apply_rarity, render_icon

# ----------------------------------------------------------------------------- geometry facts
# 56 px icons at 1080p UI scale 1 are 0.92 of the row height, so the row is ~61 px there.
BASE_ROW_HEIGHT_1080 = 61.0
ROW_HEIGHT_JITTER = (0.96, 1.04)
CELL_W_OVER_ROW_H = (0.735, 0.765)  # fact: 0.72..0.78; kept inside so integer rounding stays inside
CELL_W_LIMITS = (0.725, 0.775)
ICON_H_OVER_ROW_H = (0.91, 0.93)  # fact: ≈ 0.92
H_PITCH_OVER_ROW_PITCH = (0.715, 0.735)  # fact: ≈ 0.725
CELL_GAP_OVER_ROW_H = (0.04, 0.11)
TRAIT_W_OVER_H = (0.82, 0.88)  # fact: near-square, 0.55..0.95
BOFF_H_OVER_W = (1.30, 1.36)  # fact: ≈ 1.33
TRAITS_PER_ROW = 5
MIN_ROW_HEIGHT = 22  # below this the cell ratios cannot be kept in integer pixels
FIT_SHRINK = 0.92
UI_SCALE_RANGE = (0.8, 1.2)

# ----------------------------------------------------------------------------- capture mix
RESOLUTIONS: tuple[tuple[int, int, float], ...] = (  # (w, h, weight)
    (1920, 1080, 34), (2560, 1440, 18), (3840, 2160, 6), (1280, 720, 5), (1366, 768, 5), (1600, 900, 4),
    (1920, 1200, 6), (2560, 1600, 3), (1680, 1050, 3), (2560, 1080, 4), (3440, 1440, 6), (5120, 2160, 1),
)
UI_SCALES: tuple[tuple[float, float], ...] = (
    (0.8, 1), (0.85, 1), (0.9, 2), (0.95, 2), (1.0, 10), (1.05, 2), (1.1, 2), (1.15, 1), (1.2, 1),
)
JPEG_SHARE = 0.4
JPEG_QUALITY_RANGE = (60, 95)
LANGUAGES = ("en", "de")
GERMAN_SHARE = 0.08

# ----------------------------------------------------------------------------- content mix
ITEM_SHARE = 0.85  # of usable equipment cells; the rest are empty
TRAIT_ITEM_SHARE = 0.88
RARITY_WEIGHTS = {"Common": 3, "Uncommon": 4, "Rare": 8, "Very Rare": 30, "Ultra Rare": 20, "Epic": 35}
SHIP_TIER_WEIGHTS = {6: 70, 5: 22}  # other cargo tiers share the rest
OTHER_TIER_WEIGHT = 8
ICON_CACHE_SIZE = 4096

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
FONT_FAMILIES: tuple[tuple[str, str], ...] = (
    ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"),
    ("DejaVuSansCondensed.ttf", "DejaVuSansCondensed-Bold.ttf"),
)

RANK_TEXT = {4: "Commander", 3: "Lt. Commander", 2: "Lieutenant", 1: "Ensign"}
# Boff seat marker colours measured on real screens (OpenCV HSV, H 0..179), sto-domain.md.
MARKER_HSV: dict[str, tuple[int, int, int]] = {
    "Tactical": (0, 192, 106), "Engineering": (23, 155, 187), "Science": (108, 180, 150),
    "Universal": (26, 70, 213), "Operations": (26, 70, 213),
}
STRIPE_HSV: dict[str, tuple[int, int, int]] = {
    "Command": (16, 158, 168), "Intelligence": (126, 159, 180), "Temporal": (30, 176, 244),
    "Pilot": (92, 110, 252), "Miracle Worker": (38, 255, 222),
}
SPEC_DISPLAY = {"Command": "Command Officer", "Intelligence": "Intelligence Officer", "Temporal": "Temporal Operative",
                "Miracle Worker": "Miracle Worker", "Pilot": "Pilot", "Constable": "Constable",
                "Commando": "Commando", "Strategist": "Strategist"}
SPEC_DISPLAY_DE = {"Command": "Kommandooffizier", "Intelligence": "Geheimdienstoffizier",
                   "Temporal": "Zeitoperative", "Miracle Worker": "Wunderwirker", "Pilot": "Pilot"}
SPEC_TREE_ROWS = (3, 3, 3, 3, 1)

# Label variants the game (or its versions) print for a row; slots.py holds the default.
LABEL_VARIANTS_EN: dict[str, tuple[tuple[str, ...], ...]] = {
    "Impulse Engines": (("Impulse", "Engines"), ("Impulse",), ("Engines",)),
    "Experimental Weapon": (("Experimental", "Weapon"), ("Experimental",)),
    "Shields": (("Shields",), ("Shield",)),
    "Hangars": (("Hangars",), ("Hangar",)),
}
LABEL_LINES_DE: dict[str, tuple[str, ...]] = {
    "Fore Weapons": ("Bug", "Waffen"), "Aft Weapons": ("Heck", "Waffen"),
    "Experimental Weapon": ("Experimentelle", "Waffe"), "Deflector": ("Deflektor",),
    "Secondary Deflector": ("Sekundärer", "Deflektor"), "Impulse Engines": ("Impuls",), "Warp Core": ("Warp",),
    "Shields": ("Schilde",), "Devices": ("Geräte",), "Universal Consoles": ("Universalkonsolen",),
    "Engineering Consoles": ("Technikkonsolen",), "Science Consoles": ("Wissenschaftskonsolen",),
    "Tactical Consoles": ("Taktikkonsolen",), "Hangars": ("Hangar",),
}
HEADER_VARIANTS_EN: dict[str, tuple[str, ...]] = {
    "Space Reputation": ("Space Reputation", "Space Reputation Traits"),
    "Active Space Rep": ("Active Space Rep", "Active Space Reputation"),
    "Ground Reputation": ("Ground Reputation", "Ground Reputation Traits"),
    "Active Ground Rep": ("Active Ground Rep", "Active Ground Reputation"),
}
HEADERS_DE: dict[str, str] = {
    "Personal Space Traits": "Persönliche Raumeigenschaften", "Starship Traits": "Raumschiffeigenschaften",
    "Space Reputation": "Raumruf", "Personal Ground Traits": "Persönliche Bodeneigenschaften",
    "Ground Reputation": "Boden-Ruf", "Space Stations": "Raumstationen",
    "Standard Away Team": "Standard-Außenteam", "Primary Specialization": "Primärspezialisierung",
    "Secondary Specialization": "Sekundärspezialisierung",
}

SHIP_PREFIX = {"Federation": ("U.S.S.",), "Klingon Empire": ("I.K.S.", "I.K.S."), "Romulan Republic": ("R.R.W.",),
               "Dominion": ("",)}
SHIP_WORDS = (
    "Valiant", "Resolute", "Aurora", "Tempest", "Horizon", "Kestrel", "Solace", "Vigilant", "Endeavour",
    "Meridian", "Artemis", "Halcyon", "Perseverance", "Ardent", "Nightingale", "Caliburn", "Sentinel",
    "Zephyr", "Odyssey", "Wayfarer", "Corvus", "Lyra", "Polaris", "Serenity", "Bastion", "Pathfinder",
    "Tenacity", "Starfall", "Daedalus", "Orion", "Calypso", "Vanguard", "Rhiannon", "Ky'tang", "Qo'noS Fury",
    "Bloodwing", "Dark Talon", "Ha'feh", "Mogh's Fist", "Stormrider", "Nova Ascendant", "Quiet Thunder",
)
STAT_LINES = ("Hull Strength", "Shield Capacity", "Turn Rate", "Impulse Modifier", "Inertia", "Crew",
              "Weapon Power", "Shield Power", "Engine Power", "Auxiliary Power", "Bridge Officer Stations",
              "Critical Chance", "Critical Severity", "Damage Resistance", "Accuracy", "Defense")
WINDOW_TITLES = {"SPACE_EQ": ("Status", "Ship Status", "Ships"), "GROUND_EQ": ("Status", "Character", "Inventory"),
                 "TRAITS": ("Traits", "Character"), "BOFFS": ("Bridge Officers", "Ship Stations", "Ships"),
                 "SPECIALIZATIONS": ("Specializations", "Skills"), "SPACE_MIXED": ("Build", "Status"),
                 "GROUND_MIXED": ("Build", "Status")}
TAB_WORDS = ("Status", "Stats", "Attributes", "Reputation", "Skills", "Traits", "Inventory", "Appearance")
LOREM = ("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore "
         "et dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut "
         "aliquip ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse "
         "cillum dolore eu fugiat nulla pariatur.")
CHAT_LINES = ("[Zone] @Kael: anyone for the Borg TFO?", "[Fleet] @T'Vrel: fleet mark project needs dilithium",
              "[Team] @Rinn: pull the next group", "You received 1,200 Dilithium Ore", "[Trade] WTS Tholian Web",
              "[Zone] @Marra: LF Hive Elite", "Mission accepted: Operation Wolf", "[System] Auto-saved")
UI_WINDOW_TITLES = ("Mail", "Mission Journal", "Duty Officer Assignments", "Fleet Holdings", "Options",
                    "Replicator")
GRID_WINDOW_TITLES = ("Inventory", "Bank", "Exchange", "Account Bank", "Reclaim")

RGB = tuple[int, int, int]


# ============================================================================= options
@dataclass(frozen=True)
class RenderOptions:
    """How a screen is captured: resolution, UI scale, encoder and capture artefacts."""

    width: int = 1920
    height: int = 1080
    ui_scale: float = 1.0
    image_format: str = "png"
    jpeg_quality: int = 90
    brightness: float = 1.0
    gamma: float = 1.0
    hdr_washout: bool = False
    blur: float = 0.0
    cursor: bool = False
    tooltip: bool = False
    language: str = "en"

    def __post_init__(self) -> None:
        if not (320 <= self.width <= 8192 and 240 <= self.height <= 8192):
            raise ValueError(f"resolution {self.width}x{self.height} out of range")
        if not UI_SCALE_RANGE[0] - 1e-9 <= self.ui_scale <= UI_SCALE_RANGE[1] + 1e-9:
            raise ValueError(f"ui_scale {self.ui_scale} outside {UI_SCALE_RANGE}")
        if self.image_format not in ("png", "jpeg"):
            raise ValueError(f"image_format must be 'png' or 'jpeg', not {self.image_format!r}")
        if not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"jpeg_quality {self.jpeg_quality} outside 1..100")
        if self.language not in LANGUAGES:
            raise ValueError(f"language {self.language!r} not one of {LANGUAGES}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RenderOptions":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def _weighted(rng: random.Random, pairs: Sequence[tuple[Any, float]]) -> Any:
    return rng.choices([p[0] for p in pairs], weights=[p[1] for p in pairs])[0]


def random_options(rng: random.Random | int) -> RenderOptions:
    """A realistic capture mix: mostly 1080p/1440p with neutral tone, with ultrawide, 16:10, 4K, JPEG, HDR,
    blur, cursor and tooltip captures mixed in (each at a plausible share)."""
    rng = rng if isinstance(rng, random.Random) else random.Random(rng)
    w, h = _weighted(rng, [((w, h), wt) for w, h, wt in RESOLUTIONS])
    fmt = "jpeg" if rng.random() < JPEG_SHARE else "png"
    return RenderOptions(
        width=w, height=h,
        ui_scale=_weighted(rng, UI_SCALES),
        image_format=fmt,
        jpeg_quality=rng.randint(*JPEG_QUALITY_RANGE),
        brightness=round(rng.uniform(0.8, 1.2), 3) if rng.random() < 0.15 else 1.0,
        gamma=round(rng.uniform(0.8, 1.25), 3) if rng.random() < 0.12 else 1.0,
        hdr_washout=rng.random() < 0.08,
        blur=round(rng.uniform(0.3, 1.1), 2) if rng.random() < 0.12 else 0.0,
        cursor=rng.random() < 0.25,
        tooltip=rng.random() < 0.10,
        language="de" if rng.random() < GERMAN_SHARE else "en",
    )


# ============================================================================= fonts, icons, colours
@functools.lru_cache(maxsize=512)
def font(size: int, bold: bool = False, family: int = 0) -> ImageFont.ImageFont:
    """A cached font: DejaVu when installed (CI has it), else Pillow's scalable default."""
    size = max(6, int(size))
    path = FONT_DIR / FONT_FAMILIES[family % len(FONT_FAMILIES)][int(bold)]
    if path.is_file():
        return ImageFont.truetype(str(path), size)
    return ImageFont.load_default(size=size)


@functools.lru_cache(maxsize=2 * ICON_CACHE_SIZE)
def framed_icon(name: str, kind: str, rarity: str | None) -> Image.Image:
    """The 49x64 icon with its rarity frame, as the game composes it before scaling to the slot."""
    icon = render_icon(name, kind)
    if rarity and kind == "equipment":
        icon = apply_rarity(icon, rarity)
    return icon.convert("RGBA")


@functools.lru_cache(maxsize=ICON_CACHE_SIZE)
def icon_image(name: str, kind: str, rarity: str | None, w: int, h: int) -> Image.Image:
    """The slot's icon at its on-screen size; cached because builds repeat items and sizes."""
    return framed_icon(name, kind, rarity).resize((w, h), Image.Resampling.BILINEAR)


def hsv_to_rgb(hsv: tuple[int, int, int]) -> RGB:
    """OpenCV HSV (H 0..179) to RGB, so the measured marker colours can be drawn as measured."""
    px = cv2.cvtColor(np.uint8([[list(hsv)]]), cv2.COLOR_HSV2RGB)[0, 0]
    return int(px[0]), int(px[1]), int(px[2])


def _jitter_hsv(hsv: tuple[int, int, int], rng: random.Random) -> tuple[int, int, int]:
    h, s, v = hsv
    s2 = max(0, min(255, s + rng.randint(-6, 6)))
    v2 = max(0, min(255, v + rng.randint(-6, 6)))
    return (h + rng.randint(-1, 1)) % 180, s2, v2


def _rand_rgb(rng: random.Random, lo: RGB, hi: RGB) -> RGB:
    return tuple(rng.randint(a, b) for a, b in zip(lo, hi))  # type: ignore[return-value]


# ============================================================================= style and geometry
@dataclass(frozen=True)
class Style:
    """Colours and fonts of one screen, drawn once so all its panels match."""

    family: int
    panel_top: RGB
    panel_bottom: RGB
    panel_alpha: float
    line: RGB
    label: RGB
    header: RGB
    dim_text: RGB
    empty_fill: RGB
    empty_edge: RGB
    locked_fill: RGB
    locked_edge: RGB
    label_align: str
    row_lines: bool

    @classmethod
    def draw(cls, rng: random.Random) -> "Style":
        cyan = rng.random() < 0.7
        return cls(
            family=rng.randrange(len(FONT_FAMILIES)),
            panel_top=_rand_rgb(rng, (8, 14, 30), (22, 34, 60)),
            panel_bottom=_rand_rgb(rng, (1, 3, 8), (8, 12, 26)),
            panel_alpha=rng.uniform(0.82, 0.97),
            line=(_rand_rgb(rng, (50, 140, 190), (100, 210, 245)) if cyan
                  else _rand_rgb(rng, (85, 90, 100), (135, 140, 150))),
            label=_rand_rgb(rng, (175, 190, 205), (225, 235, 248)),
            header=_rand_rgb(rng, (215, 185, 110), (245, 215, 150)) if rng.random() < 0.5
            else _rand_rgb(rng, (140, 200, 230), (200, 240, 255)),
            dim_text=_rand_rgb(rng, (110, 120, 135), (150, 160, 175)),
            empty_fill=_rand_rgb(rng, (6, 8, 12), (16, 20, 30)),
            empty_edge=_rand_rgb(rng, (45, 55, 70), (80, 95, 115)),
            locked_fill=_rand_rgb(rng, (48, 50, 54), (72, 74, 78)),
            locked_edge=_rand_rgb(rng, (100, 100, 104), (140, 140, 146)),
            label_align=rng.choice(("left", "left", "right")),
            row_lines=rng.random() < 0.35,
        )


@dataclass(frozen=True)
class Proportions:
    """The free layout fractions of one screen (relative to the row height), drawn once.

    Drawing them once and deriving pixels from the row height lets the layout be shrunk to fit
    without changing its character.
    """

    cell_w: float
    icon_h: float
    gap: float
    pitch_ratio: float
    trait_aspect: float
    boff_aspect: float
    pad: float
    label_gap: float
    label_extra: float
    label_size: float
    header_size: float
    name_size: float
    type_size: float
    panel_gap: float
    min_cells: int
    window: bool
    window_pad: float
    title_h: float

    @classmethod
    def draw(cls, rng: random.Random) -> "Proportions":
        return cls(
            cell_w=rng.uniform(*CELL_W_OVER_ROW_H), icon_h=rng.uniform(*ICON_H_OVER_ROW_H),
            gap=rng.uniform(*CELL_GAP_OVER_ROW_H), pitch_ratio=rng.uniform(*H_PITCH_OVER_ROW_PITCH),
            trait_aspect=rng.uniform(*TRAIT_W_OVER_H), boff_aspect=rng.uniform(*BOFF_H_OVER_W),
            pad=rng.uniform(0.15, 0.45), label_gap=rng.uniform(0.15, 0.6), label_extra=rng.uniform(0.0, 1.2),
            label_size=rng.uniform(0.2, 0.26), header_size=rng.uniform(0.24, 0.32),
            name_size=rng.uniform(0.3, 0.4), type_size=rng.uniform(0.22, 0.28),
            panel_gap=rng.uniform(0.2, 1.0), min_cells=rng.choice((0, 5, 6, 6)),
            window=rng.random() < 0.75, window_pad=rng.uniform(0.2, 0.6), title_h=rng.uniform(0.45, 0.7),
        )


@dataclass(frozen=True)
class Geometry:
    """Integer pixel geometry of the equipment grid at one row height."""

    row_h: int
    cell_w: int
    cell_h: int
    gap: int
    h_pitch: int
    row_pitch: int

    @classmethod
    def at(cls, p: Proportions, row_h: float) -> "Geometry":
        """Round to pixels while keeping the facts' ratios (cell w/h, pitch ratio) inside their ranges."""
        r = max(MIN_ROW_HEIGHT, int(round(row_h)))
        lo, hi = math.ceil(CELL_W_LIMITS[0] * r), math.floor(CELL_W_LIMITS[1] * r)
        cell_w = min(hi, max(lo, int(round(p.cell_w * r))))
        cell_h = min(r, int(round(p.icon_h * r)))
        gap = max(1, int(round(p.gap * r)))
        h_pitch = cell_w + gap
        row_pitch = max(r + 1, int(round(h_pitch / p.pitch_ratio)))
        return cls(r, cell_w, cell_h, gap, h_pitch, row_pitch)


# ============================================================================= canvas and truth
def _bbox(x: float, y: float, w: float, h: float) -> list[int]:
    return [int(round(x)), int(round(y)), int(round(w)), int(round(h))]


def _union(boxes: Iterable[Sequence[int]]) -> list[int] | None:
    boxes = [b for b in boxes if b is not None]
    if not boxes:
        return None
    x0 = min(b[0] for b in boxes)
    y0 = min(b[1] for b in boxes)
    x1 = max(b[0] + b[2] for b in boxes)
    y1 = max(b[1] + b[3] for b in boxes)
    return [x0, y0, x1 - x0, y1 - y0]


class Canvas:
    """The image being drawn plus the ground truth collected while drawing it."""

    def __init__(self, img: Image.Image, rng: random.Random, style: Style, language: str) -> None:
        self.img = img
        self.draw = ImageDraw.Draw(img)
        self.rng = rng
        self.style = style
        self.language = language
        self.slots: list[dict[str, Any]] = []
        self.labels: list[dict[str, Any]] = []
        self.rows: list[dict[str, Any]] = []
        self.seats: list[dict[str, Any]] = []
        self.nodes: list[dict[str, Any]] = []
        self.panels: list[dict[str, Any]] = []
        self.ship: dict[str, Any] | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.img.size

    def font(self, size: float, bold: bool = False) -> ImageFont.ImageFont:
        return font(int(round(size)), bold, self.style.family)

    def text(self, xy: tuple[float, float], text: str, size: float, fill: RGB, bold: bool = False,
             kind: str | None = "text", **extra: Any) -> list[int]:
        """Draw text with its top-left at ``xy``; record it as a label unless ``kind`` is None."""
        f = self.font(size, bold)
        x, y = int(round(xy[0])), int(round(xy[1]))
        self.draw.text((x, y), text, font=f, fill=fill)
        l, t, r, b = self.draw.textbbox((x, y), text, font=f)
        box = [l, t, max(1, r - l), max(1, b - t)]
        if kind is not None:
            self.labels.append({"text": text, "bbox": box, "kind": kind, **extra})
        return box

    def blend_rect(self, box: Sequence[int], top: RGB, bottom: RGB, alpha: float) -> None:
        """Fill ``box`` (x0, y0, x1, y1) with a vertical gradient over what is there (panels are translucent)."""
        x0, y0, x1, y1 = (int(v) for v in box)
        if x1 <= x0 or y1 <= y0:
            return
        region = np.asarray(self.img.crop((x0, y0, x1, y1)), dtype=np.float32)
        t = np.linspace(0.0, 1.0, y1 - y0, dtype=np.float32)[:, None, None]
        colour = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
        out = region * (1 - alpha) + colour * alpha
        self.img.paste(Image.fromarray(out.astype(np.uint8)), (x0, y0))

    def panel_frame(self, box: Sequence[int], kind: str, environment: str | None) -> int:
        """Draw a translucent panel with thin lines; record it; return its id."""
        s = self.style
        self.blend_rect(box, s.panel_top, s.panel_bottom, s.panel_alpha)
        self.draw.rectangle(tuple(box), outline=s.line, width=1)
        if self.rng.random() < 0.5:  # the game's corner accents
            x0, y0, x1, y1 = box
            k = max(4, (x1 - x0) // 12)
            for pts in (((x0, y0 + k), (x0, y0), (x0 + k, y0)), ((x1 - k, y1), (x1, y1), (x1, y1 - k))):
                self.draw.line(pts, fill=s.line, width=2)
        pid = len(self.panels)
        x0, y0, x1, y1 = box
        self.panels.append({"id": pid, "kind": kind, "environment": environment, "bbox": [x0, y0, x1 - x0, y1 - y0]})
        return pid

    def cell(self, x: int, y: int, w: int, h: int, state: str, icon: Image.Image | None) -> None:
        """Draw one slot: an item icon, an empty dark frame or a greyed locked frame."""
        s = self.style
        if state == "item" and icon is not None:
            self.draw.rectangle((x, y, x + w - 1, y + h - 1), fill=s.empty_fill)
            self.img.paste(icon, (x, y), icon)
        elif state == "locked":
            self.draw.rectangle((x, y, x + w - 1, y + h - 1), fill=s.locked_fill, outline=s.locked_edge)
            cx, cy, u = x + w // 2, y + h // 2, max(2, w // 8)  # a padlock glyph
            self.draw.rectangle((cx - u, cy - u // 2, cx + u, cy + u + u // 2), fill=s.locked_edge)
            self.draw.arc((cx - u + 1, cy - 2 * u, cx + u - 1, cy), 180, 360, fill=s.locked_edge, width=max(1, u // 2))
        else:
            self.draw.rectangle((x, y, x + w - 1, y + h - 1), fill=s.empty_fill, outline=s.empty_edge)

    def add_slot(self, slot: str, index: int, box: list[int], state: str, item: str | None,
                 rarity: str | None, panel: int, **extra: Any) -> None:
        self.slots.append({"slot": slot, "index": index, "bbox": box, "state": state, "item": item,
                           "rarity": rarity, "occluded": False, "panel": panel, **extra})


# ============================================================================= content
@dataclass
class Cell:
    """What one slot holds: state, item key and rarity frame."""

    state: str
    item: str | None = None
    rarity: str | None = None


@dataclass
class Row:
    """One equipment row: canonical slot, cells left to right, and the label lines the game prints."""

    slot: str
    cells: list[Cell]
    label: tuple[str, ...]


@dataclass
class Section:
    """One trait panel (header + rows of 5)."""

    slot: str
    header: str
    kind: str
    cells: list[Cell]


@dataclass
class Seat:
    """One bridge officer station: rank, profession, specialist stripe, abilities."""

    rank: int
    profession: str
    spec: str | None
    cells: list[Cell]
    environment: str


@dataclass
class ShipInfo:
    name: str
    type: str
    tier: str
    counts: dict[str, int]
    boffs: list[tuple[int, str, str | None]]
    faction: str | None


def _rarity_for(catalog: Any, key: str, rng: random.Random) -> str:
    rarity = catalog.item_rarity(key)
    return rarity or _weighted(rng, list(RARITY_WEIGHTS.items()))


_SHIP_POOLS: dict[int, tuple[Any, list[Any], list[float]]] = {}


def _ship_pool(catalog: Any) -> tuple[list[Any], list[float]]:
    """Ships in a stable order with weights that give each cargo tier its share (once per catalogue)."""
    cached = _SHIP_POOLS.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1], cached[2]
    ships = sorted(catalog.ships.values(), key=lambda s: s.name)
    per_tier: dict[int, int] = {}
    for s in ships:
        per_tier[s.tier] = per_tier.get(s.tier, 0) + 1
    weights = [SHIP_TIER_WEIGHTS.get(s.tier, OTHER_TIER_WEIGHT) / per_tier[s.tier] for s in ships]
    if len(_SHIP_POOLS) > 8:
        _SHIP_POOLS.clear()
    _SHIP_POOLS[id(catalog)] = (catalog, ships, weights)
    return ships, weights


def _pick_ship(catalog: Any, rng: random.Random) -> ShipInfo:
    """A real ship at a valid tier (mostly T6/T5, as players fly them)."""
    ships, weights = _ship_pool(catalog)
    ship = rng.choices(ships, weights=weights)[0]
    tier = rng.choice(ship.valid_tiers)
    prefix = rng.choice(SHIP_PREFIX.get(ship.faction or "", ("U.S.S.", "I.K.S.", "R.R.W.", "U.S.S.")))
    name = f"{prefix} {rng.choice(SHIP_WORDS)}".strip()
    if rng.random() < 0.15:
        name += f" {rng.choice(('II', 'A', 'B'))}"
    return ShipInfo(name, ship.name, tier, ship.slot_counts(tier), list(ship.boffs), ship.faction)


def _equipment_cell(catalog: Any, slot: str, rng: random.Random, item_share: float = ITEM_SHARE) -> Cell:
    candidates = catalog.items_for_slot(slot)
    if not candidates or rng.random() >= item_share:
        return Cell("empty")
    key = rng.choice(candidates)
    return Cell("item", key, _rarity_for(catalog, key, rng))


def _label_for(slot: str, language: str, variant: int, singularity: bool) -> tuple[str, ...]:
    """The label the game prints for a row (language and client-version variants)."""
    if language == "de" and slot in LABEL_LINES_DE:
        return ("Singularität",) if (singularity and slot == "Warp Core") else LABEL_LINES_DE[slot]
    if singularity and slot == "Warp Core":
        return ("Singularity", "Core")
    variants = LABEL_VARIANTS_EN.get(slot)
    if variants:
        return variants[variant % len(variants)]
    return SLOT_GROUPS[slot].label_lines or (slot,)


def space_rows(catalog: Any, ship: ShipInfo, rng: random.Random, language: str) -> list[Row]:
    """Rows of the ship's Status tab: only rows the ship has, with exactly its slot counts."""
    variant = rng.randrange(6)
    rows = []
    for group in SPACE_EQUIPMENT:
        n = ship.counts.get(group.name, 0)
        if n <= 0:
            continue
        cells = [_equipment_cell(catalog, group.name, rng) for _ in range(n)]
        singularity = any(c.item and _item_type(catalog, c.item) == "Singularity Engine" for c in cells)
        rows.append(Row(group.name, cells, _label_for(group.name, language, variant, singularity)))
    return rows


def _item_type(catalog: Any, key: str) -> str | None:
    item = getattr(catalog, "items", {}).get(key)
    return getattr(item, "type", None)


def ground_rows(catalog: Any, rng: random.Random, language: str) -> list[Row]:
    """Ground equipment rows; Kit Modules sometimes shows a 7th, locked slot."""
    rows = []
    for group in GROUND_EQUIPMENT:
        n = {"Kit Modules": 6}.get(group.name, group.max_count)
        if group.name == "Kit Modules" and rng.random() < 0.15:
            n = rng.randint(3, 5)  # a low-level character
        cells = [_equipment_cell(catalog, group.name, rng) for _ in range(n)]
        if group.name == "Kit Modules" and rng.random() < 0.3:
            cells.append(Cell("locked"))
        rows.append(Row(group.name, cells, _label_for(group.name, language, 0, False)))
    return rows


def _trait_cells(candidates: Sequence[str], n: int, rng: random.Random) -> list[Cell]:
    """Distinct traits (the game forbids duplicates in a panel), a few slots left empty."""
    picks = rng.sample(list(candidates), min(n, len(candidates)))
    cells = []
    for i in range(n):
        if i < len(picks) and rng.random() < TRAIT_ITEM_SHARE:
            cells.append(Cell("item", picks[i]))
        else:
            cells.append(Cell("empty"))
    return cells


def _header(panel: str, language: str, rng: random.Random) -> str:
    if language == "de" and panel in HEADERS_DE:
        return HEADERS_DE[panel]
    return rng.choice(HEADER_VARIANTS_EN.get(panel, (panel,)))


def trait_sections(catalog: Any, environment: str, rng: random.Random, language: str,
                   ship: ShipInfo | None) -> list[Section]:
    """The trait panels of one environment, with the ship's starship-trait count in space."""
    sections = []
    if environment == "space":
        starship = ship.counts["Starship Traits"] if ship else 5 + tier_bonus(rng.choice(("T6", "T6-X", "T6-X2")))
        plan = [("Personal Space Traits", "trait", 10), ("Starship Traits", "starship_trait", starship),
                ("Space Reputation", "trait", 5), ("Active Space Rep", "trait", 5)]
    else:
        plan = [("Personal Ground Traits", "trait", 10), ("Ground Reputation", "trait", 5),
                ("Active Ground Rep", "trait", 5)]
    for panel, kind, n in plan:
        cells = _trait_cells(catalog.items_for_slot(panel), n, rng)
        if panel == "Personal Space Traits" and rng.random() < 0.4:
            cells.append(Cell("locked"))  # the 11th slot before its unlock
        if panel == "Starship Traits" and n < SLOT_GROUPS[panel].max_count and rng.random() < 0.25:
            cells.extend(Cell("locked") for _ in range(SLOT_GROUPS[panel].max_count - n))
        sections.append(Section(panel, _header(panel, language, rng), kind, cells))
    return sections


def _seat_abilities(catalog: Any, profession: str, spec: str | None, rank: int, environment: str,
                    rng: random.Random, show_locked: bool) -> list[Cell]:
    """Abilities for the seat's rank (Ensign 1 .. Commander 4), spec abilities mixed in."""
    own = list(catalog.items_for_slot(f"Boff {profession}", environment))
    special = list(catalog.items_for_slot(f"Boff {spec}", environment)) if spec else []
    cells: list[Cell] = []
    used: set[str] = set()
    for _ in range(rank):
        pool = special if special and rng.random() < 0.3 else own
        pool = [p for p in pool if p not in used]
        if not pool or rng.random() >= ITEM_SHARE + 0.07:
            cells.append(Cell("empty"))
            continue
        key = rng.choice(pool)
        used.add(key)
        cells.append(Cell("item", key))
    if show_locked:
        cells.extend(Cell("locked") for _ in range(4 - rank))
    return cells


def boff_seats(catalog: Any, environment: str, rng: random.Random, ship: ShipInfo | None) -> list[Seat]:
    """Space seats from the ship's boff list; a ground away team of four."""
    show_locked = rng.random() < 0.6
    seats = []
    if environment == "space":
        layout = ship.boffs if ship and ship.boffs else [
            (4, "Tactical", None), (3, "Engineering", None), (2, "Science", rng.choice((None, "Intelligence"))),
            (2, "Universal", None), (1, "Tactical", None)]
        for rank, prof, spec in layout:
            prof = prof if prof in MARKER_HSV else "Universal"
            spec = spec if spec in STRIPE_HSV else None
            seats.append(Seat(rank, prof, spec, _seat_abilities(catalog, prof, spec, rank, "space", rng, show_locked),
                              "space"))
    else:
        for _ in range(4):
            prof = rng.choice(("Tactical", "Engineering", "Science"))
            spec = rng.choice(("Command", "Intelligence", "Temporal", "Miracle Worker")) if rng.random() < 0.3 else None
            seats.append(Seat(4, prof, spec, _seat_abilities(catalog, prof, spec, 4, "ground", rng, False), "ground"))
    return seats


# ============================================================================= panels
class Panel:
    """A block of UI measured at one geometry: ``w``/``h`` known before drawing at a position."""

    w: int
    h: int

    def draw(self, cv: Canvas, x: int, y: int) -> None:  # pragma: no cover - interface
        raise NotImplementedError


def _text_w(cv: Canvas, text: str, size: float, bold: bool = False) -> int:
    return int(math.ceil(cv.font(size, bold).getlength(text)))


def _text_h(cv: Canvas, size: float, bold: bool = False) -> int:
    l, t, r, b = cv.font(size, bold).getbbox("Ag[")
    return b


class EquipmentPanel(Panel):
    """Rows in the game's order, labels at the left, icons right-justified at the panel's right edge."""

    def __init__(self, cv: Canvas, g: Geometry, p: Proportions, rows: list[Row], environment: str,
                 ship: ShipInfo | None) -> None:
        self.g, self.p, self.rows, self.environment, self.ship = g, p, rows, environment, ship
        r = g.row_h
        self.pad = max(3, int(p.pad * r))
        self.label_size = p.label_size * r
        self.line_h = int(round(self.label_size * 1.18))
        widest = max((_text_w(cv, line, self.label_size) for row in rows for line in row.label), default=0)
        self.label_w = widest + int((p.label_gap + p.label_extra) * r)
        max_cells = max(p.min_cells, max((len(row.cells) for row in rows), default=1))
        self.cells_w = max_cells * g.h_pitch - g.gap
        self.w = 2 * self.pad + self.label_w + self.cells_w
        self.ship_lines: list[list[tuple[str, str]]] = []
        self.band_h = 0
        if ship is not None:
            self._layout_ship_text(cv)
        self.h = 2 * self.pad + self.band_h + len(rows) * g.row_pitch

    def _layout_ship_text(self, cv: Canvas) -> None:
        """Name line, then "Type [Tier]" wrapped like the game: long types wrap, the tier on the second line."""
        assert self.ship is not None
        r, ship = self.g.row_h, self.ship
        self.name_size, self.type_size = self.p.name_size * r, self.p.type_size * r
        avail = self.w - 2 * self.pad
        tier_txt = f"[{ship.tier}]"
        full = f"{ship.type} {tier_txt}"
        force = len(ship.type) > 22 and cv.rng.random() < 0.3
        lines: list[list[tuple[str, str]]]
        if _text_w(cv, full, self.type_size) <= avail and not force:
            lines = [[(ship.type, "type"), (tier_txt, "tier")]]
        elif cv.rng.random() < 0.4 and _text_w(cv, ship.type, self.type_size) <= avail:
            lines = [[(ship.type, "type")], [(tier_txt, "tier")]]
        else:
            lines = self._word_wrap(cv, ship.type.split(), tier_txt, avail, force)
        self.ship_lines = lines
        widest = max(_text_w(cv, " ".join(t for t, _ in line), self.type_size) for line in lines)
        widest = max(widest, _text_w(cv, ship.name, self.name_size, True))
        if widest > avail:  # a narrow panel grows to hold its longest line
            grow = widest - avail
            self.w += grow
            self.label_w += grow
        self.name_h = _text_h(cv, self.name_size, True)
        self.type_line_h = int(_text_h(cv, self.type_size) * 1.15)
        self.band_gap = int(r * cv.rng.uniform(0.15, 0.4))
        self.band_h = self.name_h + int(r * 0.12) + self.type_line_h * len(lines) + self.band_gap

    def _word_wrap(self, cv: Canvas, words: list[str], tier_txt: str, avail: int,
                   force: bool) -> list[list[tuple[str, str]]]:
        """Greedy wrap keeping the tier with the last word(s): "Kardashev ... Science" / "Destroyer [T6-X2]"."""
        tokens = words + [tier_txt]
        if force:  # split so the second line holds the last word or two and the tier
            k = cv.rng.randint(1, min(2, len(words) - 1)) if len(words) > 1 else 0
            groups = [words[:-k], words[-k:] + [tier_txt]] if k else [words, [tier_txt]]
        else:
            groups, current = [], []
            for tok in tokens:
                trial = " ".join(current + [tok])
                if current and _text_w(cv, trial, self.type_size) > avail:
                    groups.append(current)
                    current = [tok]
                else:
                    current.append(tok)
            groups.append(current)
        lines = []
        for group in groups:
            words_part = [t for t in group if t != tier_txt]
            line: list[tuple[str, str]] = []
            if words_part:
                line.append((" ".join(words_part), "type"))
            if tier_txt in group:
                line.append((tier_txt, "tier"))
            lines.append(line)
        return lines

    def draw(self, cv: Canvas, x: int, y: int) -> None:
        g, s = self.g, cv.style
        pid = cv.panel_frame((x, y, x + self.w, y + self.h), "equipment", self.environment)
        top = y + self.pad
        if self.ship is not None:
            self._draw_ship_text(cv, x + self.pad, top)
            cv.draw.line((x + self.pad, top + self.band_h - self.band_gap // 2,
                          x + self.w - self.pad, top + self.band_h - self.band_gap // 2), fill=s.line, width=1)
            top += self.band_h
        right = x + self.w - self.pad
        for i, row in enumerate(self.rows):
            row_top = top + i * g.row_pitch
            cell_y = row_top + (g.row_h - g.cell_h) // 2
            self._draw_label(cv, row, x + self.pad, row_top)
            if s.row_lines and i:
                ly = row_top - (g.row_pitch - g.row_h) // 2 - 1
                cv.draw.line((x + self.pad, ly, right, ly), fill=tuple(v // 2 for v in s.line), width=1)
            n = len(row.cells)
            boxes = []
            for index, c in enumerate(row.cells):
                cx = right - g.cell_w - (n - 1 - index) * g.h_pitch
                icon = icon_image(c.item, "equipment", c.rarity, g.cell_w, g.cell_h) if c.item else None
                cv.cell(cx, cell_y, g.cell_w, g.cell_h, c.state, icon)
                box = [cx, cell_y, g.cell_w, g.cell_h]
                boxes.append(box)
                cv.add_slot(row.slot, index, box, c.state, c.item, c.rarity, pid)
            cv.rows.append({"slot": row.slot, "panel": pid, "bbox": _union(boxes), "row_height": g.row_h,
                            "row_pitch": g.row_pitch, "h_pitch": g.h_pitch, "align": "right", "count": n})

    def _draw_label(self, cv: Canvas, row: Row, x: int, row_top: int) -> None:
        """Label lines centred on the row; two-word labels print on two lines."""
        lines = row.label
        block_h = self.line_h * (len(lines) - 1) + _text_h(cv, self.label_size)
        y = row_top + (self.g.row_h - block_h) / 2
        boxes = []
        for k, line in enumerate(lines):
            lx = x
            if cv.style.label_align == "right":
                lx = x + self.label_w - int(self.p.label_gap * self.g.row_h) - _text_w(cv, line, self.label_size)
            boxes.append({"text": line, "bbox": cv.text((lx, y + k * self.line_h), line, self.label_size,
                                                        cv.style.label, kind=None)})
        cv.labels.append({"text": " ".join(lines), "bbox": _union(b["bbox"] for b in boxes), "kind": "row_label",
                          "slot": row.slot, "lines": boxes})

    def _draw_ship_text(self, cv: Canvas, x: int, y: int) -> None:
        assert self.ship is not None
        ship, s = self.ship, cv.style
        centred = cv.rng.random() < 0.3
        avail = self.w - 2 * self.pad

        def line_x(text_w: int) -> int:
            return x + (avail - text_w) // 2 if centred else x

        name_w = _text_w(cv, ship.name, self.name_size, True)
        name_box = cv.text((line_x(name_w), y), ship.name, self.name_size, (235, 240, 250), bold=True, kind="ship_name")
        ty = y + self.name_h + int(self.g.row_h * 0.12)
        type_boxes, tier_box = [], None
        for line in self.ship_lines:
            text = " ".join(t for t, _ in line)
            lx = line_x(_text_w(cv, text, self.type_size))
            cursor = lx
            for part, role in line:
                box = cv.text((cursor, ty), part, self.type_size, s.header if role == "tier" else s.label,
                              kind="ship_" + role)
                if role == "type":
                    type_boxes.append(box)
                else:
                    tier_box = box
                cursor += cv.font(self.type_size).getlength(part + " ")
            ty += self.type_line_h
        cv.ship = {"name": ship.name, "type": ship.type, "tier": ship.tier, "name_bbox": name_box,
                   "type_bbox": _union(type_boxes), "tier_bbox": tier_box, "type_lines": len(self.ship_lines),
                   "occluded": False}


class TraitPanel(Panel):
    """Trait headers, each followed by rows of 5 near-square icons (reading order = index)."""

    def __init__(self, cv: Canvas, g: Geometry, p: Proportions, sections: list[Section], environment: str) -> None:
        self.g, self.sections, self.environment = g, sections, environment
        r = g.row_h
        self.pad = max(3, int(p.pad * r))
        self.cell_h = g.cell_h
        self.cell_w = max(4, int(round(g.cell_h * p.trait_aspect)))
        self.h_pitch = self.cell_w + g.gap
        self.row_pitch = self.cell_h + max(2, int(round(g.gap * 1.5)))
        self.header_size = p.header_size * r
        self.header_h = int(_text_h(cv, self.header_size, True) * 1.35)
        self.section_gap = int(r * cv.rng.uniform(0.1, 0.35))
        widest = max(_text_w(cv, sec.header, self.header_size, True) for sec in sections)
        self.col_w = max(TRAITS_PER_ROW * self.h_pitch - g.gap, widest)
        self.columns = self._split(cv.rng.random() < 0.35)
        self.w = 2 * self.pad + len(self.columns) * self.col_w + (len(self.columns) - 1) * 2 * self.pad
        self.h = 2 * self.pad + max(sum(self._section_h(s) for s in col) for col in self.columns)

    def _section_h(self, sec: Section) -> int:
        rows = math.ceil(len(sec.cells) / TRAITS_PER_ROW)
        return self.header_h + rows * self.row_pitch + self.section_gap

    def _split(self, two: bool) -> list[list[Section]]:
        if not two or len(self.sections) < 2:
            return [self.sections]
        cut = 2 if len(self.sections) > 3 else 1
        return [self.sections[:cut], self.sections[cut:]]

    def draw(self, cv: Canvas, x: int, y: int) -> None:
        pid = cv.panel_frame((x, y, x + self.w, y + self.h), "traits", self.environment)
        for c, col in enumerate(self.columns):
            cx0 = x + self.pad + c * (self.col_w + 2 * self.pad)
            cy = y + self.pad
            for sec in col:
                cv.text((cx0, cy), sec.header, self.header_size, cv.style.header, bold=True, kind="header",
                        slot=sec.slot)
                cy += self.header_h
                for index, cell in enumerate(sec.cells):
                    r_i, c_i = divmod(index, TRAITS_PER_ROW)
                    bx, by = cx0 + c_i * self.h_pitch, cy + r_i * self.row_pitch
                    icon = icon_image(cell.item, sec.kind, None, self.cell_w, self.cell_h) if cell.item else None
                    cv.cell(bx, by, self.cell_w, self.cell_h, cell.state, icon)
                    cv.add_slot(sec.slot, index, [bx, by, self.cell_w, self.cell_h], cell.state, cell.item, None,
                                pid, row=r_i)
                cy += math.ceil(len(sec.cells) / TRAITS_PER_ROW) * self.row_pitch + self.section_gap


class BoffPanel(Panel):
    """Seats with a profession-coloured marker, ability icons taller than wide; space seats in 3+2 columns."""

    def __init__(self, cv: Canvas, g: Geometry, p: Proportions, seats: list[Seat], environment: str,
                 language: str) -> None:
        self.g, self.seats, self.environment = g, seats, environment
        r = g.row_h
        self.pad = max(3, int(p.pad * r))
        self.cell_h = g.cell_h
        self.cell_w = max(4, int(round(g.cell_h / p.boff_aspect)))
        self.h_pitch = self.cell_w + g.gap
        self.marker_w = max(4, int(round(self.cell_w * cv.rng.uniform(0.22, 0.34))))
        self.marker_gap = max(2, int(round(g.gap * cv.rng.uniform(1.0, 2.0))))
        self.header = _header("Space Stations" if environment == "space" else "Standard Away Team", language, cv.rng)
        self.header_size = p.header_size * r
        self.header_h = int(_text_h(cv, self.header_size, True) * 1.4)
        self.show_seat_text = cv.rng.random() < 0.7
        self.seat_text_size = p.label_size * r * 0.9
        self.seat_text_h = int(_text_h(cv, self.seat_text_size) * 1.2) if self.show_seat_text else 0
        self.seat_gap = max(3, int(r * cv.rng.uniform(0.12, 0.35)))
        self.seat_h = self.seat_text_h + self.cell_h + self.seat_gap
        first = math.ceil(len(seats) / 2) if len(seats) > 2 else len(seats)
        self.columns = [seats[:first], seats[first:]] if seats[first:] else [seats]
        max_cells = max((len(s.cells) for s in seats), default=1)
        seat_texts = ([_text_w(cv, self._seat_text(s), self.seat_text_size) for s in seats]
                      if self.show_seat_text else [0])
        self.col_w = max(self.marker_w + self.marker_gap + max_cells * self.h_pitch - g.gap, max(seat_texts))
        self.col_gap = int(r * cv.rng.uniform(0.3, 0.8))
        self.w = 2 * self.pad + len(self.columns) * self.col_w + (len(self.columns) - 1) * self.col_gap
        self.w = max(self.w, 2 * self.pad + _text_w(cv, self.header, self.header_size, True))
        self.h = 2 * self.pad + self.header_h + max(len(c) for c in self.columns) * self.seat_h

    @staticmethod
    def _seat_text(seat: Seat) -> str:
        text = f"{RANK_TEXT[seat.rank]} {seat.profession}"
        return f"{text} / {seat.spec}" if seat.spec else text

    def draw(self, cv: Canvas, x: int, y: int) -> None:
        pid = cv.panel_frame((x, y, x + self.w, y + self.h), "boffs", self.environment)
        cv.text((x + self.pad, y + self.pad), self.header, self.header_size, cv.style.header, bold=True, kind="header")
        seat_no = 0
        for c, col in enumerate(self.columns):
            sx = x + self.pad + c * (self.col_w + self.col_gap)
            for k, seat in enumerate(col):
                sy = y + self.pad + self.header_h + k * self.seat_h
                self._draw_seat(cv, seat, seat_no, sx, sy, pid)
                seat_no += 1

    def _draw_seat(self, cv: Canvas, seat: Seat, seat_no: int, sx: int, sy: int, pid: int) -> None:
        if self.show_seat_text:
            cv.text((sx, sy), self._seat_text(seat), self.seat_text_size, cv.style.dim_text, kind="seat_label",
                    seat=seat_no)
        cy = sy + self.seat_text_h
        main = hsv_to_rgb(_jitter_hsv(MARKER_HSV[seat.profession], cv.rng))
        cv.draw.rectangle((sx, cy, sx + self.marker_w - 1, cy + self.cell_h - 1), fill=main)
        if seat.spec:
            stripe_w = max(2, self.marker_w // 3)
            stripe = hsv_to_rgb(_jitter_hsv(STRIPE_HSV[seat.spec], cv.rng))
            cv.draw.rectangle((sx + self.marker_w - stripe_w, cy, sx + self.marker_w - 1, cy + self.cell_h - 1),
                              fill=stripe)
        slot = f"Boff {seat.profession}"
        cv.seats.append({"seat": seat_no, "slot": slot, "profession": seat.profession, "spec": seat.spec,
                         "rank": seat.rank, "environment": seat.environment, "panel": pid,
                         "marker_bbox": [sx, cy, self.marker_w, self.cell_h]})
        x0 = sx + self.marker_w + self.marker_gap
        for index, cell in enumerate(seat.cells):
            bx = x0 + index * self.h_pitch
            icon = icon_image(cell.item, "boff", None, self.cell_w, self.cell_h) if cell.item else None
            cv.cell(bx, cy, self.cell_w, self.cell_h, cell.state, icon)
            cv.add_slot(slot, index, [bx, cy, self.cell_w, self.cell_h], cell.state, cell.item, None, pid,
                        seat=seat_no, spec=seat.spec, environment=seat.environment)


class SpecPanel(Panel):
    """Primary and secondary specialization trees: a header with the spec name over a grid of nodes."""

    def __init__(self, cv: Canvas, g: Geometry, p: Proportions, language: str) -> None:
        rng = cv.rng
        self.g, self.language = g, language
        primary = rng.choice(PRIMARY_SPECS)
        secondary = rng.choice([s for s in PRIMARY_SPECS + SECONDARY_ONLY_SPECS if s != primary])
        self.trees = [("Primary Specialization", primary), ("Secondary Specialization", secondary)]
        r = g.row_h
        self.pad = max(3, int(p.pad * r))
        self.node_h = max(8, int(round(r * rng.uniform(0.7, 0.85))))
        self.node_w = max(6, int(round(self.node_h * rng.uniform(0.85, 1.0))))
        self.px = int(self.node_w * rng.uniform(1.35, 1.7))
        self.py = int(self.node_h * rng.uniform(1.25, 1.5))
        self.small = p.label_size * r
        self.big = p.header_size * r * 1.1
        self.head_h = int(_text_h(cv, self.small) * 1.2 + _text_h(cv, self.big, True) * 1.4)
        cols = max(SPEC_TREE_ROWS)
        titles = [max(_text_w(cv, self._title(t), self.small), _text_w(cv, self._name(s), self.big, True))
                  for t, s in self.trees]
        self.tree_w = max((cols - 1) * self.px + self.node_w, *titles)
        self.tree_h = self.head_h + (len(SPEC_TREE_ROWS) - 1) * self.py + self.node_h
        self.stacked = rng.random() < 0.3
        self.tree_gap = int(r * rng.uniform(0.5, 1.2))
        if self.stacked:
            self.w = 2 * self.pad + self.tree_w
            self.h = 2 * self.pad + 2 * self.tree_h + self.tree_gap
        else:
            self.w = 2 * self.pad + 2 * self.tree_w + self.tree_gap
            self.h = 2 * self.pad + self.tree_h
        self.points = [rng.randint(3, len(SPEC_TREE_ROWS) * 3 - 2) for _ in self.trees]

    def _title(self, tree: str) -> str:
        return HEADERS_DE.get(tree, tree) if self.language == "de" else tree

    def _name(self, spec: str) -> str:
        return SPEC_DISPLAY_DE.get(spec, SPEC_DISPLAY[spec]) if self.language == "de" else SPEC_DISPLAY[spec]

    def draw(self, cv: Canvas, x: int, y: int) -> None:
        pid = cv.panel_frame((x, y, x + self.w, y + self.h), "specs", None)
        for k, ((tree, spec), points) in enumerate(zip(self.trees, self.points)):
            tx = x + self.pad + (0 if self.stacked else k * (self.tree_w + self.tree_gap))
            ty = y + self.pad + (k * (self.tree_h + self.tree_gap) if self.stacked else 0)
            cv.text((tx, ty), self._title(tree), self.small, cv.style.dim_text, kind="header")
            name_box = cv.text((tx, ty + int(_text_h(cv, self.small) * 1.2)), self._name(spec), self.big,
                               cv.style.header, bold=True, kind="spec_name")
            cv.add_slot(tree, 0, name_box, "item", spec, None, pid)
            self._draw_tree(cv, tree, spec, points, tx, ty + self.head_h)

    def _draw_tree(self, cv: Canvas, tree: str, spec: str, points: int, tx: int, ty: int) -> None:
        cols = max(SPEC_TREE_ROWS)
        centres = []
        for r_i, count in enumerate(SPEC_TREE_ROWS):
            offset = (cols - count) * self.px // 2
            centres.append([(tx + offset + c * self.px, ty + r_i * self.py) for c in range(count)])
        for upper, lower in zip(centres, centres[1:]):  # connectors first, nodes drawn over them
            for (ux, uy), (lx, ly) in zip(upper, lower * len(upper)):
                cv.draw.line((ux + self.node_w // 2, uy + self.node_h, lx + self.node_w // 2, ly),
                             fill=tuple(v // 2 for v in cv.style.line), width=max(1, self.node_w // 12))
        index = 0
        for row in centres:
            for nx, ny in row:
                bought = index < points
                node = f"{spec} node {index}"
                icon = (icon_image(node, "spec", None, self.node_w, self.node_h) if bought
                        else dimmed_icon(node, "spec", self.node_w, self.node_h))
                cv.cell(nx, ny, self.node_w, self.node_h, "item", icon)
                cv.nodes.append({"tree": tree, "spec": spec, "index": index, "purchased": bought,
                                 "bbox": [nx, ny, self.node_w, self.node_h]})
                index += 1


@functools.lru_cache(maxsize=ICON_CACHE_SIZE)
def dimmed_icon(name: str, kind: str, w: int, h: int) -> Image.Image:
    """An unbought specialization node: desaturated and dark, cached like the bright one."""
    arr = np.asarray(icon_image(name, kind, None, w, h)).copy()
    rgb = arr[..., :3].astype(np.float32)
    grey = rgb.mean(axis=2, keepdims=True)
    arr[..., :3] = (0.35 * (0.5 * rgb + 0.5 * grey)).astype(np.uint8)
    return Image.fromarray(arr, "RGBA")


class StatsPanel(Panel):
    """Clutter beside the equipment: a ship/character outline and stat lines (text that is not a slot)."""

    def __init__(self, cv: Canvas, g: Geometry, p: Proportions, environment: str) -> None:
        rng = cv.rng
        self.environment = environment
        r = g.row_h
        self.pad = max(3, int(p.pad * r))
        self.size = p.label_size * r
        self.lines = [(name, f"{rng.randint(1, 99999):,}" if rng.random() < 0.6 else f"{rng.uniform(0, 60):.1f}%")
                      for name in rng.sample(STAT_LINES, rng.randint(5, 10))]
        self.line_h = int(_text_h(cv, self.size) * 1.5)
        self.text_w = max(_text_w(cv, f"{a}   {b}", self.size) for a, b in self.lines)
        self.art_h = int(r * rng.uniform(2.5, 5.0))
        self.w = 2 * self.pad + max(self.text_w, int(self.art_h * 1.6))
        self.h = 2 * self.pad + self.art_h + self.pad + len(self.lines) * self.line_h

    def draw(self, cv: Canvas, x: int, y: int) -> None:
        cv.panel_frame((x, y, x + self.w, y + self.h), "stats", self.environment)
        ax0, ay0 = x + self.pad, y + self.pad
        aw, ah = self.w - 2 * self.pad, self.art_h
        shade = (70, 80, 95)
        if self.environment == "space":  # a ship outline: saucer and hull
            cv.draw.ellipse((ax0 + aw * 0.05, ay0 + ah * 0.15, ax0 + aw * 0.55, ay0 + ah * 0.6), outline=shade, width=2)
            cv.draw.polygon([(ax0 + aw * 0.45, ay0 + ah * 0.45), (ax0 + aw * 0.95, ay0 + ah * 0.55),
                             (ax0 + aw * 0.95, ay0 + ah * 0.8), (ax0 + aw * 0.4, ay0 + ah * 0.7)], outline=shade)
        else:  # a standing figure
            cx = ax0 + aw / 2
            cv.draw.ellipse((cx - ah * 0.08, ay0, cx + ah * 0.08, ay0 + ah * 0.16), outline=shade, width=2)
            cv.draw.rectangle((cx - ah * 0.12, ay0 + ah * 0.18, cx + ah * 0.12, ay0 + ah * 0.98),
                              outline=shade, width=2)
        ty = ay0 + ah + self.pad
        for name, value in self.lines:
            cv.text((ax0, ty), name, self.size, cv.style.dim_text)
            vw = _text_w(cv, value, self.size)
            cv.text((x + self.w - self.pad - vw, ty), value, self.size, cv.style.label)
            ty += self.line_h


# ============================================================================= composition
@dataclass
class Content:
    """Everything a build screen shows, chosen before any geometry (so shrinking to fit keeps it)."""

    rows: list[Row] | None = None
    environment: str = "space"
    ship: ShipInfo | None = None
    sections: list[Section] | None = None
    seats: list[Seat] | None = None
    specs: bool = False
    stats: bool = False
    order: list[str] = field(default_factory=list)


def choose_content(screen_type: str, catalog: Any, rng: random.Random, language: str) -> Content:
    """What each build screen type holds (ships, items, traits, seats), independent of layout."""
    ground = screen_type == "GROUND_EQ" or screen_type == "GROUND_MIXED"
    if screen_type in ("TRAITS", "BOFFS"):
        ground = rng.random() < 0.35
    env = "ground" if ground else "space"
    c = Content(environment=env)
    ship = _pick_ship(catalog, rng) if env == "space" else None
    if screen_type in ("SPACE_EQ", "SPACE_MIXED"):
        c.ship = ship
        c.rows = space_rows(catalog, ship, rng, language)  # type: ignore[arg-type]
    elif screen_type in ("GROUND_EQ", "GROUND_MIXED"):
        c.rows = ground_rows(catalog, rng, language)
    if screen_type in ("TRAITS", "SPACE_MIXED", "GROUND_MIXED"):
        c.sections = trait_sections(catalog, env, rng, language, ship)
    if screen_type in ("BOFFS", "SPACE_MIXED", "GROUND_MIXED"):
        c.seats = boff_seats(catalog, env, rng, ship)
    c.specs = screen_type == "SPECIALIZATIONS" or (screen_type.endswith("MIXED") and rng.random() < 0.5)
    c.stats = screen_type in ("SPACE_EQ", "GROUND_EQ") and rng.random() < 0.5
    order = [k for k, on in (("traits", c.sections), ("boffs", c.seats)) if on]
    rng.shuffle(order)
    c.order = (["equipment"] if c.rows else []) + order + (["specs"] if c.specs else [])
    if c.stats:
        c.order.insert(rng.randint(0, 1), "stats")
    return c


def build_panels(cv: Canvas, content: Content, g: Geometry, p: Proportions, language: str) -> list[Panel]:
    """Measure every panel of the screen at geometry ``g`` (deterministic: same rng state, same panels)."""
    panels: list[Panel] = []
    for kind in content.order:
        if kind == "equipment":
            panels.append(EquipmentPanel(cv, g, p, content.rows or [], content.environment, content.ship))
        elif kind == "traits":
            panels.append(TraitPanel(cv, g, p, content.sections or [], content.environment))
        elif kind == "boffs":
            panels.append(BoffPanel(cv, g, p, content.seats or [], content.environment, language))
        elif kind == "specs":
            panels.append(SpecPanel(cv, g, p, language))
        elif kind == "stats":
            panels.append(StatsPanel(cv, g, p, content.environment))
    return panels


@dataclass
class Arrangement:
    """Panels side by side inside an optional game window, at one geometry."""

    panels: list[Panel]
    geometry: Geometry
    w: int
    h: int
    gap: int
    window_pad: int
    title_h: int
    offsets: list[int]  # vertical offset of each panel inside the row


def arrange(cv: Canvas, content: Content, p: Proportions, row_h: float, language: str,
            rng_state: object) -> Arrangement:
    """Lay the panels out at ``row_h``, restoring the rng first so every attempt lays out alike."""
    cv.rng.setstate(rng_state)  # type: ignore[arg-type]
    g = Geometry.at(p, row_h)
    panels = build_panels(cv, content, g, p, language)
    gap = max(4, int(p.panel_gap * g.row_h))
    wpad = int(p.window_pad * g.row_h) if p.window else 0
    title_h = int(p.title_h * g.row_h) if p.window else 0
    inner_h = max(pn.h for pn in panels)
    offsets = [cv.rng.randint(0, max(0, (inner_h - pn.h) // 3)) if pn.h < inner_h else 0 for pn in panels]
    inner_w = sum(pn.w for pn in panels) + gap * (len(panels) - 1)
    inner_h = max(pn.h + off for pn, off in zip(panels, offsets))
    return Arrangement(panels, g, inner_w + 2 * wpad, inner_h + 2 * wpad + title_h, gap, wpad, title_h, offsets)


def fit_arrangement(cv: Canvas, content: Content, p: Proportions, row_h: float, language: str,
                    margin: int) -> Arrangement:
    """Shrink the UI until the panels fit the image; drop optional panels if even the minimum is too big.

    The game does the same in effect: a player at a small resolution and large UI scale sees a
    smaller effective scale (or windows off screen, which nobody screenshots as a build).
    """
    W, H = cv.size
    state = cv.rng.getstate()
    while True:
        r = row_h
        while True:
            arr = arrange(cv, content, p, r, language, state)
            if arr.w <= W - 2 * margin and arr.h <= H - 2 * margin:
                return arr
            if arr.geometry.row_h <= MIN_ROW_HEIGHT:
                break
            r = max(MIN_ROW_HEIGHT, r * FIT_SHRINK)
        droppable = [k for k in ("stats", "specs", "boffs", "traits") if k in content.order and len(content.order) > 1]
        if not droppable:  # only below the resolutions STO runs at; never emit truth outside the image
            raise ValueError(f"a {content.order[0]} panel does not fit {W}x{H} even at the minimum UI size")
        content.order.remove(droppable[0])


def draw_window(cv: Canvas, arr: Arrangement, x: int, y: int, screen_type: str) -> None:
    """The game window around the panels: title bar and tabs (more text that is not a slot)."""
    s, rng = cv.style, cv.rng
    box = (x, y, x + arr.w, y + arr.h)
    cv.blend_rect(box, tuple(max(0, v - 4) for v in s.panel_top), (0, 0, 4), min(0.97, s.panel_alpha + 0.05))
    cv.draw.rectangle(box, outline=s.line, width=max(1, arr.geometry.row_h // 30))
    th = arr.title_h
    cv.blend_rect((x + 1, y + 1, x + arr.w - 1, y + th), (30, 45, 70), (12, 18, 30), 0.9)
    size = th * 0.5
    title = rng.choice(WINDOW_TITLES.get(screen_type, ("Status",)))
    tx = x + arr.window_pad
    cv.text((tx, y + (th - _text_h(cv, size, True)) / 2), title, size, s.label, bold=True, kind="window_title")
    tab_x = tx + _text_w(cv, title, size, True) + th
    for tab in rng.sample(TAB_WORDS, rng.randint(0, 4)):
        w = _text_w(cv, tab, size * 0.8)
        if tab_x + w + th > x + arr.w - th:
            break
        cv.text((tab_x, y + (th - _text_h(cv, size * 0.8)) / 2), tab, size * 0.8, s.dim_text, kind="tab")
        cv.draw.line((tab_x + w + th // 4, y + th // 4, tab_x + w + th // 4, y + th - th // 4), fill=s.line)
        tab_x += w + th // 2
    cx = x + arr.w - th // 2  # the close button
    cv.draw.line((cx - th // 6, y + th // 3, cx + th // 6, y + 2 * th // 3), fill=s.label, width=2)
    cv.draw.line((cx - th // 6, y + 2 * th // 3, cx + th // 6, y + th // 3), fill=s.label, width=2)


# ============================================================================= backgrounds and UNKNOWN scenes
BACKGROUND_DOWNSAMPLE = 4  # smooth backdrops are computed at 1/4 size and upscaled (cheap at 4K)


def _noise(w: int, h: int, cell: int, nprng: np.random.Generator) -> np.ndarray:
    """Smooth low-frequency noise in 0..1, drawn small and upscaled."""
    small = nprng.random((max(2, h // cell + 2), max(2, w // cell + 2), 3), dtype=np.float32)
    big = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    smooth = cv2.GaussianBlur(big, (0, 0), sigmaX=cell * 0.6)  # no blocky interpolation seams
    lo, hi = float(smooth.min()), float(smooth.max())
    return (smooth - lo) / max(1e-6, hi - lo)


def _gradient(w: int, h: int, top: RGB, bottom: RGB) -> np.ndarray:
    t = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
    col = np.asarray(top, np.float32) * (1 - t) + np.asarray(bottom, np.float32) * t
    return np.broadcast_to(col, (h, w, 3)).copy()


def _upscale(small: np.ndarray, w: int, h: int) -> np.ndarray:
    return cv2.resize(np.clip(small, 0, 255).astype(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)


def space_background(w: int, h: int, rng: random.Random) -> np.ndarray:
    """Deep space: gradient, nebula haze and stars."""
    nprng = np.random.default_rng(rng.getrandbits(32))
    sw, sh = max(2, w // BACKGROUND_DOWNSAMPLE), max(2, h // BACKGROUND_DOWNSAMPLE)
    small = _gradient(sw, sh, _rand_rgb(rng, (2, 2, 8), (14, 12, 34)), _rand_rgb(rng, (0, 0, 2), (8, 10, 22)))
    tint = np.array(_rand_rgb(rng, (10, 0, 20), (90, 50, 110)), np.float32) / 255.0
    haze = _noise(sw, sh, max(8, sw // 12), nprng)
    small += (np.clip(haze - 0.45, 0, 1) ** 1.5) * tint * rng.uniform(60, 220)
    arr = _upscale(small, w, h)
    n_stars = int(w * h / rng.uniform(900, 2500))
    ys, xs = nprng.integers(0, h, n_stars), nprng.integers(0, w, n_stars)
    arr[ys, xs] = nprng.integers(80, 256, (n_stars, 1), dtype=np.uint8)
    return arr


def ground_background(w: int, h: int, rng: random.Random) -> np.ndarray:
    """An away-mission scene: sky over terrain."""
    nprng = np.random.default_rng(rng.getrandbits(32))
    sw, sh = max(2, w // BACKGROUND_DOWNSAMPLE), max(4, h // BACKGROUND_DOWNSAMPLE)
    horizon = int(sh * rng.uniform(0.35, 0.6))
    small = np.empty((sh, sw, 3), np.float32)
    small[:horizon] = _gradient(sw, horizon, _rand_rgb(rng, (20, 30, 50), (90, 120, 170)),
                                _rand_rgb(rng, (80, 70, 60), (200, 170, 140)))
    small[horizon:] = np.asarray(_rand_rgb(rng, (30, 30, 20), (110, 90, 60)), np.float32)
    small[horizon:] *= 0.6 + 0.6 * _noise(sw, sh - horizon, max(4, sw // 40), nprng)
    return _upscale(small, w, h)


def dark_background(w: int, h: int, rng: random.Random) -> np.ndarray:
    """A plain dark backdrop (UI over a dark scene or a loading screen)."""
    nprng = np.random.default_rng(rng.getrandbits(32))
    sw, sh = max(2, w // BACKGROUND_DOWNSAMPLE), max(2, h // BACKGROUND_DOWNSAMPLE)
    small = _gradient(sw, sh, _rand_rgb(rng, (4, 8, 18), (20, 28, 50)), _rand_rgb(rng, (0, 0, 0), (6, 8, 16)))
    small += (_noise(sw, sh, max(8, sw // 16), nprng) - 0.5) * rng.uniform(4, 16)
    return _upscale(small, w, h)


def build_screen_background(w: int, h: int, rng: random.Random) -> Image.Image:
    """What lies behind a build window: a dimmed scene or a dark backdrop."""
    choice = rng.random()
    if choice < 0.4:
        arr = dark_background(w, h, rng)
    else:
        arr = space_background(w, h, rng) if choice < 0.8 else ground_background(w, h, rng)
        arr = cv2.convertScaleAbs(arr, alpha=rng.uniform(0.35, 0.8))
    img = Image.fromarray(arr)
    if choice >= 0.4:
        _scene_objects(img, rng, space=choice < 0.8)
    return img


def _scene_objects(img: Image.Image, rng: random.Random, space: bool) -> None:
    """Planets and ship silhouettes, or structures, drawn with shading."""
    W, H = img.size
    draw = ImageDraw.Draw(img)
    if space and rng.random() < 0.6:  # a planet with a lit limb
        r = int(min(W, H) * rng.uniform(0.15, 0.5))
        cx, cy = rng.randint(-r // 2, W + r // 2), rng.randint(-r // 2, H + r // 2)
        base = _rand_rgb(rng, (30, 30, 40), (150, 120, 110))
        for k in range(8, 0, -1):
            f = k / 8
            col = tuple(int(v * (0.3 + 0.7 * (1 - f))) for v in base)
            rr = int(r * f)
            off = int(r * (1 - f) * 0.4)
            draw.ellipse((cx - rr - off, cy - rr - off, cx + rr - off, cy + rr - off), fill=col)
    for _ in range(rng.randint(0, 3)):
        x, y = rng.randint(0, W), rng.randint(0, H)
        s = int(H * rng.uniform(0.03, 0.12))
        col = _rand_rgb(rng, (60, 60, 70), (160, 160, 175))
        if space:
            draw.ellipse((x - s, y - s // 3, x + s, y + s // 3), fill=col)
            draw.polygon([(x, y), (x + 2 * s, y + s // 4), (x + 2 * s, y + s // 2), (x, y + s // 3)], fill=col)
        else:
            draw.rectangle((x, y - s * 2, x + s, y + s), fill=col)


def _pool(catalog: Any, what: str) -> list[str]:
    """Real item or ability names for look-alike clutter (inventory grids, the combat tray)."""
    if catalog is None:
        return [f"{what} {i}" for i in range(200)]
    if what == "equipment":
        return sorted(getattr(catalog, "items", {}) or ["equipment"])
    return list(catalog.items_for_slot("Boff Universal")) or ["ability"]


def _ability_tray(cv: Canvas, rng: random.Random, catalog: Any) -> None:
    """The combat tray: rows of small square icons (a look-alike of slot rows, but not a build screen)."""
    W, H = cv.size
    size = int(H * rng.uniform(0.03, 0.045))
    n = rng.randint(8, 12)
    rows = rng.randint(1, 3)
    abilities = _pool(catalog, "boff")
    x0 = (W - n * (size + 3)) // 2
    y0 = H - rows * (size + 3) - int(H * 0.02)
    for r_i in range(rows):
        for c_i in range(n):
            x, y = x0 + c_i * (size + 3), y0 + r_i * (size + 3)
            if rng.random() < 0.8:
                icon = icon_image(rng.choice(abilities), "boff", None, size, size)
                cv.img.paste(icon, (x, y), icon)
            cv.draw.rectangle((x, y, x + size, y + size), outline=(90, 100, 120))


def _hud(cv: Canvas, rng: random.Random, catalog: Any) -> None:
    """Health bars, minimap and chat box of a gameplay screenshot."""
    W, H = cv.size
    u = H / 1080
    x, y = int(20 * u), int(20 * u)
    for colour in ((200, 40, 40), (60, 140, 230), (230, 200, 60)):  # hull, shields, power
        length = int(rng.uniform(150, 300) * u)
        cv.draw.rectangle((x, y, x + int(300 * u), y + int(10 * u)), outline=(90, 90, 100))
        cv.draw.rectangle((x + 1, y + 1, x + length, y + int(10 * u) - 1), fill=colour)
        y += int(16 * u)
    if rng.random() < 0.8:
        r = int(rng.uniform(80, 120) * u)
        cx, cy = W - r - int(20 * u), r + int(20 * u)
        cv.draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(10, 20, 30), outline=(120, 160, 200), width=2)
        for _ in range(rng.randint(3, 12)):
            a, d = rng.uniform(0, 6.28), rng.uniform(0, r * 0.9)
            px, py = cx + d * math.cos(a), cy + d * math.sin(a)
            dot = rng.choice(((220, 60, 60), (60, 220, 90), (240, 240, 80)))
            cv.draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=dot)
    if rng.random() < 0.8:
        cw, ch = int(rng.uniform(380, 560) * u), int(rng.uniform(160, 260) * u)
        bx, by = int(15 * u), H - ch - int(rng.uniform(15, 120) * u)
        cv.blend_rect((bx, by, bx + cw, by + ch), (5, 8, 14), (5, 8, 14), 0.6)
        size = 14 * u
        for k, line in enumerate(rng.sample(CHAT_LINES, min(len(CHAT_LINES), int(ch / (size * 1.5)) - 1))):
            cv.text((bx + 6 * u, by + 6 * u + k * size * 1.5), line, size,
                    rng.choice(((230, 230, 230), (120, 220, 120), (120, 180, 255), (250, 200, 90))))
    if rng.random() < 0.7:
        _ability_tray(cv, rng, catalog)


def _ui_window(cv: Canvas, rng: random.Random, lorem: bool, catalog: Any) -> None:
    """A dark game window that is not a build screen: inventory grid, mail, or lorem-ipsum text."""
    W, H = cv.size
    u = H / 1080
    ww, wh = int(W * rng.uniform(0.3, 0.6)), int(H * rng.uniform(0.4, 0.8))
    x, y = rng.randint(0, W - ww), rng.randint(0, H - wh)
    s = cv.style
    cv.blend_rect((x, y, x + ww, y + wh), s.panel_top, s.panel_bottom, s.panel_alpha)
    cv.draw.rectangle((x, y, x + ww, y + wh), outline=s.line)
    grid = not lorem and rng.random() < 0.6
    title = "Lorem ipsum" if lorem else rng.choice(GRID_WINDOW_TITLES if grid else UI_WINDOW_TITLES)
    cv.text((x + 12 * u, y + 8 * u), title, 20 * u, s.header, bold=True, kind="header")
    top = y + int(45 * u)
    if not grid:
        size = rng.uniform(13, 17) * u
        words, line, ty = LOREM.split(), "", top
        for word in words * 3:
            trial = (line + " " + word).strip()
            if _text_w(cv, trial, size) > ww - 30 * u:
                cv.text((x + 12 * u, ty), line, size, s.label)
                ty += size * 1.4
                line = word
                if ty > y + wh - 3 * size:
                    break
            else:
                line = trial
        return
    cell = int(rng.uniform(40, 56) * u)  # an inventory grid of item icons (tricky: looks like slots)
    names = _pool(catalog, "equipment")
    cols, rows = max(1, (ww - int(24 * u)) // (cell + 4)), max(1, (y + wh - top - int(10 * u)) // (int(cell * 1.2) + 4))
    for r_i in range(rows):
        for c_i in range(cols):
            bx, by = x + int(12 * u) + c_i * (cell + 4), top + r_i * (int(cell * 1.2) + 4)
            item = rng.choice(names)
            rarity = catalog.item_rarity(item) if catalog is not None else None
            icon = icon_image(item, "equipment", rarity, cell, int(cell * 1.2))
            if rng.random() < 0.7:
                cv.img.paste(icon, (bx, by), icon)
            else:
                cv.draw.rectangle((bx, by, bx + cell, by + int(cell * 1.2)), fill=s.empty_fill, outline=s.empty_edge)


def render_unknown(cv: Canvas, rng: random.Random, catalog: Any = None) -> str:
    """A screenshot that is no build screen: gameplay (space or ground) or an unrelated window."""
    W, H = cv.size
    kind = rng.choice(("space", "space", "ground", "ui_window", "lorem"))
    if kind in ("space", "ground"):
        arr = space_background(W, H, rng) if kind == "space" else ground_background(W, H, rng)
        cv.img.paste(Image.fromarray(arr))
        _scene_objects(cv.img, rng, space=kind == "space")
        _hud(cv, rng, catalog)
    else:
        base = space_background(W, H, rng) if rng.random() < 0.5 else dark_background(W, H, rng)
        cv.img.paste(Image.fromarray(cv2.convertScaleAbs(base, alpha=rng.uniform(0.4, 1.0))))
        _ui_window(cv, rng, lorem=kind == "lorem", catalog=catalog)
    return kind


# ============================================================================= main entry
def _seed_rng(screen_type: str, seed: int, options: RenderOptions) -> random.Random:
    """One deterministic stream per (type, seed, options): str seeds hash with SHA-512, not PYTHONHASHSEED."""
    return random.Random(f"warpd-synth:{screen_type}:{seed}:{json.dumps(options.to_dict(), sort_keys=True)}")


def render_screen(screen_type: str, seed: int, catalog: Any,
                  options: RenderOptions | None = None) -> tuple[Image.Image, dict[str, Any]]:
    """Render one STO-like screenshot of ``screen_type`` and its ground truth.

    Deterministic for (type, seed, options). Coordinates in the truth are pixels of the returned
    image, top-left origin, boxes as [x, y, w, h].
    """
    if screen_type not in SCREEN_TYPES:
        raise ValueError(f"unknown screen type {screen_type!r}; expected one of {SCREEN_TYPES}")
    options = options or RenderOptions()
    rng = _seed_rng(screen_type, seed, options)
    W, H = options.width, options.height
    style = Style.draw(rng)
    scene = None
    if screen_type == "UNKNOWN":
        cv = Canvas(Image.new("RGB", (W, H)), rng, style, options.language)
        scene = render_unknown(cv, rng, catalog)
        effective_scale = options.ui_scale
        row_h = None
    else:
        cv = Canvas(build_screen_background(W, H, rng), rng, style, options.language)
        content = choose_content(screen_type, catalog, rng, options.language)
        p = Proportions.draw(rng)
        target = BASE_ROW_HEIGHT_1080 * (H / 1080.0) * options.ui_scale * rng.uniform(*ROW_HEIGHT_JITTER)
        margin = max(2, int(min(W, H) * rng.uniform(0.005, 0.03)))
        arr = fit_arrangement(cv, content, p, target, options.language, margin)
        x = rng.randint(margin, max(margin, W - arr.w - margin))
        y = rng.randint(margin, max(margin, H - arr.h - margin))
        if p.window:
            draw_window(cv, arr, x, y, screen_type)
        px, py = x + arr.window_pad, y + arr.window_pad + arr.title_h
        for panel, off in zip(arr.panels, arr.offsets):
            panel.draw(cv, px, py + off)
            px += panel.w + arr.gap
        row_h = arr.geometry.row_h
        effective_scale = row_h / (BASE_ROW_HEIGHT_1080 * H / 1080.0)
    occluders = _overlays(cv, options, rng)
    _mark_occluded(cv, occluders)
    img, encoded = effects.apply_capture(cv.img, options.brightness, options.gamma, options.hdr_washout,
                                         options.blur, options.image_format, options.jpeg_quality, rng)
    if encoded is not None:
        img.info["warpd_encoded"] = encoded
    truth = {
        "screen_type": screen_type, "width": W, "height": H, "seed": seed, "options": options.to_dict(),
        "ship": cv.ship, "slots": cv.slots, "labels": cv.labels,
        "rows": cv.rows, "seats": cv.seats, "nodes": cv.nodes, "panels": cv.panels, "occluders": occluders,
        "row_height": row_h, "effective_ui_scale": round(effective_scale, 4), "language": options.language,
        "scene": scene,
    }
    return img, truth


def _overlays(cv: Canvas, options: RenderOptions, rng: random.Random) -> list[dict[str, Any]]:
    """Cursor and tooltip over the panel (mostly over a slot, as when a player hovers an item)."""
    out: list[dict[str, Any]] = []
    if not (options.cursor or options.tooltip):
        return out
    W, H = cv.size
    scale = H / 1080.0 * options.ui_scale
    target = rng.choice(cv.slots) if cv.slots else None
    if target is not None:
        bx, by, bw, bh = target["bbox"]
        tip = (bx + rng.randint(0, max(0, bw - 1)), by + rng.randint(0, max(0, bh - 1)))
    else:
        tip = (rng.randint(0, W - 1), rng.randint(0, H - 1))
    if options.tooltip:
        title = (target or {}).get("item") or "Console - Universal - Lorem Ipsum"
        box = effects.draw_tooltip(cv.img, tip, scale, rng, lambda s, b: cv.font(s, b), title,
                                   (target or {}).get("rarity"))
        out.append({"kind": "tooltip", "bbox": box})
    if options.cursor or options.tooltip:  # a tooltip always comes with the pointer that opened it
        out.append({"kind": "cursor", "bbox": effects.draw_cursor(cv.img, tip, scale, rng)})
    return out


def _mark_occluded(cv: Canvas, occluders: list[dict[str, Any]]) -> None:
    covers = [o["bbox"] for o in occluders]
    if not covers:
        return
    for slot in cv.slots:
        slot["occluded"] = effects.is_occluded(slot["bbox"], covers)
    if cv.ship is not None:
        cv.ship["occluded"] = any(
            effects.is_occluded(cv.ship[k], covers) for k in ("name_bbox", "type_bbox", "tier_bbox") if cv.ship.get(k))


# ============================================================================= saving
def save_sample(img: Image.Image, truth: dict[str, Any], out_dir: str | Path, stem: str,
                options: RenderOptions | None = None) -> tuple[Path, Path]:
    """Write ``<stem>.png`` or ``<stem>.jpg`` and ``<stem>.json``; return both paths.

    A JPEG sample is written from the encoder's own bytes, so the file holds exactly the pixels
    the truth describes (no second, lossier encode).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    fmt = options.image_format if options else truth.get("options", {}).get("image_format", "png")
    if fmt == "jpeg":
        image_path = out / f"{stem}.jpg"
        encoded = img.info.get("warpd_encoded")
        if encoded:
            image_path.write_bytes(encoded)
        else:
            quality = options.jpeg_quality if options else truth.get("options", {}).get("jpeg_quality", 90)
            img.save(image_path, format="JPEG", quality=int(quality))
    else:
        image_path = out / f"{stem}.png"
        img.save(image_path, format="PNG", compress_level=1)
    json_path = out / f"{stem}.json"
    record = dict(truth, image=image_path.name)
    json_path.write_text(json.dumps(record, indent=1, ensure_ascii=False), encoding="utf-8")
    return image_path, json_path


def items_used(truth: dict[str, Any]) -> set[tuple[str, str]]:
    """(item, icon kind) pairs a sample shows, for writing the matching icon library."""
    kinds = {}
    for g in SPACE_EQUIPMENT + GROUND_EQUIPMENT:
        kinds[g.name] = "equipment"
    out = set()
    for slot in truth.get("slots", []):
        if slot.get("state") != "item" or not slot.get("item"):
            continue
        name = slot["slot"]
        if name in kinds:
            kind = "equipment"
        elif name == "Starship Traits":
            kind = "starship_trait"
        elif name.startswith("Boff "):
            kind = "boff"
        elif name.endswith("Specialization"):
            continue
        else:
            kind = "trait"
        out.add((slot["item"], kind))
    return out
