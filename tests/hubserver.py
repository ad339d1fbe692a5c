"""A local HuggingFace Hub for tests and benches: the endpoints huggingface_hub really calls, over HTTP.

Standard library only (``http.server.ThreadingHTTPServer`` on 127.0.0.1, an ephemeral port), so the real
client (any major version, whatever HTTP library it uses) is exercised on the wire with nothing mocked.
It deliberately shares no code with ``warpd.hub``: a bug there cannot be hidden by the same bug here.

Speaks (as measured in ``shared/reference/platform-notes.md`` section 1):

* ``POST /api/repos/create`` (409 with ``url`` when the repo exists)
* ``GET /api/{type}s/{ns}/{name}[/revision/{rev}]`` (repo info with ``sha`` and ``siblings``)
* ``GET /api/{type}s/{ns}/{name}/tree/{rev}[/{path}]?recursive=`` (paged with ``Link: rel="next"``)
* ``POST .../preupload/{rev}`` (always "regular": every file goes inline, no LFS or Xet)
* ``POST .../commit/{rev}`` (NDJSON: header, file (base64), deletedFile, deletedFolder; parentCommit -> 412)
* ``HEAD``/``GET /[{type}s/]{ns}/{name}/resolve/{rev}/{path}`` (X-Repo-Commit, ETag, Content-Length, Range)
* ``POST /api/validate-yaml`` (README.md commits)

Repos live under a folder with real history: every commit is an immutable 40-hex snapshot id, ``main``
points to the newest, and reads at an older id see the older content. Errors carry ``X-Error-Code``
(RepoNotFound, RevisionNotFound, EntryNotFound) as the Hub does.

Testing aids: an optional required token (401 without it; ``anonymous_read`` lets GET/HEAD through),
fault injection (:meth:`HubServer.inject`: any status such as "500"/"429"/"403", "drop" to close the
connection without answering, "slow" to answer late) and a request log (:meth:`HubServer.requests`).

Use it as a context manager (``with HubServer() as hub: ...``) or through the ``hub_server`` pytest
fixture defined here (tests/conftest.py imports it for every test module).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
import tempfile
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qs, quote, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}
URL_PREFIX = {"model": "", "dataset": "datasets/", "space": "spaces/"}
ROUTES = ("create", "validate-yaml", "info", "revision", "tree", "preupload", "commit", "resolve")

_API = re.compile(r"^/api/(?P<kind>models|datasets|spaces)/(?P<ns>[^/]+)/(?P<name>[^/]+)"
                  r"(?:/(?P<op>revision|tree|preupload|commit)/(?P<rest>.+))?$")
_RESOLVE = re.compile(r"^/(?:(?P<kind>datasets|spaces)/)?(?P<ns>[^/]+)/(?P<name>[^/]+)/resolve/(?P<rest>.+)$")
_SHA = re.compile(r"[0-9a-f]{40}")


def git_sha1(data: bytes) -> str:
    """The git blob id the Hub reports as a regular file's oid (and ETag)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Fault:
    """One injected misbehaviour; ``hits`` counts how often it fired."""

    kind: str
    match: str
    count: int
    retry_after: float | None = None
    delay: float = 0.0
    method: str | None = None
    message: str | None = None
    hits: int = 0

    def matches(self, method: str, route: str, path: str) -> bool:
        if self.count <= 0 or (self.method and self.method.upper() != method):
            return False
        if self.match in ROUTES:
            return self.match == route
        return re.search(self.match, f"{method} {path}") is not None


@dataclass(frozen=True)
class LoggedRequest:
    """One request as the server saw it. ``status`` is None when the connection was dropped."""

    method: str
    path: str
    route: str
    status: int | None
    fault: str | None = None


class _HubError(Exception):
    def __init__(self, status: int, message: str, code: str | None = None, headers: Mapping[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.headers = status, message, code, dict(headers or {})


@dataclass
class _Repo:
    """A repo on disk: ``blobs/<sha1>``, ``commits/<sha>.json`` ({parent, message, files: {path: sha1}}), ``main``."""

    folder: Path
    repo_id: str
    repo_type: str

    @property
    def head(self) -> str:
        return (self.folder / "main").read_text().strip()

    def manifest(self, sha: str) -> dict[str, Any]:
        return json.loads((self.folder / "commits" / f"{sha}.json").read_text())

    def resolve(self, revision: str) -> str:
        if revision == "main":
            return self.head
        if _SHA.fullmatch(revision) and (self.folder / "commits" / f"{revision}.json").is_file():
            return revision
        raise _HubError(404, f"Invalid rev id: {revision}", "RevisionNotFound")

    def files(self, sha: str) -> dict[str, str]:
        return self.manifest(sha)["files"]

    def blob(self, oid: str) -> bytes:
        return (self.folder / "blobs" / oid).read_bytes()

    def write(self, parent: str | None, files: Mapping[str, str], message: str, blobs: Mapping[str, bytes]) -> str:
        for oid, data in blobs.items():
            (self.folder / "blobs" / oid).write_bytes(data)
        body = {"parent": parent, "message": message, "time": time.time_ns(), "files": dict(sorted(files.items()))}
        raw = json.dumps(body, sort_keys=True).encode()
        sha = hashlib.sha1(raw).hexdigest()
        (self.folder / "commits" / f"{sha}.json").write_bytes(raw)
        (self.folder / "main").write_text(sha)
        return sha

    def history(self) -> list[str]:
        out, sha = [], self.head
        while sha:
            out.append(sha)
            sha = self.manifest(sha)["parent"]
        return out


class HubServer:
    """A Hub on ``127.0.0.1:<free port>`` with repos under ``root`` (a temporary folder by default)."""

    def __init__(self, root: Path | None = None, *, token: str | None = None, anonymous_read: bool = False,
                 page_size: int = 1000):
        self._tmp = None if root is not None else tempfile.TemporaryDirectory(prefix="hubserver-")
        self.root = Path(root) if root is not None else Path(self._tmp.name)  # type: ignore[union-attr]
        self.token, self.anonymous_read, self.page_size = token, anonymous_read, page_size
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self._log: list[LoggedRequest] = []
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle

    @property
    def url(self) -> str:
        assert self._httpd is not None, "server not started"
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> "HubServer":
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False  # a "slow" handler still sleeping must not hold up stop()
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="hubserver", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "HubServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- fault injection and request log

    def inject(self, kind: str, match: str = ".*", *, count: int = 1, retry_after: float | None = None,
               delay: float = 0.0, method: str | None = None, message: str | None = None) -> Fault:
        """Misbehave on the next ``count`` requests that ``match`` (a route name from :data:`ROUTES`, or a
        regex searched in ``"METHOD /path"``). ``kind``: an HTTP status ("500", "503", "429", "401", "403",
        "404", ...), "drop" (read the request, close the connection, answer nothing) or "slow" (sleep
        ``delay`` s, then answer normally). ``delay`` also delays any other kind; ``retry_after`` adds a
        Retry-After header; ``message`` replaces the error body's text."""
        if kind not in ("drop", "slow") and not re.fullmatch(r"[1-5]\d\d", kind):
            raise ValueError(f"unknown fault kind {kind!r}")
        fault = Fault(kind, match, count, retry_after, delay, method, message)
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests(self, route: str | None = None, method: str | None = None) -> list[LoggedRequest]:
        """The requests so far (oldest first), optionally only one route and/or method."""
        with self._lock:
            return [r for r in self._log if (route is None or r.route == route)
                    and (method is None or r.method == method.upper())]

    def count(self, route: str | None = None, method: str | None = None) -> int:
        return len(self.requests(route, method))

    def clear_log(self) -> None:
        with self._lock:
            self._log.clear()

    def _take_fault(self, method: str, route: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, route, path):
                    fault.count -= 1
                    fault.hits += 1
                    return fault
        return None

    def _record(self, entry: LoggedRequest) -> None:
        with self._lock:
            self._log.append(entry)

    # ---- direct state access (tests set up and inspect repos without the client)

    def _repo(self, repo_id: str, repo_type: str, *, create: bool = False) -> _Repo:
        folder = self.root / f"{repo_type}s" / repo_id
        repo = _Repo(folder, repo_id, repo_type)
        if (folder / "main").is_file():
            return repo
        if not create:
            raise _HubError(404, f"Repository Not Found for {repo_type} {repo_id}", "RepoNotFound")
        for sub in ("blobs", "commits"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        repo.write(None, {}, "initial commit", {})
        return repo

    def create(self, repo_id: str, repo_type: str = "dataset") -> str:
        """Create a repo (if missing); returns its head commit."""
        with self._lock:
            return self._repo(repo_id, repo_type, create=True).head

    def seed(self, repo_id: str, files: Mapping[str, bytes], repo_type: str = "dataset",
             message: str = "seed") -> str:
        """Commit ``files`` directly, with no path checks (to plant hostile names); creates the repo."""
        with self._lock:
            repo = self._repo(repo_id, repo_type, create=True)
            table = dict(repo.files(repo.head))
            blobs = {git_sha1(d): d for d in files.values()}
            table.update({p: git_sha1(d) for p, d in files.items()})
            return repo.write(repo.head, table, message, blobs)

    def head(self, repo_id: str, repo_type: str = "dataset") -> str:
        with self._lock:
            return self._repo(repo_id, repo_type).head

    def commits(self, repo_id: str, repo_type: str = "dataset") -> list[str]:
        """Commit ids of main, newest first (the initial empty commit last)."""
        with self._lock:
            return self._repo(repo_id, repo_type).history()

    def files(self, repo_id: str, repo_type: str = "dataset", revision: str = "main") -> dict[str, bytes]:
        with self._lock:
            repo = self._repo(repo_id, repo_type)
            return {p: repo.blob(oid) for p, oid in repo.files(repo.resolve(revision)).items()}

    # ---- request handling (called from handler threads)

    def handle(self, h: "_Handler", method: str) -> None:
        split = urlsplit(h.path)
        path, query = split.path, parse_qs(split.query)
        route, target = self._route(method, path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        fault = self._take_fault(method, route, path)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.kind == "drop":
            self._record(LoggedRequest(method, path, route, None, "drop"))
            h.drop()
            return
        try:
            if fault is not None and fault.kind != "slow":
                headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
                raise _HubError(int(fault.kind), fault.message or f"injected {fault.kind}", None, headers)
            self._check_auth(h, method, route)
            status, headers, payload = self._dispatch(method, route, target, query, body, h)
        except _HubError as err:
            status, headers = err.status, {**err.headers, "X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            payload = json.dumps({"error": err.message}).encode()
            headers["Content-Type"] = "application/json"
        self._record(LoggedRequest(method, path, route, status, fault.kind if fault else None))
        h.reply(status, headers, payload, head=(method == "HEAD"))

    def _check_auth(self, h: "_Handler", method: str, route: str) -> None:
        if self.token is None:
            return
        given = h.headers.get("Authorization")
        if given is None and self.anonymous_read and method in ("GET", "HEAD") and route != "create":
            return
        if given != f"Bearer {self.token}":
            raise _HubError(401, "Invalid credentials in Authorization header")

    @staticmethod
    def _route(method: str, path: str) -> tuple[str, dict[str, str]]:
        if path == "/api/repos/create" and method == "POST":
            return "create", {}
        if path == "/api/validate-yaml" and method == "POST":
            return "validate-yaml", {}
        m = _API.match(path)
        if m:
            op = m["op"] or "info"
            target = {"type": REPO_TYPES[m["kind"]], "id": f"{unquote(m['ns'])}/{unquote(m['name'])}",
                      "rest": m["rest"] or ""}
            return op, target
        m = _RESOLVE.match(path)
        if m and method in ("GET", "HEAD"):
            kind = REPO_TYPES[m["kind"]] if m["kind"] else "model"
            return "resolve", {"type": kind, "id": f"{unquote(m['ns'])}/{unquote(m['name'])}", "rest": m["rest"]}
        return "unknown", {}

    def _dispatch(self, method: str, route: str, target: dict[str, str], query: dict[str, list[str]],
                  body: bytes, h: "_Handler") -> tuple[int, dict[str, str], bytes]:
        handlers = {("POST", "create"): self._create, ("POST", "validate-yaml"): self._validate_yaml,
                    ("GET", "info"): self._info, ("GET", "revision"): self._info, ("GET", "tree"): self._tree,
                    ("POST", "preupload"): self._preupload, ("POST", "commit"): self._commit,
                    ("GET", "resolve"): self._resolve, ("HEAD", "resolve"): self._resolve}
        fn = handlers.get((method, route))
        if fn is None:
            raise _HubError(404, f"no such endpoint: {method} {route}")
        with self._lock:
            return fn(target=target, query=query, body=body, headers=h.headers)

    @staticmethod
    def _json(payload: Any, status: int = 200, headers: Mapping[str, str] | None = None
              ) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(payload).encode()

    def _repo_url(self, repo_type: str, repo_id: str) -> str:
        return f"{self.url}/{URL_PREFIX[repo_type]}{repo_id}"

    def _create(self, body: bytes, **_: Any) -> tuple[int, dict[str, str], bytes]:
        data = json.loads(body or b"{}")
        repo_type = data.get("type") or "model"
        if not data.get("organization") or not data.get("name") or repo_type not in URL_PREFIX:
            raise _HubError(400, "this test hub needs type, organization and name")
        repo_id = f"{data['organization']}/{data['name']}"
        url = self._repo_url(repo_type, repo_id)
        if (self.root / f"{repo_type}s" / repo_id / "main").is_file():
            return self._json({"error": "You already created this repo", "url": url}, 409)
        self._repo(repo_id, repo_type, create=True)
        return self._json({"url": url, "name": repo_id, "id": repo_id})

    def _validate_yaml(self, **_: Any) -> tuple[int, dict[str, str], bytes]:
        return self._json({"errors": [], "warnings": []})

    def _info(self, target: dict[str, str], **_: Any) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(target["id"], target["type"])
        sha = repo.resolve(unquote(target["rest"]) if target["rest"] else "main")
        ns = target["id"].split("/")[0]
        return self._json({"_id": sha[:24], "id": target["id"], "author": ns, "sha": sha, "private": False,
                           "disabled": False, "gated": False, "downloads": 0, "likes": 0, "tags": [],
                           "siblings": [{"rfilename": p} for p in sorted(repo.files(sha))]})

    def _tree(self, target: dict[str, str], query: dict[str, list[str]], **_: Any) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(target["id"], target["type"])
        rev, _, rest = target["rest"].partition("/")
        sha = repo.resolve(unquote(rev))
        folder = "/".join(unquote(s) for s in rest.split("/") if s)
        recursive = (query.get("recursive") or ["false"])[0].lower() in ("true", "1")
        files = repo.files(sha)
        entries = self._tree_entries(files, folder, recursive, repo)
        if folder and not entries:
            raise _HubError(404, f"Entry not found: {folder}", "EntryNotFound")
        start = int((query.get("cursor") or ["0"])[0])
        page = entries[start:start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            base = f"{self.url}/api/{target['type']}s/{target['id']}/tree/{quote(rev, safe='')}"
            if folder:
                base += "/" + quote(folder, safe="")
            headers["Link"] = f'<{base}?recursive={recursive}&cursor={start + self.page_size}>; rel="next"'
        return self._json(page, headers=headers)

    @staticmethod
    def _tree_entries(files: Mapping[str, str], folder: str, recursive: bool, repo: _Repo) -> list[dict[str, Any]]:
        prefix = folder + "/" if folder else ""
        dirs: set[str] = set()
        out: list[dict[str, Any]] = []
        for path, oid in sorted(files.items()):
            if not path.startswith(prefix):
                continue
            rel_parts = path[len(prefix):].split("/")
            for depth in range(1, len(rel_parts)):
                if not recursive and depth > 1:
                    break
                dirs.add(prefix + "/".join(rel_parts[:depth]))
            if recursive or len(rel_parts) == 1:
                out.append({"type": "file", "oid": oid, "size": len(repo.blob(oid)), "path": path})
        folders = [{"type": "directory", "oid": hashlib.sha1(d.encode()).hexdigest(), "size": 0, "path": d}
                   for d in sorted(dirs)]
        return folders + out

    def _preupload(self, target: dict[str, str], body: bytes, query: dict[str, list[str]],
                   **_: Any) -> tuple[int, dict[str, str], bytes]:
        if query.get("create_pr"):
            raise _HubError(400, "this test hub has no pull requests")
        repo = self._repo(target["id"], target["type"])
        sha = repo.resolve(unquote(target["rest"]))
        existing = repo.files(sha)
        files = json.loads(body)["files"]
        return self._json({"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                      "oid": existing.get(f["path"])} for f in files]})

    def _commit(self, target: dict[str, str], body: bytes, query: dict[str, list[str]],
                **_: Any) -> tuple[int, dict[str, str], bytes]:
        if query.get("create_pr"):
            raise _HubError(400, "this test hub has no pull requests")
        repo = self._repo(target["id"], target["type"])
        if unquote(target["rest"]) != "main":
            raise _HubError(400, "this test hub commits to main only")
        lines = [json.loads(line) for line in body.splitlines() if line.strip()]
        if not lines or lines[0].get("key") != "header":
            raise _HubError(400, "commit payload must start with a header line")
        header = lines[0]["value"]
        head = repo.head
        parent = header.get("parentCommit")
        if parent and parent != head:
            raise _HubError(412, "A commit has happened since. Please refresh and try again.")
        table, blobs = dict(repo.files(head)), {}
        for item in lines[1:]:
            key, value = item.get("key"), item.get("value") or {}
            path = value.get("path", "")
            if not path or path.startswith("/") or ".." in path.split("/") or "\\" in path:
                raise _HubError(400, f"invalid path {path!r}")
            if key == "file":
                if value.get("encoding") != "base64":
                    raise _HubError(400, "file content must be base64")
                data = base64.b64decode(value["content"])
                blobs[git_sha1(data)] = data
                table[path] = git_sha1(data)
            elif key == "deletedFile":
                if path not in table:
                    raise _HubError(404, "A file with this name doesn't exist", "EntryNotFound")
                del table[path]
            elif key == "deletedFolder":
                folder = path.rstrip("/") + "/"
                for p in [p for p in table if p.startswith(folder)]:
                    del table[p]
            else:
                raise _HubError(400, f"this test hub does not support {key!r} operations (no LFS)")
        summary = header.get("summary") or ""
        message = summary + ("\n\n" + header["description"] if header.get("description") else "")
        sha = repo.write(head, table, message, blobs)
        url = f"{self._repo_url(repo.repo_type, repo.repo_id)}/commit/{sha}"
        return self._json({"success": True, "commitOid": sha, "commitUrl": url, "pullRequestUrl": None})

    def _resolve(self, target: dict[str, str], headers: Any, **_: Any) -> tuple[int, dict[str, str], bytes]:
        repo = self._repo(target["id"], target["type"])
        rev, _, rest = target["rest"].partition("/")
        sha = repo.resolve(unquote(rev))
        path = unquote(rest)
        oid = repo.files(sha).get(path)
        if oid is None:
            raise _HubError(404, f"Entry not found: {path}", "EntryNotFound", {"X-Repo-Commit": sha})
        data = repo.blob(oid)
        out = {"X-Repo-Commit": sha, "ETag": f'"{oid}"', "Content-Type": "application/octet-stream",
               "Accept-Ranges": "bytes"}
        byte_range = re.fullmatch(r"bytes=(\d+)-(\d*)", headers.get("Range") or "")
        if byte_range:
            start = int(byte_range[1])
            end = int(byte_range[2]) if byte_range[2] else len(data) - 1
            out["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            return 206, out, data[start:end + 1]
        return 200, out, data


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning :class:`HubServer` (set as the ``hub`` class attribute)."""

    disable_nagle_algorithm = True  # small header + body writes would otherwise stall ~40 ms each

    hub: HubServer
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self.hub.handle(self, "GET")

    def do_HEAD(self) -> None:
        self.hub.handle(self, "HEAD")

    def do_POST(self) -> None:
        self.hub.handle(self, "POST")

    def do_PUT(self) -> None:
        self.hub.handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.hub.handle(self, "DELETE")

    def reply(self, status: int, headers: Mapping[str, str], payload: bytes, *, head: bool) -> None:
        try:
            self.send_response(status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "")
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if not head:
                self.wfile.write(payload)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (a "slow" fault): fine
            self.close_connection = True

    def drop(self) -> None:
        """Close the connection without a byte of answer."""
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # the request log replaces stderr noise


# --------------------------------------------------------------------------------------- pytest

try:
    import pytest
except ImportError:  # pragma: no cover - the server itself needs only the standard library
    pytest = None  # type: ignore[assignment]

if pytest is not None:

    @pytest.fixture
    def hub_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
        """A started :class:`HubServer` (repos under ``tmp_path/hub``), stopped after the test.

        The test suite runs huggingface_hub in offline mode (tests/conftest.py); this fixture lifts that
        for the test so the client may reach 127.0.0.1, and points HF_ENDPOINT at the server (restored
        afterwards)."""
        root = tmp_path / "hub"
        root.mkdir()
        server = HubServer(root).start()
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        try:
            import huggingface_hub.constants as hf_constants
        except ImportError:
            pass
        else:
            monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", False)
        try:
            yield server
        finally:
            server.stop()
