"""``warpd doctor``: what is installed, what is missing, and the fix for each.

Every check returns a :class:`Check` with a status (``ok``, ``warn``, ``missing``, ``error``) and,
unless it is fine, one line telling the player what to do. Nothing here imports torch or pystray:
doctor must run (and be truthful) on the smallest install and on a machine with no display.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

from warpd import __version__
from warpd.config import Config, ConfigError, default_config, load_config, user_config_path
from warpd.paths import catalog_dir, data_paths, icons_dir, install_id, output_dir

OK, WARN, MISSING, ERROR = "ok", "warn", "missing", "error"
_MARK = {OK: "✓", WARN: "!", MISSING: "✗", ERROR: "✗"}

# (import name, pip name, needed by the daemon?)
PACKAGES: tuple[tuple[str, str, bool], ...] = (
    ("numpy", "numpy", True),
    ("PIL", "pillow", True),
    ("cv2", "opencv-python-headless", True),
    ("imagehash", "imagehash", True),
    ("onnxruntime", "onnxruntime", True),
    ("rapidfuzz", "rapidfuzz", True),
    ("watchdog", "watchdog", True),
    ("pystray", "pystray", True),
    ("huggingface_hub", "huggingface_hub", True),
    ("platformdirs", "platformdirs", True),
    ("torch", "warpd[train]", False),
    ("torchvision", "warpd[train]", False),
)

MODEL_FILES: tuple[tuple[str, str], ...] = (
    ("icon_classifier.onnx", "icon classifier"),
    ("label_map.json", "icon label map"),
    ("screen_classifier.onnx", "screen classifier"),
    ("screen_classifier_labels.json", "screen label map"),
    ("knowledge.json", "pHash knowledge"),
    ("ship_type_corrections.json", "ship type corrections"),
)


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("doctor", help="check what is installed and what is missing, with fixes",
                            description="Check Python packages, tesseract and its language data, the config "
                                        "file, data folders, the icon library and models; print a fix for "
                                        "each problem. Exit code 1 when something required is missing.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(func=run)


def _check_packages() -> list[Check]:
    checks = []
    for module, pip_name, required in PACKAGES:
        found = importlib.util.find_spec(module) is not None  # find, never import (torch, pystray)
        if found:
            checks.append(Check(f"package {module}", OK, "installed"))
        elif required:
            checks.append(Check(f"package {module}", MISSING, "not installed", f"pip install {pip_name}"))
        else:
            checks.append(Check(f"package {module}", WARN, "not installed (only central training needs it)",
                                f"pip install '{pip_name}'"))
    return checks


def _tesseract_fix() -> str:
    if sys.platform == "win32":
        return "install Tesseract (UB Mannheim build) and set ocr.tesseract_cmd if it is not on PATH"
    if sys.platform == "darwin":
        return "brew install tesseract"
    return "sudo apt-get install tesseract-ocr tesseract-ocr-eng (or your distribution's package)"


def _check_tesseract(cfg: Config) -> list[Check]:
    from warpd.ocr import OcrEngine

    engine = OcrEngine.from_config(cfg)
    info = engine.describe()
    if not engine.available():
        return [Check("tesseract", MISSING, info.get("error") or "not found", _tesseract_fix())]
    checks = [Check("tesseract", OK, f"{info.get('backend')} {info.get('version')} ({info.get('tessdata')})")]
    tessdata = Path(info.get("tessdata") or "")
    have = {p.name.removesuffix(".traineddata") for p in tessdata.glob("*.traineddata")} if tessdata.is_dir() else set()
    for lang in cfg.ocr.languages.split("+"):
        if lang in have:
            checks.append(Check(f"tesseract language {lang}", OK, "installed"))
        else:
            checks.append(Check(f"tesseract language {lang}", MISSING, "traineddata not found",
                                f"install tesseract-ocr-{lang} (Debian/Ubuntu) or put {lang}.traineddata "
                                f"into {info.get('tessdata') or 'the tessdata folder'}"))
    return checks


def _check_config(cfg: Config | None, error: ConfigError | None) -> list[Check]:
    if error is not None:
        return [Check("config file", ERROR, str(error), "fix the named line, or delete the key to use its default")]
    assert cfg is not None
    if cfg.user_file_loaded:
        return [Check("config file", OK, str(cfg.user_file))]
    return [Check("config file", WARN, f"{cfg.user_file} does not exist; defaults in use",
                  f"optional: copy the keys you want to change from {cfg.defaults_file}")]


def _writable_dir(path: Path) -> bool:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return os.access(probe, os.W_OK)


def _check_folders(cfg: Config) -> list[Check]:
    paths = data_paths(cfg)
    checks = []
    for label, path in (("data folder", paths.root), ("output folder", output_dir(cfg))):
        if path.is_dir() and os.access(path, os.W_OK):
            checks.append(Check(label, OK, str(path)))
        elif _writable_dir(path):
            checks.append(Check(label, OK, f"{path} (created on first run)"))
        else:
            checks.append(Check(label, ERROR, f"{path} is not writable",
                                f"set paths.{'data_dir' if 'data' in label else 'output_dir'} to a writable folder"))
    ident = install_id(paths, create=False)
    checks.append(Check("install id", OK if ident else WARN, ident or "not created yet (made on first run)"))
    icons = icons_dir(cfg)
    count = sum(1 for _ in icons.glob("*.png")) if icons.is_dir() else 0
    if count:
        checks.append(Check("icon library", OK, f"{count} icons in {icons}"))
    else:
        checks.append(Check("icon library", WARN, f"no icons in {icons}",
                            "install SETS and let it download its images, or set paths.icons_dir"))
    cargo = catalog_dir(cfg)
    checks.append(Check("catalogue", OK, f"SETS cargo folder {cargo}" if cargo else "bundled with warpd"))
    models = paths.models
    have = [desc for name, desc in MODEL_FILES if (models / name).is_file()]
    if have:
        checks.append(Check("models", OK, f"{', '.join(have)} in {models}"))
    else:
        checks.append(Check("models", WARN, f"none in {models}; recognition uses the icon library only",
                            "they are downloaded from the community hub; or train with warpd-central"))
    return checks


def _check_display() -> list[Check]:
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return [Check("display", WARN, "no DISPLAY/WAYLAND_DISPLAY: the tray icon is off, notifications go to the log",
                      "run warpd inside your desktop session (see 'warpd autostart')")]
    return [Check("display", OK, "available")]


def collect(cfg: Config | None, config_error: ConfigError | None) -> list[Check]:
    """All checks, in the order they are printed."""
    checks = [Check("warpd", OK, f"{__version__} on Python {platform.python_version()} ({sys.platform})")]
    checks += _check_packages()
    checks += _check_config(cfg, config_error)
    effective = cfg or default_config()  # the other checks still run when the user's file is broken
    steps: list[Callable[[], list[Check]]] = [lambda: _check_tesseract(effective),
                                              lambda: _check_folders(effective), _check_display]
    for step in steps:
        try:
            checks += step()
        except Exception as exc:  # a broken check is a finding, not a crash
            checks.append(Check(getattr(step, "__name__", "check"), ERROR, f"check failed: {exc}"))
    return checks


def run(args: argparse.Namespace, cfg: Config | None) -> int:
    error = None
    if cfg is None:
        try:
            cfg = load_config(args.config, args.overrides)
        except ConfigError as exc:
            error = exc
            cfg = None
    checks = collect(cfg, error)
    failed = any(c.status in (MISSING, ERROR) for c in checks)
    if args.json:
        from warpd.cli import print_json

        print_json({"ok": not failed, "checks": [asdict(c) for c in checks],
                    "config_file": str(cfg.user_file if cfg else user_config_path())})
    else:
        for c in checks:
            print(f"{_MARK[c.status]} {c.name}: {c.detail}")
            if c.fix:
                print(f"    fix: {c.fix}")
        print("\nall required parts are present" if not failed else "\nsomething required is missing (see fixes above)")
    return 1 if failed else 0
