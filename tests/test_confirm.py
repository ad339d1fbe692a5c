"""``warpd confirm`` driven like a user would: stdin text in, terminal text out."""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

import pytest

from warpd import confirm
from warpd.config import load_config
from warpd.paths import DataPaths
from warpd.store import Pending, Store

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_store import make_png  # noqa: E402  (the same tiny PNG maker)

LOCATOR = "Console - Advanced Tactical - Vulnerability Locator"
EXPLOITER = "Console - Advanced Tactical - Vulnerability Exploiter"
TACHYON_A = "Console - Universal - Tachyon Detection Field"
TACHYON_B = "Console - Universal - Tachyon Detection Grid"
VOCAB = [LOCATOR, EXPLOITER, TACHYON_A, TACHYON_B, "Console - Tactical - Zero-Point Energy Conduit"]


def vocabulary(item: Pending) -> list[str]:
    fixed = confirm.fixed_vocabulary(item)
    return list(fixed) if fixed is not None else VOCAB


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def store(root: Path):
    with Store(DataPaths(root)) as s:
        yield s


def add_items(store: Store, n: int = 3) -> list[int]:
    ids = []
    for i in range(n):
        sha = hashlib.sha256(f"shot-{i}".encode()).hexdigest()
        store.claim(sha, f"/shots/{i}.png")
        store.finish(sha, {"screen_type": "SPACE_EQ"})
        ids.append(store.add_pending(sha, "Tactical Consoles", file=f"/shots/{i}.png", index=i,
                                     candidates=[[LOCATOR, 0.62], [EXPLOITER, 0.55]], ml_name=LOCATOR,
                                     ml_conf=0.62, crop=make_png(64, 64, i)))
    return ids


def drive(store: Store, text: str) -> str:
    out = io.StringIO()
    assert confirm.interactive(store, io.StringIO(text), out, vocabulary) == 0
    return out.getvalue()


def names(store: Store) -> list[str]:
    return [a.name for _, a in store.annotations()]


# --------------------------------------------------------------------------------------------------
# the interactive walk
# --------------------------------------------------------------------------------------------------
def test_number_choice(store: Store):
    ids = add_items(store)
    out = drive(store, "2\n1\n")
    assert "Tactical Consoles #1" in out and "/shots/0.png" in out and f" 1) {LOCATOR}  0.62" in out
    assert names(store) == [EXPLOITER, LOCATOR]
    assert store.pending(ids[0]).status == "confirmed" and store.pending(ids[2]).status == "waiting"
    assert "2 confirmed" in out and "1 still waiting" in out  # end of input stops, nothing lost


def test_fuzzy_typed_names(store: Store):
    ids = add_items(store)
    out = drive(store, "vul expl\nVulnerabilty Locatr\nZero point\n")
    assert names(store) == [EXPLOITER, LOCATOR, "Console - Tactical - Zero-Point Energy Conduit"]
    # a name that is not among the candidates says they were wrong
    assert store.pending(ids[2]).status == "none"
    assert "recorded (not a candidate)" in out


def test_ambiguous_name_lists_matches_and_asks_again(store: Store):
    add_items(store, 1)
    out = drive(store, "tachyon\n3\n2\n")
    assert "which one?" in out and TACHYON_A in out and TACHYON_B in out
    assert "choose 1-2" in out  # the numbers now refer to the matches
    assert names(store) == [TACHYON_B]


def test_unknown_name_then_literal(store: Store):
    add_items(store, 1)
    out = drive(store, "qqqqxxxx\n=Console - Brand New Thing\n")
    assert "no such name here" in out
    assert names(store) == ["Console - Brand New Thing"]


def test_skip_none_quit(store: Store):
    ids = add_items(store)
    out = drive(store, "s\nn\nq\n")
    assert store.pending(ids[0]).status == "skipped" and store.pending(ids[1]).status == "none"
    assert store.pending(ids[2]).status == "waiting" and names(store) == []
    assert "0 confirmed, 1 none of these, 1 skipped; 1 still waiting" in out


def test_out_of_range_and_blank_lines(store: Store):
    add_items(store, 1)
    out = drive(store, "\n9\n?\n1\n")
    assert "choose 1-2" in out and names(store) == [LOCATOR]
    assert out.count("(question 1)") == 2  # '?' shows the question again


def test_screen_type_and_ship_tier_questions(store: Store):
    sha = hashlib.sha256(b"screen").hexdigest()
    store.claim(sha, "/shots/s.png")
    screen = store.add_pending(sha, kind="screen_type", candidates=[["SPACE_EQ", 0.4]],
                               crop=make_png(224, 126, 1))
    tier = store.add_pending(sha, kind="ship_tier", candidates=[["T6", 0.5]], crop=make_png(40, 16, 2))
    out = drive(store, "traits\nt6-x2\n")
    assert store.pending(screen).answer == "TRAITS" and store.screenshot(sha).screen_type == "TRAITS"
    assert store.pending(tier).answer == "T6-X2" and "the screen type" in out


def test_nothing_waiting(store: Store):
    assert "Nothing waits" in drive(store, "")


def test_question_answered_elsewhere_meanwhile_is_passed_over(store: Store):
    ids = add_items(store, 2)

    class Racing(io.StringIO):
        def readline(self, *a):  # the tray answers the second question while the user types the first
            line = super().readline(*a)
            if store.pending(ids[1]).status == "waiting":
                store.skip(ids[1])
            return line

    out = io.StringIO()
    confirm.interactive(store, Racing("1\n"), out, vocabulary)
    assert "(question 2)" not in out.getvalue()


def test_resolve_name_rules():
    assert confirm.resolve_name("vulnerability locator", VOCAB).name == LOCATOR  # case-insensitive exact
    assert confirm.resolve_name("loc vul", VOCAB).name == LOCATOR  # word prefixes, any order
    assert set(confirm.resolve_name("tach det", VOCAB).matches) == {TACHYON_A, TACHYON_B}
    assert confirm.resolve_name("= Exact ", VOCAB).name == "Exact"
    assert confirm.resolve_name("zzzzzz", VOCAB) == confirm.Resolution()


# --------------------------------------------------------------------------------------------------
# the command line (--json, --id/--name), through argparse like cli.py does
# --------------------------------------------------------------------------------------------------
def run_cli(root: Path, *argv: str, stdin: str = "", monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="warpd")
    confirm.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["confirm", *argv])
    cfg = load_config(overrides=[f'paths.data_dir="{root}"'], env={})
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = args.func(args, cfg)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_help(capsys):
    parser = argparse.ArgumentParser(prog="warpd")
    confirm.register(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args(["confirm", "--help"])
    assert exit_info.value.code == 0 and "usage: warpd confirm" in capsys.readouterr().out


def test_json_lists_waiting_items(root: Path, store: Store, monkeypatch, capsys):
    ids = add_items(store, 2)
    code, out, _ = run_cli(root, "--json", monkeypatch=monkeypatch, capsys=capsys)
    rows = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and [r["id"] for r in rows] == ids
    assert rows[0]["slot"] == "Tactical Consoles" and rows[0]["candidates"][0] == [LOCATOR, 0.62]
    assert rows[0]["crop_sha256"] == hashlib.sha256(make_png(64, 64, 0)).hexdigest()


def test_id_and_name_non_interactive(root: Path, store: Store, monkeypatch, capsys):
    ids = add_items(store, 3)
    code, out, _ = run_cli(root, "--id", str(ids[0]), "--name", EXPLOITER.upper(), monkeypatch=monkeypatch,
                           capsys=capsys)
    assert code == 0 and f"= {EXPLOITER}" in out  # exact up to case, catalogue spelling kept
    code, _, err = run_cli(root, "--id", str(ids[1]), "--name", "vul expl", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "did you mean" in err and EXPLOITER in err  # scripts get no fuzzy guess
    code, _, _ = run_cli(root, "--id", str(ids[1]), "--name", "Brand New", "--literal", monkeypatch=monkeypatch,
                         capsys=capsys)
    assert code == 0
    code, _, _ = run_cli(root, "--id", str(ids[2]), "--skip", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and store.pending(ids[2]).status == "skipped"
    assert names(store) == [EXPLOITER, "Brand New"]
    code, _, err = run_cli(root, "--id", "999", "--none", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1 and "no question" in err
    code, _, err = run_cli(root, "--name", "X", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 2 and "need --id" in err


def test_interactive_through_the_cli_uses_the_catalogue(root: Path, store: Store, monkeypatch, capsys):
    ids = add_items(store, 2)
    # Lorca's console is in the bundled catalogue's tactical consoles, not among the candidates
    code, out, _ = run_cli(root, stdin="lorca\n=Literal Name\n", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0 and names(store) == ["Console - Tactical - Lorca's Custom Fire Controls", "Literal Name"]
    assert store.pending(ids[0]).status == "none"  # answered, and the candidates were wrong
