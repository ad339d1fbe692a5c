"""warpd.hub against the real huggingface_hub client over HTTP (tests/hubserver.py) and against a folder.

Nothing of huggingface_hub is mocked: every HttpHub test goes over a socket to the local Hub, so a change
in the client's wire behaviour (or in how errors and retries surface through it) shows up here. Shared
behaviour is parametrised over both hubs; retry sleeps are recorded instead of slept.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Mapping

import pytest

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:  # `tests.hubserver` must import however pytest was started (no tests/__init__.py)
    sys.path.insert(0, _ROOT)

from tests.hubserver import HubServer  # noqa: E402
from warpd.config import load_config  # noqa: E402
from warpd.hub import (  # noqa: E402
    DirHub, Hub, HttpHub, HubAuthError, HubConflict, HubError, HubNotFound, HubRateLimited, HubUnavailable,
    HubUnsafePath, RemoteFile, RetryPolicy, git_blob_sha1, open_hub, resolve_token, safe_path, save_token,
)

REPO = "sets-test/staging"
SECRET = "hf_TopSecretTokenValue12345"


@dataclass
class Rig:
    """One hub under test plus what a test needs around it."""

    kind: str
    hub: Hub
    plant: Callable[[str, Mapping[str, bytes]], str]  # commit raw (unchecked) paths, as a hostile writer could
    server: HubServer | None = None
    sleeps: list[float] = field(default_factory=list)


def http_hub(server: HubServer, sleeps: list[float], *, token: str | None = None, timeout_s: float = 5.0,
             attempts: int = 3, **policy: object) -> HttpHub:
    """An HttpHub on the test server whose retry sleeps are recorded, not slept."""
    retry = RetryPolicy(attempts=attempts, sleep=sleeps.append, **policy)  # type: ignore[arg-type]
    return HttpHub(server.url, token, timeout_s=timeout_s, retry=retry)


@pytest.fixture(params=["http", "dir"])
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Rig]:
    """Both hubs, so every shared behaviour is checked on each."""
    if request.param == "http":
        server: HubServer = request.getfixturevalue("hub_server")
        sleeps: list[float] = []
        hub = http_hub(server, sleeps)
        yield Rig("http", hub, lambda repo, files: server.seed(repo, files), server, sleeps)
    else:
        root = tmp_path / "dirhub"
        root.mkdir()
        dhub = DirHub(root, lock_timeout_s=5)
        yield Rig("dir", dhub, lambda repo, files: dhub._commit_raw(repo, files))


def crops(n: int, folder: str = "staging/inst1/crops") -> dict[str, bytes]:
    return {f"{folder}/{i:04d}.png": f"png-{i}".encode() * (i + 1) for i in range(n)}


# ------------------------------------------------------------------------------ shared behaviour

def test_ensure_repo_is_idempotent_and_starts_empty(rig: Rig) -> None:
    """A fresh repo has a head commit to pin and no files; creating it again is not an error."""
    rig.hub.ensure_repo(REPO)
    first = rig.hub.head(REPO)
    rig.hub.ensure_repo(REPO)
    assert rig.hub.head(REPO) == first and len(first) == 40
    assert rig.hub.list_files(REPO) == []


def test_batch_commit_is_one_commit_and_lists_back(rig: Rig) -> None:
    """50 crops go up as ONE commit (the Hub rate-limits commits, not files) and list back exactly."""
    rig.hub.ensure_repo(REPO)
    before = rig.hub.head(REPO)
    files = crops(50)
    if rig.server:
        rig.server.clear_log()
    sha = rig.hub.commit(REPO, files, "50 crops")
    assert sha != before and rig.hub.head(REPO) == sha
    if rig.server:
        assert rig.server.count("commit") == 1
        assert rig.server.count("preupload") == 1
        assert rig.server.commits(REPO)[:2] == [sha, before]
    listed = rig.hub.list_files(REPO, "staging/inst1")
    assert listed == [RemoteFile(p, len(d), git_blob_sha1(d)) for p, d in sorted(files.items())]
    assert rig.hub.read_bytes(REPO, "staging/inst1/crops/0007.png") == files["staging/inst1/crops/0007.png"]


def test_path_contents_are_committed(rig: Rig, tmp_path: Path) -> None:
    """Files may be given as paths on disk as well as bytes."""
    rig.hub.ensure_repo(REPO)
    local = tmp_path / "annotations.jsonl"
    local.write_bytes(b'{"crop_sha256": "ab", "name": "X"}\n')
    rig.hub.commit(REPO, {"staging/inst1/annotations.jsonl": local}, "annotations")
    assert rig.hub.read_bytes(REPO, "staging/inst1/annotations.jsonl") == local.read_bytes()


def test_pinned_revision_reads_old_content_after_a_later_commit(rig: Rig, tmp_path: Path) -> None:
    """A reader that pinned a commit keeps seeing that snapshot while writers move main on."""
    rig.hub.ensure_repo(REPO)
    old = rig.hub.commit(REPO, {"models/model_version.json": b'{"version": 1}'}, "v1")
    new = rig.hub.commit(REPO, {"models/model_version.json": b'{"version": 2, "n": 3}'}, "v2")
    assert old != new
    pinned = rig.hub.download(REPO, "models/model_version.json", tmp_path / "a", revision=old)
    assert pinned == tmp_path / "a" / "models" / "model_version.json"
    assert pinned.read_bytes() == b'{"version": 1}'
    assert rig.hub.read_bytes(REPO, "models/model_version.json") == b'{"version": 2, "n": 3}'
    assert rig.hub.list_files(REPO, revision=old)[0].size == len(b'{"version": 1}')
    assert rig.hub.head(REPO, revision=old) == old


def test_unchanged_files_make_no_commit(rig: Rig) -> None:
    """Re-sending identical files (say, a retried batch) creates no empty commit."""
    rig.hub.ensure_repo(REPO)
    sha = rig.hub.commit(REPO, crops(3), "batch")
    assert rig.hub.commit(REPO, crops(3), "same batch again") == sha
    assert rig.hub.head(REPO) == sha


def test_deletions_in_the_same_commit(rig: Rig) -> None:
    """Files and whole folders can be deleted; deleting what is not there is HubNotFound."""
    rig.hub.ensure_repo(REPO)
    rig.hub.commit(REPO, {**crops(2), "other/keep.txt": b"k"}, "add")
    rig.hub.commit(REPO, {"other/new.txt": b"n"}, "swap", deletions=["staging/inst1/crops/0000.png"])
    assert [f.path for f in rig.hub.list_files(REPO)] == ["other/keep.txt", "other/new.txt",
                                                          "staging/inst1/crops/0001.png"]
    with pytest.raises(HubNotFound):
        rig.hub.commit(REPO, {}, "delete missing", deletions=["nope.txt"])


def test_missing_things_are_not_found(rig: Rig, tmp_path: Path) -> None:
    """Missing repo, revision or file: HubNotFound; a missing folder simply lists empty."""
    with pytest.raises(HubNotFound):
        rig.hub.head("sets-test/missing")
    with pytest.raises(HubNotFound):
        rig.hub.list_files("sets-test/missing")
    with pytest.raises(HubNotFound):
        rig.hub.download("sets-test/missing", "a.txt", tmp_path)
    with pytest.raises(HubNotFound):
        rig.hub.commit("sets-test/missing", {"a.txt": b"a"}, "m")
    rig.hub.ensure_repo(REPO)
    rig.hub.commit(REPO, {"a/b.txt": b"b"}, "m")
    with pytest.raises(HubNotFound):
        rig.hub.read_bytes(REPO, "a/missing.txt")
    with pytest.raises(HubNotFound):
        rig.hub.head(REPO, revision="0" * 40)
    with pytest.raises(HubNotFound):
        rig.hub.read_bytes(REPO, "a/b.txt", revision="0" * 40)
    assert rig.hub.list_files(REPO, "staging/never-uploaded") == []
    # an optional file: None when absent, its content when there; other errors still raise
    assert rig.hub.read_optional(REPO, "a/missing.txt") is None
    assert rig.hub.read_optional(REPO, "a/b.txt") == b"b"
    with pytest.raises(HubUnsafePath):
        rig.hub.read_optional(REPO, "../escape.txt")


def test_parent_mismatch_is_a_conflict(rig: Rig) -> None:
    """Optimistic concurrency: committing on a stale parent fails instead of silently interleaving."""
    rig.hub.ensure_repo(REPO)
    base = rig.hub.head(REPO)
    rig.hub.commit(REPO, {"a.txt": b"1"}, "someone else")
    with pytest.raises(HubConflict):
        rig.hub.commit(REPO, {"b.txt": b"2"}, "mine", parent=base)
    assert rig.hub.commit(REPO, {"b.txt": b"2"}, "mine", parent=rig.hub.head(REPO))


UNSAFE = ["../evil.txt", "/etc/passwd", "a/../../b.txt", "a\\b.txt", "a\x00b", "C:/x.txt", "x/CON.txt",
          "a//b", "./a", "a/b.", "x" * 300, "bad\nname"]


@pytest.mark.parametrize("bad", UNSAFE)
def test_unsafe_paths_are_refused_before_any_io(rig: Rig, tmp_path: Path, bad: str) -> None:
    """A path that could escape a folder never reaches the hub or the disk."""
    rig.hub.ensure_repo(REPO)
    seen = rig.server.count() if rig.server else 0
    with pytest.raises(HubUnsafePath):
        rig.hub.commit(REPO, {bad: b"x"}, "m")
    with pytest.raises(HubUnsafePath):
        rig.hub.download(REPO, bad, tmp_path / "dl")
    if rig.server:
        assert rig.server.count() == seen
    assert not (tmp_path / "dl").exists() or not any((tmp_path / "dl").rglob("*"))


def test_unsafe_remote_entries_are_left_out_of_listings(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    """Names planted by a hostile writer are dropped from listings (logged), the rest still lists."""
    rig.hub.ensure_repo(REPO)
    rig.plant(REPO, {"../evil.txt": b"e", "ok/../../b.txt": b"e", "ok/x\\y.txt": b"e", "ok/CON": b"e",
                     "ok/fine.txt": b"fine"})
    with caplog.at_level(logging.WARNING, logger="warpd.hub"):
        listed = rig.hub.list_files(REPO)
    assert [f.path for f in listed] == ["ok/fine.txt"]
    assert "unsafe" in caplog.text


def test_download_replaces_in_place_and_leaves_nothing_else(rig: Rig, tmp_path: Path) -> None:
    """Downloads land at dest/path, overwrite the old copy, and leave no temp or metadata folders."""
    rig.hub.ensure_repo(REPO)
    rig.hub.commit(REPO, {"models/label_map.json": b"{}"}, "1")
    dest = tmp_path / "models_dl"
    rig.hub.download(REPO, "models/label_map.json", dest)
    rig.hub.commit(REPO, {"models/label_map.json": b'{"0": "X"}'}, "2")
    got = rig.hub.download(REPO, "models/label_map.json", dest)
    assert got.read_bytes() == b'{"0": "X"}'
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*")) == ["models", "models/label_map.json"]


# ------------------------------------------------------------------------------ HTTP: errors, retries

@pytest.fixture
def server(hub_server: HubServer) -> HubServer:
    hub_server.create(REPO)
    hub_server.seed(REPO, {"models/a.json": b"{}"})
    hub_server.clear_log()
    return hub_server


def test_missing_or_wrong_token_is_an_auth_error_and_not_retried(server: HubServer) -> None:
    """401 means fix the token: no retry loop hammering the Hub with a bad credential."""
    server.token = "hf_the_right_one"
    sleeps: list[float] = []
    for token in (None, "hf_wrong_token"):
        with pytest.raises(HubAuthError):
            http_hub(server, sleeps, token=token).head(REPO)
    assert server.count("revision") == 2 and sleeps == []
    assert http_hub(server, sleeps, token="hf_the_right_one").head(REPO)


def test_forbidden_is_an_auth_error(server: HubServer) -> None:
    """403 (a token without write rights) is HubAuthError too."""
    server.inject("403", "commit")
    with pytest.raises(HubAuthError):
        http_hub(server, []).commit(REPO, {"x.txt": b"x"}, "m")
    assert server.count("commit") == 1


def test_server_error_once_then_success_is_retried(server: HubServer) -> None:
    """A single 500 on the commit costs one backoff and one more try, and the batch still lands once."""
    sleeps: list[float] = []
    server.inject("500", "commit")
    sha = http_hub(server, sleeps).commit(REPO, crops(5), "m")
    assert [r.status for r in server.requests("commit")] == [500, 200]
    assert len(sleeps) == 1 and 0.5 <= sleeps[0] <= 1.0
    assert server.head(REPO) == sha and len(server.commits(REPO)) == 3


def test_rate_limit_honours_retry_after(server: HubServer) -> None:
    """429 with Retry-After: 2 waits (at least) the 2 s the server asked for, then succeeds."""
    sleeps: list[float] = []
    server.inject("429", "revision", retry_after=2)
    assert http_hub(server, sleeps).head(REPO) == server.head(REPO)
    assert len(sleeps) == 1 and 2.0 <= sleeps[0] <= 2.5


def test_rate_limit_longer_than_the_cap_is_raised_at_once(server: HubServer) -> None:
    """An hour-long Retry-After (the Hub's commit quota) must not block the daemon: raise, caller reschedules."""
    sleeps: list[float] = []
    server.inject("429", "commit", retry_after=3600)
    with pytest.raises(HubRateLimited) as info:
        http_hub(server, sleeps).commit(REPO, {"x.txt": b"x"}, "m")
    assert info.value.retry_after == 3600 and sleeps == [] and server.count("commit") == 1


def test_persistent_rate_limit_ends_as_rate_limited(server: HubServer) -> None:
    """429 on every try: HubRateLimited after the configured attempts."""
    sleeps: list[float] = []
    server.inject("429", "tree", count=99, retry_after=1)
    with pytest.raises(HubRateLimited):
        http_hub(server, sleeps, attempts=3).list_files(REPO)
    assert server.count("tree") == 3 and len(sleeps) == 2


def test_dropped_connection_is_retried(server: HubServer, tmp_path: Path) -> None:
    """A connection closed without an answer (proxy hiccup, server restart) is retried."""
    sleeps: list[float] = []
    server.inject("drop", "resolve", method="HEAD")
    got = http_hub(server, sleeps).download(REPO, "models/a.json", tmp_path)
    assert got.read_bytes() == b"{}"
    assert [r.status for r in server.requests("resolve", "HEAD")] == [None, 200]
    assert len(sleeps) == 1


@pytest.mark.parametrize("route", ["revision", "tree", "commit"])
def test_slow_answers_time_out_and_end_unavailable(server: HubServer, route: str) -> None:
    """A server slower than sync.timeout_s on every try ends as HubUnavailable after the retries (also
    for calls where huggingface_hub itself sets no timeout, such as listing and committing)."""
    sleeps: list[float] = []
    fault = server.inject("slow", route, count=99, delay=1.0)
    hub = http_hub(server, sleeps, timeout_s=0.25, attempts=3)
    calls = {"revision": lambda: hub.head(REPO), "tree": lambda: hub.list_files(REPO),
             "commit": lambda: hub.commit(REPO, {"s.txt": b"s"}, "m")}
    started = time.monotonic()
    with pytest.raises(HubUnavailable):
        calls[route]()
    assert time.monotonic() - started < 2.5  # 3 x 0.25 s, not the library's 10 s default per try
    assert fault.hits == 3 and len(sleeps) == 2


@pytest.mark.parametrize("route", ["tree", "preupload", "commit", "resolve", "revision", "create"])
def test_retries_happen_once_not_inside_huggingface_hub_too(server: HubServer, route: str) -> None:
    """huggingface_hub retries some calls itself (5 tries, real sleeps): ours must be the only loop,
    so N attempts means exactly N requests and no hidden multi-second stalls."""
    sleeps: list[float] = []
    server.inject("503", route, count=99)
    hub = http_hub(server, sleeps, attempts=2)
    calls = {"tree": lambda: hub.list_files(REPO), "preupload": lambda: hub.commit(REPO, {"n.txt": b"n"}, "m"),
             "commit": lambda: hub.commit(REPO, {"n.txt": b"n"}, "m"), "revision": lambda: hub.head(REPO),
             "resolve": lambda: hub.read_bytes(REPO, "models/a.json"), "create": lambda: hub.ensure_repo(REPO)}
    started = time.monotonic()
    with pytest.raises(HubUnavailable):
        calls[route]()
    assert server.count(route) == 2 and len(sleeps) == 1
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("status", ["400", "404", "422"])
def test_client_errors_are_not_retried(server: HubServer, status: str) -> None:
    """4xx other than 429 will not get better by asking again."""
    sleeps: list[float] = []
    server.inject(status, "commit")
    with pytest.raises(HubError) as info:
        http_hub(server, sleeps).commit(REPO, {"x.txt": b"x"}, "m")
    assert not isinstance(info.value, (HubUnavailable, HubRateLimited))
    assert server.count("commit") == 1 and sleeps == []


def test_backoff_is_exponential_capped_and_jittered() -> None:
    """Waits double per retry up to max_s; jitter only shortens them (never past the cap)."""
    assert [RetryPolicy(base_s=1, max_s=5, rand=lambda: 0.0).backoff(n) for n in range(5)] == [1, 2, 4, 5, 5]
    assert RetryPolicy(base_s=1, jitter=0.5, rand=lambda: 1.0).backoff(2) == 2.0


def test_backoff_sequence_over_the_wire(server: HubServer) -> None:
    """Three 500s then success: the recorded sleeps follow base * 2**n."""
    sleeps: list[float] = []
    server.inject("500", "tree", count=3)
    hub = http_hub(server, sleeps, attempts=4, base_s=0.5, rand=lambda: 0.0)
    assert [f.path for f in hub.list_files(REPO)] == ["models/a.json"]
    assert sleeps == [0.5, 1.0, 2.0]


def test_tree_pagination_is_followed(server: HubServer) -> None:
    """Listings longer than a page (Link: rel=next) come back whole."""
    server.page_size = 7
    server.seed(REPO, crops(30))
    server.clear_log()
    listed = http_hub(server, []).list_files(REPO, "staging")
    assert len(listed) == 30 and server.count("tree") > 1


def test_offline_mode_is_unavailable_not_a_crash(server: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE makes every call HubUnavailable (the daemon keeps working locally)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(HubUnavailable, match="offline"):
        http_hub(server, []).head(REPO)


def test_token_never_leaks(server: HubServer, caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """The token is absent from error messages, tracebacks, the hub's repr and all logs, even when the
    server echoes it back in an error body."""
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="huggingface_hub")
    sleeps: list[float] = []
    hub = http_hub(server, sleeps, token=SECRET, attempts=2)
    errors: list[BaseException] = []
    server.inject("500", "revision", count=2, message=f"token {SECRET} rejected")
    server.inject("drop", "tree", count=2)
    server.inject("403", "commit", message=f"no write access for {SECRET}")
    for call in (lambda: hub.head(REPO), lambda: hub.list_files(REPO),
                 lambda: hub.commit(REPO, {"x.txt": b"x"}, "m"), lambda: hub.read_bytes(REPO, "nope.txt")):
        with pytest.raises(HubError) as info:
            call()
        errors.append(info.value)
    server.token = "hf_another"
    with pytest.raises(HubAuthError) as info:
        hub.download(REPO, "models/a.json", tmp_path)
    errors.append(info.value)
    texts = [repr(hub), str(hub), caplog.text] + [t for e in errors for t in (
        str(e), repr(e), "".join(traceback.format_exception(e)))]
    assert all(SECRET not in t for t in texts)
    assert any("***" in str(e) for e in errors)  # the echoed token was redacted, not dropped silently


# ------------------------------------------------------------------------------ DirHub specifics

def test_dir_hub_needs_its_folder(tmp_path: Path) -> None:
    """A missing hub folder (unmounted share) is HubUnavailable, not a fresh empty hub on local disk."""
    hub = DirHub(tmp_path / "not-mounted")
    with pytest.raises(HubUnavailable):
        hub.ensure_repo(REPO)
    assert not (tmp_path / "not-mounted").exists()


def test_dir_hub_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    """Two writers committing at once queue on the lock; every file of both ends up on main."""
    hub = DirHub(tmp_path, lock_timeout_s=10)
    hub.ensure_repo(REPO)

    def writer(name: str) -> None:
        for i in range(8):
            hub.commit(REPO, {f"{name}/{i}.txt": f"{name}{i}".encode()}, f"{name} {i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(hub.list_files(REPO)) == 16
    assert not (tmp_path / "datasets" / REPO / "lock").exists()


def test_dir_hub_will_not_write_through_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    """A folder inside the hub replaced by a symlink elsewhere must not become a write path out."""
    root, outside = tmp_path / "hub", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    hub = DirHub(root)
    hub.ensure_repo(REPO)
    objects = root / "datasets" / REPO / "objects"
    assert not objects.exists()
    objects.symlink_to(outside, target_is_directory=True)
    with pytest.raises(HubUnsafePath):
        hub.commit(REPO, {"a.txt": b"a"}, "m")
    assert list(outside.rglob("*")) == []


def test_dir_hub_detects_a_corrupt_blob(tmp_path: Path) -> None:
    """A blob changed on disk is reported, not served."""
    hub = DirHub(tmp_path)
    hub.ensure_repo(REPO)
    hub.commit(REPO, {"a.txt": b"good"}, "m")
    blob = git_blob_sha1(b"good")
    (tmp_path / "datasets" / REPO / "objects" / blob[:2] / blob[2:]).write_bytes(b"evil")
    with pytest.raises(HubError, match="corrupt"):
        hub.read_bytes(REPO, "a.txt")


# ------------------------------------------------------------------------------ factory and token

def test_open_hub_picks_by_endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """dir:/path gives a DirHub there; an https endpoint an HttpHub with the configured timeout."""
    monkeypatch.delenv("HF_ENDPOINT", raising=False)  # HttpHub may set it (before the import): restore after
    cfg = load_config(overrides=[f'sync.endpoint="dir:{tmp_path}"'])
    hub = open_hub(cfg)
    assert isinstance(hub, DirHub) and hub.root == tmp_path
    cfg = load_config(overrides=["sync.endpoint=https://hub.example.org", "sync.timeout_s=7"])
    http = open_hub(cfg, "tok123")
    assert isinstance(http, HttpHub) and http.timeout_s == 7 and http.endpoint == "https://hub.example.org"
    with pytest.raises(ValueError):
        open_hub(load_config(overrides=['sync.endpoint="dir:"']))


def test_safe_path_accepts_the_staging_layout() -> None:
    """The real layout passes the checks unchanged."""
    for ok in ("staging/0b6e/crops/ab12.png", "staging/x/screen_types/SPACE_EQ/ab.png", "knowledge.json"):
        assert safe_path(ok) == ok


def test_save_token_is_0600_from_the_first_byte(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The token file is created 0600 (exclusively, under a temp name) and renamed: never readable by
    others, not even between a write and a chmod; an existing looser file is replaced."""
    target = tmp_path / "data" / "hub_token"
    target.parent.mkdir()
    target.write_text("old")
    target.chmod(0o644)
    opened: list[tuple[int, int]] = []
    real_open = os.open

    def recording_open(path: object, flags: int, mode: int = 0o777, *args: object, **kwargs: object) -> int:
        opened.append((flags, mode))
        return real_open(path, flags, mode, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", recording_open)
    old_umask = os.umask(0)
    try:
        save_token(target, "  hf_new_token \n")
    finally:
        os.umask(old_umask)
    assert target.read_text() == "hf_new_token\n"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    created = [(flags, mode) for flags, mode in opened if flags & os.O_CREAT]  # not the folder fsync
    assert created and all(mode == 0o600 and flags & os.O_EXCL for flags, mode in created)
    assert [p.name for p in target.parent.iterdir()] == ["hub_token"]
    with pytest.raises(ValueError):
        save_token(target, "two words")


def test_resolve_token_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """WARPD_HF_TOKEN, then HF_TOKEN, then the config, then the token file; nothing set -> None."""
    token_file = tmp_path / "hub_token"
    monkeypatch.delenv("HF_TOKEN", raising=False)
    plain = load_config()
    assert resolve_token(plain, token_file) is None
    save_token(token_file, "from_file")
    assert resolve_token(plain, token_file) == "from_file"
    assert resolve_token(load_config(overrides=['sync.token="from_cfg"']), token_file) == "from_cfg"
    monkeypatch.setenv("HF_TOKEN", "from_hf_env")
    assert resolve_token(plain, token_file) == "from_hf_env"
    monkeypatch.setenv("WARPD_HF_TOKEN", "from_warpd_env")
    assert resolve_token(plain, token_file) == "from_warpd_env"


def test_readable_token_file_warns_without_showing_it(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A token file others can read still works, with a warning that does not contain the token."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    token_file = tmp_path / "hub_token"
    token_file.write_text(SECRET + "\n")
    token_file.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="warpd.hub"):
        assert resolve_token(load_config(), token_file) == SECRET
    assert "chmod 600" in caplog.text and SECRET not in caplog.text
