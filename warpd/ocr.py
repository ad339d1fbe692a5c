"""The project's one OCR layer: tesseract behind a small, thread-aware interface.

Everything that reads text (ship type and tier, row labels, panel headers) goes through
:class:`OcrEngine`, so backend choice, tessdata discovery, preprocessing and error messages live
in one place. Speed drives the design (platform-notes §5): a reused ``tesserocr`` API costs
~13 ms per line, a ``pytesseract`` subprocess ~90 ms (only with ``OMP_THREAD_LIMIT=1``), so the
engine prefers tesserocr with one ``PyTessBaseAPI`` per thread (it is not thread-safe) and keeps
pytesseract as the fallback where the wheel is missing (older macOS). Callers pass small crops,
never whole screenshots.

Game text is light on a dark background; :func:`prepare_text_image` turns any crop into what
tesseract reads best (dark text on light, cap height ~30 px, a white margin) and is the single
preprocessing function used by both backends.
"""

from __future__ import annotations

import glob
import os
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import cv2
import numpy as np

# ---------------------------------------------------------------- constants
PSM_SINGLE_BLOCK = 6
PSM_SINGLE_LINE = 7
PSM_SPARSE_TEXT = 11

DEFAULT_LANGUAGES = "eng"
OMP_ENV = "OMP_THREAD_LIMIT"
TESSDATA_ENV = "TESSDATA_PREFIX"
WHITELIST_VAR = "tessedit_char_whitelist"

# A tight line crop scaled to this height puts the cap height near 30 px, which tesseract's LSTM
# models read best; smaller text loses accuracy fast, larger text only costs time.
TARGET_LINE_HEIGHT_PX = 42
MAX_UPSCALE = 4.0
# Tesseract misreads glyphs that touch the image border; a white margin around the crop avoids it.
PAD_PX = 10
# Below this median grey level the crop is taken as the game's dark background and inverted.
DARK_BACKGROUND_LEVEL = 128
# Reported to tesseract so it does not warn about (and guess) an unknown resolution.
SOURCE_DPI = 300

# tesseract's TSV columns (shared by tesserocr's GetTSVText and the CLI's ``tsv`` output).
_TSV_COLUMNS = 12

_HOMEBREW_TESSDATA = ("/opt/homebrew/share/tessdata", "/usr/local/share/tessdata",
                      "/home/linuxbrew/.linuxbrew/share/tessdata")
_UNIX_TESSDATA = ("/usr/share/tesseract-ocr/*/tessdata", "/usr/share/tessdata",
                  "/usr/local/share/tesseract-ocr/*/tessdata")
_WINDOWS_DIRS = (r"C:\Program Files\Tesseract-OCR", r"C:\Program Files (x86)\Tesseract-OCR")

INSTALL_HINT = (
    "install tesseract with the languages you read: Debian/Ubuntu `sudo apt-get install tesseract-ocr "
    "tesseract-ocr-eng` (add tesseract-ocr-deu for German), macOS `brew install tesseract "
    "tesseract-lang`, Windows the UB Mannheim installer "
    "(https://github.com/UB-Mannheim/tesseract/wiki); or set TESSDATA_PREFIX to the folder holding "
    "<lang>.traineddata and [ocr] tesseract_cmd to the tesseract executable"
)


class OcrUnavailable(RuntimeError):
    """No usable tesseract backend: missing library, binary or language data (the message says how to fix it)."""


# ---------------------------------------------------------------- results
@dataclass(frozen=True)
class OcrLine:
    """One line of text; ``confidence`` is tesseract's word confidence (0..1), length-weighted."""

    text: str
    confidence: float


@dataclass(frozen=True)
class OcrWord:
    """One word with its box ``(x, y, w, h)`` in the caller's image pixels (before preprocessing)."""

    text: str
    conf: float
    bbox: tuple[int, int, int, int]
    line_no: int
    block_no: int


@dataclass(frozen=True)
class PreparedImage:
    """A preprocessed crop and how to map its pixels back: ``orig = (prep - pad) / scale``."""

    gray: np.ndarray
    scale: float
    pad: int

    def to_original(self, x: float, y: float) -> tuple[float, float]:
        return (x - self.pad) / self.scale, (y - self.pad) / self.scale


# ---------------------------------------------------------------- preprocessing
def to_gray(image: Any) -> np.ndarray:
    """A uint8 grey image from a PIL image or a numpy array: grey, RGB or RGBA.

    numpy colour arrays are RGB, the project's convention (``warpd.preprocess``), never BGR.
    """
    if hasattr(image, "mode") and hasattr(image, "convert"):  # PIL.Image without importing PIL
        return np.asarray(image.convert("L"), dtype=np.uint8)
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        code = cv2.COLOR_RGB2GRAY if arr.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
        return cv2.cvtColor(arr, code)
    raise ValueError(f"cannot read an image of shape {arr.shape}")


def prepare_text_image(image: Any, *, scale: float | None = None, line_height: int | None = None,
                       otsu: bool = False, invert: bool | None = None, pad: int = PAD_PX) -> PreparedImage:
    """Grey, polarity-fixed, upscaled, padded crop for tesseract; one function for every caller.

    ``scale`` wins if given; else a crop whose height (or ``line_height``, the height of one text
    line in it) is below :data:`TARGET_LINE_HEIGHT_PX` is upscaled to it, capped at
    :data:`MAX_UPSCALE` (crops are never shrunk: that loses strokes). ``invert=None`` inverts when
    the median is dark, i.e. the game's light-on-dark text. Otsu is optional because tesseract
    binarises internally; it helps on noisy, gradient backgrounds.
    """
    gray = to_gray(image)
    if gray.size == 0:
        raise ValueError("empty image")
    if invert is None:
        invert = float(np.median(gray)) < DARK_BACKGROUND_LEVEL
    if invert:
        gray = 255 - gray
    if scale is None:
        ref = line_height or gray.shape[0]
        scale = min(MAX_UPSCALE, TARGET_LINE_HEIGHT_PX / ref) if ref < TARGET_LINE_HEIGHT_PX else 1.0
    if scale != 1.0:
        size = (max(1, round(gray.shape[1] * scale)), max(1, round(gray.shape[0] * scale)))
        interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        gray = cv2.resize(gray, size, interpolation=interp)
    if otsu:
        _, gray = cv2.threshold(gray, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    if pad:
        gray = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=255)
    return PreparedImage(np.ascontiguousarray(gray), float(scale), pad)


# ---------------------------------------------------------------- discovery
def _has_languages(folder: Path, languages: str) -> bool:
    return all((folder / f"{lang}.traineddata").is_file() for lang in languages.split("+") if lang)


def _tessdata_candidates(explicit: str | os.PathLike[str] | None, binary: str | None) -> list[Path]:
    """Where tessdata may be, most specific first; an explicit folder is the only candidate."""
    if explicit:
        return [Path(explicit), Path(explicit) / "tessdata"]
    found: list[Path] = []
    env = os.environ.get(TESSDATA_ENV)
    if env:  # tesseract >= 4 wants the tessdata folder itself, 3.x its parent: accept both
        found += [Path(env), Path(env) / "tessdata"]
    if binary:
        bin_dir = Path(binary).resolve().parent
        found += [bin_dir / "tessdata", bin_dir.parent / "share" / "tessdata"]
    for pattern in _UNIX_TESSDATA:
        found += [Path(p) for p in sorted(glob.glob(pattern), reverse=True)]  # newest version first
    found += [Path(p) for p in _HOMEBREW_TESSDATA]
    if sys.platform == "win32":
        found += [Path(d) / "tessdata" for d in _WINDOWS_DIRS]
    return found


def find_tessdata(languages: str = DEFAULT_LANGUAGES, explicit: str | os.PathLike[str] | None = None,
                  binary: str | None = None) -> Path | None:
    """The first tessdata folder holding every requested language, or None."""
    for folder in _tessdata_candidates(explicit, binary):
        if folder.is_dir() and _has_languages(folder, languages):
            return folder
    return None


def find_tesseract_binary(explicit: str | os.PathLike[str] | None = None) -> str | None:
    """The tesseract executable: the configured one (only), else PATH, else the Windows default."""
    if explicit:
        path = Path(explicit)
        if path.is_dir():
            path = path / ("tesseract.exe" if sys.platform == "win32" else "tesseract")
        return str(path) if path.is_file() and os.access(path, os.X_OK) else None
    on_path = shutil.which("tesseract")
    if on_path:
        return on_path
    if sys.platform == "win32":
        for folder in _WINDOWS_DIRS:
            exe = Path(folder) / "tesseract.exe"
            if exe.is_file():
                return str(exe)
    return None


# ---------------------------------------------------------------- TSV parsing
def parse_tsv(tsv: str, prepared: PreparedImage) -> list[OcrWord]:
    """Words from tesseract's TSV (both backends emit it), boxes mapped back to the original crop."""
    words: list[OcrWord] = []
    for row in tsv.splitlines():
        cols = row.split("\t")
        if len(cols) < _TSV_COLUMNS or cols[0] != "5":  # level 5 = word; also skips the header
            continue
        text = cols[11].strip()
        if not text:
            continue
        left, top, width, height = (int(c) for c in cols[6:10])
        x0, y0 = prepared.to_original(left, top)
        x1, y1 = prepared.to_original(left + width, top + height)
        h_max, w_max = _orig_shape(prepared)
        x0, y0 = max(0, round(x0)), max(0, round(y0))
        x1, y1 = min(w_max, round(x1)), min(h_max, round(y1))
        block, par, line = int(cols[2]), int(cols[3]), int(cols[4])
        words.append(OcrWord(text, max(0.0, float(cols[10])) / 100.0,
                             (x0, y0, max(0, x1 - x0), max(0, y1 - y0)),
                             line_no=par * 1000 + line, block_no=block))
    return _renumber_lines(words)


def _orig_shape(prepared: PreparedImage) -> tuple[int, int]:
    h, w = prepared.gray.shape[:2]
    return (round((h - 2 * prepared.pad) / prepared.scale), round((w - 2 * prepared.pad) / prepared.scale))


def _renumber_lines(words: list[OcrWord]) -> list[OcrWord]:
    """Number lines 0.. within each block in reading order (TSV restarts line numbers per paragraph)."""
    out, seen = [], {}
    for w in words:
        key = (w.block_no, w.line_no)
        if key not in seen:
            seen[key] = sum(1 for k in seen if k[0] == w.block_no)
        out.append(OcrWord(w.text, w.conf, w.bbox, seen[key], w.block_no))
    return out


def words_to_line(words: Iterable[OcrWord]) -> OcrLine:
    """Join words into one line; confidence weighted by word length (a long word says more)."""
    words = list(words)
    if not words:
        return OcrLine("", 0.0)
    text = " ".join(w.text for w in words)
    weight = sum(len(w.text) for w in words)
    return OcrLine(text, sum(w.conf * len(w.text) for w in words) / weight)


# ---------------------------------------------------------------- backends
class _TesserocrBackend:
    """One PyTessBaseAPI per thread, created on first use, because the API is not thread-safe."""

    name = "tesserocr"

    def __init__(self, tessdata: Path, languages: str):
        import tesserocr  # noqa: F401  (ImportError is the caller's signal to fall back)

        self._tesserocr = tesserocr
        self.tessdata = tessdata
        self.languages = languages
        self._local = threading.local()
        self._api()  # fail now, not on the first screenshot, if the data cannot be loaded

    def _api(self) -> Any:
        api = getattr(self._local, "api", None)
        if api is None:
            try:
                api = self._tesserocr.PyTessBaseAPI(path=str(self.tessdata) + os.sep, lang=self.languages)
            except RuntimeError as exc:
                raise OcrUnavailable(f"tesserocr could not load {self.languages!r} from {self.tessdata}: "
                                     f"{exc}; {INSTALL_HINT}") from exc
            self._local.api = api
        return api

    def version(self) -> str:
        return self._tesserocr.tesseract_version().split()[1]  # "tesseract 5.5.4\n leptonica-..."

    def tsv(self, prepared: PreparedImage, psm: int, whitelist: str | None) -> str:
        api = self._api()
        api.SetPageSegMode(psm)
        api.SetVariable(WHITELIST_VAR, whitelist or "")
        gray = prepared.gray
        api.SetImageBytes(gray.tobytes(), gray.shape[1], gray.shape[0], 1, gray.shape[1])
        api.SetSourceResolution(SOURCE_DPI)
        api.Recognize()
        return api.GetTSVText(0) or ""

    def close(self) -> None:
        api = getattr(self._local, "api", None)
        if api is not None:
            api.End()
            self._local.api = None


class _PytesseractBackend:
    """The tesseract CLI through pytesseract: ~7x slower, used only when tesserocr is missing."""

    name = "pytesseract"

    def __init__(self, binary: str, tessdata: Path, languages: str):
        import pytesseract

        # Debian's tesseract uses OpenMP; its thread start-up dominates short lines (230 -> 88 ms).
        os.environ.setdefault(OMP_ENV, "1")
        self._pt = pytesseract
        self.binary = binary
        self.tessdata = tessdata
        self.languages = languages
        self._version = self._probe_version()

    def _probe_version(self) -> str:
        self._pt.pytesseract.tesseract_cmd = self.binary
        try:
            return str(self._pt.get_tesseract_version())
        except (self._pt.TesseractNotFoundError, OSError) as exc:
            raise OcrUnavailable(f"tesseract at {self.binary} does not run: {exc}; {INSTALL_HINT}") from exc

    def version(self) -> str:
        return self._version

    def tsv(self, prepared: PreparedImage, psm: int, whitelist: str | None) -> str:
        from PIL import Image

        # pytesseract keeps the command in a module global; all engines of a process share one binary.
        self._pt.pytesseract.tesseract_cmd = self.binary
        config = f'--tessdata-dir "{self.tessdata}" --psm {psm} --dpi {SOURCE_DPI}'
        if whitelist:
            config += f" -c {WHITELIST_VAR}={_quote_whitelist(whitelist)}"
        try:
            return self._pt.image_to_data(Image.fromarray(prepared.gray), lang=self.languages, config=config)
        except self._pt.TesseractError as exc:
            raise OcrUnavailable(f"tesseract failed: {exc}; {INSTALL_HINT}") from exc

    def close(self) -> None:
        return None


def _quote_whitelist(chars: str) -> str:
    """pytesseract splits its config with shlex: quote the whitelist so spaces and quotes survive."""
    escaped = chars.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


# ---------------------------------------------------------------- engine
@dataclass
class OcrEngine:
    """Tesseract for the whole daemon; safe to share between threads.

    ``tessdata`` / ``tesseract_cmd``, when given, are the only places looked at (no search), which
    is also how tests simulate a machine without tesseract. ``backend`` is ``"auto"`` (tesserocr,
    else pytesseract), ``"tesserocr"`` or ``"pytesseract"``. Construction never raises: check
    :meth:`available` or let the first read raise :class:`OcrUnavailable` with the fix.
    """

    languages: str = DEFAULT_LANGUAGES
    tessdata: str | os.PathLike[str] | None = None
    tesseract_cmd: str | os.PathLike[str] | None = None
    backend: str = "auto"
    _impl: Any = field(default=None, init=False, repr=False)
    _error: str | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @classmethod
    def from_config(cls, cfg: Any, **overrides: Any) -> "OcrEngine":
        """An engine from ``cfg.ocr`` (``tesseract_cmd``, ``languages``); empty strings mean 'search'."""
        ocr = cfg.ocr
        kwargs = {"languages": ocr.languages or DEFAULT_LANGUAGES, "tesseract_cmd": ocr.tesseract_cmd or None,
                  "tessdata": ocr.tessdata_dir or None}
        kwargs.update(overrides)
        return cls(**kwargs)

    # ------------------------------------------------------------ backend selection
    def _backend(self) -> Any:
        """The working backend, chosen once (thread-safe); raises OcrUnavailable with every reason."""
        if self._impl is not None:
            return self._impl
        with self._lock:
            if self._impl is None and self._error is None:
                self._impl, self._error = self._select()
        if self._impl is None:
            raise OcrUnavailable(self._error or "no OCR backend")
        return self._impl

    def _select(self) -> tuple[Any, str | None]:
        reasons: list[str] = []
        binary = find_tesseract_binary(self.tesseract_cmd)
        tessdata = find_tessdata(self.languages, self.tessdata, binary)
        if tessdata is None:
            where = self.tessdata or f"${TESSDATA_ENV} and the usual folders"
            reasons.append(f"no tessdata with {self.languages!r} found in {where}")
        if self.backend in ("auto", "tesserocr") and tessdata is not None:
            try:
                return _TesserocrBackend(tessdata, self.languages), None
            except ImportError:
                reasons.append("the tesserocr package is not installed")
            except OcrUnavailable as exc:
                reasons.append(str(exc).split(";")[0])
        if self.backend in ("auto", "pytesseract"):
            if binary is None:
                reasons.append(f"no tesseract executable ({self.tesseract_cmd or 'not on PATH'})")
            elif tessdata is not None:
                try:
                    return _PytesseractBackend(binary, tessdata, self.languages), None
                except ImportError:
                    reasons.append("the pytesseract package is not installed")
                except OcrUnavailable as exc:
                    reasons.append(str(exc).split(";")[0])
        return None, "OCR unavailable: " + "; ".join(reasons) + f". Fix: {INSTALL_HINT}"

    # ------------------------------------------------------------ public API
    def available(self) -> bool:
        """Whether a backend works (loads it on first call)."""
        try:
            self._backend()
        except OcrUnavailable:
            return False
        return True

    def describe(self) -> dict[str, Any]:
        """Backend, version, tessdata and languages, or the error: what ``warpd doctor`` prints."""
        try:
            impl = self._backend()
        except OcrUnavailable as exc:
            return {"available": False, "backend": None, "version": None, "tessdata": None,
                    "languages": self.languages, "error": str(exc)}
        return {"available": True, "backend": impl.name, "version": impl.version(),
                "tessdata": str(impl.tessdata), "languages": impl.languages,
                "binary": getattr(impl, "binary", None), "error": None}

    def read_line(self, image: Any, whitelist: str | None = None, *, otsu: bool = False) -> OcrLine:
        """Read one line of text (PSM 7) from a tight crop; ``whitelist`` limits the characters."""
        prepared = prepare_text_image(image, otsu=otsu)
        words = parse_tsv(self._backend().tsv(prepared, PSM_SINGLE_LINE, whitelist), prepared)
        return words_to_line(words)

    def read_lines(self, image: Any, *, line_height: int | None = None,
                   whitelist: str | None = None) -> list[OcrLine]:
        """Read a small multi-line crop (PSM 6), one :class:`OcrLine` per text line, top to bottom."""
        words = self.read_block(image, psm=PSM_SINGLE_BLOCK, line_height=line_height, whitelist=whitelist)
        lines: dict[tuple[int, int], list[OcrWord]] = {}
        for w in words:
            lines.setdefault((w.block_no, w.line_no), []).append(w)
        ordered = sorted(lines.values(), key=lambda ws: min(w.bbox[1] for w in ws))
        return [words_to_line(ws) for ws in ordered]

    def read_block(self, image: Any, *, psm: int = PSM_SPARSE_TEXT, line_height: int | None = None,
                   scale: float | None = None, whitelist: str | None = None) -> list[OcrWord]:
        """Words with boxes in ``image``'s pixels: for finding labels and headers in a panel crop.

        Pass ``line_height`` (the text line height in pixels, if known) or ``scale`` so small UI
        text is upscaled; without them a crop taller than a line is read at its own size.
        """
        if line_height is None and scale is None:
            scale = 1.0
        prepared = prepare_text_image(image, scale=scale, line_height=line_height)
        return parse_tsv(self._backend().tsv(prepared, psm, whitelist), prepared)

    def close(self) -> None:
        """Free the calling thread's tesseract instance (other threads keep theirs)."""
        if self._impl is not None:
            self._impl.close()
