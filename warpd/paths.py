"""Where warpd keeps things on disk, and the anonymous install id.

One place decides every path so the daemon, the CLI and ``warpd doctor`` agree. The layout of the
data folder follows the seed's ``warp/`` folder where it matters to users migrating from SETS-WARP
(``training_data/crops/<sha256>.png``, ``models/``).
"""

from __future__ import annotations

import os
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from warpd.config import APP_NAME, Config

INSTALL_ID_FILE = "install_id.txt"


@dataclass(frozen=True)
class DataPaths:
    """The folders under the data directory."""

    root: Path

    @property
    def training_data(self) -> Path:
        return self.root / "training_data"

    @property
    def crops(self) -> Path:
        return self.training_data / "crops"

    @property
    def screen_types(self) -> Path:
        return self.training_data / "screen_types"

    @property
    def models(self) -> Path:
        return self.root / "models"

    @property
    def state_db(self) -> Path:
        return self.root / "state.sqlite3"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def token_file(self) -> Path:
        return self.root / "hub_token"

    @property
    def install_id_file(self) -> Path:
        return self.root / INSTALL_ID_FILE


def data_paths(cfg: Config) -> DataPaths:
    """The configured data folder, or the platform's user data folder."""
    configured = cfg.paths.data_dir
    root = Path(configured).expanduser() if configured else Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))
    return DataPaths(root)


def output_dir(cfg: Config) -> Path:
    configured = cfg.paths.output_dir
    return Path(configured).expanduser() if configured else data_paths(cfg).root / "builds"


def sets_config_dir() -> Path | None:
    """SETS's own config folder (sets-build-format.md §6.1), if this machine has one."""
    candidates: list[Path] = []
    if sys.platform == "win32":
        for var in ("APPDATA", "USERPROFILE"):
            if os.environ.get(var):
                candidates.append(Path(os.environ[var]) / "SETS")
    else:
        if os.environ.get("XDG_CONFIG_HOME"):
            candidates.append(Path(os.environ["XDG_CONFIG_HOME"]) / "SETS")
        candidates += [Path.home() / ".config" / "SETS", Path.home() / ".sets"]
    return next((c for c in candidates if c.is_dir()), None)


def icons_dir(cfg: Config) -> Path:
    """The icon library: configured, else SETS's image cache, else our own folder."""
    if cfg.paths.icons_dir:
        return Path(cfg.paths.icons_dir).expanduser()
    sets = sets_config_dir()
    if sets is not None and (sets / "images").is_dir():
        return sets / "images"
    return data_paths(cfg).root / "icons"


def catalog_dir(cfg: Config) -> Path | None:
    """A SETS cargo folder to read current game data from, or None for the bundled catalogue."""
    if cfg.paths.catalog_dir:
        return Path(cfg.paths.catalog_dir).expanduser()
    sets = sets_config_dir()
    if sets is not None and (sets / "cargo" / "ship_list.json").is_file():
        return sets / "cargo"
    return None


def install_id(paths: DataPaths, create: bool = True) -> str | None:
    """The anonymous install id (a UUID4 made on first run); its only use is one vote per install."""
    path = paths.install_id_file
    if path.is_file():
        text = path.read_text(encoding="utf-8").strip()
        try:
            return str(uuid.UUID(text))
        except ValueError:
            pass  # a damaged file is replaced: the id carries no history worth keeping
    if not create:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    new_id = str(uuid.uuid4())
    tmp = path.with_suffix(".tmp")
    tmp.write_text(new_id + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return new_id
