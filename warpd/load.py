"""Stage 1 of recognition: read a screenshot file and decode it, safely, to an RGB array.

Screenshots arrive from a folder watcher while the game may still be writing them, from users who
drop anything into the folder, and (later) from the network. So every way a file can be bad is
refused with one typed error, :class:`ImageLoadError`, whose ``reason`` says what happened and
whose message says what to do; no other exception escapes for bad input.

Order of checks, cheapest first, so a bad file costs almost nothing:

1. the file's size (zero bytes, or far more than any accepted image could need);
2. the magic bytes (text files named ``.png``, GIF/TIFF and other unsupported formats);
3. the "fully written?" trailer (PNG ``IEND``, JPEG ``FFD9``, BMP/WebP declared sizes);
4. the dimensions from the header, before any pixel is decoded (decompression bombs, thumbnails);
5. the full decode: OpenCV (faster, see ``CV2_FORMATS``), Pillow as the fallback that names the
   failure, with truncated-image loading kept off.
"""

from __future__ import annotations

import enum
import hashlib
import io
import os
import struct
import warnings
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import cv2
import numpy as np
from PIL import Image, ImageFile, UnidentifiedImageError

# Smallest image that can be a game screenshot (the game's minimum window is larger still).
MIN_WIDTH, MIN_HEIGHT = 320, 200
# Formats accepted, by the name Pillow reports. STO writes PNG, JPEG or BMP; WebP comes from tools.
SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "BMP", "WEBP")
# Formats decoded by OpenCV: faster than Pillow for all four at 1920x1080 (median ms, 2 cores,
# OpenCV vs Pillow to an RGB array: PNG 15 vs 30 (0.6 MB) and 39 vs 50 (3.6 MB), JPEG 4-7 vs
# 18-20, BMP 0.8 vs 15, WebP 19 vs 39). Pillow decodes whatever OpenCV refuses, so a damaged file
# still gets Pillow's precise diagnosis.
CV2_FORMATS = frozenset({"PNG", "JPEG", "BMP", "WEBP"})
# A file larger than this many bytes per accepted pixel cannot be an accepted image (uncompressed
# 32-bit BMP is 4 bytes a pixel); the slack covers headers and metadata.
MAX_BYTES_PER_PIXEL = 4
FILE_SIZE_SLACK = 1 << 20
# How many leading bytes are inspected to tell text from binary.
TEXT_SNIFF_BYTES = 512

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_IEND_CHUNK = b"\x00\x00\x00\x00IEND\xaeB`\x82"
JPEG_SOI = b"\xff\xd8\xff"
JPEG_EOI = b"\xff\xd9"
BMP_MAGIC = b"BM"

# Signatures of formats we recognise but refuse, so the message can name them.
_OTHER_FORMATS: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "GIF"), (b"GIF89a", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
    (b"\x00\x00\x00\x0cjP  ", "JPEG 2000"), (b"8BPS", "Photoshop PSD"), (b"DDS ", "DDS"),
    (b"%PDF", "PDF"), (b"PK\x03\x04", "ZIP archive"), (b"\x00\x00\x01\x00", "ICO"),
)

PathOrBytes = Union[str, os.PathLike, bytes, bytearray, memoryview]


class Reason(str, enum.Enum):
    """Why an image was refused; stable codes that logs, the UI and tests key on."""

    NOT_FOUND = "not_found"
    UNREADABLE = "unreadable"
    EMPTY = "empty"
    NOT_AN_IMAGE = "not_an_image"
    UNSUPPORTED_FORMAT = "unsupported_format"
    TRUNCATED = "truncated"
    TOO_LARGE = "too_large"
    TOO_SMALL = "too_small"
    CORRUPT = "corrupt"


class ImageLoadError(ValueError):
    """A screenshot that cannot be used; ``reason`` is a :class:`Reason`, the message says what to do."""

    def __init__(self, reason: Reason, message: str):
        self.reason = Reason(reason)
        self.reason_code = self.reason.value
        super().__init__(message)


@dataclass(frozen=True)
class LoadedImage:
    """A decoded screenshot. ``sha256`` is of the file's bytes, so a re-saved file is a new image."""

    rgb: np.ndarray  # H x W x 3, uint8, C-contiguous
    width: int
    height: int
    format: str  # one of SUPPORTED_FORMATS
    sha256: str
    path: Path | None


# ----------------------------------------------------------------------------- public API
def load_image(source: PathOrBytes, max_pixels: int) -> LoadedImage:
    """Read and decode ``source`` (a path or the file's bytes) to RGB, or raise :class:`ImageLoadError`.

    ``max_pixels`` is ``cfg.recognition.max_pixels``: larger images are refused from their header,
    before any pixel memory is allocated.
    """
    path = None if isinstance(source, (bytes, bytearray, memoryview)) else Path(os.fspath(source))
    name = str(path) if path is not None else "the image data"
    data = _read_bytes(path, max_pixels) if path is not None else bytes(source)
    fmt = _check_container(data, name)
    width, height = _header_size(data, name, max_pixels)
    rgb = _decode(data, fmt, name, width, height, max_pixels)
    return LoadedImage(rgb=rgb, width=width, height=height, format=fmt,
                       sha256=hashlib.sha256(data).hexdigest(), path=path)


def looks_complete(path: str | os.PathLike) -> bool:
    """Whether ``path`` looks fully written (for the file watcher: wait while this is False).

    A cheap structural check, not a decode: PNG ends with its IEND chunk, JPEG with the FFD9 end
    marker, BMP and WebP are at least as long as their headers declare. A file that cannot be
    opened yet (Windows locks files being written) or is shorter than a signature is not
    complete. Files of other kinds are reported complete, so the loader can refuse them with a
    reason instead of the watcher waiting for them forever.
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(32)
            fh.seek(0, os.SEEK_END)
            size = fh.tell()
            fh.seek(max(0, size - 64))
            tail = fh.read()
    except OSError:
        return False
    if len(head) < len(PNG_SIGNATURE):
        return False
    fmt = _sniff_format(head)
    if fmt is None:
        return True
    return _trailer_ok(fmt, head, tail, size)


# ----------------------------------------------------------------------------- reading
def _read_bytes(path: Path, max_pixels: int) -> bytes:
    """The file's bytes; refuses missing, unreadable and absurdly large files before reading them."""
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise ImageLoadError(Reason.UNREADABLE, f"{path} is a folder, not an image file.")
        if size > max_pixels * MAX_BYTES_PER_PIXEL + FILE_SIZE_SLACK:
            raise ImageLoadError(
                Reason.TOO_LARGE,
                f"{path} is {size / 1e6:.0f} MB, more than any screenshot of at most {max_pixels:,} pixels "
                "can be; it was not read. Raise recognition.max_pixels if it really is a screenshot.")
        with path.open("rb") as fh:
            return fh.read()
    except ImageLoadError:
        raise
    except FileNotFoundError:
        raise ImageLoadError(Reason.NOT_FOUND,
                             f"{path} does not exist (moved or deleted before it was read).") from None
    except PermissionError:
        raise ImageLoadError(Reason.UNREADABLE, f"{path} cannot be read: permission denied. Give warpd read "
                                                "access to the screenshot folder.") from None
    except OSError as exc:
        raise ImageLoadError(Reason.UNREADABLE, f"{path} cannot be read: {exc.strerror or exc}.") from None


# ----------------------------------------------------------------------------- container checks
def _sniff_format(head: bytes) -> str | None:
    """The supported format named by the magic bytes, or None."""
    if head.startswith(PNG_SIGNATURE):
        return "PNG"
    if head.startswith(JPEG_SOI):
        return "JPEG"
    if head.startswith(BMP_MAGIC) and len(head) >= 14:
        return "BMP"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return None


def _looks_like_text(head: bytes) -> bool:
    """Printable UTF-8 without NUL bytes: a text file (HTML, JSON, a note) named like an image."""
    sample = head[:TEXT_SNIFF_BYTES]
    if not sample or b"\x00" in sample:
        return False
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text = sample[:-3].decode("utf-8")  # the sample may end inside a multibyte character
        except UnicodeDecodeError:
            return False
    printable = sum(ch.isprintable() or ch in "\r\n\t" for ch in text)
    return printable >= 0.95 * max(1, len(text))


def _trailer_ok(fmt: str, head: bytes, tail: bytes, size: int) -> bool:
    """The cheap "fully written?" test of :func:`looks_complete`, on the first and last bytes."""
    if fmt == "PNG":
        return tail.endswith(PNG_IEND_CHUNK)
    if fmt == "JPEG":
        return tail.rstrip(b"\x00").endswith(JPEG_EOI)
    if fmt == "BMP":
        (declared,) = struct.unpack_from("<I", head, 2)
        return declared == 0 or size >= declared
    if fmt == "WEBP":
        (riff_size,) = struct.unpack_from("<I", head, 4)
        return size >= riff_size + 8
    return True


def _check_container(data: bytes, name: str) -> str:
    """The format of ``data``; refuses empty, text, unsupported and incompletely written files."""
    if not data:
        raise ImageLoadError(Reason.EMPTY, f"{name} is empty (0 bytes): the screenshot was not written, or is "
                                           "still being written. Take the screenshot again.")
    fmt = _sniff_format(data[:32])
    if fmt is None:
        for magic, other in _OTHER_FORMATS:
            if data.startswith(magic):
                raise ImageLoadError(Reason.UNSUPPORTED_FORMAT,
                                     f"{name} is a {other} file; warpd reads {', '.join(SUPPORTED_FORMATS)}. "
                                     "Set the game's screenshot format to PNG or JPEG.")
        if _looks_like_text(data):
            raise ImageLoadError(Reason.NOT_AN_IMAGE, f"{name} is a text file, not an image, whatever its "
                                                      "name says. Remove it from the screenshot folder.")
        raise ImageLoadError(Reason.NOT_AN_IMAGE, f"{name} is not an image in any format warpd reads "
                                                  f"({', '.join(SUPPORTED_FORMATS)}).")
    if not _trailer_ok(fmt, data[:32], data[-64:], len(data)):
        raise ImageLoadError(Reason.TRUNCATED, f"{name} is an incomplete {fmt} file (it ends early): it is still "
                                               "being written or was cut off. Wait, or take the screenshot again.")
    return fmt


# JPEG start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the size.
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})
_JPEG_STANDALONE = frozenset({0x01, 0xD8, *range(0xD0, 0xD8)})


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    """Size from the first SOF marker, walking the marker segments (no entropy data is touched)."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        if marker in (0xD9, 0xDA):  # end of image or start of scan before any frame header
            return None
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _JPEG_SOF:
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack_from(">HH", data, pos + 5)
            return width, height
        pos += 2 + length
    return None


def _parse_size(fmt: str, data: bytes) -> tuple[int, int] | None:
    """Width and height read straight from the header bytes; None when the header is odd.

    Done by hand rather than by Pillow so that an oversized image is refused with its size in the
    message; Pillow's own check (raised inside ``Image.open``) only says "too large".
    """
    try:
        if fmt == "PNG":
            ihdr_ok = data[12:16] == b"IHDR" and zlib.crc32(data[12:29]) == struct.unpack_from(">I", data, 29)[0]
            return struct.unpack_from(">II", data, 16) if ihdr_ok else None  # damaged: Pillow names it
        if fmt == "JPEG":
            return _jpeg_size(data)
        if fmt == "BMP":
            (dib_size,) = struct.unpack_from("<I", data, 14)
            if dib_size == 12:
                return struct.unpack_from("<HH", data, 18)
            width, height = struct.unpack_from("<ii", data, 18)
            return abs(width), abs(height)
        if fmt == "WEBP":
            chunk = data[12:16]
            if chunk == b"VP8X":
                w = int.from_bytes(data[24:27], "little") + 1
                return w, int.from_bytes(data[27:30], "little") + 1
            if chunk == b"VP8L":
                (bits,) = struct.unpack_from("<I", data, 21)
                return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
            if chunk == b"VP8 ":
                w, h = struct.unpack_from("<HH", data, 26)
                return w & 0x3FFF, h & 0x3FFF
    except struct.error:
        return None
    return None


def _header_size(data: bytes, name: str, max_pixels: int) -> tuple[int, int]:
    """Width and height from the header alone (no pixel decoding), checked against the limits.

    Our own parse is checked first; Pillow then opens the header too (it must agree), which also
    applies its decompression-bomb limit, set to ``max_pixels``, as a second guard.
    """
    fmt = _sniff_format(data[:32]) or ""
    parsed = _parse_size(fmt, data)
    if parsed is not None and parsed[0] * parsed[1] > max_pixels:
        raise _too_large(name, parsed, max_pixels)
    try:
        with _pillow_guard(max_pixels), Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(name, None, max_pixels) from None
    except Exception as exc:  # noqa: BLE001 - any parser failure on bad input is "corrupt"
        raise _corrupt(name, exc) from None
    if width * height > max_pixels:
        raise _too_large(name, (width, height), max_pixels)
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        raise ImageLoadError(Reason.TOO_SMALL, f"{name} is {width}x{height} pixels, smaller than any game "
                                               f"screenshot ({MIN_WIDTH}x{MIN_HEIGHT} at least): a thumbnail or "
                                               "a cropped icon? warpd reads whole screenshots.")
    return width, height


# ----------------------------------------------------------------------------- decoding
def _decode(data: bytes, fmt: str, name: str, width: int, height: int, max_pixels: int) -> np.ndarray:
    """Full decode to RGB; OpenCV first for its formats, Pillow for the rest and to name failures."""
    if fmt in CV2_FORMATS:
        rgb = _decode_cv2(data)
        if rgb is not None and rgb.shape[:2] == (height, width):
            return rgb
    return _decode_pillow(data, name, (width, height), max_pixels)


def _decode_cv2(data: bytes) -> np.ndarray | None:
    """OpenCV decode to RGB (8-bit, alpha dropped, EXIF orientation ignored like Pillow's path)."""
    flags = cv2.IMREAD_COLOR_RGB | cv2.IMREAD_IGNORE_ORIENTATION
    try:
        rgb = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    except cv2.error:
        return None
    if rgb is None or rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        return None
    return np.ascontiguousarray(rgb)


def _decode_pillow(data: bytes, name: str, size: tuple[int, int], max_pixels: int) -> np.ndarray:
    """Pillow decode with truncated loading off; any failure becomes a typed error."""
    try:
        with _pillow_guard(max_pixels), Image.open(io.BytesIO(data)) as im:
            im.load()
            if im.size != size:
                raise _corrupt(name, ValueError(f"decoded size {im.size} differs from the header's {size}"))
            return _to_rgb(im)
    except ImageLoadError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(name, size, max_pixels) from None
    except MemoryError:
        raise ImageLoadError(Reason.TOO_LARGE, f"{name} could not be decoded: out of memory. Lower "
                                               "recognition.max_pixels or free memory.") from None
    except OSError as exc:
        if "truncated" in str(exc).lower():
            raise ImageLoadError(Reason.TRUNCATED, f"{name} is truncated (its image data ends early). Take the "
                                                   "screenshot again.") from None
        raise _corrupt(name, exc) from None
    except Exception as exc:  # noqa: BLE001 - any decoder failure on bad input is "corrupt"
        raise _corrupt(name, exc) from None


def _to_rgb(im: Image.Image) -> np.ndarray:
    """Any Pillow mode to 8-bit RGB: 16-bit and float scaled down (not clipped), alpha dropped."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im)
        if im.mode == "F":
            grey = np.clip(arr, 0, 1 if arr.max(initial=0) <= 1 else 255)
            grey = grey * (255 if grey.max(initial=0) <= 1 else 1)
        else:
            grey = arr.astype(np.uint32) >> 8 if arr.max(initial=0) > 255 else arr
        grey = np.clip(grey, 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if im.mode != "RGB":
        im = im.convert("RGB")
    return np.ascontiguousarray(np.asarray(im, dtype=np.uint8))


class _pillow_guard:
    """Pillow's own limits made consistent with ours, for one open/decode.

    Truncated images must raise (never load grey-filled), and Pillow's decompression-bomb limit is
    set to ``max_pixels`` with its warning turned into an error: images over the limit are refused
    by our header check first, so Pillow never warns for an accepted image and acts only as a
    second guard. Both settings are process-wide Pillow globals; warpd owns the process.
    """

    def __init__(self, max_pixels: int):
        self.max_pixels = max_pixels
        self._warnings = warnings.catch_warnings()

    def __enter__(self) -> "_pillow_guard":
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        Image.MAX_IMAGE_PIXELS = self.max_pixels
        self._warnings.__enter__()
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._warnings.__exit__(*exc_info)


def _too_large(name: str, size: tuple[int, int] | None, max_pixels: int) -> ImageLoadError:
    dims = f" is {size[0]}x{size[1]} = {size[0] * size[1]:,} pixels," if size else ""
    return ImageLoadError(Reason.TOO_LARGE, f"{name}{dims} more than the {max_pixels:,} pixels allowed "
                                            "(recognition.max_pixels); it was not decoded. Raise that setting "
                                            "if this really is a screenshot.")


def _corrupt(name: str, exc: BaseException) -> ImageLoadError:
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, UnidentifiedImageError):
        detail = "its header is damaged"
    return ImageLoadError(Reason.CORRUPT, f"{name} is damaged and cannot be decoded ({detail}). Take the "
                                          "screenshot again.")
