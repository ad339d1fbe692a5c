"""``warpd autostart``: every platform's artefact rendered and installed on Linux in a temporary home.

The service managers and the Windows registry are fakes (they record what they are asked); the
real validators (desktop-file-validate, systemd-analyze, systemd's XDG autostart generator) check
the files where this machine has them.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import plistlib
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import pytest

from conftest import REPO
from warpd import autostart as at

WIN_VENV = r"C:\Users\Jean Luc\warpd venv\Scripts"


class FakeSystemctl:
    """Records commands; ``enable``/``disable`` create and remove the link as systemctl does."""

    def __init__(self, config_home: Path, state: str = "active", code: int = 0, text: str | None = None):
        self.config_home, self.state, self.code, self.text = config_home, state, code, text
        self.calls: list[list[str]] = []

    def __call__(self, argv: Sequence[str]) -> tuple[int, str]:
        argv = list(argv)
        self.calls.append(argv)
        if self.text is not None:  # systemctl broken or missing
            return self.code, self.text
        link = self.config_home / "systemd" / "user" / "graphical-session.target.wants" / "warpd.service"
        if argv[:3] == ["systemctl", "--user", "is-active"]:
            return (0 if self.state == "active" else 3), self.state
        if argv[2:3] == ["enable"]:
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.is_symlink():
                link.symlink_to("../warpd.service")
        if argv[2:3] == ["disable"] and link.is_symlink():
            link.unlink()
        return 0, ""


class FakeRunKey:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        self.values[name] = value

    def delete(self, name: str) -> bool:
        return self.values.pop(name, None) is not None


@pytest.fixture
def venv(tmp_path: Path) -> Path:
    """A venv-like bin/ folder (with a space in its path) holding python and the warpd script."""
    bindir = tmp_path / "my venv" / "bin"
    bindir.mkdir(parents=True)
    for name in ("python", "warpd"):
        (bindir / name).write_text("#!/bin/sh\n")
        (bindir / name).chmod(0o755)
    return bindir


def linux_host(tmp_path: Path, venv: Path, state: str = "active", **runner: object) -> at.Host:
    home = tmp_path / "home"
    return at.Host(platform="linux", environ={"XDG_CONFIG_HOME": str(home / "cfg")}, home=home,
                   runner=FakeSystemctl(home / "cfg", state, **runner), python=str(venv / "python"))


def win_host(tmp_path: Path, files: set[str]) -> at.Host:
    return at.Host(platform="win32", environ={}, home=tmp_path, runner=FakeSystemctl(tmp_path),
                   registry=FakeRunKey(), python=WIN_VENV + r"\python.exe", is_file=files.__contains__)


def mac_host(tmp_path: Path, venv: Path) -> at.Host:
    return at.Host(platform="darwin", environ={}, home=tmp_path / "home", runner=FakeSystemctl(tmp_path),
                   uid=501, python=str(venv / "python"))


def read_keyfile(text: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(text)
    return parser


# ------------------------------------------------------------------------------ what is launched
def test_launch_prefers_the_venv_script_and_falls_back_to_python_m(tmp_path, venv):
    host = linux_host(tmp_path, venv)
    assert at.launch_command(host).argv == [str(venv / "warpd"), "run"]
    (venv / "warpd").unlink()
    launch = at.launch_command(host, config_file=str(tmp_path / "my.toml"))
    assert launch.argv == [str(venv / "python"), "-m", "warpd", "--config", str(tmp_path / "my.toml"), "run"]
    assert launch.how == "python -m"


@pytest.mark.parametrize("files, argv, console", [
    ({WIN_VENV + r"\warpdw.exe", WIN_VENV + r"\pythonw.exe"}, [WIN_VENV + r"\warpdw.exe", "run"], False),
    ({WIN_VENV + r"\pythonw.exe", WIN_VENV + r"\warpd.exe"}, [WIN_VENV + r"\pythonw.exe", "-m", "warpd", "run"], False),
    ({WIN_VENV + r"\warpd.exe"}, [WIN_VENV + r"\warpd.exe", "run"], True),
    (set(), [WIN_VENV + r"\python.exe", "-m", "warpd", "run"], True),
])
def test_windows_launch_avoids_a_console_window(tmp_path, files, argv, console):
    launch = at.launch_command(win_host(tmp_path, files))
    assert launch.argv == argv and launch.console is console


def test_windows_system_python_finds_scripts_below_it(tmp_path):
    host = win_host(tmp_path, {r"C:\Python312\Scripts\warpdw.exe"})
    host.python = r"C:\Python312\python.exe"
    assert at.launch_command(host).argv == [r"C:\Python312\Scripts\warpdw.exe", "run"]


# ------------------------------------------------------------------------------ quoting
ODD_ARGS = ["/home/jean luc/bin/warpd", "plain", "", "it's", 'say "hi"', "back\\slash", "$HOME", "100%", "a`b",
            "semi;colon", "tab\there", "%f"]


def test_desktop_exec_quoting_follows_the_spec():
    assert at.desktop_exec(["/home/jean luc/.venv/bin/warpd", "run"]) == '"/home/jean luc/.venv/bin/warpd" run'
    # "\" inside quotes is "\\" by the Exec rules, then doubled again by the key-file string rules.
    assert at.desktop_exec(["/a\\b"]) == '"/a\\\\\\\\b"'
    assert at.desktop_exec(["/x/100%"]) == "/x/100%%"
    assert at.desktop_exec(["/x/$y"]) == '"/x/\\\\$y"'


@pytest.mark.parametrize("quote, parse", [(at.desktop_exec, at.parse_desktop_exec),
                                          (at.systemd_exec, at.parse_systemd_exec)])
def test_unix_quoting_round_trips(quote, parse):
    assert parse(quote(ODD_ARGS)) == ODD_ARGS


def test_systemd_quoting_escapes_specifiers_and_variables_in_arguments_only():
    line = at.systemd_exec(["/home/a b/%x$y/warpd", "--config", "/c/$HOME/%h.toml", "run"])
    # The command itself is not variable-expanded by systemd (systemd#23235), so "$" stays single there.
    assert line == '"/home/a b/%%x$y/warpd" --config "/c/$$HOME/%%h.toml" run'


def test_windows_command_line_quoting():
    assert at.windows_cmdline([WIN_VENV + r"\warpdw.exe", "run"]) == f'"{WIN_VENV}\\warpdw.exe" run'
    args = [r"C:\Program Files\warpd\warpdw.exe", "--config", "C:\\My Folder\\", 'a"b', "run"]
    assert at.windows_cmdline(args) == r'"C:\Program Files\warpd\warpdw.exe" --config "C:\My Folder\\" a\"b run'
    assert at.parse_windows_cmdline(at.windows_cmdline(args)) == args


def test_line_breaks_are_refused():
    for quote in (at.desktop_exec, at.systemd_exec, at.windows_cmdline):
        with pytest.raises(ValueError):
            quote(["/bin/warpd\nx", "run"])


# ------------------------------------------------------------------------------ Linux: XDG
def test_desktop_entry_keys(tmp_path, venv):
    text = at.render_desktop(at.launch_command(linux_host(tmp_path, venv)).argv)
    entry = read_keyfile(text)["Desktop Entry"]
    assert entry["Type"] == "Application" and entry["Terminal"] == "false"
    assert entry["X-GNOME-Autostart-enabled"] == "true" and entry["Name"] == "warpd"
    assert entry["Exec"] == f'"{venv}/warpd" run'
    argv = at.parse_desktop_exec(entry["Exec"])
    assert argv == [str(venv / "warpd"), "run"] and os.path.isabs(argv[0])
    assert entry["TryExec"] == str(venv / "warpd")


@pytest.mark.skipif(not shutil.which("desktop-file-validate"), reason="desktop-file-validate not installed")
def test_desktop_entries_pass_desktop_file_validate(tmp_path, venv):
    generated = tmp_path / "warpd.desktop"
    generated.write_text(at.render_desktop([str(venv / "warpd"), "--config", "/c/$x 100%.toml", "run"]))
    for path in (generated, REPO / "packaging" / "linux" / "warpd.desktop",
                 REPO / "packaging" / "linux" / "autostart" / "warpd.desktop"):
        done = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert done.returncode == 0 and "error" not in done.stdout, done.stdout


GENERATOR = Path("/usr/lib/systemd/user-generators/systemd-xdg-autostart-generator")


@pytest.mark.skipif(not (GENERATOR.exists() and shutil.which("systemd-analyze")), reason="needs systemd")
def test_systemd_turns_the_entry_into_a_valid_unit(tmp_path, venv):
    """systemd ≥ 246 runs XDG autostart entries as units: its generator must accept a path with a space."""
    host = linux_host(tmp_path, venv)
    at.Autostart(host).install("xdg")
    out = [tmp_path / "gen" / d for d in ("normal", "early", "late")]
    for folder in out:
        folder.mkdir(parents=True)
    env = {"PATH": os.environ.get("PATH", ""), "XDG_CONFIG_HOME": host.environ["XDG_CONFIG_HOME"],
           "XDG_CONFIG_DIRS": str(tmp_path / "none")}
    subprocess.run([str(GENERATOR), *map(str, out)], env=env, check=True, capture_output=True, timeout=10)
    unit = next((tmp_path / "gen").rglob("app-warpd@autostart.service"))
    exec_start = read_keyfile(unit.read_text())["Service"]["ExecStart"]
    assert at.parse_systemd_exec(exec_start.lstrip(":")) == [str(venv / "warpd"), "run"]
    done = subprocess.run(["systemd-analyze", "verify", unit.name], cwd=unit.parent, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0, done.stderr


def test_xdg_config_home_is_honoured_only_when_absolute(tmp_path, venv):
    host = linux_host(tmp_path, venv)
    assert at.XdgMethod(host).path() == tmp_path / "home" / "cfg" / "autostart" / "warpd.desktop"
    host.environ = {"XDG_CONFIG_HOME": "relative/cfg"}
    assert at.XdgMethod(host).path() == tmp_path / "home" / ".config" / "autostart" / "warpd.desktop"


# ------------------------------------------------------------------------------ Linux: systemd
def test_systemd_unit_content(tmp_path, venv):
    unit = read_keyfile(at.render_unit([str(venv / "warpd"), "run"]))
    assert unit["Unit"]["PartOf"] == "graphical-session.target"
    assert unit["Unit"]["After"] == "graphical-session.target"
    assert unit["Install"]["WantedBy"] == "graphical-session.target"
    assert unit["Service"]["Restart"] == "on-failure"
    assert int(unit["Unit"]["StartLimitBurst"]) <= 5 and int(unit["Unit"]["StartLimitIntervalSec"]) >= 60
    assert unit["Service"]["ExecStart"] == f'"{venv}/warpd" run'


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_systemd_analyze_accepts_the_unit(tmp_path, venv):
    """verify also checks that ExecStart's unquoted command exists: the quoting is right."""
    (tmp_path / "warpd.service").write_text(at.render_unit([str(venv / "warpd"), "--config", "/c/$x %h", "run"]))
    done = subprocess.run(["systemd-analyze", "verify", "warpd.service"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=20)
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("state, code, text, expected", [
    ("active", 0, None, "systemd"),
    ("inactive", 3, None, "xdg"),
    ("active", 127, "systemctl: not found", "xdg"),
    ("active", 1, "Failed to connect to bus: No medium found", "xdg"),
])
def test_default_method(tmp_path, venv, state, code, text, expected):
    host = linux_host(tmp_path, venv, state, code=code, text=text)
    method, reason = at.Autostart(host).choose()
    assert method == expected and reason
    assert host.runner.calls == [["systemctl", "--user", "is-active", "graphical-session.target"]]


def test_methods_of_other_platforms_are_refused(tmp_path, venv):
    with pytest.raises(ValueError, match="registry"):
        at.Autostart(linux_host(tmp_path, venv)).choose("registry")
    with pytest.raises(ValueError):
        at.Autostart(win_host(tmp_path, set())).choose("systemd")


def test_systemd_round_trip(tmp_path, venv):
    host = linux_host(tmp_path, venv)
    auto = at.Autostart(host)
    out = auto.install()
    unit = tmp_path / "home" / "cfg" / "systemd" / "user" / "warpd.service"
    assert out.ok and out.method == "systemd" and unit.is_file()
    assert out.commands == [["systemctl", "--user", "daemon-reload"],
                            ["systemctl", "--user", "enable", "warpd.service"]]
    status = auto.status()
    assert status["installed"] == ["systemd"] and at.status_ok(status)
    info = status["methods"]["systemd"]
    assert info["enabled"] and info["executable_exists"] and info["up_to_date"]
    assert info["command"] == [str(venv / "warpd"), "run"]

    out = auto.uninstall()
    assert out.commands == [["systemctl", "--user", "disable", "warpd.service"],
                            ["systemctl", "--user", "daemon-reload"]]
    assert not unit.exists() and not (unit.parent / "graphical-session.target.wants" / "warpd.service").is_symlink()
    assert unit.parent.is_dir()  # folders are the user's; only our files go
    again = auto.uninstall()
    assert again.commands == [] and "nothing to remove" in again.done[0]
    assert auto.status()["installed"] == []


def test_systemd_without_a_reachable_manager_links_by_hand(tmp_path, venv):
    host = linux_host(tmp_path, venv, code=1, text="Failed to connect to bus")
    out = at.Autostart(host).install("systemd")
    link = tmp_path / "home" / "cfg" / "systemd" / "user" / "graphical-session.target.wants" / "warpd.service"
    assert out.ok and out.warnings and os.readlink(link) == "../warpd.service"
    assert link.resolve() == link.parent.parent.joinpath("warpd.service").resolve()
    assert host.runner.calls == [["systemctl", "--user", "daemon-reload"]]  # no enable without a manager
    at.Autostart(host).uninstall()
    assert not link.is_symlink() and not link.parent.parent.joinpath("warpd.service").exists()


def test_xdg_round_trip_and_idempotency(tmp_path, venv):
    host = linux_host(tmp_path, venv, state="inactive")
    auto = at.Autostart(host)
    desktop = tmp_path / "home" / "cfg" / "autostart" / "warpd.desktop"
    (desktop.parent).mkdir(parents=True)
    (desktop.parent / "other.desktop").write_text("[Desktop Entry]\n")
    assert auto.install().method == "xdg"
    first = desktop.read_bytes()
    assert auto.install().method == "xdg" and desktop.read_bytes() == first
    assert not any(c[2] in ("enable", "daemon-reload") for c in host.runner.calls)  # systemctl only probed
    status = auto.status()
    assert status["installed"] == ["xdg"] and at.status_ok(status)
    auto.uninstall()
    auto.uninstall()
    assert not desktop.exists() and (desktop.parent / "other.desktop").exists()


def test_never_both_linux_methods(tmp_path, venv):
    host = linux_host(tmp_path, venv)
    auto = at.Autostart(host)
    auto.install("xdg")
    auto.install("systemd")
    assert auto.status()["installed"] == ["systemd"]
    auto.install("xdg")
    assert auto.status()["installed"] == ["xdg"]
    assert ["systemctl", "--user", "disable", "warpd.service"] in host.runner.calls


def test_status_reports_a_missing_executable_and_a_disabled_entry(tmp_path, venv):
    host = linux_host(tmp_path, venv, state="inactive")
    auto = at.Autostart(host)
    auto.install()
    desktop = at.XdgMethod(host).path()
    desktop.write_text(desktop.read_text().replace("X-GNOME-Autostart-enabled=true", "X-GNOME-Autostart-enabled=false"))
    assert auto.status()["methods"]["xdg"]["enabled"] is False and not at.status_ok(auto.status())
    auto.install()
    (venv / "warpd").unlink()
    info = auto.status()["methods"]["xdg"]
    assert info["executable_exists"] is False and not at.status_ok(auto.status())


# ------------------------------------------------------------------------------ Windows
def test_registry_value_is_exact(tmp_path):
    host = win_host(tmp_path, {WIN_VENV + r"\warpdw.exe"})
    auto = at.Autostart(host)
    out = auto.install()
    assert out.method == "registry" and out.commands == [] and not out.warnings
    assert host.registry.values == {"warpd": r'"C:\Users\Jean Luc\warpd venv\Scripts\warpdw.exe" run'}
    status = auto.status()
    assert status["installed"] == ["registry"] and at.status_ok(status)
    assert status["methods"]["registry"]["location"] == r"HKCU\Software\Microsoft\Windows\CurrentVersion\Run\warpd"
    auto.uninstall()
    auto.uninstall()
    assert host.registry.values == {}


def test_registry_pythonw_fallback_and_console_warning(tmp_path):
    host = win_host(tmp_path, {WIN_VENV + r"\pythonw.exe"})
    at.Autostart(host).install()
    assert host.registry.values["warpd"] == r'"C:\Users\Jean Luc\warpd venv\Scripts\pythonw.exe" -m warpd run'
    out = at.Autostart(win_host(tmp_path, set())).install()
    assert any("console" in w for w in out.warnings)


def test_winreg_is_imported_only_when_the_registry_is_used(tmp_path):
    key = at.Host(platform="win32", home=tmp_path).run_key()  # no winreg here, and no error either
    assert isinstance(key, at.WinregRunKey)
    if os.name != "nt":
        with pytest.raises(ImportError):
            key.get("warpd")


# ------------------------------------------------------------------------------ macOS
def test_launch_agent_plist_and_launchctl(tmp_path, venv):
    host = mac_host(tmp_path, venv)
    logs = tmp_path / "data" / "logs"
    auto = at.Autostart(host, log_dir=str(logs))
    out = auto.install()
    path = tmp_path / "home" / "Library" / "LaunchAgents" / "io.github.warpd.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "io.github.warpd"
    assert plist["ProgramArguments"] == [str(venv / "warpd"), "run"]
    assert plist["RunAtLoad"] is True and plist["KeepAlive"] == {"Crashed": True}
    assert plist["LimitLoadToSessionType"] == "Aqua"
    assert Path(plist["StandardErrorPath"]).parent == logs and Path(plist["StandardOutPath"]).parent == logs
    assert logs.is_dir() and plist["EnvironmentVariables"]["PATH"].startswith(str(venv) + ":")
    assert out.commands == [["launchctl", "bootstrap", "gui/501", str(path)]]

    out = auto.install()  # a loaded label must be booted out before bootstrap accepts it again
    assert out.commands == [["launchctl", "bootout", "gui/501/io.github.warpd"],
                            ["launchctl", "bootstrap", "gui/501", str(path)]]
    assert at.status_ok(auto.status())
    out = auto.uninstall()
    assert out.commands == [["launchctl", "bootout", "gui/501/io.github.warpd"]] and not path.exists()
    assert auto.uninstall().commands == []


# ------------------------------------------------------------------------------ the command line
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="warpd")
    parser.add_argument("--config")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    at.register(parser.add_subparsers(dest="command"))
    return parser.parse_args(argv)


def test_cli_install_status_uninstall_json(tmp_path, venv, capsys):
    host = linux_host(tmp_path, venv, state="inactive")
    assert at.run(parse("autostart", "status", "--json"), None, host) == 1
    assert json.loads(capsys.readouterr().out)["install_would_use"]["method"] == "xdg"

    assert at.run(parse("autostart", "install", "--json"), None, host) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["ok"] and done["method"] == "xdg" and "graphical-session.target is inactive" in done["reason"]

    assert at.run(parse("autostart", "status"), None, host) == 0
    text = capsys.readouterr().out
    assert "autostart: xdg (enabled)" in text and str(venv / "warpd") in text

    assert at.run(parse("autostart", "uninstall"), None, host) == 0
    assert "removed" in capsys.readouterr().out
    assert at.run(parse("autostart", "uninstall"), None, host) == 0


def test_cli_records_the_config_file_and_dry_run_writes_nothing(tmp_path, venv, capsys):
    host = linux_host(tmp_path, venv, state="inactive")
    config = tmp_path / "my config.toml"
    assert at.run(parse("--config", str(config), "autostart", "install", "--dry-run"), None, host) == 0
    out = capsys.readouterr().out
    assert f'Exec="{venv}/warpd" --config "{config}" run' in out
    assert not at.XdgMethod(host).path().exists()


def test_cli_refuses_a_foreign_method(tmp_path, venv, capsys):
    host = linux_host(tmp_path, venv)
    assert at.run(parse("autostart", "install", "--method", "launchagent"), None, host) == 1
    assert "not available" in capsys.readouterr().err


# ------------------------------------------------------------------------------ packaging/
def test_packaging_examples_are_generated_from_this_code():
    """Regenerate with: python -c "from warpd.autostart import write_examples; write_examples('packaging')"."""
    for rel, data in at.examples().items():
        assert (REPO / "packaging" / rel).read_bytes() == data, f"packaging/{rel} is stale"
    mac = plistlib.loads(at.examples()["macos/io.github.warpd.plist"])
    assert mac["ProgramArguments"][-1] == "run"
