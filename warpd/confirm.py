"""``warpd confirm``: answer, in a terminal, the items warpd was unsure about.

Each waiting question shows its slot, the screenshot file and the numbered candidates; the user
types a number, a name (fuzzy: word prefixes like ``vul loc`` or a misspelling; ambiguous input
lists the closest names and asks again; ``=Exact Name`` takes the text literally), ``s`` to skip,
``n`` for "none of these", ``q`` to quit. ``--json`` lists the questions for scripts and
``--id N --name X`` answers one without a prompt.

Every answer goes through :class:`warpd.store.Store`, so a confirmation here and one in the tray
are the same record. The functions take their input and output streams as arguments so tests
(and a future GUI) can drive them.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TextIO

from warpd.formats import FormatError
from warpd.slots import SCREEN_TYPES, TIERS
from warpd.store import Pending, Store, StoreError, open_store

Vocabulary = Callable[[Pending], Sequence[str]]
MAX_MATCHES = 6
# A misspelt name (no word-prefix match) is taken only when it is this close and clearly ahead.
FUZZY_ACCEPT = 80.0
FUZZY_MARGIN = 10.0
FUZZY_SHOW = 50.0
HELP_LINE = "  number, a name (=Name takes it literally), s skip, n none of these, q quit, ? help"
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "confirm", help="answer the items warpd was unsure about",
        description="Walk the items waiting for confirmation: pick a candidate by number, type a name "
                    "(fuzzy, over the slot's candidates and the catalogue's items for that slot; "
                    "'=Exact Name' takes it literally), 's' skip, 'n' none of these, 'q' quit. "
                    "Confirmed crops become training data (and are uploaded if sync is on).")
    parser.add_argument("--json", action="store_true",
                        help="list the waiting items as JSON, one object a line, and exit")
    parser.add_argument("--id", type=int, metavar="N", help="answer question N without a prompt")
    answer = parser.add_mutually_exclusive_group()
    answer.add_argument("--name", metavar="NAME", help="with --id: the right name (must be a known name "
                                                       "for the slot unless --literal)")
    answer.add_argument("--skip", action="store_true", help="with --id: skip the question")
    answer.add_argument("--none", action="store_true", help="with --id: none of the candidates is right")
    parser.add_argument("--literal", action="store_true", help="with --name: take the name exactly as given")
    parser.add_argument("--limit", type=int, metavar="N", help="at most N questions")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace, cfg: object) -> int:
    if (args.name or args.skip or args.none or args.literal) and args.id is None:
        print("warpd confirm: --name, --skip, --none and --literal need --id", file=sys.stderr)
        return EXIT_USAGE
    store = open_store(cfg)
    try:
        if args.json:
            return list_json(store, sys.stdout, limit=args.limit)
        vocabulary = catalog_vocabulary(cfg)
        if args.id is not None:
            action = "skip" if args.skip else "none" if args.none else "name"
            if action == "name" and not args.name:
                print("warpd confirm: --id needs --name, --skip or --none", file=sys.stderr)
                return EXIT_USAGE
            return answer_one(store, args.id, action, args.name, vocabulary, sys.stdout, sys.stderr,
                              literal=args.literal)
        return interactive(store, sys.stdin, sys.stdout, vocabulary, limit=args.limit)
    finally:
        store.close()


# --------------------------------------------------------------------------------------------------
# vocabulary and name matching
# --------------------------------------------------------------------------------------------------
def catalog_vocabulary(cfg: object) -> Vocabulary:
    """Names a question may be answered with, beyond its candidates, from the item catalogue.

    Loaded on first use; without a catalogue (damaged SETS cargo folder) only candidates and the
    fixed vocabularies (screen types, tiers) are offered.
    """
    cache: dict[str, object] = {}

    def catalog() -> object | None:
        if "catalog" not in cache:
            try:
                from warpd.catalog import Catalog
                from warpd.paths import catalog_dir

                cache["catalog"] = Catalog.load(catalog_dir(cfg) if cfg is not None else None)
            except (OSError, ValueError, AttributeError):
                cache["catalog"] = None
        return cache["catalog"]

    def names(item: Pending) -> Sequence[str]:
        fixed = fixed_vocabulary(item)
        if fixed is not None:
            return fixed
        cat = catalog()
        if cat is None:
            return ()
        if item.kind == "ship_type":
            return sorted(cat.ships)  # type: ignore[attr-defined]
        try:
            return cat.items_for_slot(item.slot, environment(item))  # type: ignore[attr-defined]
        except ValueError:
            return ()

    return names


def fixed_vocabulary(item: Pending) -> Sequence[str] | None:
    """Screen types and tiers are a closed list; everything else comes from the catalogue."""
    if item.kind == "screen_type":
        return SCREEN_TYPES
    if item.kind == "ship_tier":
        return TIERS
    return None


def environment(item: Pending) -> str:
    """Space or ground, from the screenshot's type (boff seats need it)."""
    return "ground" if item.screen_type.startswith("GROUND") else "space"


@dataclass(frozen=True)
class Resolution:
    """What typed text means: one ``name``, or several ``matches`` to choose from, or neither."""

    name: str | None = None
    matches: tuple[str, ...] = ()


def resolve_name(text: str, choices: Sequence[str]) -> Resolution:
    """Match typed text against the names on offer.

    Order of preference: an exact (case-insensitive) name; a single name whose words start with
    every typed word (``vul loc`` → "... Vulnerability Locator"); a single clearly-best fuzzy
    match (typos). Several word-prefix matches, or close fuzzy ones, come back as ``matches``.
    ``=Name`` is taken literally.
    """
    from rapidfuzz import fuzz, process, utils

    text = " ".join(text.split())
    if text.startswith("="):
        literal = text[1:].strip()
        return Resolution(literal) if literal else Resolution()
    unique = list(dict.fromkeys(choices))
    lowered = text.lower()
    exact = [c for c in unique if c.lower() == lowered]
    if exact:
        return Resolution(exact[0])
    tokens = utils.default_process(text).split()
    if not tokens:
        return Resolution()
    prefixed = [c for c in unique if _words_start_with(utils.default_process(c).split(), tokens)]
    if len(prefixed) == 1:
        return Resolution(prefixed[0])
    if prefixed:
        ranked = process.extract(text, prefixed, scorer=fuzz.WRatio, processor=utils.default_process,
                                 limit=MAX_MATCHES)
        return Resolution(matches=tuple(name for name, _, _ in ranked))
    ranked = process.extract(text, unique, scorer=fuzz.WRatio, processor=utils.default_process,
                             limit=MAX_MATCHES, score_cutoff=FUZZY_SHOW)
    if not ranked:
        return Resolution()
    top = ranked[0][1]
    second = ranked[1][1] if len(ranked) > 1 else 0.0
    if top >= FUZZY_ACCEPT and top - second >= FUZZY_MARGIN:
        return Resolution(ranked[0][0])
    return Resolution(matches=tuple(name for name, _, _ in ranked))


def _words_start_with(words: list[str], tokens: list[str]) -> bool:
    """Each typed token is the start of a different word of the name (in any order)."""
    free = list(words)
    for token in tokens:
        for i, word in enumerate(free):
            if word.startswith(token):
                del free[i]
                break
        else:
            return False
    return True


def choices_for(item: Pending, vocabulary: Vocabulary) -> list[str]:
    """Candidates first (recognition's order), then the slot's vocabulary."""
    return list(dict.fromkeys([n for n, _ in item.candidates] + list(vocabulary(item))))


# --------------------------------------------------------------------------------------------------
# answering
# --------------------------------------------------------------------------------------------------
def apply_answer(store: Store, item: Pending, name: str) -> str:
    """Record ``name`` for ``item``; a name outside the candidates also says they were wrong.

    Returns "confirmed" or "none" (answered with a name that was not among the candidates).
    """
    if item.kind == "screen_type":
        store.confirm_screen_type(item.id, name)
        return "confirmed"
    candidate_names = {n for n, _ in item.candidates}
    if not candidate_names or name in candidate_names:
        store.confirm(item.id, name)
        return "confirmed"
    store.none_of_these(item.id, name)
    return "none"


def list_json(store: Store, out: TextIO, limit: int | None = None) -> int:
    """One JSON object per waiting question (no crop bytes; their sha256 instead)."""
    for item in store.waiting(limit):
        out.write(json.dumps(item.to_json(), ensure_ascii=False) + "\n")
    return EXIT_OK


def answer_one(store: Store, pending_id: int, action: str, name: str | None, vocabulary: Vocabulary,
               out: TextIO, err: TextIO, *, literal: bool = False) -> int:
    """``--id N --name X`` / ``--skip`` / ``--none``: no fuzzy guessing, scripts get exact names."""
    item = store.pending(pending_id)
    if item is None:
        err.write(f"warpd confirm: no question with id {pending_id}\n")
        return EXIT_FAILURE
    try:
        if action == "skip":
            store.skip(item.id)
            out.write(f"skipped {item.id}\n")
            return EXIT_OK
        if action == "none":
            store.none_of_these(item.id)
            out.write(f"none of these {item.id}\n")
            return EXIT_OK
        chosen = _exact_name(name or "", item, vocabulary, literal)
        if chosen is None:
            suggestions = resolve_name(name or "", choices_for(item, vocabulary))
            hint = suggestions.matches or ((suggestions.name,) if suggestions.name else ())
            err.write(f"warpd confirm: {name!r} is not a known name for {_what(item)}"
                      + (f"; did you mean: {'; '.join(hint)}" if hint else "") + " (--literal takes it as given)\n")
            return EXIT_FAILURE
        status = apply_answer(store, item, chosen)
    except (StoreError, ValueError) as exc:
        err.write(f"warpd confirm: {exc}\n")
        return EXIT_FAILURE
    out.write(f"{status} {item.id}: {_what(item)} = {chosen}\n")
    return EXIT_OK


def _exact_name(name: str, item: Pending, vocabulary: Vocabulary, literal: bool) -> str | None:
    text = " ".join(name.split())
    if literal:
        return text or None
    choices = choices_for(item, vocabulary)
    if not choices:
        return text or None  # nothing to check against (no catalogue, no candidates)
    return next((c for c in choices if c.lower() == text.lower()), None)


def _what(item: Pending) -> str:
    if item.kind == "screen_type":
        return "the screen type"
    if item.kind in ("ship_type", "ship_tier"):
        return item.slot
    return f"{item.slot} #{item.index + 1}"


# --------------------------------------------------------------------------------------------------
# the interactive walk
# --------------------------------------------------------------------------------------------------
def interactive(store: Store, inp: TextIO, out: TextIO, vocabulary: Vocabulary, limit: int | None = None) -> int:
    """Ask every waiting question in turn until done, ``q`` or end of input."""
    items = store.waiting(limit)
    if not items:
        out.write("Nothing waits for confirmation.\n")
        return EXIT_OK
    tally = {"confirmed": 0, "skipped": 0, "none": 0}
    for position, item in enumerate(items, start=1):
        current = store.pending(item.id)
        if current is None or current.status != "waiting":
            continue  # answered meanwhile (tray, another terminal)
        outcome = ask(store, current, inp, out, vocabulary, f"[{position}/{len(items)}]")
        if outcome == "quit":
            break
        tally[outcome] += 1
    left = store.counts()["waiting"]
    out.write(f"\n{tally['confirmed']} confirmed, {tally['none']} none of these, {tally['skipped']} skipped; "
              f"{left} still waiting.\n")
    return EXIT_OK


def show(item: Pending, out: TextIO, header: str) -> list[str]:
    """Print the question; returns the numbered menu (the candidates)."""
    out.write(f"\n{header} {_what(item)}  (question {item.id})\n")
    out.write(f"  screenshot: {item.file or item.screenshot_sha[:12]}\n")
    if item.ml_name:
        conf = f" ({item.ml_conf:.2f})" if item.ml_conf is not None else ""
        out.write(f"  recognised: {item.ml_name}{conf}\n")
    menu = [n for n, _ in item.candidates]
    for number, (name, score) in enumerate(item.candidates, start=1):
        out.write(f"  {number:>2}) {name}  {score:.2f}\n")
    if not menu:
        out.write("  (no candidates: type the name)\n")
    out.write(HELP_LINE + "\n")
    return menu


def ask(store: Store, item: Pending, inp: TextIO, out: TextIO, vocabulary: Vocabulary, header: str = "") -> str:
    """One question until it is answered: returns "confirmed", "none", "skipped" or "quit"."""
    menu = show(item, out, header)
    choices: list[str] | None = None
    while True:
        out.write("> ")
        out.flush()
        line = inp.readline()
        if not line:  # end of input: stop, the question stays waiting
            out.write("\n")
            return "quit"
        text = line.strip()
        command = text.lower()
        if not text:
            continue
        if command == "q":
            return "quit"
        if command == "?":
            menu = show(item, out, header)
            continue
        try:
            if command == "s":
                store.skip(item.id)
                out.write("  skipped\n")
                return "skipped"
            if command == "n":
                store.none_of_these(item.id)
                out.write("  none of these\n")
                return "none"
            name = _pick(text, menu, out) if text.isdigit() else None
            if name is None and not text.isdigit():
                if choices is None:
                    choices = choices_for(item, vocabulary)
                resolution = resolve_name(text, choices)
                if resolution.matches:
                    menu = list(resolution.matches)
                    out.write("  which one?\n")
                    for number, match in enumerate(menu, start=1):
                        out.write(f"  {number:>2}) {match}\n")
                    continue
                if resolution.name is None:
                    out.write("  no such name here; type more of it, or =Exact Name to take it as typed\n")
                    continue
                name = resolution.name
            if name is None:
                continue
            status = apply_answer(store, item, name)
        except (StoreError, ValueError, FormatError) as exc:
            out.write(f"  cannot record that: {exc}\n")
            continue
        out.write(f"  {'confirmed' if status == 'confirmed' else 'recorded (not a candidate)'}: {name}\n")
        return status


def _pick(text: str, menu: list[str], out: TextIO) -> str | None:
    number = int(text)
    if 1 <= number <= len(menu):
        return menu[number - 1]
    out.write(f"  choose 1-{len(menu)}\n" if menu else "  there is nothing to number; type the name\n")
    return None
