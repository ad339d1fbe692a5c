"""Configuration: documented defaults, the user's TOML file, then environment and command line.

Every tunable value of warpd lives in ``config/warpd.toml`` with a comment saying what it does;
code reads it through :func:`load_config` instead of keeping literals of its own. The user's file
may only name keys the defaults know, with values of the same type, so a typo is an error that
names the file, the line and the key instead of a setting silently ignored.
"""

from __future__ import annotations

import copy
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the project requires 3.11, kept for the tomli fallback named in the design
    import tomli as tomllib

import platformdirs

APP_NAME = "warpd"
CONFIG_FILE_NAME = "warpd.toml"
ENV_PREFIX = "WARPD_"
ENV_CONFIG_FILE = "WARPD_CONFIG"

_TOML_LINE = re.compile(r"at line (\d+)")


class ConfigError(ValueError):
    """A configuration value that cannot be used; the message names file, line and key."""

    def __init__(self, message: str, *, source: str, line: int | None = None, key: str | None = None):
        self.source, self.line, self.key = source, line, key
        where = source + (f":{line}" if line else "")
        what = f" key '{key}'" if key else ""
        super().__init__(f"{where}:{what} {message}".replace(": :", ":"))


def defaults_path() -> Path:
    """The documented defaults: ``config/warpd.toml`` in a checkout, ``warpd/defaults`` when installed."""
    checkout = Path(__file__).resolve().parent.parent / "config" / CONFIG_FILE_NAME
    if checkout.is_file():
        return checkout
    from importlib.resources import files

    return Path(str(files("warpd.defaults").joinpath(CONFIG_FILE_NAME)))


def user_config_path() -> Path:
    """The user's config file: ``$WARPD_CONFIG``, else the platform's config folder."""
    explicit = os.environ.get(ENV_CONFIG_FILE)
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)) / CONFIG_FILE_NAME


class Section:
    """Read-only attribute access to one table of the config (``cfg.recognition.auto_accept``)."""

    def __init__(self, name: str, values: Mapping[str, Any]):
        self._name, self._values = name, dict(values)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._values[key]
        except KeyError:
            raise AttributeError(f"config section [{self._name}] has no key {key!r}") from None

    def __getitem__(self, key: str) -> Any:
        return self._values[key]

    def as_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self._values)


@dataclass
class Config:
    """The merged configuration, plus where each part came from (for ``warpd doctor``)."""

    values: dict[str, dict[str, Any]]
    defaults_file: Path
    user_file: Path
    user_file_loaded: bool

    def __getattr__(self, section: str) -> Section:
        values = self.__dict__.get("values", {})
        if section in values:
            return Section(section, values[section])
        raise AttributeError(f"config has no section [{section}]")

    def as_dict(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self.values)


def _parse_toml(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = _TOML_LINE.search(str(exc))
        raise ConfigError(f"is not valid TOML: {exc}", source=source,
                          line=int(match.group(1)) if match else None) from None


def _key_line(text: str, section: str, key: str | None) -> int | None:
    """The line where ``[section]`` ``key`` (or the section header itself) is written, for errors."""
    current = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        header = re.match(r"^\[\s*([^\]]+?)\s*\]", line)
        if header:
            current = header.group(1).strip().strip('"')
            if key is None and current == section:
                return number
            continue
        if key is not None and current == section and re.match(rf"^\"?{re.escape(key)}\"?\s*=", line):
            return number
    return None


def _check_type(default: Any, value: Any) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, list):
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    return isinstance(value, type(default))


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string",
            list: "a list of strings"}.get(type(value), type(value).__name__)


def _merge(base: dict[str, dict[str, Any]], layer: Mapping[str, Any], *, source: str,
           text: str | None = None) -> None:
    """Apply one layer onto ``base`` in place; unknown keys and wrong types are errors."""
    for section, table in layer.items():
        if section not in base:
            raise ConfigError(f"unknown section [{section}]; known: {', '.join(sorted(base))}",
                              source=source, line=_key_line(text, section, None) if text else None, key=section)
        if not isinstance(table, Mapping):
            raise ConfigError("must be a table", source=source, key=section)
        for key, value in table.items():
            dotted = f"{section}.{key}"
            line = _key_line(text, section, key) if text else None
            if key not in base[section]:
                raise ConfigError(f"is not a setting of [{section}]; known: {', '.join(sorted(base[section]))}",
                                  source=source, line=line, key=dotted)
            default = base[section][key]
            if not _check_type(default, value):
                raise ConfigError(f"should be {_type_name(default)}, got {value!r}", source=source,
                                  line=line, key=dotted)
            base[section][key] = float(value) if isinstance(default, float) else value


def _parse_value(raw: str) -> Any:
    """A command-line or environment value: a TOML value, or else the bare string."""
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def parse_override(item: str) -> tuple[str, str, Any]:
    """``section.key=value`` -> (section, key, parsed value)."""
    name, sep, raw = item.partition("=")
    section, dot, key = name.strip().partition(".")
    if not sep or not dot or not section or not key:
        raise ConfigError(f"override {item!r} should look like section.key=value", source="--set")
    return section, key, _parse_value(raw.strip())


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    layer: dict[str, dict[str, Any]] = {}
    for name, raw in env.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name or name == ENV_CONFIG_FILE:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        layer.setdefault(section, {})[key] = _parse_value(raw)
    return layer


def load_config(path: str | Path | None = None, overrides: Iterable[str] = (),
                env: Mapping[str, str] | None = None) -> Config:
    """Defaults, then the user's file (``path`` or the platform's), then environment, then ``--set``."""
    env = os.environ if env is None else env
    dpath = defaults_path()
    values = _parse_toml(dpath.read_text(encoding="utf-8"), str(dpath))
    user = Path(path).expanduser() if path is not None else user_config_path()
    loaded = False
    if user.is_file():
        try:
            text = user.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot be read: {exc}", source=str(user)) from None
        _merge(values, _parse_toml(text, str(user)), source=str(user), text=text)
        loaded = True
    elif path is not None:
        raise ConfigError("does not exist", source=str(user))
    _merge(values, _env_overrides(env), source="environment (WARPD_<SECTION>__<KEY>)")
    cli_layer: dict[str, dict[str, Any]] = {}
    for item in overrides:
        section, key, value = parse_override(item)
        cli_layer.setdefault(section, {})[key] = value
    _merge(values, cli_layer, source="--set")
    _validate(values)
    return Config(values=values, defaults_file=dpath, user_file=user, user_file_loaded=loaded)


def default_config() -> Config:
    """The documented defaults alone (no user file, no environment): a fallback for diagnostics."""
    dpath = defaults_path()
    values = _parse_toml(dpath.read_text(encoding="utf-8"), str(dpath))
    return Config(values=values, defaults_file=dpath, user_file=user_config_path(), user_file_loaded=False)


def _validate(values: dict[str, dict[str, Any]]) -> None:
    """Cross-field rules the type check cannot see."""
    rec = values["recognition"]
    if not 0.0 <= rec["reject"] <= rec["auto_accept"] <= 1.0:
        raise ConfigError("needs 0 <= recognition.reject <= recognition.auto_accept <= 1",
                          source="configuration", key="recognition.auto_accept")
    for section, key in (("watch", "queue_size"), ("sync", "daily_cap"), ("recognition", "max_pixels")):
        if values[section][key] <= 0:
            raise ConfigError("must be positive", source="configuration", key=f"{section}.{key}")
