"""Capture variations applied to a rendered screen: what happens between the game and the file.

Real screenshots are not clean renders: players capture with HDR on (washed-out, lifted blacks),
with odd brightness/gamma, through scaling that softens edges, and save as JPEG; the mouse cursor
or an item tooltip often sits over the panel. Recognition has to survive all of that, so the
renderer reproduces it here, and records which slots an overlay hid (``occluded``) so that a
benchmark never counts a hidden slot as a recognition error.
"""

from __future__ import annotations

import io
import random
from typing import Callable, Sequence

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

# A cell counts as occluded when at least this fraction of its area lies under an overlay.
OCCLUSION_MIN_FRACTION = 0.02
# HDR captures of SDR content: blacks lifted to roughly this level, contrast and saturation lost.
HDR_BLACK_LIFT = (0.10, 0.22)
HDR_SATURATION = (0.45, 0.75)
HDR_CURVE_EXPONENT = (0.55, 0.8)
# Cursor arrow height and tooltip size at 1080p, scaled with the image height.
CURSOR_HEIGHT_1080 = (22, 34)
TOOLTIP_WIDTH_1080 = (240, 380)
TOOLTIP_LINES = (4, 9)
TOOLTIP_STAT_LINES = (
    "Mk XV", "Account Bound", "+25.3% Critical Severity", "+17.5 All Starship Weapons Training",
    "Value: 2,450 Energy Credits", "Set: Solanae Dyson Technology", "Equip Bonus", "Right click to unequip",
    "+4.2% Critical Chance", "Shield Hitpoints: 14,862", "Cooldown: 3 min", "Character Bound",
    "Unique Equip", "Requires Level 65", "+20% Exotic Damage", "Hull Repair Rate +15",
)
RARITY_TEXT_COLOURS: dict[str, tuple[int, int, int]] = {
    "Common": (230, 230, 230), "Uncommon": (70, 220, 70), "Rare": (80, 150, 255),
    "Very Rare": (190, 90, 255), "Ultra Rare": (255, 190, 60), "Epic": (255, 140, 30),
}

FontFn = Callable[[int, bool], ImageFont.ImageFont]


# ----------------------------------------------------------------------------- tone and blur
def tone_lut(brightness: float, gamma: float, hdr_lift: float = 0.0, hdr_exponent: float = 1.0) -> np.ndarray:
    """One 256-entry lookup table for brightness, gamma and the HDR curve (a LUT costs one pass)."""
    x = np.arange(256, dtype=np.float64) / 255.0
    y = np.clip(x * brightness, 0.0, 1.0) ** (1.0 / max(gamma, 1e-3))
    if hdr_lift > 0.0:
        y = hdr_lift + (1.0 - hdr_lift * 0.6) * y ** hdr_exponent
    return np.clip(np.round(y * 255.0), 0, 255).astype(np.uint8)


def desaturate(arr: np.ndarray, keep: float) -> np.ndarray:
    """Blend towards grey, keeping ``keep`` of the colour (HDR captures look flat and milky)."""
    grey = cv2.cvtColor(arr, cv2.COLOR_RGB2GRAY)
    grey3 = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
    return cv2.addWeighted(arr, keep, grey3, 1.0 - keep, 0.0)


def apply_tone(img: Image.Image, brightness: float, gamma: float, hdr_washout: bool,
               rng: random.Random) -> Image.Image:
    """Brightness, gamma and optional HDR washout; a no-op (same object) when all are neutral."""
    if brightness == 1.0 and gamma == 1.0 and not hdr_washout:
        return img
    lift = rng.uniform(*HDR_BLACK_LIFT) if hdr_washout else 0.0
    exponent = rng.uniform(*HDR_CURVE_EXPONENT) if hdr_washout else 1.0
    arr = cv2.LUT(np.asarray(img), tone_lut(brightness, gamma, lift, exponent))
    if hdr_washout:
        arr = desaturate(arr, rng.uniform(*HDR_SATURATION))
    return Image.fromarray(arr)


def apply_blur(img: Image.Image, sigma: float) -> Image.Image:
    """Gaussian blur (rescaled or streamed captures are soft); sigma 0 leaves the image alone."""
    if sigma <= 0.0:
        return img
    return Image.fromarray(cv2.GaussianBlur(np.asarray(img), (0, 0), sigmaX=sigma))


def jpeg_roundtrip(img: Image.Image, quality: int) -> tuple[Image.Image, bytes]:
    """Encode and decode as JPEG so the returned pixels carry the encoder's artefacts."""
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=int(quality))
    data = buf.getvalue()
    decoded = Image.open(io.BytesIO(data))
    decoded.load()
    return decoded.convert("RGB"), data


# ----------------------------------------------------------------------------- overlays
def cursor_polygon(tip: tuple[int, int], height: int) -> list[tuple[float, float]]:
    """The classic arrow pointer outline, tip first, ``height`` pixels tall."""
    s = height / 20.0
    pts = [(0, 0), (0, 16), (4, 12.5), (7, 19), (9.5, 18), (6.5, 11.5), (12, 11.5)]
    return [(tip[0] + px * s, tip[1] + py * s) for px, py in pts]


def draw_cursor(img: Image.Image, tip: tuple[int, int], scale: float, rng: random.Random) -> list[int]:
    """Draw a mouse pointer with its tip at ``tip``; return its bbox [x, y, w, h] clipped to the image."""
    height = max(12, int(round(rng.uniform(*CURSOR_HEIGHT_1080) * scale)))
    poly = cursor_polygon(tip, height)
    draw = ImageDraw.Draw(img)
    fill = (255, 255, 255) if rng.random() < 0.8 else (235, 215, 150)
    draw.polygon(poly, fill=fill, outline=(0, 0, 0), width=max(1, height // 16))
    xs, ys = [p[0] for p in poly], [p[1] for p in poly]
    return clip_bbox([min(xs) - 1, min(ys) - 1, max(xs) - min(xs) + 3, max(ys) - min(ys) + 3], img.size)


def draw_tooltip(img: Image.Image, anchor: tuple[int, int], scale: float, rng: random.Random,
                 font_fn: FontFn, title: str, rarity: str | None) -> list[int]:
    """Draw an item tooltip box near ``anchor`` (as the game does on hover); return its bbox."""
    width = int(rng.uniform(*TOOLTIP_WIDTH_1080) * scale)
    size = max(9, int(round(15 * scale * rng.uniform(0.9, 1.1))))
    line_h = int(size * 1.35)
    lines = rng.sample(TOOLTIP_STAT_LINES, rng.randint(*TOOLTIP_LINES))
    height = int(line_h * (len(lines) + 1.6)) + size
    W, H = img.size
    x = anchor[0] + int(12 * scale) if rng.random() < 0.7 else anchor[0] - width - int(12 * scale)
    y = anchor[1] + int(8 * scale) if rng.random() < 0.6 else anchor[1] - height // 2
    x = max(0, min(W - width - 1, x))
    y = max(0, min(H - height - 1, y))
    box = (x, y, x + width, y + height)
    region = img.crop(box)
    bg = Image.new("RGB", region.size, (8, 10, 18))
    img.paste(Image.blend(region, bg, rng.uniform(0.85, 0.97)), box[:2])
    draw = ImageDraw.Draw(img)
    draw.rectangle(box, outline=(120, 130, 150), width=max(1, int(scale)))
    pad = max(4, int(8 * scale))
    title_font = font_fn(int(size * 1.15), True)
    draw.text((x + pad, y + pad), title, font=title_font,
              fill=RARITY_TEXT_COLOURS.get(rarity or "", (235, 235, 235)))
    body = font_fn(size, False)
    for i, line in enumerate(lines):
        draw.text((x + pad, y + pad + int(line_h * (i + 1.4))), line, font=body, fill=(200, 205, 215))
    return clip_bbox([x, y, width + 1, height + 1], img.size)


# ----------------------------------------------------------------------------- geometry helpers
def clip_bbox(bbox: Sequence[float], size: tuple[int, int]) -> list[int]:
    """An [x, y, w, h] box rounded to ints and clipped to an image of ``size`` (w, h)."""
    x0 = max(0, int(np.floor(bbox[0])))
    y0 = max(0, int(np.floor(bbox[1])))
    x1 = min(size[0], int(np.ceil(bbox[0] + bbox[2])))
    y1 = min(size[1], int(np.ceil(bbox[1] + bbox[3])))
    return [x0, y0, max(0, x1 - x0), max(0, y1 - y0)]


def overlap_fraction(cell: Sequence[int], cover: Sequence[int]) -> float:
    """Fraction of ``cell``'s area that ``cover`` hides (both [x, y, w, h])."""
    ix = max(0, min(cell[0] + cell[2], cover[0] + cover[2]) - max(cell[0], cover[0]))
    iy = max(0, min(cell[1] + cell[3], cover[1] + cover[3]) - max(cell[1], cover[1]))
    area = max(1, cell[2] * cell[3])
    return (ix * iy) / area


def is_occluded(cell: Sequence[int], covers: Sequence[Sequence[int]],
                min_fraction: float = OCCLUSION_MIN_FRACTION) -> bool:
    """Whether any overlay hides enough of ``cell`` to change what a matcher sees."""
    return any(overlap_fraction(cell, c) >= min_fraction for c in covers)


def apply_capture(img: Image.Image, brightness: float, gamma: float, hdr_washout: bool, blur: float,
                  image_format: str, jpeg_quality: int, rng: random.Random) -> tuple[Image.Image, bytes | None]:
    """The whole capture chain after overlays: tone, blur, then the file encoder (JPEG round trip).

    Returns the final pixels and, for JPEG, the encoded bytes (so a saved file holds exactly
    these pixels instead of a second, lossier encode).
    """
    img = apply_tone(img, brightness, gamma, hdr_washout, rng)
    img = apply_blur(img, blur)
    if image_format == "jpeg":
        return jpeg_roundtrip(img, jpeg_quality)
    return img, None
