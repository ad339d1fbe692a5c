"""Config: defaults, the user's file, env and --set layers, and errors that name file, line and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from warpd.config import ConfigError, default_config, load_config, user_config_path


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "warpd.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_are_documented_and_loaded():
    cfg = load_config()
    assert cfg.recognition.auto_accept == 0.75
    assert cfg.sync.daily_cap == 200
    assert not cfg.user_file_loaded
    text = cfg.defaults_file.read_text()
    # every key in the defaults file is preceded by a comment line somewhere in its section
    for section, table in cfg.as_dict().items():
        assert f"[{section}]" in text
        for key in table:
            assert f"\n{key} = " in text, key


def test_user_file_overrides_defaults(tmp_path):
    path = write(tmp_path, "[recognition]\nauto_accept = 0.9\n[watch]\nfolders = ['/shots']\n")
    cfg = load_config(path)
    assert cfg.recognition.auto_accept == 0.9
    assert cfg.watch.folders == ["/shots"]
    assert cfg.recognition.reject == 0.40  # untouched keys keep their default
    assert cfg.user_file_loaded


def test_user_file_found_in_platform_folder(isolated_home):
    path = user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[ocr]\nlanguages = 'eng+deu'\n")
    assert str(path).startswith(str(isolated_home))
    assert load_config().ocr.languages == "eng+deu"


def test_unknown_key_names_file_line_and_key(tmp_path):
    path = write(tmp_path, "# mine\n[recognition]\nauto_accept = 0.8\nauto_acept = 0.9\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    err = info.value
    assert err.line == 4 and err.key == "recognition.auto_acept" and err.source == str(path)
    assert f"{path}:4" in str(err) and "recognition.auto_acept" in str(err)


def test_unknown_section(tmp_path):
    path = write(tmp_path, "[recogniton]\nauto_accept = 0.8\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 1 and "recogniton" in str(info.value)


def test_wrong_type_names_line(tmp_path):
    path = write(tmp_path, "[sync]\nenabled = true\ndaily_cap = 'lots'\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 3 and info.value.key == "sync.daily_cap"
    assert "integer" in str(info.value)


def test_bool_is_not_an_int(tmp_path):
    with pytest.raises(ConfigError):
        load_config(write(tmp_path, "[sync]\ndaily_cap = true\n"))


def test_int_accepted_for_float(tmp_path):
    cfg = load_config(write(tmp_path, "[recognition]\nauto_accept = 1\n"))
    assert cfg.recognition.auto_accept == 1.0 and isinstance(cfg.recognition.auto_accept, float)


def test_syntax_error_names_line(tmp_path):
    path = write(tmp_path, "[watch]\nstable_s = 0.5\nfolders = [\n'/a' '/b']\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert info.value.line == 4 and "TOML" in str(info.value)


def test_cross_field_rule(tmp_path):
    with pytest.raises(ConfigError) as info:
        load_config(write(tmp_path, "[recognition]\nauto_accept = 0.3\nreject = 0.5\n"))
    assert "reject" in str(info.value)


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_env_and_cli_overrides_in_order(tmp_path):
    path = write(tmp_path, "[recognition]\nauto_accept = 0.8\n")
    env = {"WARPD_RECOGNITION__AUTO_ACCEPT": "0.85", "WARPD_WATCH__FOLDERS": '["/x", "/y"]',
           "WARPD_OCR__LANGUAGES": "eng+deu"}
    cfg = load_config(path, env=env)
    assert cfg.recognition.auto_accept == 0.85
    assert cfg.watch.folders == ["/x", "/y"]
    assert cfg.ocr.languages == "eng+deu"  # bare word taken as a string
    cfg = load_config(path, ["recognition.auto_accept=0.95"], env=env)
    assert cfg.recognition.auto_accept == 0.95


def test_bad_override_and_bad_env():
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(overrides=["auto_accept=0.3"], env={})
    with pytest.raises(ConfigError) as info:
        load_config(env={"WARPD_SYNC__NOPE": "1"})
    assert "sync.nope" in str(info.value) and "environment" in str(info.value)


def test_default_config_ignores_broken_user_file(isolated_home):
    path = user_config_path()
    path.parent.mkdir(parents=True)
    path.write_text("[[[")
    with pytest.raises(ConfigError):
        load_config()
    assert default_config().recognition.auto_accept == 0.75


def test_unknown_attribute_is_clear():
    cfg = load_config()
    with pytest.raises(AttributeError, match=r"\[recognition\] has no key 'nope'"):
        _ = cfg.recognition.nope
