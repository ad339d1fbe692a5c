"""Stage 1: every bad screenshot is refused with ImageLoadError and the right reason; good ones decode to RGB."""

from __future__ import annotations

import hashlib
import io
import os
import random
import struct
import time
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from warpd.load import (
    MIN_HEIGHT,
    MIN_WIDTH,
    ImageLoadError,
    LoadedImage,
    Reason,
    load_image,
    looks_complete,
)

MAX_PIXELS = 50_000_000
W, H = 400, 240


def _picture(w: int = W, h: int = H, seed: int = 0) -> np.ndarray:
    """A screenshot-like RGB array: gradients plus a few flat panels (compresses like the game's UI)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x * 255 // max(1, w - 1), y * 255 // max(1, h - 1), (x + y) % 256], axis=-1)
    for _ in range(6):
        x0, y0 = int(rng.integers(0, w - 40)), int(rng.integers(0, h - 40))
        arr[y0:y0 + 40, x0:x0 + 40] = rng.integers(0, 256, 3)
    return arr.astype(np.uint8)


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _png_header_only(width: int, height: int) -> bytes:
    """A well-formed PNG whose IHDR claims ``width`` x ``height`` but carries a tiny IDAT."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr)
            + _png_chunk(b"IDAT", zlib.compress(b"\x00" * 1024)) + _png_chunk(b"IEND", b""))


@pytest.fixture(scope="module")
def png_bytes() -> bytes:
    return _encode(Image.fromarray(_picture()), "PNG")


@pytest.fixture(scope="module")
def jpeg_bytes() -> bytes:
    return _encode(Image.fromarray(_picture()), "JPEG", quality=90)


def _reason(source, max_pixels: int = MAX_PIXELS) -> Reason:
    with pytest.raises(ImageLoadError) as info:
        load_image(source, max_pixels)
    assert str(info.value), "the error must carry a message"
    return info.value.reason


# ----------------------------------------------------------------------------- good images
@pytest.mark.parametrize("fmt,ext,exact", [("PNG", "png", True), ("JPEG", "jpg", False),
                                           ("BMP", "bmp", True), ("WEBP", "webp", False)])
def test_good_formats_decode_to_rgb(tmp_path, fmt, ext, exact):
    src = _picture()
    data = _encode(Image.fromarray(src), fmt, **({"quality": 95} if fmt in ("JPEG", "WEBP") else {}))
    path = _write(tmp_path, f"shot.{ext}", data)
    img = load_image(path, MAX_PIXELS)
    assert isinstance(img, LoadedImage)
    assert img.format == fmt
    assert (img.width, img.height) == (W, H)
    assert img.rgb.shape == (H, W, 3) and img.rgb.dtype == np.uint8 and img.rgb.flags.c_contiguous
    assert img.sha256 == hashlib.sha256(data).hexdigest()
    assert img.path == path
    diff = np.abs(img.rgb.astype(int) - src.astype(int))
    assert diff.max() == 0 if exact else diff.mean() < 6  # RGB order, not BGR


def test_bytes_input_has_no_path(png_bytes):
    img = load_image(png_bytes, MAX_PIXELS)
    assert img.path is None and img.sha256 == hashlib.sha256(png_bytes).hexdigest()
    assert img.rgb.shape == (H, W, 3)


def test_rgba_png_drops_alpha(tmp_path):
    src = _picture()
    alpha = np.full((H, W, 1), 77, np.uint8)
    data = _encode(Image.fromarray(np.concatenate([src, alpha], axis=2), "RGBA"), "PNG")
    img = load_image(_write(tmp_path, "a.png", data), MAX_PIXELS)
    assert img.rgb.shape == (H, W, 3)
    assert np.array_equal(img.rgb, src)


@pytest.mark.parametrize("mode", ["P", "L", "LA", "1"])
def test_palette_and_grey_pngs_become_rgb(tmp_path, mode):
    im = Image.fromarray(_picture()).convert(mode)
    img = load_image(_write(tmp_path, f"{mode}.png", _encode(im, "PNG")), MAX_PIXELS)
    assert img.rgb.shape == (H, W, 3) and img.rgb.dtype == np.uint8
    expected = np.asarray(im.convert("RGB"))
    assert np.abs(img.rgb.astype(int) - expected.astype(int)).max() <= 1


def test_sixteen_bit_png_is_scaled_not_clipped(tmp_path):
    grey16 = (np.linspace(0, 65535, W * H).reshape(H, W)).astype(np.uint16)
    data = _encode(Image.fromarray(grey16), "PNG")
    img = load_image(_write(tmp_path, "g16.png", data), MAX_PIXELS)
    assert img.rgb.shape == (H, W, 3)
    assert np.abs(img.rgb[:, :, 0].astype(int) - (grey16 >> 8)).max() <= 1
    assert img.rgb.max() == 255 and img.rgb.min() == 0


def test_minimum_size_is_accepted(tmp_path):
    data = _encode(Image.fromarray(_picture(MIN_WIDTH, MIN_HEIGHT)), "PNG")
    assert load_image(data, MAX_PIXELS).rgb.shape == (MIN_HEIGHT, MIN_WIDTH, 3)


def test_no_pillow_warnings_and_pillow_limit_matches(png_bytes):
    ImageFile.LOAD_TRUNCATED_IMAGES = True  # another library flipped it: the loader must not trust it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            load_image(png_bytes, 12_345_678)
            with pytest.raises(ImageLoadError):
                load_image(_png_header_only(20_000, 20_000), 12_345_678)
        assert Image.MAX_IMAGE_PIXELS == 12_345_678
        assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


# ----------------------------------------------------------------------------- bad files
def test_zero_byte_file(tmp_path):
    assert _reason(_write(tmp_path, "empty.png", b"")) == Reason.EMPTY
    assert _reason(b"") == Reason.EMPTY


def test_text_file_named_png(tmp_path):
    text = b"<html><body>404 Not Found</body></html>\n" * 3
    assert _reason(_write(tmp_path, "shot.png", text)) == Reason.NOT_AN_IMAGE
    assert _reason(_write(tmp_path, "note.png", "Screenshot von Kirk – Grüße\n".encode())) == Reason.NOT_AN_IMAGE


@pytest.mark.parametrize("fmt", ["GIF", "TIFF"])
def test_unsupported_formats(tmp_path, fmt):
    data = _encode(Image.fromarray(_picture()), fmt)
    with pytest.raises(ImageLoadError) as info:
        load_image(_write(tmp_path, "shot.png", data), MAX_PIXELS)
    assert info.value.reason == Reason.UNSUPPORTED_FORMAT
    assert fmt in str(info.value)


def test_missing_file_and_folder(tmp_path):
    assert _reason(tmp_path / "nope.png") == Reason.NOT_FOUND
    assert _reason(tmp_path) == Reason.UNREADABLE


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root reads files regardless of mode")
def test_unreadable_file_real_permissions(tmp_path, png_bytes):
    path = _write(tmp_path, "locked.png", png_bytes)
    path.chmod(0)
    try:
        assert _reason(path) == Reason.UNREADABLE
        assert looks_complete(path) is False
    finally:
        path.chmod(0o600)


def test_unreadable_file_permission_error(tmp_path, png_bytes, monkeypatch):
    path = _write(tmp_path, "locked.png", png_bytes)

    def denied(self, *args, **kwargs):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", denied)
    with pytest.raises(ImageLoadError) as info:
        load_image(path, MAX_PIXELS)
    assert info.value.reason == Reason.UNREADABLE and "permission" in str(info.value).lower()


@pytest.mark.parametrize("fraction", [0.02, 0.1, 0.33, 0.5, 0.9, 0.999])
def test_truncated_png(tmp_path, png_bytes, fraction):
    cut = max(9, int(len(png_bytes) * fraction))
    path = _write(tmp_path, "cut.png", png_bytes[:cut])
    assert _reason(path) == Reason.TRUNCATED
    assert looks_complete(path) is False


@pytest.mark.parametrize("fraction", [0.01, 0.1, 0.5, 0.9, 0.999])
def test_truncated_jpeg(tmp_path, jpeg_bytes, fraction):
    cut = max(4, int(len(jpeg_bytes) * fraction))
    path = _write(tmp_path, "cut.jpg", jpeg_bytes[:cut])
    assert _reason(path) == Reason.TRUNCATED
    assert looks_complete(path) is False


def test_truncated_png_with_end_marker_put_back(png_bytes):
    """A writer that lost data in the middle but still wrote IEND: caught by the full decode."""
    damaged = png_bytes[:len(png_bytes) // 2] + png_bytes[-12:]
    assert _reason(damaged) in (Reason.TRUNCATED, Reason.CORRUPT)


def test_truncated_jpeg_with_end_marker_put_back(jpeg_bytes):
    damaged = jpeg_bytes[:len(jpeg_bytes) // 2] + b"\xff\xd9"
    try:
        img = load_image(damaged, MAX_PIXELS)  # libjpeg may recover a partial scan: acceptable
    except ImageLoadError as exc:
        assert exc.reason in (Reason.TRUNCATED, Reason.CORRUPT)
    else:
        assert img.rgb.shape == (H, W, 3)


def test_corrupted_png_chunks(png_bytes):
    ihdr_broken = bytearray(png_bytes)
    ihdr_broken[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    assert _reason(bytes(ihdr_broken)) == Reason.CORRUPT
    idat_at = png_bytes.index(b"IDAT")
    idat_broken = bytearray(png_bytes)
    for offset in range(idat_at + 20, idat_at + 60):
        idat_broken[offset] ^= 0x5A
    assert _reason(bytes(idat_broken)) in (Reason.CORRUPT, Reason.TRUNCATED)


def test_decompression_bomb_png_refused_fast_without_allocating(tmp_path):
    path = _write(tmp_path, "bomb.png", _png_header_only(20_000, 20_000))
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(ImageLoadError) as info:
            load_image(path, MAX_PIXELS)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.reason == Reason.TOO_LARGE
    assert "20000x20000" in str(info.value) and "max_pixels" in str(info.value)
    assert elapsed < 0.5
    assert peak < 16 * 1024 * 1024  # 20,000² RGB would be 1.2 GB


def test_decompression_bomb_jpeg_header(jpeg_bytes):
    data = bytearray(jpeg_bytes)
    sof = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 20_000, 20_000)  # height, width of the SOF0 frame
    assert _reason(bytes(data)) == Reason.TOO_LARGE


def test_max_pixels_is_the_limit(png_bytes):
    assert _reason(png_bytes, max_pixels=W * H - 1) == Reason.TOO_LARGE
    assert load_image(png_bytes, max_pixels=W * H).rgb.shape == (H, W, 3)


def test_oversized_file_refused_before_reading(tmp_path):
    path = tmp_path / "huge.png"
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.truncate(8 * 1024 * 1024)  # sparse: 8 MB for a 500,000-pixel limit
    assert _reason(path, max_pixels=500_000) == Reason.TOO_LARGE


def test_too_small_to_be_a_screenshot(tmp_path):
    data = _encode(Image.fromarray(_picture(64, 64)), "PNG")
    with pytest.raises(ImageLoadError) as info:
        load_image(_write(tmp_path, "icon.png", data), MAX_PIXELS)
    assert info.value.reason == Reason.TOO_SMALL and "64x64" in str(info.value)
    assert _reason(_encode(Image.fromarray(_picture(MIN_WIDTH - 1, 600)), "PNG")) == Reason.TOO_SMALL


# ----------------------------------------------------------------------------- fuzz
def _only_load_errors(data: bytes) -> None:
    """Either a valid image comes back or ImageLoadError; anything else fails the test."""
    try:
        img = load_image(data, MAX_PIXELS)
    except ImageLoadError:
        return
    assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3 and img.rgb.dtype == np.uint8
    assert img.rgb.shape[:2] == (img.height, img.width)


def test_fuzz_random_bytes():
    rng = random.Random(1234)
    prefixes = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"RIFF\x00\x00\x00\x00WEBPVP8 ", b"GIF89a"]
    for _ in range(300):
        body = rng.randbytes(rng.choice([1, 7, 40, 300, 5000]))
        prefix = rng.choice(prefixes)
        suffix = rng.choice([b"", b"\x00\x00\x00\x00IEND\xaeB`\x82", b"\xff\xd9"])
        _only_load_errors(prefix + body + suffix)


def test_fuzz_truncation_at_random_offsets(png_bytes, jpeg_bytes):
    rng = random.Random(99)
    for data in (png_bytes, jpeg_bytes, _encode(Image.fromarray(_picture()), "BMP"),
                 _encode(Image.fromarray(_picture()), "WEBP")):
        for _ in range(40):
            _only_load_errors(data[:rng.randrange(0, len(data))])


def test_fuzz_byte_flips_keep_the_ending(png_bytes, jpeg_bytes):
    """Damage in the middle with the end marker intact exercises the decoders themselves."""
    rng = random.Random(7)
    for data in (png_bytes, jpeg_bytes, _encode(Image.fromarray(_picture()), "BMP"),
                 _encode(Image.fromarray(_picture()), "WEBP")):
        for _ in range(40):
            damaged = bytearray(data)
            for _ in range(rng.choice([1, 4, 32])):
                damaged[rng.randrange(2, len(data) - 16)] = rng.randrange(256)
            _only_load_errors(bytes(damaged))


# ----------------------------------------------------------------------------- looks_complete
def test_looks_complete(tmp_path, png_bytes, jpeg_bytes):
    assert looks_complete(_write(tmp_path, "a.png", png_bytes)) is True
    assert looks_complete(_write(tmp_path, "b.jpg", jpeg_bytes)) is True
    assert looks_complete(_write(tmp_path, "c.png", png_bytes[:-1])) is False
    assert looks_complete(_write(tmp_path, "d.jpg", jpeg_bytes[:-2])) is False
    assert looks_complete(_write(tmp_path, "e.png", b"")) is False
    assert looks_complete(_write(tmp_path, "f.png", b"\x89PN")) is False
    assert looks_complete(tmp_path / "missing.png") is False
    bmp = _encode(Image.fromarray(_picture()), "BMP")
    assert looks_complete(_write(tmp_path, "g.bmp", bmp)) is True
    assert looks_complete(_write(tmp_path, "h.bmp", bmp[:-100])) is False
    webp = _encode(Image.fromarray(_picture()), "WEBP")
    assert looks_complete(_write(tmp_path, "i.webp", webp)) is True
    assert looks_complete(_write(tmp_path, "j.webp", webp[:-10])) is False
    # Not an image at all: "complete", so the loader gets to refuse it with a reason.
    assert looks_complete(_write(tmp_path, "k.png", b"hello, this is text\n")) is True
