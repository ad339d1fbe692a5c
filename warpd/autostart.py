"""``warpd autostart install|uninstall|status``: start the daemon with the user's desktop session.

warpd is useful only if it is already running when the player takes screenshots, so it must start
by itself at login, inside the graphical session (the tray icon needs the session's display and
D-Bus). Each platform has one per-user, no-admin way to do that, and this module writes exactly
one of them:

* Linux (and other XDG desktops): an XDG autostart entry ``$XDG_CONFIG_HOME/autostart/warpd.desktop``
  (method ``xdg``), or a systemd user unit ``$XDG_CONFIG_HOME/systemd/user/warpd.service`` bound to
  ``graphical-session.target`` (method ``systemd``). Never both: that would start two daemons.
* Windows: the value ``warpd`` under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``
  (method ``registry``), launching a console-less executable.
* macOS: the LaunchAgent ``~/Library/LaunchAgents/io.github.warpd.plist`` (method ``launchagent``).

Everything outside the process (platform, environment, home folder, the ``systemctl``/``launchctl``
runner, the registry, the file system check for executables) goes through :class:`Host`, so the
tests render and install every platform's artefact on Linux in a temporary home.
"""

from __future__ import annotations

import argparse
import configparser
import ntpath
import os
import plistlib
import posixpath
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

APP = "warpd"
LABEL = "io.github.warpd"  # the macOS LaunchAgent label (reverse DNS of the project's home)
UNIT = "warpd.service"
SESSION_TARGET = "graphical-session.target"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
GUI_SCRIPT = "warpdw"  # the [project.gui-scripts] entry point: warpd without a console window on Windows
MARKER = "Written by 'warpd autostart install'; 'warpd autostart uninstall' removes it."

METHODS_BY_FAMILY: dict[str, tuple[str, ...]] = {
    "xdg": ("systemd", "xdg"),
    "windows": ("registry",),
    "macos": ("launchagent",),
}
ALL_METHODS = ("xdg", "systemd", "registry", "launchagent")

# (exit status, combined stdout+stderr). 127 means "command not found", as in a shell.
Runner = Callable[[Sequence[str]], "tuple[int, str]"]


def run_command(argv: Sequence[str]) -> tuple[int, str]:
    """Run a service-manager command; never raises, so a missing systemctl is just a status."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=30, check=False)
    except FileNotFoundError:
        return 127, f"{argv[0]}: not found"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return 126, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


# ------------------------------------------------------------------------------ the registry
class RunKey(Protocol):
    """The HKCU Run key, reduced to what autostart needs (string values by name)."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> bool: ...


class WinregRunKey:
    """The real Run key. ``winreg`` is imported on use: it exists only on Windows."""

    def get(self, name: str) -> str | None:
        import winreg  # type: ignore[import-not-found]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_READ) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        import winreg  # type: ignore[import-not-found]

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)  # REG_SZ: the paths are already expanded

    def delete(self, name: str) -> bool:
        import winreg  # type: ignore[import-not-found]

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            return False
        return True


# ------------------------------------------------------------------------------ the host
@dataclass
class Host:
    """The outside world autostart reads and changes; every field can be faked in tests."""

    platform: str = field(default_factory=lambda: sys.platform)
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    home: Path = field(default_factory=Path.home)
    runner: Runner = run_command
    registry: RunKey | None = None  # None: the real Run key (Windows only)
    uid: int | None = None  # None: os.getuid() (macOS launchctl domain)
    python: str = field(default_factory=lambda: sys.executable)
    is_file: Callable[[str], bool] = os.path.isfile

    @property
    def family(self) -> str:
        """``windows``, ``macos`` or ``xdg`` (Linux and the BSDs: freedesktop.org autostart)."""
        if self.platform.startswith("win"):
            return "windows"
        if self.platform == "darwin":
            return "macos"
        return "xdg"

    @property
    def path(self) -> Any:
        """``ntpath`` or ``posixpath``: the target platform's path rules, whatever runs the code."""
        return ntpath if self.family == "windows" else posixpath

    def config_home(self) -> Path:
        """``$XDG_CONFIG_HOME`` (only when absolute, as the spec says) or ``~/.config``."""
        value = self.environ.get("XDG_CONFIG_HOME", "")
        return Path(value) if value and os.path.isabs(value) else self.home / ".config"

    def run_key(self) -> RunKey:
        if self.registry is None:
            self.registry = WinregRunKey()
        return self.registry

    def user_id(self) -> int:
        return self.uid if self.uid is not None else os.getuid()  # type: ignore[attr-defined,unused-ignore]


# ------------------------------------------------------------------------------ what to launch
@dataclass(frozen=True)
class Launch:
    """The command line autostart records, and how it was found (for status and warnings)."""

    argv: list[str]
    how: str  # "script", "gui-script", "pythonw -m", "python -m"
    console: bool = False  # Windows only: the command opens a console window


def launch_command(host: Host, config_file: str | None = None) -> Launch:
    """The absolute command that starts the daemon with the interpreter running this code.

    The entry-point script next to ``sys.executable`` (a venv's bin/ or Scripts/) is preferred
    because it is what the user types; ``python -m warpd`` is the fallback that always matches
    this interpreter. Paths are made absolute but symlinks are kept: resolving a venv's
    ``bin/python`` would escape the venv and lose its packages.
    """
    p = host.path
    python = host.python
    if not python or not p.isabs(python):
        raise ValueError(f"cannot tell which Python runs warpd (sys.executable is {python!r})")
    bindir = p.dirname(python)
    tail = (["--config", os.path.abspath(config_file)] if config_file else []) + ["run"]
    if host.family == "windows":
        launch = _windows_launch(host, python, bindir)
    else:
        script = p.join(bindir, APP)
        launch = Launch([script], "script") if host.is_file(script) else Launch([python, "-m", APP], "python -m")
    return Launch(launch.argv + tail, launch.how, launch.console)


def _windows_launch(host: Host, python: str, bindir: str) -> Launch:
    """Console-less first: ``warpdw.exe``, then ``pythonw.exe -m warpd``; console ones last."""
    p = host.path
    # A venv has python.exe inside Scripts\; a system install has it one level above Scripts\.
    dirs = [bindir, p.join(bindir, "Scripts")]
    for d in dirs:
        if host.is_file(p.join(d, GUI_SCRIPT + ".exe")):
            return Launch([p.join(d, GUI_SCRIPT + ".exe")], "gui-script")
    pythonw = p.join(bindir, "pythonw.exe")
    if host.is_file(pythonw):
        return Launch([pythonw, "-m", APP], "pythonw -m")
    for d in dirs:
        if host.is_file(p.join(d, APP + ".exe")):
            return Launch([p.join(d, APP + ".exe")], "script", console=True)
    return Launch([python, "-m", APP], "python -m", console=True)


# ------------------------------------------------------------------------------ quoting
_DESKTOP_RESERVED = frozenset(" \t\n\"'\\><~|&;$*?#()`")
_SYSTEMD_PLAIN = re.compile(r"[A-Za-z0-9_@+=:,./-]+")


def _no_newlines(arg: str) -> str:
    if "\n" in arg or "\r" in arg:
        raise ValueError(f"a line break in an autostart argument cannot be written: {arg!r}")
    return arg


def desktop_exec(argv: Sequence[str]) -> str:
    """An ``Exec=`` value by the Desktop Entry spec: quote, then escape ``%`` and the key-file backslash.

    Arguments with reserved characters go in double quotes with ``"`` `` ` `` ``$`` ``\\`` escaped;
    ``%`` is doubled (field codes); finally every backslash is doubled again because the value is a
    key-file string, whose escapes are applied before the Exec quoting rules.
    """
    words = []
    for arg in argv:
        arg = _no_newlines(arg).replace("%", "%%")
        if arg and not _DESKTOP_RESERVED.intersection(arg):
            words.append(arg)
        else:
            words.append('"' + re.sub(r'(["`$\\])', r"\\\1", arg) + '"')
    return _keyfile_escape(" ".join(words))


def _keyfile_escape(value: str) -> str:
    return value.replace("\\", "\\\\")


def _keyfile_unescape(value: str) -> str:
    table = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: table.get(m.group(1), "\\" + m.group(1)), value)


def _split_words(text: str, *, quotes: str, escape_outside: bool, escapes: dict[str, str]) -> list[str]:
    """Shell-like word splitting with the quoting rules of one format.

    ``quotes``: the quote characters; a backslash escapes the next character inside quotes, and
    outside them too with ``escape_outside`` (systemd, unlike the Desktop Entry spec);
    ``escapes`` maps escaped letters to characters (``\\n``...).
    """
    words: list[str] = []
    current: list[str] | None = None
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\" and i + 1 < len(text) and (quote or escape_outside):
            i += 1
            current = current if current is not None else []
            current.append(escapes.get(text[i], text[i]))
        elif quote:
            if c == quote:
                quote = ""
            else:
                current.append(c)  # type: ignore[union-attr]
        elif c in " \t":
            if current is not None:
                words.append("".join(current))
                current = None
        else:
            current = current if current is not None else []
            if c in quotes:
                quote = c
            else:
                current.append(c)
        i += 1
    if current is not None:
        words.append("".join(current))
    return words


def parse_desktop_exec(value: str) -> list[str]:
    """The arguments of an ``Exec=`` value (inverse of :func:`desktop_exec`; field codes dropped)."""
    words = _split_words(_keyfile_unescape(value), quotes='"', escape_outside=False, escapes={})
    words = [w for w in words if not re.fullmatch(r"%[a-zA-Z]", w)]  # a field code alone (%f, %u)
    return [re.sub(r"%(.)", lambda m: "%" if m.group(1) == "%" else "", w) for w in words]


def systemd_exec(argv: Sequence[str]) -> str:
    """An ``ExecStart=`` value: C-style escapes in double quotes; ``%`` and ``$`` doubled.

    systemd expands specifiers (``%h``) everywhere in the line and environment variables (``$HOME``)
    in the arguments, quoted or not, so those are escaped by doubling; quotes and backslashes by ``\\``.
    """
    words = []
    for i, arg in enumerate(argv):
        esc = _no_newlines(arg).replace("%", "%%")
        if i > 0:  # the command itself is not variable-expanded (systemd#23235): "$$" there stays "$$"
            esc = esc.replace("$", "$$")
        if _SYSTEMD_PLAIN.fullmatch(arg):
            words.append(esc)
        else:
            words.append('"' + esc.replace("\\", "\\\\").replace('"', '\\"') + '"')
    return " ".join(words)


def parse_systemd_exec(value: str) -> list[str]:
    """The arguments of an ``ExecStart=`` line as systemd splits them (the subset we write)."""
    words = _split_words(value, quotes="\"'", escape_outside=True, escapes={"n": "\n", "t": "\t", "s": " "})
    words = [w.replace("%%", "%") for w in words]
    return words[:1] + [w.replace("$$", "$") for w in words[1:]]


def windows_cmdline(argv: Sequence[str]) -> str:
    """A Windows command line: the program always in double quotes, the rest by the MS C rules.

    Quoting the program even without spaces is the convention for Run values (and avoids the
    classic unquoted-path ambiguity); ``subprocess.list2cmdline`` applies the argument rules
    that ``CommandLineToArgvW`` reverses.
    """
    program = _no_newlines(argv[0])
    if '"' in program:
        raise ValueError(f"a Windows path cannot contain a double quote: {program!r}")
    rest = subprocess.list2cmdline([_no_newlines(a) for a in argv[1:]])
    return f'"{program}"' + (" " + rest if rest else "")


def parse_windows_cmdline(line: str) -> list[str]:
    """``CommandLineToArgvW``: the program up to its closing quote, then the MS C argument rules."""
    line = line.lstrip()
    if line.startswith('"'):
        end = line.find('"', 1)
        end = len(line) if end < 0 else end
        words, i = [line[1:end]], end + 1
    else:
        blank = re.search(r"[ \t]", line)
        end = blank.start() if blank else len(line)
        words, i = [line[:end]], end
    current: list[str] | None = None
    quoted = False
    while i < len(line):
        c = line[i]
        if c == "\\":
            n = len(line[i:]) - len(line[i:].lstrip("\\"))
            current = current if current is not None else []
            if i + n < len(line) and line[i + n] == '"':
                current.append("\\" * (n // 2))
                if n % 2:
                    current.append('"')
                    i += 1
                i += n
                continue
            current.append("\\" * n)
            i += n
            continue
        if c == '"':
            current = current if current is not None else []
            quoted = not quoted
        elif c in " \t" and not quoted:
            if current is not None:
                words.append("".join(current))
                current = None
        else:
            current = current if current is not None else []
            current.append(c)
        i += 1
    if current is not None:
        words.append("".join(current))
    return words


# ------------------------------------------------------------------------------ the artefacts
def render_desktop(argv: Sequence[str]) -> str:
    """The XDG autostart entry. ``TryExec`` makes session managers skip it once the venv is gone."""
    return "\n".join([
        "[Desktop Entry]",
        f"# {MARKER}",
        "Type=Application",
        "Version=1.0",
        "Name=warpd",
        "GenericName=STO screenshot-to-build daemon",
        "Comment=Watches Star Trek Online screenshots and writes SETS build files",
        f"Exec={desktop_exec(argv)}",
        f"TryExec={_keyfile_escape(_no_newlines(argv[0]))}",
        "Icon=warpd",
        "Terminal=false",
        "X-GNOME-Autostart-enabled=true",
        "",
    ])


def render_unit(argv: Sequence[str]) -> str:
    """The systemd user unit: lives and dies with the graphical session, restarts on failure, gives up."""
    return "\n".join([
        f"# {MARKER}",
        "[Unit]",
        "Description=warpd, the Star Trek Online screenshot-to-build daemon",
        "# The tray needs the session's display and D-Bus: start after the graphical session, stop with it.",
        f"PartOf={SESSION_TARGET}",
        f"After={SESSION_TARGET}",
        "# At most 4 starts in 5 minutes: a warpd started by hand holds the instance lock, and a",
        "# failing start must not loop forever.",
        "StartLimitIntervalSec=300",
        "StartLimitBurst=4",
        "",
        "[Service]",
        "Type=exec",
        f"ExecStart={systemd_exec(argv)}",
        "Restart=on-failure",
        "RestartSec=10",
        "# Exit status 2 is a configuration or usage error: restarting does not fix it.",
        "RestartPreventExitStatus=2 3",
        "",
        "[Install]",
        f"WantedBy={SESSION_TARGET}",
        "",
    ])


def render_plist(argv: Sequence[str], log_dir: str) -> bytes:
    """The LaunchAgent: GUI session only, started at login, restarted only after a crash.

    ``KeepAlive={Crashed: true}`` restarts after a signal-type crash but not after a normal exit
    (Quit from the tray, or a second instance refused by the lock). launchd's PATH is
    /usr/bin:/bin:/usr/sbin:/sbin, which misses Homebrew's tesseract, hence ``EnvironmentVariables``.
    """
    bindir = posixpath.dirname(argv[0])
    search = [bindir, "/opt/homebrew/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin"]
    plist = {
        "Label": LABEL,
        "ProgramArguments": list(argv),
        "RunAtLoad": True,
        "KeepAlive": {"Crashed": True},
        "LimitLoadToSessionType": "Aqua",
        "EnvironmentVariables": {"PATH": ":".join(dict.fromkeys(search))},
        "StandardOutPath": posixpath.join(log_dir, "launchd.stdout.log"),
        "StandardErrorPath": posixpath.join(log_dir, "launchd.stderr.log"),
    }
    return plistlib.dumps(plist, fmt=plistlib.FMT_XML, sort_keys=False)


# ------------------------------------------------------------------------------ the methods
@dataclass
class Outcome:
    """What install/uninstall did, for the user (text) and for scripts (``--json``)."""

    method: str | None = None
    reason: str = ""
    done: list[str] = field(default_factory=list)
    commands: list[list[str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    ok: bool = True

    def run(self, host: Host, argv: list[str]) -> tuple[int, str]:
        """Run a service-manager command and keep it in the record."""
        self.commands.append(argv)
        return host.runner(argv)


class Method(Protocol):
    name: str

    def location(self) -> str: ...

    def installed(self) -> bool: ...

    def recorded(self) -> list[str] | None: ...

    def enabled(self) -> bool | None: ...

    def install(self, launch: Launch, out: Outcome) -> None: ...

    def uninstall(self, out: Outcome) -> None: ...


def _write(path: Path, data: bytes) -> None:
    """Replace the file atomically, so a session starting meanwhile never reads half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _remove(path: Path, out: Outcome) -> None:
    if path.is_symlink() or path.exists():
        path.unlink()
        out.done.append(f"removed {path}")


def _read_keyfile(path: Path) -> configparser.ConfigParser | None:
    parser = configparser.ConfigParser(interpolation=None, strict=False, delimiters=("=",),
                                       comment_prefixes=("#",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    try:
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, configparser.Error):
        return None
    return parser


@dataclass
class XdgMethod:
    """``$XDG_CONFIG_HOME/autostart/warpd.desktop``: started by the session manager, with its environment."""

    host: Host
    name: str = "xdg"

    def path(self) -> Path:
        return self.host.config_home() / "autostart" / f"{APP}.desktop"

    def location(self) -> str:
        return str(self.path())

    def installed(self) -> bool:
        return self.path().is_file()

    def _entry(self) -> configparser.SectionProxy | None:
        parser = _read_keyfile(self.path())
        return parser["Desktop Entry"] if parser and parser.has_section("Desktop Entry") else None

    def recorded(self) -> list[str] | None:
        entry = self._entry()
        return parse_desktop_exec(entry["Exec"]) if entry is not None and "Exec" in entry else None

    def enabled(self) -> bool | None:
        """False when a desktop's autostart settings switched it off in place (Hidden, GNOME's key)."""
        entry = self._entry()
        if entry is None:
            return None
        return not (entry.get("Hidden", "false") == "true" or entry.get("X-GNOME-Autostart-enabled") == "false")

    def install(self, launch: Launch, out: Outcome) -> None:
        _write(self.path(), render_desktop(launch.argv).encode("utf-8"))
        out.done.append(f"wrote {self.path()} (starts at your next desktop login)")

    def uninstall(self, out: Outcome) -> None:
        _remove(self.path(), out)


@dataclass
class SystemdMethod:
    """``warpd.service`` in the user's unit folder, wanted by ``graphical-session.target``."""

    host: Host
    name: str = "systemd"

    def unit_dir(self) -> Path:
        return self.host.config_home() / "systemd" / "user"

    def path(self) -> Path:
        return self.unit_dir() / UNIT

    def link(self) -> Path:
        """What ``systemctl --user enable`` creates; checked directly so status needs no systemctl."""
        return self.unit_dir() / f"{SESSION_TARGET}.wants" / UNIT

    def location(self) -> str:
        return str(self.path())

    def installed(self) -> bool:
        return self.path().is_file() or self.link().is_symlink()

    def recorded(self) -> list[str] | None:
        parser = _read_keyfile(self.path())
        if parser is None or not parser.has_option("Service", "ExecStart"):
            return None
        return parse_systemd_exec(parser["Service"]["ExecStart"])

    def enabled(self) -> bool | None:
        return self.link().is_symlink() if self.path().is_file() else None

    def install(self, launch: Launch, out: Outcome) -> None:
        _write(self.path(), render_unit(launch.argv).encode("utf-8"))
        out.done.append(f"wrote {self.path()}")
        code, text = out.run(self.host, ["systemctl", "--user", "daemon-reload"])
        if code == 0:
            code, text = out.run(self.host, ["systemctl", "--user", "enable", UNIT])
            if code != 0:
                out.ok = False
                out.warnings.append(f"systemctl --user enable {UNIT} failed: {text}")
                return
            out.done.append(f"enabled {UNIT} (starts with your next graphical session; "
                            f"now: systemctl --user start {UNIT})")
            return
        # No user manager reachable (e.g. over ssh): enable by hand, as systemctl would have.
        self.link().parent.mkdir(parents=True, exist_ok=True)
        if not self.link().is_symlink():
            self.link().symlink_to(Path("..") / UNIT)
        out.warnings.append(f"systemctl --user is not reachable ({text}); linked {self.link()} instead, "
                            "systemd reads it at your next login")

    def uninstall(self, out: Outcome) -> None:
        if not self.installed():
            return
        if self.path().is_file():
            code, text = out.run(self.host, ["systemctl", "--user", "disable", UNIT])
            if code == 0:
                out.done.append(f"disabled {UNIT} (a running warpd keeps running until you quit it or log out)")
        _remove(self.link(), out)
        _remove(self.path(), out)
        out.run(self.host, ["systemctl", "--user", "daemon-reload"])  # best effort: forget the removed unit


@dataclass
class RegistryMethod:
    """The value ``warpd`` under HKCU's Run key: Explorer runs it at logon, no admin rights needed."""

    host: Host
    name: str = "registry"

    def location(self) -> str:
        return f"HKCU\\{RUN_KEY}\\{APP}"

    def installed(self) -> bool:
        return self.host.run_key().get(APP) is not None

    def recorded(self) -> list[str] | None:
        value = self.host.run_key().get(APP)
        return parse_windows_cmdline(value) if value else None

    def enabled(self) -> bool | None:
        return None  # Task Manager's "disabled" flag lives in Explorer\StartupApproved; not read

    def install(self, launch: Launch, out: Outcome) -> None:
        value = windows_cmdline(launch.argv)
        self.host.run_key().set(APP, value)
        out.done.append(f"set {self.location()} = {value} (starts at your next logon)")

    def uninstall(self, out: Outcome) -> None:
        if self.host.run_key().delete(APP):
            out.done.append(f"removed {self.location()}")


@dataclass
class LaunchAgentMethod:
    """``~/Library/LaunchAgents/io.github.warpd.plist``, loaded into the user's GUI domain."""

    host: Host
    log_dir: str
    name: str = "launchagent"

    def path(self) -> Path:
        return self.host.home / "Library" / "LaunchAgents" / f"{LABEL}.plist"

    def location(self) -> str:
        return str(self.path())

    def installed(self) -> bool:
        return self.path().is_file()

    def recorded(self) -> list[str] | None:
        try:
            data = plistlib.loads(self.path().read_bytes())
        except (OSError, plistlib.InvalidFileException, ValueError):
            return None
        args = data.get("ProgramArguments") if isinstance(data, dict) else None
        return [str(a) for a in args] if isinstance(args, list) else None

    def enabled(self) -> bool | None:
        return None

    def domain(self) -> str:
        return f"gui/{self.host.user_id()}"

    def install(self, launch: Launch, out: Outcome) -> None:
        reinstall = self.installed()
        Path(self.log_dir).mkdir(parents=True, exist_ok=True)  # launchd does not create the log folder
        _write(self.path(), render_plist(launch.argv, self.log_dir))
        out.done.append(f"wrote {self.path()}")
        if reinstall:  # bootstrap refuses a label that is already loaded
            out.run(self.host, ["launchctl", "bootout", f"{self.domain()}/{LABEL}"])
        code, text = out.run(self.host, ["launchctl", "bootstrap", self.domain(), str(self.path())])
        if code == 0:
            out.done.append(f"loaded {LABEL} into {self.domain()} (warpd starts now and at every login)")
        else:
            out.warnings.append(f"launchctl bootstrap failed ({text}); warpd starts at your next login")

    def uninstall(self, out: Outcome) -> None:
        if not self.installed():
            return
        code, _text = out.run(self.host, ["launchctl", "bootout", f"{self.domain()}/{LABEL}"])
        if code == 0:
            out.done.append(f"unloaded {LABEL} (this also stops the warpd it started)")
        _remove(self.path(), out)


# ------------------------------------------------------------------------------ the operations
class Autostart:
    """install / uninstall / status for one host and one launch command."""

    def __init__(self, host: Host, launch: Launch | None = None, log_dir: str | None = None):
        self.host = host
        self.launch = launch or launch_command(host)
        self.log_dir = log_dir or str(host.home / "Library" / "Logs" / APP)

    def methods(self) -> dict[str, Method]:
        """This platform's methods, in preference order."""
        all_methods: dict[str, Method] = {"systemd": SystemdMethod(self.host), "xdg": XdgMethod(self.host),
                                          "registry": RegistryMethod(self.host),
                                          "launchagent": LaunchAgentMethod(self.host, self.log_dir)}
        return {name: all_methods[name] for name in METHODS_BY_FAMILY[self.host.family]}

    def systemd_usable(self) -> tuple[bool, str]:
        """Whether a unit wanted by graphical-session.target would start here.

        The target ships with every systemd, but only desktops that run their session through
        systemd (GNOME, KDE Plasma, sway with the integration set up) activate it and import
        DISPLAY/WAYLAND_DISPLAY and the D-Bus address. So the test is "active now", run inside the
        session; anywhere else (other desktops, ssh, no systemd) the XDG entry is the safe choice.
        """
        if not self.host.platform.startswith("linux"):
            return False, "systemd exists only on Linux"
        code, text = self.host.runner(["systemctl", "--user", "is-active", SESSION_TARGET])
        state = text.strip().splitlines()[-1] if text.strip() else ""
        if code == 0 and state == "active":
            return True, f"systemctl --user works and {SESSION_TARGET} is active in this session"
        if code == 127:
            return False, "systemctl is not installed"
        if state in ("inactive", "failed", "activating", "deactivating", "unknown"):
            return False, (f"{SESSION_TARGET} is {state}: this desktop session does not run through systemd, "
                           "so the XDG autostart entry is used")
        return False, f"systemctl --user does not work here: {text or f'exit status {code}'}"

    def choose(self, requested: str = "auto") -> tuple[str, str]:
        """The method to install, and why (shown to the user)."""
        available = METHODS_BY_FAMILY[self.host.family]
        if requested != "auto":
            if requested not in available:
                raise ValueError(f"--method {requested} is not available on {self.host.platform} "
                                 f"(choose from: {', '.join(available)})")
            return requested, "chosen with --method"
        if self.host.family != "xdg":
            return available[0], f"the per-user autostart of {self.host.platform}"
        usable, why = self.systemd_usable()
        return ("systemd", why) if usable else ("xdg", why)

    def install(self, requested: str = "auto") -> Outcome:
        """Write the chosen method's artefact after removing every other one (never two daemons)."""
        method, reason = self.choose(requested)
        out = Outcome(method=method, reason=reason)
        for name, other in self.methods().items():
            if name != method:
                other.uninstall(out)
        if self.launch.console:
            out.warnings.append(f"no console-less launcher found ({GUI_SCRIPT}.exe or pythonw.exe): "
                                "a console window will open at logon")
        self.methods()[method].install(self.launch, out)
        return out

    def uninstall(self) -> Outcome:
        """Remove whatever any method installed; nothing to remove is not an error (idempotent)."""
        out = Outcome()
        for method in self.methods().values():
            if method.installed():
                out.method = method.name if out.method is None else f"{out.method},{method.name}"
            method.uninstall(out)
        if not out.done:
            out.done.append("nothing to remove: autostart was not installed")
        return out

    def status(self) -> dict[str, Any]:
        """Each method's state, the command it runs and whether that executable still exists."""
        methods: dict[str, dict[str, Any]] = {}
        for name, method in self.methods().items():
            argv = method.recorded() if method.installed() else None
            methods[name] = {
                "installed": method.installed(),
                "location": method.location(),
                "enabled": method.enabled() if method.installed() else None,
                "command": argv,
                "executable": argv[0] if argv else None,
                "executable_exists": self.host.is_file(argv[0]) if argv else None,
                "up_to_date": argv == self.launch.argv if argv else None,
            }
        installed = [name for name, info in methods.items() if info["installed"]]
        would, why = self.choose("auto")
        return {"platform": self.host.platform, "installed": installed, "methods": methods,
                "install_would_use": {"method": would, "reason": why, "command": self.launch.argv,
                                      "how": self.launch.how}}


def status_ok(status: dict[str, Any]) -> bool:
    """Installed once, enabled, and pointing at an executable that exists."""
    if len(status["installed"]) != 1:
        return False
    info = status["methods"][status["installed"][0]]
    return bool(info["executable_exists"]) and info["enabled"] is not False


# ------------------------------------------------------------------------------ packaging examples
EXAMPLE_UNIX_ARGV = ["/home/you/.local/share/pipx/venvs/warpd/bin/warpd", "run"]
EXAMPLE_MAC_ARGV = ["/Users/you/.local/pipx/venvs/warpd/bin/warpd", "run"]
EXAMPLE_MAC_LOGS = "/Users/you/Library/Application Support/warpd/logs"
EXAMPLE_WINDOWS_ARGV = [r"C:\Users\you\AppData\Local\Programs\Python\Python312\Scripts\warpdw.exe", "run"]


def examples() -> dict[str, bytes]:
    """packaging/ example files, generated by the same code as ``install`` so they cannot drift."""
    value = windows_cmdline(EXAMPLE_WINDOWS_ARGV)
    reg_value = value.replace("\\", "\\\\").replace('"', '\\"')
    reg = ("Windows Registry Editor Version 5.00\r\n\r\n"
           f"; Example only: 'warpd autostart install' writes this value with your real path.\r\n"
           f"[HKEY_CURRENT_USER\\{RUN_KEY}]\r\n"
           f'"{APP}"="{reg_value}"\r\n')
    return {
        "linux/autostart/warpd.desktop": render_desktop(EXAMPLE_UNIX_ARGV).encode("utf-8"),
        "linux/systemd/warpd.service": render_unit(EXAMPLE_UNIX_ARGV).encode("utf-8"),
        f"macos/{LABEL}.plist": render_plist(EXAMPLE_MAC_ARGV, EXAMPLE_MAC_LOGS),
        "windows/run-key.reg.example": reg.encode("utf-8"),
    }


def write_examples(folder: str | Path) -> list[Path]:
    """Regenerate the packaging/ examples (``python -c 'from warpd.autostart import write_examples; ...'``)."""
    written = []
    for rel, data in examples().items():
        path = Path(folder) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        written.append(path)
    return written


# ------------------------------------------------------------------------------ CLI
def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "autostart", help="start warpd automatically when you log in (install, uninstall, status)",
        description="Start 'warpd run' with your desktop session. Linux: an XDG autostart entry or a "
                    "systemd user unit bound to graphical-session.target; Windows: the per-user Run key; "
                    "macOS: a LaunchAgent. Only one is ever installed.")
    actions = parser.add_subparsers(dest="action", metavar="<action>", required=True)
    inst = actions.add_parser("install", help="start warpd at login (replaces any earlier autostart)",
                              description="Write the autostart entry for this platform. On Linux the default "
                                          "is the systemd user unit when 'systemctl --user' works and "
                                          "graphical-session.target is active in this session, else the "
                                          "XDG autostart entry. A global --config FILE is recorded too.")
    inst.add_argument("--method", choices=("auto",) + ALL_METHODS, default="auto",
                      help="xdg or systemd (Linux), registry (Windows), launchagent (macOS); default: auto")
    inst.add_argument("--dry-run", action="store_true", help="print what would be written, change nothing")
    inst.add_argument("--json", action="store_true", help="print the outcome as JSON")
    uninst = actions.add_parser("uninstall", help="stop starting warpd at login",
                                description="Remove every autostart entry 'install' can write (and disable "
                                            "the systemd unit). Safe to run when nothing is installed.")
    uninst.add_argument("--json", action="store_true", help="print the outcome as JSON")
    stat = actions.add_parser("status", help="which autostart is installed and what it runs",
                              description="Exit status 0 when exactly one autostart is installed, enabled and "
                                          "points at an existing executable; 1 otherwise.")
    stat.add_argument("--json", action="store_true", help="print the status as JSON")
    parser.set_defaults(func=run)


def _log_dir(cfg: Any) -> str | None:
    """The daemon's log folder (the LaunchAgent sends stdout/stderr there)."""
    if cfg is None:
        return None
    from warpd.paths import data_paths

    return str(data_paths(cfg).logs)


def _installed_in_this_python() -> bool:
    from importlib import metadata

    try:
        metadata.version(APP)
    except metadata.PackageNotFoundError:
        return False
    return True


def run(args: argparse.Namespace, cfg: Any, host: Host | None = None) -> int:
    host = host or Host()
    try:
        auto = Autostart(host, launch_command(host, getattr(args, "config", None)), _log_dir(cfg))
        if args.action == "status":
            return _print_status(auto.status(), args.json)
        if args.action == "uninstall":
            return _print_outcome(auto.uninstall(), args.json)
        if args.dry_run:
            return _print_dry_run(auto, args.method, args.json)
        out = auto.install(args.method)
    except (ValueError, OSError) as exc:  # unknown method here, unwritable folder, registry refused
        print(f"warpd autostart: {exc}", file=sys.stderr)
        return 1
    if getattr(args, "overrides", None):
        out.warnings.append("--set values are not recorded in the autostart entry; put them in your config file")
    if auto.launch.how == "python -m" and not _installed_in_this_python():
        out.warnings.append(f"warpd is not installed in {host.python} (running from a source folder?); "
                            "the entry will not find it at login: pip install it first")
    return _print_outcome(out, args.json)


def _print_dry_run(auto: Autostart, requested: str, as_json: bool) -> int:
    method, reason = auto.choose(requested)
    argv = auto.launch.argv
    content = {"xdg": lambda: render_desktop(argv), "systemd": lambda: render_unit(argv),
               "registry": lambda: windows_cmdline(argv),
               "launchagent": lambda: render_plist(argv, auto.log_dir).decode("utf-8")}[method]()
    location = auto.methods()[method].location()
    if as_json:
        from warpd.cli import print_json

        print_json({"method": method, "reason": reason, "location": location, "content": content})
    else:
        print(f"# method: {method} ({reason})\n# location: {location}\n{content}")
    return 0


def _print_outcome(out: Outcome, as_json: bool) -> int:
    code = 0 if out.ok else 1
    if as_json:
        from warpd.cli import print_json

        print_json({"ok": out.ok, "method": out.method, "reason": out.reason, "done": out.done,
                    "commands": out.commands, "warnings": out.warnings})
        return code
    if out.reason:
        print(f"method: {out.method} ({out.reason})")
    for line in out.done:
        print(line)
    for line in out.warnings:
        print(f"warning: {line}", file=sys.stderr)
    return code


def _print_status(status: dict[str, Any], as_json: bool) -> int:
    code = 0 if status_ok(status) else 1
    if as_json:
        from warpd.cli import print_json

        print_json({**status, "ok": code == 0})
        return code
    would = status["install_would_use"]
    if not status["installed"]:
        print(f"autostart: not installed; 'warpd autostart install' would use {would['method']} ({would['reason']})")
        return code
    if len(status["installed"]) > 1:
        print(f"warning: more than one autostart is installed ({', '.join(status['installed'])}): "
              "run 'warpd autostart install' to keep one", file=sys.stderr)
    for name in status["installed"]:
        info = status["methods"][name]
        state = {True: "enabled", False: "disabled", None: "installed"}[info["enabled"]]
        print(f"autostart: {name} ({state})\n  location: {info['location']}")
        print(f"  runs: {' '.join(info['command'] or ['?'])}")
        if not info["executable_exists"]:
            print(f"  executable: MISSING ({info['executable']}); run 'warpd autostart install' again")
        elif not info["up_to_date"]:
            print(f"  note: this warpd would write {' '.join(would['command'])}; run 'warpd autostart install' "
                  "to switch")
    return code
