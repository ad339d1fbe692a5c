"""The one module that talks to a Hub: the HuggingFace Hub over HTTP, or a folder.

Everything warpd sends to or reads from the community hub goes through :class:`Hub`, so retries,
timeouts, error types, path safety and the token's secrecy are decided once, here:

* :class:`HttpHub` drives ``huggingface_hub`` (create repo, one NDJSON commit per batch, tree listing,
  revision lookup, ``hf_hub_download`` into a private folder). ``huggingface_hub`` is imported lazily,
  after the endpoint and telemetry switches are in the environment, because it reads them at import.
* :class:`DirHub` (``endpoint = "dir:/path"``) keeps repos in a folder for offline and self-hosted
  groups: content-addressed blobs, one manifest per commit (40-hex ids a reader can pin), and a
  ``main`` ref swapped atomically under a lock file, so a reader never sees half a commit.

Retries are owned by this module alone. ``huggingface_hub`` retries some calls itself with real
``time.sleep`` (``http_backoff``: up to 5 tries, 1-8 s, for tree listings, preupload, LFS, download
HEAD/GET) and silently falls back to cached files on some errors. Inside a hub call a thin wrapper
around its HTTP transport turns 408/429/5xx answers and transport errors (timeouts, dropped
connections) into an exception the library does not catch, so each failure surfaces here once and is
retried by :class:`RetryPolicy` (exponential backoff with jitter, Retry-After honoured up to a cap,
injectable sleep). The same wrapper applies the per-call timeout to every request.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import json
import logging
import os
import random
import re
import sys
import tempfile
import time
import uuid
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal, Mapping, Sequence, TypeVar

from warpd.fsutil import write_atomic

# huggingface_hub reads these when it is imported: set them before anything imports it.
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

log = logging.getLogger(__name__)

RepoType = Literal["dataset", "model", "space"]
REPO_TYPES: tuple[str, ...] = ("dataset", "model", "space")
DEFAULT_REVISION = "main"
DIR_PREFIX = "dir:"
MAX_PATH_CHARS = 1024
MAX_SEGMENT_CHARS = 255

_REPO_ID = re.compile(r"[A-Za-z0-9][\w.\-]{0,95}/[A-Za-z0-9][\w.\-]{0,95}")
_COMMIT_ID = re.compile(r"[0-9a-f]{40}")
_WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                     *(f"LPT{i}" for i in range(1, 10))}
_T = TypeVar("_T")


# --------------------------------------------------------------------------------------------- errors

class HubError(Exception):
    """Any failure talking to a hub. Messages never contain the token."""


class HubAuthError(HubError):
    """401/403: no token, a wrong one, or one without the rights (fix the token, do not retry)."""


class HubNotFound(HubError):
    """404: the repo, the revision or the file does not exist."""


class HubConflict(HubError):
    """409/412: the branch moved since ``parent`` (someone else committed): re-read and try again."""


class HubRateLimited(HubError):
    """429 that outlasted the retries, or asked for a wait longer than the cap; ``retry_after`` in seconds."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class HubUnavailable(HubError):
    """5xx, timeouts, dropped connections (after retries), offline mode, or an unreachable hub folder."""


class HubUnsafePath(HubError, ValueError):
    """A path that could escape its folder (absolute, ``..``, backslash, NUL, drive letter...)."""


# ------------------------------------------------------------------------------------ value types

@dataclass(frozen=True)
class RemoteFile:
    """One file in a repo listing. ``blob_id`` is the git blob sha1 (the Hub's ``oid``; for LFS files the
    Hub gives the pointer's sha1 and ``lfs_sha256`` the content's)."""

    path: str
    size: int
    blob_id: str | None = None
    lfs_sha256: str | None = None


@dataclass(frozen=True)
class RetryPolicy:
    """How transient failures are retried: ``attempts`` tries in all, sleeping ``base_s * 2**n`` (capped at
    ``max_s``, scaled by a random factor in [1-jitter, 1]) between them. A 429's Retry-After is slept as
    given when it is at most ``max_retry_after_s``; a longer one raises :class:`HubRateLimited` at once so
    the caller reschedules instead of blocking. ``sleep`` and ``rand`` are injectable for tests."""

    attempts: int = 4
    base_s: float = 1.0
    max_s: float = 30.0
    max_retry_after_s: float = 120.0
    jitter: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    rand: Callable[[], float] = random.random

    def backoff(self, retry: int) -> float:
        """Seconds to wait before retry number ``retry`` (0-based) when the server gave no Retry-After."""
        raw = min(self.max_s, self.base_s * (2 ** retry))
        return raw * (1.0 - self.jitter * self.rand())


# ---------------------------------------------------------------------------------- path safety

def safe_path(path: str, *, what: str = "path") -> str:
    """``path`` if it is a safe relative POSIX path inside a repo, else :class:`HubUnsafePath`.

    Rejects what could escape a folder or mean something else on some platform: empty, absolute,
    ``.``/``..`` segments, backslashes, NUL and control characters, colons (drive letters, NTFS
    streams), Windows device names, trailing dots/spaces, and over-long paths or segments."""
    if not isinstance(path, str) or not path:
        raise HubUnsafePath(f"unsafe {what}: empty or not a string")
    shown = path[:80].encode("unicode_escape").decode("ascii")
    problem = None
    if len(path) > MAX_PATH_CHARS:
        problem = "too long"
    elif path.startswith("/"):
        problem = "absolute"
    elif any(ch in path for ch in "\\:") or any(ord(ch) < 32 or ord(ch) == 127 for ch in path):
        problem = "backslash, colon or control character"
    else:
        for segment in path.split("/"):
            if segment in ("", ".", ".."):
                problem = "empty, '.' or '..' segment"
            elif len(segment) > MAX_SEGMENT_CHARS:
                problem = "segment too long"
            elif segment[-1] in ". ":
                problem = "segment ends with a dot or space"
            elif segment.split(".")[0].upper() in _WINDOWS_RESERVED:
                problem = "Windows device name"
            if problem:
                break
    if problem:
        raise HubUnsafePath(f"unsafe {what} {shown!r}: {problem}")
    return path


def _safe_prefix(prefix: str) -> str:
    """A listing prefix: "" (the whole repo) or a safe folder path, without trailing slash."""
    prefix = prefix.strip("/") if isinstance(prefix, str) else prefix
    return "" if prefix == "" else safe_path(prefix, what="prefix")


def _check_repo(repo_id: str, repo_type: str) -> None:
    if repo_type not in REPO_TYPES:
        raise ValueError(f"repo_type must be one of {REPO_TYPES}, got {repo_type!r}")
    if not isinstance(repo_id, str) or not _REPO_ID.fullmatch(repo_id) or ".." in repo_id or "--" in repo_id:
        raise ValueError(f"repo id must look like 'namespace/name', got {repo_id!r}")


def _inside(root: Path, relative: str) -> Path:
    """``root/relative`` after checking that it resolves inside ``root`` (symlinks included)."""
    target = root / safe_path(relative)
    resolved_root = root.resolve()
    if not target.resolve().is_relative_to(resolved_root):
        raise HubUnsafePath(f"unsafe path {relative!r}: resolves outside its folder")
    return target


def git_blob_sha1(data: bytes) -> str:
    """The git blob id of ``data`` (what the Hub reports as a regular file's oid)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _redact(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _as_bytes(content: bytes | Path) -> bytes:
    return content.read_bytes() if isinstance(content, Path) else bytes(content)


# ---------------------------------------------------------------------------------- interface

class Hub(ABC):
    """A place repos live: the HuggingFace Hub over HTTP, or a folder. All methods raise :class:`HubError`
    subclasses; ``revision`` is ``None``/``"main"`` for the latest or a 40-hex commit id to pin one."""

    endpoint: str

    @abstractmethod
    def ensure_repo(self, repo_id: str, *, repo_type: RepoType = "dataset", private: bool = False) -> None:
        """Create the repo if it does not exist (an existing one is fine)."""

    @abstractmethod
    def head(self, repo_id: str, *, repo_type: RepoType = "dataset", revision: str = DEFAULT_REVISION) -> str:
        """The 40-hex commit id ``revision`` points to: pin it for consistent reads while others write."""

    @abstractmethod
    def list_files(self, repo_id: str, prefix: str = "", *, repo_type: RepoType = "dataset",
                   revision: str | None = None) -> list[RemoteFile]:
        """Every file under the folder ``prefix`` (recursive), sorted by path; a missing folder lists as [].
        Entries with unsafe paths are left out (and logged): one bad upload must not stop a reader."""

    @abstractmethod
    def commit(self, repo_id: str, files: Mapping[str, bytes | Path], message: str, *,
               repo_type: RepoType = "dataset", deletions: Sequence[str] = (), parent: str | None = None) -> str:
        """Add/replace ``files`` and delete ``deletions`` in ONE commit on main; returns the new head. Files
        identical to main are skipped; when nothing changes no commit is made and the head is returned.
        With ``parent``, :class:`HubConflict` if main moved away from it."""

    @abstractmethod
    def download(self, repo_id: str, path: str, dest_dir: Path, *, repo_type: RepoType = "dataset",
                 revision: str | None = None) -> Path:
        """Fetch ``path`` at ``revision`` to ``dest_dir/path`` (replaced atomically) and return that path."""

    def read_bytes(self, repo_id: str, path: str, *, repo_type: RepoType = "dataset",
                   revision: str | None = None) -> bytes:
        """The content of one (small) file, with no file left behind."""
        with tempfile.TemporaryDirectory(prefix="warpd-hub-") as tmp:
            return self.download(repo_id, path, Path(tmp), repo_type=repo_type, revision=revision).read_bytes()

    def read_optional(self, repo_id: str, path: str, *, repo_type: RepoType = "dataset",
                      revision: str | None = None) -> bytes | None:
        """:meth:`read_bytes`, or None when the file is not there (an optional file, a first run)."""
        try:
            return self.read_bytes(repo_id, path, repo_type=repo_type, revision=revision)
        except HubNotFound:
            return None

    @staticmethod
    def _prepare_commit(files: Mapping[str, bytes | Path], deletions: Sequence[str], message: str,
                        parent: str | None) -> tuple[dict[str, bytes | Path], list[str]]:
        if not files and not deletions:
            raise ValueError("a commit needs at least one file or deletion")
        if not message or not message.strip():
            raise ValueError("a commit needs a message")
        if parent is not None and not _COMMIT_ID.fullmatch(parent):
            raise ValueError("parent must be a 40-hex commit id")
        checked = {safe_path(p): c for p, c in files.items()}
        return checked, [safe_path(p) for p in deletions]


# ----------------------------------------------------------------------------- HTTP: transport glue

class _Transient(Exception):
    """A retryable failure seen by the transport (status 408/429/5xx or a transport error). Deliberately
    not an httpx or huggingface_hub exception, so the library neither retries nor swallows it."""

    def __init__(self, status: int | None, detail: str, retry_after: float | None = None):
        super().__init__(detail)
        self.status, self.detail, self.retry_after = status, detail, retry_after


@dataclass
class _CallScope:
    timeout_s: float


_SCOPE: contextvars.ContextVar[_CallScope | None] = contextvars.ContextVar("warpd_hub_scope", default=None)
_RETRY_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_installed_client_factory = False


def _httpx() -> Any:
    """The httpx flavour huggingface_hub uses: ``httpx2`` in 2.x, ``httpx`` in 1.x."""
    from huggingface_hub.utils import _http

    return getattr(_http, "httpx2", None) or getattr(_http, "httpx")


def _parse_retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None  # an HTTP date: treat as "no hint", the backoff applies
    return max(0.0, seconds)


def _make_transport_class(httpx: Any) -> type:
    """A transport wrapper: inside a hub call it sets the call's timeout on every request and raises
    :class:`_Transient` for retryable answers and transport errors (also while reading a body)."""

    class GuardedStream(httpx.SyncByteStream):
        def __init__(self, inner: Any):
            self._inner = inner

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self._inner
            except httpx.TransportError as exc:
                raise _Transient(None, f"{type(exc).__name__} while reading the response") from None

        def close(self) -> None:
            self._inner.close()

    class WarpdTransport(httpx.BaseTransport):
        def __init__(self, inner: Any):
            self._inner = inner

        def handle_request(self, request: Any) -> Any:
            scope = _SCOPE.get()
            if scope is None:
                return self._inner.handle_request(request)
            t = scope.timeout_s
            request.extensions["timeout"] = {"connect": t, "read": t, "write": t, "pool": t}
            try:
                response = self._inner.handle_request(request)
            except httpx.TransportError as exc:
                raise _Transient(None, f"{type(exc).__name__} on {request.method} {request.url.path}") from None
            if response.status_code in _RETRY_STATUS:
                retry_after = _parse_retry_after(response.headers.get("Retry-After"))
                response.close()
                raise _Transient(response.status_code,
                                 f"HTTP {response.status_code} on {request.method} {request.url.path}", retry_after)
            response.stream = GuardedStream(response.stream)
            return response

        def close(self) -> None:
            self._inner.close()

    return WarpdTransport


def _install_client_factory() -> None:
    """Give huggingface_hub a client whose transports are wrapped (outside a hub call they behave as
    before). Done once per process; proxy mounts from the environment are wrapped as well."""
    global _installed_client_factory
    if _installed_client_factory:
        return
    from huggingface_hub.utils import _http, set_client_factory

    httpx = _httpx()
    transport_cls = _make_transport_class(httpx)
    hook = _http.hf_request_event_hook

    def factory() -> Any:
        client = httpx.Client(event_hooks={"request": [hook]}, follow_redirects=True, timeout=None,
                              transport=transport_cls(httpx.HTTPTransport()))
        mounts = getattr(client, "_mounts", None)
        if isinstance(mounts, dict):
            client._mounts = {k: (transport_cls(v) if v is not None else None) for k, v in mounts.items()}
        return client

    set_client_factory(factory)
    # The HTTP stack's wire traces (DEBUG) print response headers, which a misbehaving server could use to
    # echo the token back into warpd's log: keep them at INFO unless someone configured them on purpose.
    for name in ("httpcore", "httpcore2"):
        wire = logging.getLogger(name)
        if wire.level == logging.NOTSET:
            wire.setLevel(logging.INFO)
    _installed_client_factory = True


# --------------------------------------------------------------------------------------- HttpHub

class HttpHub(Hub):
    """The HuggingFace Hub (or anything speaking its API) through ``huggingface_hub``."""

    def __init__(self, endpoint: str, token: str | None = None, *, timeout_s: float = 30.0,
                 retry: RetryPolicy | None = None):
        endpoint = endpoint.rstrip("/")
        if not endpoint.startswith(("https://", "http://")):
            raise ValueError(f"hub endpoint must be http(s):// or {DIR_PREFIX}/path, got {endpoint!r}")
        if "huggingface_hub" not in sys.modules:
            os.environ["HF_ENDPOINT"] = endpoint  # read once at import; we also pass endpoint= everywhere
        self.endpoint = endpoint
        self.timeout_s = float(timeout_s)
        self.retry = retry or RetryPolicy()
        self.__token = token or None
        self._api_obj: Any = None

    def __repr__(self) -> str:
        return f"HttpHub(endpoint={self.endpoint!r}, token={'set' if self.__token else 'none'})"

    # ---- plumbing

    @property
    def _tok(self) -> str | bool:
        return self.__token or False

    @property
    def _api(self) -> Any:
        if self._api_obj is None:
            _install_client_factory()
            from huggingface_hub import HfApi

            # The token is passed per call (never stored in HfApi, whose repr could show it); False means
            # "anonymous": never fall back to a token huggingface_hub finds on its own (~/.cache/huggingface).
            self._api_obj = HfApi(endpoint=self.endpoint, token=False, library_name="warpd")
        return self._api_obj

    def _call(self, what: str, fn: Callable[[], _T]) -> _T:
        """Run ``fn`` under the timeout scope, retrying transient failures; translate every error."""
        _install_client_factory()
        policy = self.retry
        attempts = max(1, policy.attempts)
        for attempt in range(attempts):
            token = _SCOPE.set(_CallScope(self.timeout_s))
            try:
                return fn()
            except Exception as exc:
                transient = _find_transient(exc)
                if transient is None:
                    translated = self._translate(what, exc)
                    if translated is exc:
                        raise
                    raise translated from None
                last = attempt == attempts - 1
                if transient.status == 429 and transient.retry_after is not None \
                        and transient.retry_after > policy.max_retry_after_s:
                    raise HubRateLimited(self._msg(f"{what}: rate limited, server asks to wait "
                                                   f"{transient.retry_after:g}s"), transient.retry_after) from None
                if last:
                    raise self._give_up(what, transient, attempts) from None
                wait = (transient.retry_after + policy.jitter * policy.rand()
                        if transient.status == 429 and transient.retry_after is not None
                        else policy.backoff(attempt))
                log.info("hub %s: %s; retry %d/%d in %.1fs", what, transient.detail, attempt + 1,
                         attempts - 1, wait)
                policy.sleep(wait)
            finally:
                _SCOPE.reset(token)
        raise AssertionError("unreachable")  # pragma: no cover

    def _msg(self, text: str) -> str:
        return _redact(text, self.__token)

    def _give_up(self, what: str, transient: _Transient, attempts: int) -> HubError:
        message = self._msg(f"{what}: {transient.detail} (gave up after {attempts} attempts)")
        if transient.status == 429:
            return HubRateLimited(message, transient.retry_after)
        return HubUnavailable(message)

    def _translate(self, what: str, exc: Exception) -> Exception:
        """A :class:`HubError` for anything huggingface_hub raised; other exceptions pass unchanged."""
        if isinstance(exc, HubError):
            return exc
        from huggingface_hub.errors import (FileMetadataError, HfHubHTTPError, LocalEntryNotFoundError,
                                            OfflineModeIsEnabled)

        httpx = _httpx()
        for link in _chain(exc):
            if isinstance(link, OfflineModeIsEnabled):
                return HubUnavailable(f"{what}: huggingface_hub is in offline mode (HF_HUB_OFFLINE is set)")
            if isinstance(link, HfHubHTTPError) and getattr(link, "response", None) is not None:
                return self._from_status(what, link.response.status_code, link.server_message)
            if isinstance(link, httpx.TransportError):
                return HubUnavailable(self._msg(f"{what}: {type(link).__name__}"))
        for link in _chain(exc):
            if isinstance(link, FileMetadataError):  # e.g. no X-Repo-Commit/ETag: a proxy or not a Hub
                return HubError(self._msg(f"{what}: the endpoint does not answer like a Hub: {link}"))
            if isinstance(link, LocalEntryNotFoundError):
                return HubUnavailable(self._msg(f"{what}: the hub could not be reached"))
        if isinstance(exc, OSError):
            return HubError(self._msg(f"{what}: local file error: {exc}"))
        if isinstance(exc, (ValueError, KeyError, TypeError, RuntimeError)):
            return HubError(self._msg(f"{what}: unexpected answer or failure: {type(exc).__name__}: {exc}"))
        return exc

    def _from_status(self, what: str, status: int, server_message: str | None) -> HubError:
        detail = f"{what}: HTTP {status}"
        if server_message:
            detail += f": {server_message.strip()[:300]}"
        detail = self._msg(detail)
        if status in (401, 403):
            return HubAuthError(detail + (" (check the hub token)" if status == 401 else " (token lacks rights)"))
        if status == 404:
            return HubNotFound(detail)
        if status in (409, 412):
            return HubConflict(detail)
        if status == 429:
            return HubRateLimited(detail)
        if status >= 500:
            return HubUnavailable(detail)
        return HubError(detail)

    # ---- operations

    def ensure_repo(self, repo_id: str, *, repo_type: RepoType = "dataset", private: bool = False) -> None:
        _check_repo(repo_id, repo_type)
        self._call(f"create {repo_type} {repo_id}",
                   lambda: self._api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True,
                                                         token=self._tok))

    def head(self, repo_id: str, *, repo_type: RepoType = "dataset", revision: str = DEFAULT_REVISION) -> str:
        _check_repo(repo_id, repo_type)
        info = self._call(f"revision {repo_id}@{revision}",
                          lambda: self._api.repo_info(repo_id, repo_type=repo_type, revision=revision,
                                                      timeout=self.timeout_s, token=self._tok))
        sha = getattr(info, "sha", None)
        if not isinstance(sha, str) or not _COMMIT_ID.fullmatch(sha):
            raise HubError(f"revision {repo_id}@{revision}: the hub gave no commit id")
        return sha

    def list_files(self, repo_id: str, prefix: str = "", *, repo_type: RepoType = "dataset",
                   revision: str | None = None) -> list[RemoteFile]:
        _check_repo(repo_id, repo_type)
        prefix = _safe_prefix(prefix)
        from huggingface_hub.errors import RemoteEntryNotFoundError

        def run() -> list[Any]:
            try:
                return list(self._api.list_repo_tree(repo_id, path_in_repo=prefix or None, recursive=True,
                                                     revision=revision or DEFAULT_REVISION,
                                                     repo_type=repo_type, token=self._tok))
            except RemoteEntryNotFoundError:
                return []  # the folder does not exist (yet): nothing under it

        entries = self._call(f"list {repo_id}/{prefix}", run)
        files = [RemoteFile(e.path, int(e.size), getattr(e, "blob_id", None),
                            (e.lfs or {}).get("sha256") if isinstance(getattr(e, "lfs", None), dict)
                            else getattr(getattr(e, "lfs", None), "sha256", None))
                 for e in entries if hasattr(e, "size")]
        return _keep_safe(files, prefix, repo_id)

    def commit(self, repo_id: str, files: Mapping[str, bytes | Path], message: str, *,
               repo_type: RepoType = "dataset", deletions: Sequence[str] = (), parent: str | None = None) -> str:
        _check_repo(repo_id, repo_type)
        checked, deleted = self._prepare_commit(files, deletions, message, parent)
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        def run() -> str:
            # fresh operation objects per attempt: huggingface_hub marks them as used after a commit
            ops: list[Any] = [CommitOperationAdd(path_in_repo=p, path_or_fileobj=_as_bytes(c))
                              for p, c in checked.items()]
            ops += [CommitOperationDelete(path_in_repo=p) for p in deleted]
            info = self._api.create_commit(repo_id, ops, commit_message=message, repo_type=repo_type,
                                           revision=DEFAULT_REVISION, parent_commit=parent,
                                           token=self._tok)
            return str(info.oid)

        sha = self._call(f"commit {len(checked)}+{len(deleted)} file(s) to {repo_id}", run)
        if not _COMMIT_ID.fullmatch(sha):
            raise HubError(f"commit to {repo_id}: the hub gave no commit id")
        return sha

    def download(self, repo_id: str, path: str, dest_dir: Path, *, repo_type: RepoType = "dataset",
                 revision: str | None = None) -> Path:
        _check_repo(repo_id, repo_type)
        path = safe_path(path)
        dest_dir = Path(dest_dir)
        dest_dir.mkdir(parents=True, exist_ok=True)
        target = _inside(dest_dir, path)
        from huggingface_hub import hf_hub_download

        def run() -> Path:
            # a fresh private folder per attempt: no stale local copy or metadata can be returned instead
            with tempfile.TemporaryDirectory(prefix=".warpd-dl-", dir=dest_dir) as staging:
                got = hf_hub_download(repo_id, path, repo_type=repo_type, revision=revision or DEFAULT_REVISION,
                                      local_dir=staging, cache_dir=staging, endpoint=self.endpoint,
                                      token=self._tok, etag_timeout=self.timeout_s,
                                      library_name="warpd")
                got_path = Path(got)
                if not got_path.resolve().is_relative_to(Path(staging).resolve()):
                    raise HubUnsafePath(f"download of {path!r} landed outside its folder")
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(got_path, target)
            return target

        return self._call(f"download {repo_id}/{path}@{revision or DEFAULT_REVISION}", run)


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and its causes/contexts (huggingface_hub wraps errors, e.g. in LocalEntryNotFoundError)."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]


def _find_transient(exc: BaseException) -> _Transient | None:
    return next((e for e in _chain(exc) if isinstance(e, _Transient)), None)


def _keep_safe(files: list[RemoteFile], prefix: str, repo_id: str) -> list[RemoteFile]:
    """Drop (and log) entries whose path is unsafe or outside ``prefix``; sort by path."""
    kept: list[RemoteFile] = []
    dropped = 0
    for f in files:
        try:
            safe_path(f.path)
        except HubUnsafePath:
            dropped += 1
            continue
        if prefix and not f.path.startswith(prefix + "/"):
            dropped += 1
            continue
        kept.append(f)
    if dropped:
        log.warning("hub listing of %s: left out %d entr%s with unsafe paths", repo_id, dropped,
                    "y" if dropped == 1 else "ies")
    return sorted(kept, key=lambda f: f.path)


# ---------------------------------------------------------------------------------------- DirHub

class DirHub(Hub):
    """Repos in a folder: ``<root>/<type>s/<namespace>/<name>/`` holding ``objects/`` (blobs named by their
    git sha1), ``commits/<id>.json`` (one manifest per commit: parent, message, time, path -> blob) and
    ``refs/main``. A commit writes blobs and its manifest under temporary names and renames them into
    place, then swaps ``refs/main`` while holding ``lock`` (created exclusively, like git's ``.lock``
    files), so concurrent writers queue up and readers see either the old or the new commit.

    The root folder must exist: a missing one is reported as :class:`HubUnavailable` (say, an unmounted
    share) rather than silently created on the local disk."""

    def __init__(self, root: Path, *, lock_timeout_s: float = 30.0, stale_lock_s: float = 300.0):
        self.root = Path(root).expanduser()
        self.endpoint = f"{DIR_PREFIX}{self.root}"
        self.lock_timeout_s = lock_timeout_s
        self.stale_lock_s = stale_lock_s

    def __repr__(self) -> str:
        return f"DirHub(root={str(self.root)!r})"

    # ---- layout

    def _repo_dir(self, repo_id: str, repo_type: str, *, must_exist: bool = True) -> Path:
        _check_repo(repo_id, repo_type)
        if not self.root.is_dir():
            raise HubUnavailable(f"hub folder {self.root} does not exist (unmounted share?)")
        repo = _inside(self.root, f"{repo_type}s/{repo_id}")
        if must_exist and not (repo / "refs" / DEFAULT_REVISION).is_file():
            raise HubNotFound(f"{repo_type} repo {repo_id} not found in {self.root}")
        return repo

    def _blob_path(self, repo: Path, blob: str) -> Path:
        if not isinstance(blob, str) or not _COMMIT_ID.fullmatch(blob):
            raise HubError(f"corrupt manifest: bad blob id {str(blob)[:60]!r}")
        return self._within(repo, f"objects/{blob[:2]}/{blob[2:]}")

    def _within(self, repo: Path, relative: str) -> Path:
        """``repo/relative``, refusing a folder inside the hub that was made a symlink to elsewhere."""
        target = repo / relative
        if not target.resolve().is_relative_to(self.root.resolve()):
            raise HubUnsafePath(f"{relative!r} in {repo} resolves outside the hub folder")
        return target

    def _resolve(self, repo: Path, revision: str | None) -> str:
        revision = revision or DEFAULT_REVISION
        if revision == DEFAULT_REVISION:
            commit = (repo / "refs" / DEFAULT_REVISION).read_text(encoding="ascii").strip()
        elif _COMMIT_ID.fullmatch(revision):
            commit = revision
        else:
            raise HubNotFound(f"revision {revision[:60]!r} not found (a dir hub knows main and commit ids)")
        if not (repo / "commits" / f"{commit}.json").is_file():
            raise HubNotFound(f"revision {revision} not found")
        return commit

    def _manifest(self, repo: Path, commit: str) -> dict[str, Any]:
        try:
            data = json.loads((repo / "commits" / f"{commit}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise HubError(f"corrupt commit {commit}: {type(exc).__name__}") from None
        if not isinstance(data, dict) or not isinstance(data.get("files"), dict):
            raise HubError(f"corrupt commit {commit}: no file table")
        return data

    @staticmethod
    def _atomic_write(path: Path, data: bytes) -> None:
        write_atomic(path, data)

    @contextlib.contextmanager
    def _locked(self, repo: Path) -> Iterator[None]:
        lock = self._within(repo, "lock")
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                break
            except FileExistsError:
                with contextlib.suppress(OSError):
                    if time.time() - lock.stat().st_mtime > self.stale_lock_s:
                        log.warning("dir hub: breaking stale lock %s", lock)
                        lock.unlink()
                        continue
                if time.monotonic() > deadline:
                    raise HubUnavailable(f"{repo} is locked by another writer (lock file {lock})") from None
                time.sleep(0.05)
        try:
            os.write(fd, f"{os.getpid()} {time.time():.0f}\n".encode())
            os.close(fd)
            yield
        finally:
            with contextlib.suppress(OSError):
                lock.unlink()

    def _guard(self, what: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except HubError:
            raise
        except PermissionError as exc:
            raise HubAuthError(f"{what}: permission denied: {exc.filename}") from None
        except OSError as exc:
            raise HubUnavailable(f"{what}: {type(exc).__name__}: {exc.strerror or exc}") from None

    # ---- operations

    def ensure_repo(self, repo_id: str, *, repo_type: RepoType = "dataset", private: bool = False) -> None:
        def run() -> None:
            repo = self._repo_dir(repo_id, repo_type, must_exist=False)
            if (repo / "refs" / DEFAULT_REVISION).is_file():
                return
            repo.mkdir(parents=True, exist_ok=True)
            with self._locked(repo):
                if (repo / "refs" / DEFAULT_REVISION).is_file():
                    return
                commit = self._write_commit(repo, None, {}, "initial commit")
                self._atomic_write(self._within(repo, f"refs/{DEFAULT_REVISION}"), commit.encode("ascii"))

        self._guard(f"create {repo_id}", run)

    def head(self, repo_id: str, *, repo_type: RepoType = "dataset", revision: str = DEFAULT_REVISION) -> str:
        return self._guard(f"revision {repo_id}@{revision}",
                           lambda: self._resolve(self._repo_dir(repo_id, repo_type), revision))

    def list_files(self, repo_id: str, prefix: str = "", *, repo_type: RepoType = "dataset",
                   revision: str | None = None) -> list[RemoteFile]:
        prefix = _safe_prefix(prefix)

        def run() -> list[RemoteFile]:
            repo = self._repo_dir(repo_id, repo_type)
            files = self._manifest(repo, self._resolve(repo, revision))["files"]
            out = [RemoteFile(p, int(meta["size"]), meta["blob"]) for p, meta in files.items()
                   if isinstance(p, str) and (not prefix or p.startswith(prefix + "/"))]
            return _keep_safe(out, prefix, repo_id)

        return self._guard(f"list {repo_id}/{prefix}", run)

    def commit(self, repo_id: str, files: Mapping[str, bytes | Path], message: str, *,
               repo_type: RepoType = "dataset", deletions: Sequence[str] = (), parent: str | None = None) -> str:
        checked, deleted = self._prepare_commit(files, deletions, message, parent)
        return self._guard(f"commit to {repo_id}",
                           lambda: self._commit(repo_id, repo_type, checked, deleted, message, parent))

    def _commit(self, repo_id: str, repo_type: str, files: Mapping[str, bytes | Path], deletions: Sequence[str],
                message: str, parent: str | None) -> str:
        repo = self._repo_dir(repo_id, repo_type)
        blobs: dict[str, dict[str, Any]] = {}
        for path, content in files.items():  # blobs first: unreferenced blobs are harmless
            data = _as_bytes(content)
            blob = git_blob_sha1(data)
            target = self._blob_path(repo, blob)
            if not target.is_file():
                self._atomic_write(target, data)
            blobs[path] = {"blob": blob, "size": len(data)}
        with self._locked(repo):
            head = self._resolve(repo, DEFAULT_REVISION)
            if parent is not None and parent != head:
                raise HubConflict(f"{repo_id}: main is at {head}, not at the expected parent {parent}")
            table = dict(self._manifest(repo, head)["files"])
            for path in deletions:
                if path not in table and not any(p.startswith(path + "/") for p in table):
                    raise HubNotFound(f"{repo_id}: cannot delete {path!r}: no such file or folder")
                for p in [p for p in table if p == path or p.startswith(path + "/")]:
                    del table[p]
            table.update(blobs)
            if table == self._manifest(repo, head)["files"]:
                return head  # nothing changed: no empty commit (as the Hub does)
            commit = self._write_commit(repo, head, table, message)
            self._atomic_write(self._within(repo, f"refs/{DEFAULT_REVISION}"), commit.encode("ascii"))
            return commit

    def _write_commit(self, repo: Path, parent: str | None, table: Mapping[str, Any], message: str) -> str:
        body = {"parent": parent, "message": message, "time": time.time(), "nonce": uuid.uuid4().hex,
                "files": dict(sorted(table.items()))}
        raw = json.dumps(body, sort_keys=True, ensure_ascii=False).encode("utf-8")
        commit = hashlib.sha1(raw).hexdigest()
        self._atomic_write(self._within(repo, f"commits/{commit}.json"), raw)
        return commit

    def _commit_raw(self, repo_id: str, files: Mapping[str, bytes], *, repo_type: str = "dataset") -> str:
        """Tests only: commit ``files`` without any path check (to plant unsafe names, as a hostile
        writer to a shared folder could)."""
        repo = self._repo_dir(repo_id, repo_type)
        with self._locked(repo):
            head = self._resolve(repo, DEFAULT_REVISION)
            table = dict(self._manifest(repo, head)["files"])
            for path, data in files.items():
                blob = git_blob_sha1(data)
                self._atomic_write(self._blob_path(repo, blob), data)
                table[path] = {"blob": blob, "size": len(data)}
            commit = self._write_commit(repo, head, table, "raw")
            self._atomic_write(self._within(repo, f"refs/{DEFAULT_REVISION}"), commit.encode("ascii"))
            return commit

    def download(self, repo_id: str, path: str, dest_dir: Path, *, repo_type: RepoType = "dataset",
                 revision: str | None = None) -> Path:
        path = safe_path(path)
        dest_dir = Path(dest_dir)

        def run() -> Path:
            repo = self._repo_dir(repo_id, repo_type)
            commit = self._resolve(repo, revision)
            meta = self._manifest(repo, commit)["files"].get(path)
            if meta is None:
                raise HubNotFound(f"{repo_id}: no file {path!r} at {commit}")
            data = self._blob_path(repo, meta["blob"]).read_bytes()
            if git_blob_sha1(data) != meta["blob"]:
                raise HubError(f"{repo_id}: blob of {path!r} is corrupt (checksum mismatch)")
            dest_dir.mkdir(parents=True, exist_ok=True)
            target = _inside(dest_dir, path)
            self._atomic_write(target, data)
            return target

        return self._guard(f"download {repo_id}/{path}", run)


# --------------------------------------------------------------------------------------- factory

def retry_policy_from(cfg: Any, **overrides: Any) -> RetryPolicy:
    """The retry policy from ``[sync]`` (keys optional until they are added to the defaults)."""
    sync = cfg.sync
    values = dict(attempts=int(getattr(sync, "retries", 4)), base_s=float(getattr(sync, "backoff_s", 1.0)),
                  max_s=float(getattr(sync, "backoff_max_s", 30.0)),
                  max_retry_after_s=float(getattr(sync, "retry_after_max_s", 120.0)))
    values.update(overrides)
    return RetryPolicy(**values)


def open_hub(cfg: Any, token: str | None = None, *, retry: RetryPolicy | None = None) -> Hub:
    """The hub ``cfg.sync.endpoint`` names: ``dir:/path`` -> :class:`DirHub`, ``http(s)://`` -> :class:`HttpHub`."""
    endpoint = str(cfg.sync.endpoint).strip()
    if endpoint.startswith(DIR_PREFIX):
        folder = endpoint[len(DIR_PREFIX):]
        if not folder:
            raise ValueError("sync.endpoint 'dir:' needs a folder, e.g. dir:/srv/warpd-hub")
        return DirHub(Path(folder), lock_timeout_s=float(cfg.sync.timeout_s))
    return HttpHub(endpoint, token, timeout_s=float(cfg.sync.timeout_s), retry=retry or retry_policy_from(cfg))


# ----------------------------------------------------------------------------------------- token

TOKEN_ENV_VARS = ("WARPD_HF_TOKEN", "HF_TOKEN")


def _clean_token(value: str | None) -> str | None:
    value = (value or "").strip()
    return value or None


def resolve_token(cfg: Any, token_file: Path) -> str | None:
    """The hub token: ``$WARPD_HF_TOKEN``, ``$HF_TOKEN``, ``cfg.sync.token``, then ``token_file``; None if
    none is set. A token file others can read is used but warned about (without its content)."""
    for name in TOKEN_ENV_VARS:
        if token := _clean_token(os.environ.get(name)):
            return token
    if token := _clean_token(getattr(cfg.sync, "token", "")):
        return token
    try:
        text = Path(token_file).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read the hub token file %s: %s", token_file, exc.strerror)
        return None
    if os.name == "posix":
        with contextlib.suppress(OSError):
            if Path(token_file).stat().st_mode & 0o077:
                log.warning("hub token file %s is readable by others; run: chmod 600 %s", token_file, token_file)
    return _clean_token(text.splitlines()[0] if text.strip() else "")


def save_token(token_file: Path, token: str) -> None:
    """Write ``token`` to ``token_file`` with mode 0600, atomically: the file is created 0600 under a
    temporary name (never readable by others, even for a moment) and renamed over the old one."""
    token = _clean_token(token) or ""
    if not token or any(ch.isspace() for ch in token):
        raise ValueError("a hub token is one word with no spaces")
    token_file = Path(token_file)
    token_file.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(token_file, token.encode("utf-8") + b"\n", mode=0o600)


__all__ = [
    "DirHub", "Hub", "HttpHub", "HubAuthError", "HubConflict", "HubError", "HubNotFound", "HubRateLimited",
    "HubUnavailable", "HubUnsafePath", "RemoteFile", "RetryPolicy", "git_blob_sha1", "open_hub",
    "resolve_token", "retry_policy_from", "safe_path", "save_token",
]
