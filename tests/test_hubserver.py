"""The local Hub (tests/hubserver.py) spoken to with plain urllib: its wire contract, history and faults.

These pin the server's behaviour independently of huggingface_hub and warpd.hub, so a passing
test_hub.py means the client code works against a server whose own behaviour is checked here.
"""

from __future__ import annotations

import base64
import http.client
import json
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `tests.hubserver` must import however pytest was started (no tests/__init__.py)
    sys.path.insert(0, _ROOT)

from tests.hubserver import HubServer, git_sha1  # noqa: E402

REPO = "ns/data"


def call(server: HubServer, method: str, path: str, body: bytes | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request; returns (status, headers, body) for errors as well."""
    req = urllib.request.Request(server.url + path, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


def commit(server: HubServer, files: dict[str, bytes], *, parent: str | None = None,
           deletions: tuple[str, ...] = ()) -> tuple[int, Any]:
    """An NDJSON commit as huggingface_hub sends it."""
    header: dict[str, Any] = {"summary": "test", "description": ""}
    if parent:
        header["parentCommit"] = parent
    lines = [{"key": "header", "value": header}]
    lines += [{"key": "file", "value": {"path": p, "content": base64.b64encode(d).decode(), "encoding": "base64"}}
              for p, d in files.items()]
    lines += [{"key": "deletedFile", "value": {"path": p}} for p in deletions]
    body = b"".join(json.dumps(line).encode() + b"\n" for line in lines)
    status, _, raw = call(server, "POST", f"/api/datasets/{REPO}/commit/main", body,
                          {"Content-Type": "application/x-ndjson"})
    return status, json.loads(raw)


def create(server: HubServer) -> tuple[int, Any]:
    body = json.dumps({"name": "data", "organization": "ns", "type": "dataset", "private": False}).encode()
    status, _, raw = call(server, "POST", "/api/repos/create", body, {"Content-Type": "application/json"})
    return status, json.loads(raw)


def test_create_then_conflict_still_carries_the_url(hub_server: HubServer) -> None:
    """huggingface_hub's exist_ok reads "url" from the 409 as well."""
    status, first = create(hub_server)
    assert status == 200 and first["url"].endswith("/datasets/ns/data")
    status, again = create(hub_server)
    assert status == 409 and again["url"] == first["url"]


def test_commits_are_immutable_snapshots(hub_server: HubServer) -> None:
    """Every commit is a new 40-hex id; an old id still resolves to the old bytes, main to the new."""
    create(hub_server)
    _, one = commit(hub_server, {"m/v.json": b"1"})
    _, two = commit(hub_server, {"m/v.json": b"22"})
    old, new = one["commitOid"], two["commitOid"]
    assert old != new and len(new) == 40 and hub_server.commits(REPO)[:2] == [new, old]
    for rev, content in ((old, b"1"), (new, b"22"), ("main", b"22")):
        status, headers, body = call(hub_server, "GET", f"/datasets/{REPO}/resolve/{rev}/m/v.json")
        assert (status, body) == (200, content)
        assert headers["X-Repo-Commit"] == (new if rev == "main" else rev)
        assert headers["ETag"] == f'"{git_sha1(content)}"'


def test_head_answers_headers_without_a_body(hub_server: HubServer) -> None:
    """hf_hub_download's HEAD needs X-Repo-Commit, ETag and Content-Length."""
    hub_server.seed(REPO, {"a.bin": b"12345"})
    conn = http.client.HTTPConnection(hub_server.url.removeprefix("http://"), timeout=5)
    conn.request("HEAD", f"/datasets/{REPO}/resolve/main/a.bin")
    resp = conn.getresponse()
    assert resp.status == 200 and resp.getheader("Content-Length") == "5" and resp.read() == b""
    assert resp.getheader("X-Repo-Commit") == hub_server.head(REPO)
    conn.close()


def test_range_requests(hub_server: HubServer) -> None:
    """Resumed downloads ask for a byte range."""
    hub_server.seed(REPO, {"a.bin": b"0123456789"})
    status, headers, body = call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/a.bin",
                                 headers={"Range": "bytes=4-"})
    assert (status, body, headers["Content-Range"]) == (206, b"456789", "bytes 4-9/10")


def test_preupload_says_regular_and_reports_known_oids(hub_server: HubServer) -> None:
    """Regular mode keeps files inline; the oid of an unchanged file lets the client skip it."""
    hub_server.seed(REPO, {"a.txt": b"a"})
    body = json.dumps({"files": [{"path": "a.txt", "sample": "", "size": 1},
                                 {"path": "b.txt", "sample": "", "size": 1}]}).encode()
    status, _, raw = call(hub_server, "POST", f"/api/datasets/{REPO}/preupload/main", body)
    files = {f["path"]: f for f in json.loads(raw)["files"]}
    assert status == 200 and {f["uploadMode"] for f in files.values()} == {"regular"}
    assert files["a.txt"]["oid"] == git_sha1(b"a") and files["b.txt"]["oid"] is None


def test_tree_is_recursive_and_paged(hub_server: HubServer) -> None:
    """Recursive listings include folders and files, and page with Link: rel=next."""
    hub_server.page_size = 4
    hub_server.seed(REPO, {f"s/x/{i}.png": b"p" for i in range(6)} | {"top.txt": b"t"})
    url: str | None = f"/api/datasets/{REPO}/tree/main?recursive=True"
    seen: list[dict[str, Any]] = []
    while url:
        status, headers, raw = call(hub_server, "GET", url)
        assert status == 200
        seen += json.loads(raw)
        link = headers.get("Link")
        url = link.split(";")[0].strip("<>").removeprefix(hub_server.url) if link else None
    assert {e["path"] for e in seen if e["type"] == "file"} == {f"s/x/{i}.png" for i in range(6)} | {"top.txt"}
    assert {e["path"] for e in seen if e["type"] == "directory"} == {"s", "s/x"}
    hub_server.page_size = 1000
    status, _, raw = call(hub_server, "GET", f"/api/datasets/{REPO}/tree/main/s%2Fx")
    assert status == 200 and len(json.loads(raw)) == 6


@pytest.mark.parametrize(("path", "code"), [
    ("/api/datasets/ns/none/revision/main", "RepoNotFound"),
    (f"/api/datasets/{REPO}/revision/{'0' * 40}", "RevisionNotFound"),
    (f"/datasets/{REPO}/resolve/main/missing.txt", "EntryNotFound"),
    (f"/api/datasets/{REPO}/tree/main/nofolder", "EntryNotFound"),
])
def test_not_found_carries_the_hub_error_code(hub_server: HubServer, path: str, code: str) -> None:
    """huggingface_hub picks its exception class from X-Error-Code."""
    hub_server.seed(REPO, {"a.txt": b"a"})
    status, headers, _ = call(hub_server, "GET", path)
    assert status == 404 and headers["X-Error-Code"] == code


def test_parent_commit_mismatch_is_412(hub_server: HubServer) -> None:
    hub_server.create(REPO)
    stale = hub_server.head(REPO)
    commit(hub_server, {"a.txt": b"a"})
    status, _ = commit(hub_server, {"b.txt": b"b"}, parent=stale)
    assert status == 412


def test_deleting_files(hub_server: HubServer) -> None:
    hub_server.seed(REPO, {"a.txt": b"a", "b.txt": b"b"})
    assert commit(hub_server, {}, deletions=("a.txt",))[0] == 200
    assert set(hub_server.files(REPO)) == {"b.txt"}
    assert commit(hub_server, {}, deletions=("a.txt",))[0] == 404


def test_required_token(hub_server: HubServer) -> None:
    """With a token set: 401 without or with a wrong one; anonymous_read lets reads through, not writes."""
    hub_server.seed(REPO, {"a.txt": b"a"})
    hub_server.token = "hf_ok"
    path = f"/datasets/{REPO}/resolve/main/a.txt"
    assert call(hub_server, "GET", path)[0] == 401
    assert call(hub_server, "GET", path, headers={"Authorization": "Bearer nope"})[0] == 401
    assert call(hub_server, "GET", path, headers={"Authorization": "Bearer hf_ok"})[0] == 200
    hub_server.anonymous_read = True
    assert call(hub_server, "GET", path)[0] == 200
    assert commit(hub_server, {"b.txt": b"b"})[0] == 401


def test_injected_status_fires_count_times_then_stops(hub_server: HubServer) -> None:
    """Faults match a route, fire `count` times, carry Retry-After, and show in the request log."""
    hub_server.seed(REPO, {"a.txt": b"a"})
    fault = hub_server.inject("429", "revision", count=2, retry_after=3)
    path = f"/api/datasets/{REPO}/revision/main"
    first = call(hub_server, "GET", path)
    assert first[0] == 429 and first[1]["Retry-After"] == "3"
    assert call(hub_server, "GET", path)[0] == 429
    assert call(hub_server, "GET", path)[0] == 200
    assert fault.hits == 2
    assert [(r.status, r.fault) for r in hub_server.requests("revision")] == [(429, "429"), (429, "429"), (200, None)]


def test_injected_regex_and_method_filters(hub_server: HubServer) -> None:
    """A regex on "METHOD /path" and a method filter narrow what a fault hits."""
    hub_server.seed(REPO, {"a.txt": b"a", "b.txt": b"b"})
    hub_server.inject("500", r"resolve/main/b\.txt$", method="GET")
    assert call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/a.txt")[0] == 200
    assert call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/b.txt")[0] == 500
    assert call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/b.txt")[0] == 200


def test_drop_closes_without_an_answer(hub_server: HubServer) -> None:
    hub_server.seed(REPO, {"a.txt": b"a"})
    hub_server.inject("drop", "resolve")
    with pytest.raises((http.client.RemoteDisconnected, ConnectionError, urllib.error.URLError)):
        call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/a.txt")
    assert hub_server.requests("resolve")[-1].status is None
    assert call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/a.txt")[0] == 200


def test_slow_answers_late_but_correctly(hub_server: HubServer) -> None:
    hub_server.seed(REPO, {"a.txt": b"a"})
    hub_server.inject("slow", "resolve", delay=0.3)
    started = time.monotonic()
    status, _, body = call(hub_server, "GET", f"/datasets/{REPO}/resolve/main/a.txt")
    assert (status, body) == (200, b"a") and time.monotonic() - started >= 0.3


def test_unknown_fault_kind_is_refused(hub_server: HubServer) -> None:
    with pytest.raises(ValueError):
        hub_server.inject("explode")


def test_context_manager_stops_the_server(tmp_path: Path) -> None:
    """After the with-block the port no longer answers and a temporary root is removed."""
    with HubServer() as server:
        url, root = server.url, server.root
        assert call(server, "GET", "/api/datasets/ns/x")[0] == 404
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/api/datasets/ns/x", timeout=2)
    assert not root.exists()
