"""The OCR layer: preprocessing, TSV mapping, discovery, typed errors, and real tesseract reads."""

from __future__ import annotations

import statistics
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from warpd.ocr import (PAD_PX, TARGET_LINE_HEIGHT_PX, OcrEngine, OcrLine, OcrUnavailable, OcrWord,
                       PreparedImage, find_tessdata, find_tesseract_binary, parse_tsv, prepare_text_image,
                       words_to_line)

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"
GAME_BG = (12, 22, 48)  # the game's dark blue panel
GAME_FG = (200, 225, 255)  # its light blue-white text
LINE = "Fleet Support Cruiser [T6-X2]"

_ENGINE = OcrEngine()
_HAVE_TESSEROCR = OcrEngine(backend="tesserocr").available()
_HAVE_CLI = OcrEngine(backend="pytesseract").available()
needs_tesseract = pytest.mark.skipif(not _ENGINE.available(), reason=(
    "tesseract is not installed (apt-get install tesseract-ocr tesseract-ocr-eng, or set TESSDATA_PREFIX): "
    + str(_ENGINE.describe().get("error"))))
BACKENDS = [
    pytest.param("tesserocr", marks=pytest.mark.skipif(
        not _HAVE_TESSEROCR, reason="tesserocr or eng tessdata missing")),
    pytest.param("pytesseract", marks=pytest.mark.skipif(
        not _HAVE_CLI, reason="tesseract binary or pytesseract missing")),
]


def _font(size: int) -> ImageFont.FreeTypeFont:
    if not Path(FONT).is_file():
        pytest.skip(f"{FONT} missing (apt-get install fonts-dejavu-core)")
    return ImageFont.truetype(FONT, size)


def render_line(text: str, size: int = 18) -> Image.Image:
    """Game-like text: light blue-white on dark blue, a few pixels of margin."""
    font = _font(size)
    width = int(font.getbbox(text)[2]) + 12
    image = Image.new("RGB", (width, size + 10), GAME_BG)
    ImageDraw.Draw(image).text((6, 4), text, font=font, fill=GAME_FG)
    return image


# ---------------------------------------------------------------- preprocessing (no tesseract)
def test_prepare_inverts_dark_background_and_upscales_small_crops():
    image = render_line(LINE, 14)
    prepared = prepare_text_image(image)
    h = image.size[1]
    assert prepared.scale == pytest.approx(TARGET_LINE_HEIGHT_PX / h)
    assert prepared.gray.shape[0] == round(h * prepared.scale) + 2 * PAD_PX
    assert np.median(prepared.gray) > 200  # now light background
    assert prepared.gray.min() < 80  # with dark text
    assert prepared.gray[0, 0] == 255  # white margin


def test_prepare_keeps_light_background_and_never_shrinks():
    light = Image.new("L", (300, 120), 230)
    prepared = prepare_text_image(light)
    assert prepared.scale == 1.0
    assert prepared.gray[PAD_PX + 5, PAD_PX + 5] == 230  # not inverted


def test_prepare_accepts_numpy_rgb_and_gray_and_otsu_binarises():
    rgb = np.zeros((20, 60, 3), np.uint8)
    rgb[5:15, 10:50] = (200, 225, 255)
    assert prepare_text_image(rgb, pad=0, scale=1.0).gray[10, 20] == 255 - round(
        0.299 * 200 + 0.587 * 225 + 0.114 * 255)  # RGB weights, inverted
    for arr in (rgb, rgb[:, :, 0]):
        prepared = prepare_text_image(arr, otsu=True)
        assert set(np.unique(prepared.gray)) <= {0, 255}
    with pytest.raises(ValueError):
        prepare_text_image(np.zeros((0, 5), np.uint8))


def test_parse_tsv_maps_boxes_back_to_the_original_crop():
    prepared = PreparedImage(np.full((2 * 10 + 80, 2 * 10 + 400), 255, np.uint8), scale=2.0, pad=10)
    tsv = ("level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n"
           "4\t1\t1\t1\t1\t0\t10\t10\t300\t40\t-1\t\n"
           "5\t1\t1\t1\t1\t1\t30\t20\t100\t40\t96.5\tFleet\n"
           "5\t1\t1\t1\t1\t2\t150\t20\t60\t40\t80\tT6\n"
           "5\t1\t2\t1\t1\t1\t30\t70\t60\t20\t50\tDevices\n")
    words = parse_tsv(tsv, prepared)
    assert [w.text for w in words] == ["Fleet", "T6", "Devices"]
    assert words[0].bbox == (10, 5, 50, 20)
    assert words[0].conf == pytest.approx(0.965)
    assert (words[0].line_no, words[0].block_no) == (0, 1)
    assert (words[2].line_no, words[2].block_no) == (0, 2)


def test_words_to_line_weights_confidence_by_length():
    line = words_to_line([OcrWord("Cruiser", 1.0, (0, 0, 1, 1), 0, 1), OcrWord("x", 0.0, (0, 0, 1, 1), 0, 1)])
    assert line == OcrLine("Cruiser x", pytest.approx(7 / 8))
    assert words_to_line([]) == OcrLine("", 0.0)


# ---------------------------------------------------------------- discovery and errors (no tesseract)
def test_tessdata_found_through_env_and_explicit_folder_is_the_only_candidate(tmp_path, monkeypatch):
    data = tmp_path / "tessdata"
    data.mkdir()
    (data / "eng.traineddata").write_bytes(b"x")
    monkeypatch.setenv("TESSDATA_PREFIX", str(data))
    assert find_tessdata("eng") == data
    assert find_tessdata("eng+deu") != data  # deu is missing there
    empty = tmp_path / "empty"
    empty.mkdir()
    assert find_tessdata("eng", explicit=empty) is None  # no fallback to the env or system folders


def test_binary_explicit_path_is_the_only_candidate(tmp_path):
    assert find_tesseract_binary(tmp_path / "tesseract") is None
    assert find_tesseract_binary(tmp_path) is None


@pytest.mark.parametrize("backend", ["auto", "tesserocr", "pytesseract"])
def test_unavailable_when_tessdata_and_binary_point_to_an_empty_folder(tmp_path, backend):
    engine = OcrEngine(tessdata=tmp_path, tesseract_cmd=tmp_path / "tesseract", backend=backend)
    assert engine.available() is False
    with pytest.raises(OcrUnavailable) as info:
        engine.read_line(render_line(LINE))
    message = str(info.value)
    assert "tesseract-ocr-eng" in message and str(tmp_path) in message
    desc = engine.describe()
    assert desc["available"] is False and desc["backend"] is None and "tesseract-ocr" in desc["error"]


def test_from_config_reads_the_ocr_section():
    from warpd.config import load_config

    engine = OcrEngine.from_config(load_config())
    assert engine.languages == "eng" and engine.tesseract_cmd is None


# ---------------------------------------------------------------- real tesseract
@pytest.mark.tesseract
@needs_tesseract
@pytest.mark.parametrize("backend", BACKENDS)
def test_read_line_reads_game_text_and_reports_speed(backend):
    engine = OcrEngine(backend=backend)
    results, times = {}, []
    for size in (14, 16, 18, 20, 22):
        image = render_line(LINE, size)
        engine.read_line(image)  # warm-up (first call loads the model)
        for _ in range(5):
            start = time.perf_counter()
            results[size] = engine.read_line(image)
            times.append((time.perf_counter() - start) * 1000)
    print(f"\n{backend}: read_line median {statistics.median(times):.1f} ms, "
          f"min {min(times):.1f} ms over {len(times)} calls ({engine.describe()['version']})")
    for size, line in results.items():
        assert line.text == LINE, size
        assert 0.5 < line.confidence <= 1.0


@pytest.mark.tesseract
@needs_tesseract
def test_describe_names_backend_version_and_tessdata():
    desc = _ENGINE.describe()
    assert desc["available"] and desc["backend"] in ("tesserocr", "pytesseract")
    assert desc["version"] and desc["version"][0].isdigit()
    assert Path(desc["tessdata"], "eng.traineddata").is_file()
    assert desc["languages"] == "eng"


@pytest.mark.tesseract
@needs_tesseract
def test_whitelist_applies_per_call_only():
    image = render_line(LINE, 18)
    digits = _ENGINE.read_line(image, whitelist="0123456789")
    assert not any(ch.isalpha() for ch in digits.text)
    assert _ENGINE.read_line(image).text == LINE  # the next call is not limited any more


@pytest.mark.tesseract
@needs_tesseract
def test_read_block_returns_word_boxes_in_original_pixels():
    size = 18
    canvas = Image.new("RGB", (420, 120), GAME_BG)
    draw = ImageDraw.Draw(canvas)
    font = _font(size)
    draw.text((20, 15), "Fore Weapons", font=font, fill=GAME_FG)
    draw.text((240, 80), "Deflector", font=font, fill=GAME_FG)
    words = _ENGINE.read_block(canvas, line_height=size)
    by_text = {w.text: w for w in words}
    assert {"Fore", "Weapons", "Deflector"} <= set(by_text)
    x, y, w, h = by_text["Deflector"].bbox
    left, top, right, bottom = draw.textbbox((240, 80), "Deflector", font=font)
    assert abs(x - left) <= 3 and abs(y - top) <= 3
    assert abs((x + w) - right) <= 3 and abs((y + h) - bottom) <= 3
    assert by_text["Fore"].block_no != by_text["Deflector"].block_no or \
        by_text["Fore"].line_no != by_text["Deflector"].line_no


@pytest.mark.tesseract
@needs_tesseract
def test_read_lines_splits_a_wrapped_type_into_lines():
    size = 18
    font = _font(size)
    image = Image.new("RGB", (420, 2 * 26 + 8), GAME_BG)
    draw = ImageDraw.Draw(image)
    draw.text((6, 4), "Kardashev Command Dyson Science", font=font, fill=GAME_FG)
    draw.text((6, 30), "Destroyer [T6-X2]", font=font, fill=GAME_FG)
    lines = _ENGINE.read_lines(image, line_height=26)
    assert [ln.text for ln in lines] == ["Kardashev Command Dyson Science", "Destroyer [T6-X2]"]


@pytest.mark.tesseract
@needs_tesseract
@pytest.mark.skipif(not _HAVE_TESSEROCR, reason="per-thread instances are a tesserocr matter")
def test_threads_get_their_own_tesserocr_instance():
    engine = OcrEngine(backend="tesserocr")
    texts = ["Fleet Support Cruiser [T6-X2]", "Temporal Science Vessel [T6-X]", "Avenger Battlecruiser [T5-U]"]
    images = [render_line(t, 18) for t in texts]
    errors: list[str] = []
    apis: list[object] = []  # keep them alive so ids cannot be reused

    def work(index: int) -> None:
        for _ in range(8):
            got = engine.read_line(images[index]).text
            if got != texts[index]:
                errors.append(f"{texts[index]!r} read as {got!r}")
        apis.append(engine._impl._local.api)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({id(api) for api in apis}) == 3
