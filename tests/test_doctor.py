"""``warpd doctor`` tells the truth about tesseract, the config file and the data folders."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from warpd.ocr import OcrEngine


def doctor(*args: str, env: dict | None = None) -> tuple[int, dict]:
    out = subprocess.run([sys.executable, "-m", "warpd", *args, "doctor", "--json"], capture_output=True,
                         text=True, env={**os.environ, **(env or {})}, timeout=120)
    return out.returncode, json.loads(out.stdout)


def by_name(report: dict) -> dict:
    return {c["name"]: c for c in report["checks"]}


@pytest.mark.tesseract
def test_with_tesseract_reports_ok():
    if not OcrEngine().available():
        pytest.skip("tesseract with English language data is not installed here")
    code, report = doctor()
    checks = by_name(report)
    assert checks["tesseract"]["status"] == "ok"
    assert checks["tesseract language eng"]["status"] == "ok"
    assert code == 0 and report["ok"] is True


def test_without_tesseract_reports_missing_with_fix(tmp_path):
    empty = tmp_path / "no-tessdata"
    empty.mkdir()
    code, report = doctor("--set", f"ocr.tessdata_dir={json.dumps(str(empty))}",
                          "--set", f"ocr.tesseract_cmd={json.dumps(str(tmp_path / 'no-tesseract'))}")
    check = by_name(report)["tesseract"]
    assert check["status"] == "missing"
    assert "apt-get install tesseract-ocr" in check["fix"] or "brew install" in check["fix"]
    assert code == 1 and report["ok"] is False


@pytest.mark.tesseract
def test_missing_language_is_named():
    if not OcrEngine().available():
        pytest.skip("tesseract is not installed here")
    code, report = doctor("--set", "ocr.languages=eng+xyz")
    assert code == 1
    assert any(c["status"] == "missing" and "xyz" in c["detail"] + c["name"] for c in report["checks"])


def test_config_error_is_reported_and_other_checks_still_run(tmp_path):
    bad = tmp_path / "warpd.toml"
    bad.write_text("[tray]\nenabled = 'yes'\n")
    code, report = doctor(env={"WARPD_CONFIG": str(bad)})
    checks = by_name(report)
    assert checks["config file"]["status"] == "error" and f"{bad}:2" in checks["config file"]["detail"]
    assert "data folder" in checks and "package numpy" in checks
    assert code == 1


def test_folders_icons_and_models_are_counted(tmp_path):
    icons = tmp_path / "icons"
    icons.mkdir()
    for name in ("Phaser+Beam+Array.png", "Plasma+Beam+Array.png"):
        (icons / name).write_bytes(b"\x89PNG")
    models = tmp_path / "data" / "models"
    models.mkdir(parents=True)
    (models / "label_map.json").write_text("{}")
    code, report = doctor("--set", f"paths.icons_dir={json.dumps(str(icons))}",
                          "--set", f"paths.data_dir={json.dumps(str(tmp_path / 'data'))}")
    checks = by_name(report)
    assert checks["icon library"]["status"] == "ok" and checks["icon library"]["detail"].startswith("2 icons")
    assert "icon label map" in checks["models"]["detail"]
    assert checks["config file"]["status"] == "warn"  # no user file: defaults, said plainly


def test_doctor_does_not_import_torch_or_pystray():
    code = ("import sys, io, contextlib\nfrom warpd.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n    main(['doctor'])\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pystray')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip().endswith("[]"), out.stdout + out.stderr
