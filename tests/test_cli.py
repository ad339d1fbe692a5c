"""The ``warpd`` command line as a user runs it (a real subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from warpd import __version__


def warpd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "warpd", *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def test_help_lists_the_verbs():
    out = warpd("--help")
    assert out.returncode == 0
    for verb in ("doctor", "config"):
        assert verb in out.stdout


def test_version():
    out = warpd("--version")
    assert out.returncode == 0 and __version__ in out.stdout


def test_every_verb_has_help():
    from warpd.cli import build_parser

    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices  # the registered sub-commands
    assert verbs
    for verb in verbs:
        out = warpd(verb, "--help")
        assert out.returncode == 0 and "usage: warpd " + verb in out.stdout, verb


def test_no_verb_prints_help_and_fails():
    out = warpd()
    assert out.returncode == 2 and "usage:" in out.stdout


def test_config_json_and_override():
    out = warpd("--set", "recognition.auto_accept=0.9", "config", "--json")
    assert out.returncode == 0
    data = json.loads(out.stdout)
    assert data["values"]["recognition"]["auto_accept"] == 0.9


def test_config_never_prints_the_token():
    out = warpd("config", env={"WARPD_SYNC__TOKEN": "hf_secret_value"})
    assert out.returncode == 0 and "hf_secret_value" not in out.stdout and "<set>" in out.stdout


def test_bad_config_file_is_reported_with_line(tmp_path):
    bad = tmp_path / "warpd.toml"
    bad.write_text("[watch]\nfolderz = []\n")
    out = warpd("--config", str(bad), "config")
    assert out.returncode == 2
    assert f"{bad}:2" in out.stderr and "watch.folderz" in out.stderr
