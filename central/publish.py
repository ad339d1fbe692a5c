"""Publish a model set to the knowledge repo: staged, verified as a client would, then ONE commit.

What the predecessor got wrong, and what is done instead (../shared/reference/community-pipeline.md):

* **Files copied one by one** (a reader could see half a set): everything goes in ONE commit
  (``Hub.commit``), parented on the knowledge revision the run evaluated against, so a commit that
  raced another writer fails with :class:`warpd.hub.HubConflict` instead of mixing two runs.
* **Unverifiable downloads**: ``models/model_version.json`` lists every published file with its
  sha256 and size (paths relative to the repo root: ``models/<name>``, ``knowledge.json``); clients
  (``warpd.sync.Updater``) download exactly those and verify them.
* **A set clients then refuse**: before committing, the staged files are laid out as the client
  installs them and loaded with :func:`warpd.models.load_model_set` (``strict=True``), the client's
  own verification (ONNX loads and runs, label maps match outputs, knowledge and corrections parse).
* **Non-ISO trained_at**: written by :func:`warpd.formats.format_utc`, always later than the
  published one (clients install only a newer ``trained_at``).
* **A lost screen model**: the client swaps its whole models folder, so a run that trains no screen
  classifier re-publishes the previous one (same bytes, listed again) instead of dropping it.

Reports (``reports/<YYYYmmddTHHMMSSZ>/``) may ride in the same commit; they are not listed in
``files`` (clients never download them).
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from warpd import formats
from warpd.formats import ModelVersion
from warpd.hub import Hub, HubNotFound

# Published files, by role (paths relative to the knowledge repo's root).
ICON_FILES = (formats.ICON_ONNX, formats.ICON_PT, formats.LABEL_MAP, formats.ICON_META)
SCREEN_FILES = (formats.SCREEN_ONNX, formats.SCREEN_PT, formats.SCREEN_LABELS)
VERSION_PATH = f"{formats.MODELS_DIR}/{formats.MODEL_VERSION}"
MANIFEST_PATH = f"{formats.MODELS_DIR}/{formats.MANIFEST}"
REPO_TYPE = "model"  # what warpd.sync.Updater reads the knowledge repo as
# Committed for the next run's fine-tuning, never listed for clients (they run ONNX).
TRAINING_ONLY = frozenset({f"{formats.MODELS_DIR}/{formats.ICON_PT}", f"{formats.MODELS_DIR}/{formats.SCREEN_PT}"})


def model_path(name: str) -> str:
    """``models/<name>``."""
    return f"{formats.MODELS_DIR}/{name}"


def json_bytes(obj: Any) -> bytes:
    """Stable, human-readable JSON (item names unescaped)."""
    return (json.dumps(obj, indent=1, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


# ------------------------------------------------------------------------------ what is published now
@dataclass
class Previous:
    """The published set at the pinned knowledge revision (all parts optional: a first run has none)."""

    revision: str | None = None
    version: ModelVersion | None = None
    version_raw: dict[str, Any] | None = None
    names: list[str] | None = None
    manifest: dict[str, Any] | None = None
    folder: Path | None = None
    files: dict[str, Path] = field(default_factory=dict)  # repo path -> local copy
    problems: list[str] = field(default_factory=list)

    @property
    def has_icon_model(self) -> bool:
        return model_path(formats.ICON_ONNX) in self.files and model_path(formats.LABEL_MAP) in self.files

    @property
    def has_screen_model(self) -> bool:
        return all(model_path(n) in self.files for n in (formats.SCREEN_ONNX, formats.SCREEN_LABELS))

    def manifest_shas(self) -> set[str] | None:
        return formats.parse_manifest(self.manifest) if self.manifest is not None else None


def knowledge_head(hub: Hub, repo: str) -> str | None:
    """The knowledge repo's head commit, or None when the repo does not exist yet (a first run)."""
    try:
        return hub.head(repo, repo_type=REPO_TYPE)
    except HubNotFound:
        return None


def read_previous_manifest(hub: Hub, repo: str, revision: str | None) -> dict[str, Any] | None:
    """training_manifest.json at ``revision`` (the fast skip check needs only this one small file)."""
    if revision is None:
        return None
    raw = hub.read_optional(repo, MANIFEST_PATH, repo_type=REPO_TYPE, revision=revision)
    return None if raw is None else formats.read_json_object(raw, formats.MANIFEST)


def fetch_previous(hub: Hub, repo: str, revision: str | None, dest: Path) -> Previous:
    """Download the published set at ``revision`` into ``dest`` (flat, like the client's models folder).

    Files are those the published model_version.json lists plus the .pt files and the manifest. A file
    listed but not downloadable is recorded in ``problems`` (the gate then refuses to compare against
    a model it could not read); an absent optional file is not a problem.
    """
    prev = Previous(revision=revision)
    if revision is None:
        return prev
    dest = Path(dest)
    shutil.rmtree(dest, ignore_errors=True)
    dest.mkdir(parents=True)
    prev.folder = dest
    raw = hub.read_optional(repo, VERSION_PATH, repo_type=REPO_TYPE, revision=revision)
    try:
        if raw is not None:
            prev.version = formats.parse_model_version(raw)
            prev.version_raw = json.loads(raw)
    except formats.FormatError as exc:
        prev.problems.append(f"published {formats.MODEL_VERSION} is unreadable: {exc}")
    listed = set(prev.version.files) if prev.version else set()
    wanted = listed | {model_path(n) for n in (*ICON_FILES, *SCREEN_FILES, formats.MANIFEST)}
    for path in sorted(wanted):
        try:
            got = hub.download(repo, path, dest / "dl", repo_type=REPO_TYPE, revision=revision)
        except HubNotFound:
            if path in listed:
                prev.problems.append(f"{path} is listed in {formats.MODEL_VERSION} but missing")
            continue
        local = dest / path.split("/")[-1]
        got.replace(local)
        prev.files[path] = local
    shutil.rmtree(dest / "dl", ignore_errors=True)
    if model_path(formats.LABEL_MAP) in prev.files:
        try:
            prev.names = formats.parse_label_map(prev.files[model_path(formats.LABEL_MAP)].read_bytes())
        except formats.FormatError as exc:
            prev.problems.append(str(exc))
    if model_path(formats.MANIFEST) in prev.files:
        try:
            prev.manifest = formats.read_json_object(prev.files[model_path(formats.MANIFEST)].read_bytes(),
                                                     formats.MANIFEST)
        except formats.FormatError as exc:
            prev.problems.append(str(exc))
    if prev.version is not None:
        (dest / formats.MODEL_VERSION).write_bytes(json_bytes(prev.version_raw))
    return prev


# ------------------------------------------------------------------------------ staging
def next_trained_at(previous: ModelVersion | None, now: dt.datetime | None = None) -> dt.datetime:
    """Now (UTC, whole seconds), but always after the published ``trained_at`` (clients install only newer)."""
    when = now or formats.utc_now()
    if previous is not None and when <= previous.trained_at:
        when = previous.trained_at + dt.timedelta(seconds=1)
    return when


def stamp(when: dt.datetime) -> str:
    """``20260323T140000Z``: trained_at as a path segment (the Hub refuses colons)."""
    return when.astimezone(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def stage_files(model_dir: Path, *, screen_dir: Path | None, previous: Previous, corrections: Mapping[str, str],
                manifest: Mapping[str, Any], knowledge: Mapping[str, Any]) -> tuple[dict[str, bytes], bool]:
    """Repo path -> bytes of everything but model_version.json; and whether the screen model is new.

    ``screen_dir`` holds a freshly trained screen classifier (or None); without one, the published
    screen files are carried over unchanged.
    """
    files: dict[str, bytes] = {model_path(n): (Path(model_dir) / n).read_bytes() for n in ICON_FILES}
    screen_new = screen_dir is not None and all((Path(screen_dir) / n).is_file() for n in SCREEN_FILES)
    if screen_new:
        files.update({model_path(n): (Path(screen_dir) / n).read_bytes() for n in SCREEN_FILES})
    elif previous.has_screen_model:
        files.update({p: previous.files[p].read_bytes() for p in map(model_path, SCREEN_FILES) if p in previous.files})
    files[model_path(formats.CORRECTIONS)] = json_bytes(dict(sorted(corrections.items())))
    files[MANIFEST_PATH] = json_bytes(manifest)
    files[formats.KNOWLEDGE_FILE] = json_bytes(knowledge)
    return files, screen_new


def build_version(files: Mapping[str, bytes], *, version: str, trained_at: dt.datetime, n_classes: int,
                  val_acc: float | None, n_samples: int, n_users: int, screen: Mapping[str, Any] | None,
                  previous: ModelVersion | None, extra: Mapping[str, Any]) -> ModelVersion:
    """model_version.json for ``files`` (each listed with sha256 and size, except the weights-only
    ``.pt`` state dicts: they are committed for the next run's fine-tuning, but clients run ONNX and
    download only what is listed, so 16 MB they would never use stay on the Hub).

    ``screen`` carries this run's screen model figures (val_acc, n_samples) when it trained one;
    otherwise the previous screen figures are kept with the carried-over files.
    """
    if screen is not None:
        s_at, s_acc, s_n = trained_at, screen.get("val_acc"), int(screen.get("n_samples", 0))
    elif previous is not None and model_path(formats.SCREEN_ONNX) in files:
        s_at, s_acc, s_n = previous.screen_trained_at, previous.screen_val_acc, previous.screen_n_samples
    else:
        s_at, s_acc, s_n = None, None, 0
    return ModelVersion(version=version, trained_at=trained_at, n_classes=n_classes, val_acc=val_acc,
                        n_samples=n_samples, n_users=n_users, screen_trained_at=s_at, screen_val_acc=s_acc,
                        screen_n_samples=s_n,
                        files={p: formats.file_entry(d) for p, d in sorted(files.items()) if p not in TRAINING_ONLY},
                        extra=dict(extra))


def client_folder(files: Mapping[str, bytes], version_bytes: bytes, folder: Path) -> Path:
    """Lay the set out as warpd.sync.Updater installs it (flat: ``models/x`` -> ``x``, knowledge.json)."""
    from warpd.sync import local_name

    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for path, data in files.items():
        (folder / local_name(path)).write_bytes(data)
    (folder / formats.MODEL_VERSION).write_bytes(version_bytes)
    return folder


def verify(files: Mapping[str, bytes], version: ModelVersion, folder: Path) -> Any:
    """Check the set exactly as a client would before it is committed; raises on any problem.

    Returns the loaded :class:`warpd.models.ModelSet`.
    """
    from warpd.models import load_model_set

    version_bytes = json_bytes(version.to_json())
    parsed = formats.parse_model_version(version_bytes)
    for path, meta in parsed.files.items():
        data = files.get(path)
        if data is None or formats.file_entry(data) != meta:
            raise ValueError(f"{path} does not match its model_version.json entry")
    models = load_model_set(client_folder(files, version_bytes, folder), strict=True)
    if models.icon is None:
        raise ValueError("the staged set has no icon classifier")
    if len(models.icon.labels) != version.n_classes:
        raise ValueError(f"model_version.json says {version.n_classes} classes, "
                         f"the model has {len(models.icon.labels)}")
    return models


def commit(hub: Hub, repo: str, files: Mapping[str, bytes], message: str, *, parent: str | None) -> str:
    """ONE commit of ``files`` on main, parented on the evaluated revision (HubConflict if it moved)."""
    hub.ensure_repo(repo, repo_type=REPO_TYPE)
    return hub.commit(repo, dict(files), message, repo_type=REPO_TYPE, parent=parent)


def write_staged(files: Mapping[str, bytes], folder: Path) -> None:
    """The commit's files in repo layout under ``folder`` (what --dry-run leaves for inspection)."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    for path, data in files.items():
        target = folder / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def read_staged(folder: Path) -> dict[str, bytes]:
    """Files written by :func:`write_staged`, as repo path -> bytes."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def scratch_dir(parent: Path, prefix: str) -> Path:
    """A fresh temporary folder inside the work folder (kept on the same filesystem)."""
    Path(parent).mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


__all__ = [
    "ICON_FILES", "MANIFEST_PATH", "Previous", "REPO_TYPE", "SCREEN_FILES", "VERSION_PATH", "build_version",
    "client_folder", "commit", "fetch_previous", "json_bytes", "knowledge_head", "model_path", "next_trained_at",
    "read_previous_manifest", "read_staged", "stage_files", "stamp", "verify", "write_staged",
]
