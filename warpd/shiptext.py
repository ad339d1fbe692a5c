"""From OCR'd lines of the ship band to a catalogue ship and tier.

The SPACE_EQ top band shows the ship name, then the type and tier: "Fleet Support Cruiser [T6-X2]".
Long types wrap ("Kardashev Command Dyson Science" / "Destroyer [T6-X2]"), the tier may sit on
its own line, and OCR misreads the tier token ("[TB-X2]", "16-X2", "T6-XZ"). This module:

* snaps a tier token to the valid :data:`warpd.slots.TIERS` through a table of glyph confusions;
* :func:`parse_type_tier` splits the lines into ``(type_text, tier)``, prepending the line above
  only when it is neither a header / slot label / registry-prefixed ship name, nor worse at
  matching the catalogue than the type line alone (a ship *name* must never be glued on);
* :class:`ShipMatcher` applies the community corrections map, then fuzzy-matches against the
  catalogue names valid at the tier, and returns one 0..1 confidence.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

from warpd.slots import ALL_GROUPS, TEXT_SLOTS, TIERS

# ---------------------------------------------------------------- constants
UI_TRANSLATIONS = Path(__file__).resolve().parent / "data" / "catalog" / "ui_translations.csv"

# The tier regex of the predecessor's tests, as the strict first pass.
# The lookahead also refuses a dash, so "T6-Xx" is not read as a bare "T6" (it goes to snapping).
TIER_RE = re.compile(r"(?<![A-Za-z0-9])T([1-6])(?:-(X2|X|U))?(?![A-Za-z0-9-])", re.IGNORECASE)

# Glyph confusions tesseract makes in the tier token, per position: "T" head, digit, suffix.
TIER_HEAD_CHARS = frozenset("TtYy71Il|!")
TIER_DIGIT_MAP: dict[str, str] = {
    "1": "1", "I": "1", "l": "1", "|": "1", "!": "1", "i": "1", "L": "1",
    "2": "2", "Z": "2", "z": "2",
    "3": "3", "4": "4", "A": "4",
    "5": "5", "S": "5", "s": "5", "$": "5",
    "6": "6", "B": "6", "b": "6", "G": "6", "8": "6", "0": "6", "O": "6", "o": "6", "&": "6",
}
TIER_SUFFIX_MAP: dict[str, str] = {
    "X": "X", "x": "X", "K": "X", "k": "X", "%": "X", "Y": "X", "*": "X",
    "U": "U", "u": "U", "V": "U", "v": "U", "O": "U", "0": "U", "o": "U", "Q": "U", "D": "U",
}
TIER_TWO_CHARS = frozenset("2Zz")
# Characters that are brackets or were read in place of them: "[" -> "(", "{", "|", "I", "l", "1".
OPEN_BRACKETS = "[({<|"
CLOSE_BRACKETS = "])}>|"
BRACKET_LOOKALIKES = "Il1|!Jj"
DASHES = "-‐‑‒–—_~=.:"
# A fuzzy tier token is at most this long once brackets and spaces are gone ("T6-X2" is 5).
MAX_TIER_TOKEN = 7

# Registry-prefixed ship names: "U.S.S. Enterprise", "I.K.S. Rotarran", "R.R.W. ...", "USS ...".
SHIP_NAME_RE = re.compile(r"^\s*(?:[A-Z]\s?\.\s?){2,4}\s*\S|^\s*(?:USS|IKS|RRW|IRW|ISS|JHS|JHW|RIS)\s+\S"
                          r"|\bNCC\s*-?\s*\d", re.UNICODE)
# Headers that are neither slot groups nor trait panels but show near the ship band.
EXTRA_HEADERS = ("Space Stations", "Standard Away Team", "Bridge Officer", "Bridge Officer Abilities",
                 "Status", "Ship Name", "Ship Type", "Ship Tier", "Space", "Ground", "Stats", "Equipment")
HEADER_MIN_RATIO = 90  # OCR noise tolerance when recognising a header line (fuzz.ratio, 0..100)
HEADER_MIN_LEN = 4  # shorter lines are compared exactly: "Kit" must not absorb "Kat"

# Fuzzy matching of the type text (0..100 scores as rapidfuzz returns them).
DEFAULT_MIN_SCORE = 80.0
SHIP_SCORER = fuzz.ratio  # why not WRatio / token_sort_ratio: see ShipMatcher
_TIER_SUFFIX_IN_NAME = re.compile(r"\s*\(T\d\)\s*$")  # catalogue disambiguator "(T6)": not on screen

# Confidence model (see ShipMatcher.confidence): each factor is a penalty in (0, 1].
CONF_MATCH_FLOOR = 0.6  # a match just at min_score
CONF_AMBIGUITY_FLOOR = 0.5  # runner-up as good as the winner
CONF_AMBIGUITY_MARGIN = 10.0  # score gap (0..100) at which the runner-up no longer matters
CONF_OCR_FLOOR = 0.8  # tesseract confidence 0; the catalogue check outweighs tesseract's opinion
CONF_OCR_DEFAULT = 0.9  # when the caller has no OCR confidence


# ---------------------------------------------------------------- tier snapping
def snap_tier(token: str) -> str | None:
    """The valid tier a (mis)read tier token stands for, or None; brackets may be included."""
    token = (token or "").strip()
    if not token:
        return None
    strict = TIER_RE.fullmatch(_strip_brackets(token))
    if strict:
        return _valid_tier(strict.group(1), (strict.group(2) or "").upper())
    for candidate in _bracket_variants(token):
        tier = _parse_tier_shape(candidate)
        if tier:
            return tier
    return _nearest_tier(_compact(_strip_brackets(token)))


def _strip_brackets(token: str) -> str:
    return token.strip().strip(OPEN_BRACKETS + CLOSE_BRACKETS + " .,;:'\"`").strip()


def _compact(token: str) -> str:
    """Spaces out, every dash-like glyph to '-'."""
    out = "".join(token.split())
    for dash in DASHES:
        out = out.replace(dash, "-")
    return out


def _bracket_variants(token: str) -> list[str]:
    """The token with real brackets removed, then also with a bracket look-alike at either end."""
    core = _compact(_strip_brackets(token))
    variants = [core]
    if len(core) > 2 and core[0] in BRACKET_LOOKALIKES:
        variants.append(core[1:])
    if len(core) > 2 and core[-1] in BRACKET_LOOKALIKES:
        variants.append(core[:-1])
        if core[0] in BRACKET_LOOKALIKES:
            variants.append(core[1:-1])
    return [v for v in variants if 2 <= len(v) <= MAX_TIER_TOKEN]


def _parse_tier_shape(s: str) -> str | None:
    """head, digit, optional '-' and suffix, each position through its confusion table."""
    if len(s) < 2 or s[0] not in TIER_HEAD_CHARS or s[1] not in TIER_DIGIT_MAP:
        return None
    digit, rest = TIER_DIGIT_MAP[s[1]], _dedup(s[2:].lstrip("-"))
    if not rest:
        return _valid_tier(digit, "")
    if rest[0] not in TIER_SUFFIX_MAP:
        return None
    suffix, tail = TIER_SUFFIX_MAP[rest[0]], rest[1:]
    if suffix == "X" and tail and tail[0] in TIER_TWO_CHARS:
        suffix, tail = "X2", tail[1:]
    return _valid_tier(digit, suffix) if not tail else None


def _dedup(text: str) -> str:
    """Collapse a doubled glyph ("Xx", "XX2"): small text makes tesseract read one stroke twice."""
    out = ""
    for ch in text:
        if not out or ch.upper() != out[-1].upper():
            out += ch
    return out


def _valid_tier(digit: str, suffix: str) -> str | None:
    """Only the real tiers: -U/-X exist at T5 and -X/-X2 at T6, so an impossible pair is repaired
    by the suffix (the more distinctive glyph) where that is unique, else rejected."""
    tier = f"T{digit}-{suffix}" if suffix else f"T{digit}"
    if tier in TIERS:
        return tier
    if suffix == "U":
        return "T5-U"
    return None


def _nearest_tier(s: str) -> str | None:
    """Last resort: one edit away from exactly one tier, with a T-like head ("T6-XX2", "T-6")."""
    if not s or s[0] not in TIER_HEAD_CHARS or len(s) > MAX_TIER_TOKEN:
        return None
    s = "T" + s[1:].upper()
    near = [t for t in TIERS if Levenshtein.distance(s, t) <= 1]
    return near[0] if len(near) == 1 else None


def find_tier(line: str) -> tuple[str, str, str] | None:
    """Split a line into (text before the tier, raw tier token, tier), or None without a tier.

    The strict regex is tried anywhere; fuzzy snapping only at the end of the line (one or two
    whitespace tokens, "T6 -X"), where the game prints the tier, so a word like "Section 31"
    elsewhere cannot turn into a tier.
    """
    strict = list(TIER_RE.finditer(line))
    if strict:
        m = strict[-1]
        start = _bracket_start(line, m.start())
        tier = _valid_tier(m.group(1), (m.group(2) or "").upper())
        if tier:
            return line[:start].rstrip(), line[start:].strip(), tier
    tokens = line.split()
    for n in (1, 2):
        if len(tokens) < n:
            break
        raw = " ".join(tokens[-n:])
        tier = snap_tier(raw)
        if tier:
            return " ".join(tokens[:-n]), raw, tier
    return None


def _bracket_start(line: str, pos: int) -> int:
    """Move the cut left over an opening bracket (or look-alike) glued to the tier token."""
    while pos > 0 and (line[pos - 1] in OPEN_BRACKETS + BRACKET_LOOKALIKES) and (pos < 2 or line[pos - 2] == " "):
        pos -= 1
    return pos


# ---------------------------------------------------------------- headers, labels, ship names
def _norm(text: str) -> str:
    """Case, apostrophe, hyphen and space variants out: what fuzzy matching compares."""
    text = text.lower().replace("’", "'").replace("`", "'").replace("´", "'")
    text = text.replace("'", "").replace("-", " ")
    return " ".join(text.split())


@lru_cache(maxsize=1)
def header_vocabulary() -> frozenset[str]:
    """Normalised trait headers, slot labels (whole and per printed line), screen headers, German too."""
    words: set[str] = set(EXTRA_HEADERS) | set(TEXT_SLOTS)
    for group in ALL_GROUPS:  # trait panels, slot rows, boff seats, specializations
        words.add(group.name)
        words.update(group.label_lines)
        if len(group.label_lines) > 1:
            words.add(" ".join(group.label_lines))
    words.update(_translated_labels())
    return frozenset(_norm(w) for w in words if w.strip())


def _translated_labels() -> set[str]:
    """Labels and headers from ui_translations.csv (English canonical and translations), not ship words."""
    if not UI_TRANSLATIONS.is_file():
        return set()
    out: set[str] = set()
    with UI_TRANSLATIONS.open(encoding="utf-8") as fh:
        rows = csv.reader(line for line in fh if line.strip() and not line.startswith("#"))
        for row in rows:
            if len(row) >= 4 and row[0] not in ("category", "ship_type_word"):
                out.update((row[1], row[3]))
    return out


def is_header(line: str) -> bool:
    """A section header or slot label (any known language), tolerating small OCR noise."""
    norm = _norm(line).strip(" :|")
    if not norm:
        return False
    vocab = header_vocabulary()
    if norm in vocab:
        return True
    if len(norm) < HEADER_MIN_LEN:
        return False
    best = process.extractOne(norm, vocab, scorer=fuzz.ratio, score_cutoff=HEADER_MIN_RATIO)
    return best is not None


def looks_like_ship_name(line: str) -> bool:
    """A registry-prefixed name ("U.S.S. Enterprise", "I.K.S. ...", "NCC-1701"): never a type."""
    return bool(SHIP_NAME_RE.search(line))


def _clean_type(text: str) -> str:
    """Type text without stray brackets, bars and dashes OCR leaves around it."""
    return " ".join(text.strip(" \t" + OPEN_BRACKETS + CLOSE_BRACKETS + DASHES + ",;:'\"").split())


# ---------------------------------------------------------------- parse
def parse_type_tier(lines: list[str], matcher: "ShipMatcher | None" = None) -> tuple[str, str | None]:
    """``(type_text, tier)`` from the ship band's lines, top to bottom; ``("", None)`` if no tier.

    The type is the text before the tier on its line; the line above is prepended when the tier
    line has no type text, or when the joined text matches a catalogue ship (at that tier) at
    least as well as the line alone (long types wrap). Headers, labels and registry-prefixed ship names are
    never prepended. ``matcher`` defaults to one over the bundled catalogue.
    """
    lines = [ln.strip() for ln in lines if ln and ln.strip()]
    for index, line in enumerate(lines):
        found = find_tier(line)
        if found is None:
            continue
        before, _raw, tier = found
        here = _clean_type(before)
        above = _clean_type(lines[index - 1]) if index > 0 else ""
        if above and (is_header(above) or looks_like_ship_name(above) or find_tier(above)):
            above = ""
        if not above:
            return here, tier
        if not here:
            return above, tier
        joined = f"{above} {here}"
        m = matcher or default_matcher()
        return (joined, tier) if _joined_wins(m, joined, here, tier) else (here, tier)
    return "", None


def _joined_wins(matcher: "ShipMatcher", joined: str, here: str, tier: str) -> bool:
    """Prepend when the joined text is a catalogue match at least as good as the line alone.

    Ties go to the joined text: "Legendary Ambassador Intel" / "Support Cruiser" are both exact
    ships, and a player's ship name that happens to complete a catalogue type is far less likely
    than a wrapped type.
    """
    joined_score = matcher.best_score(joined, tier)
    return joined_score >= matcher.min_score and joined_score >= matcher.best_score(here, tier)


@lru_cache(maxsize=1)
def default_matcher() -> "ShipMatcher":
    """A matcher over the bundled catalogue, built once (for parse_type_tier's wrap decision)."""
    from warpd.catalog import Catalog

    return ShipMatcher(Catalog.load(), None, DEFAULT_MIN_SCORE)


# ---------------------------------------------------------------- matching
@dataclass(frozen=True)
class ShipMatch:
    """The outcome of matching a type reading; ``ship_name`` is the catalogue key (``cat.ships``)."""

    ship_name: str | None
    tier: str | None
    score: float  # fuzzy similarity of the (corrected) reading to ship_name's on-screen text, 0..1
    raw_type: str
    raw_tier: str | None
    corrected: bool
    confidence: float = 0.0  # score, ambiguity and OCR confidence combined (ShipMatcher.confidence)
    runner_up: str | None = None


def load_corrections(path: str | Path) -> dict[str, str]:
    """``ship_type_corrections.json`` as a dict; a missing or malformed file is an empty map."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): str(v) for k, v in data.items() if isinstance(k, str) and isinstance(v, str) and v.strip()}


def screen_text(name: str) -> str:
    """How the game prints a catalogue ship's type: without the catalogue's "(T6)" disambiguator."""
    return _TIER_SUFFIX_IN_NAME.sub("", name)


def ship_line_whitelist(catalog: Any) -> str:
    """Characters of every catalogue type line plus the tier's, for ``OcrEngine.read_line(whitelist=)``.

    Only for English clients: a German type line has umlauts the catalogue lacks.
    """
    chars = {ch for name in catalog.ships for ch in screen_text(name) if not ch.isspace()}
    return "".join(sorted(chars | set("[]-TUX0123456789")))


class ShipMatcher:
    """Type text + tier -> catalogue ship, via the corrections map then fuzzy matching.

    Scorer: ``fuzz.ratio`` (normalised Indel similarity) on normalised text, chosen over both
    suggested scorers by measurement (T6 names, 400 draws each, OCR-like corruptions: glyph
    swaps "l"->"1", "rn"->"m", dropped spaces and letters; share matched right / wrong at 80):

    ==========================  ==============  ==============  ==============
    scorer                      1 error         2 errors        3 errors
    ==========================  ==============  ==============  ==============
    ``ratio``                   1.00 / 0.00     1.00 / 0.00     1.00 / 0.00
    ``WRatio``                  1.00 / 0.00     0.98 / 0.02     0.99 / 0.01
    ``token_sort_ratio``        0.85 / 0.03     0.71 / 0.03     0.53 / 0.04
    ==========================  ==============  ==============  ==============

    OCR never reorders words, so sorting tokens only hurts: a merged pair ("FleetSupport") or a
    misread first letter moves a token and wrecks the score. ``WRatio``'s token-set and partial
    parts score any word subset ~95, so a type fragment (a wrapped "Destroyer", a lone "Support
    Cruiser") matches a longer name with near-certain confidence twice as often as with
    ``ratio`` (22% vs 12% of first-word-dropped fragments scored >= 95 for a wrong ship), which
    would also blind the wrap decision in :func:`parse_type_tier`.

    ``min_score`` is on rapidfuzz's 0..100 scale, like ``[ocr] ship_match_min_score``; a value
    <= 1 is read as a fraction. Names are normalised and grouped per tier once, so a match is one
    ``extract`` over at most 789 short strings (well under 1 ms).
    """

    def __init__(self, catalog: Any, corrections: Mapping[str, str] | None = None,
                 min_score: float = DEFAULT_MIN_SCORE):
        self.min_score = float(min_score) * (100.0 if min_score <= 1 else 1.0)
        self._corrections = dict(corrections or {})
        self._corrections_norm = {_norm(k): v for k, v in self._corrections.items()}
        ships = catalog.ships if hasattr(catalog, "ships") else catalog
        self._by_tier: dict[str | None, tuple[list[str], list[str]]] = {}
        all_names = list(ships)
        self._by_tier[None] = ([_norm(screen_text(n)) for n in all_names], all_names)
        for tier in TIERS:
            names = [n for n in all_names if tier in ships[n].valid_tiers]
            self._by_tier[tier] = ([_norm(screen_text(n)) for n in names], names)

    # ------------------------------------------------------------ corrections
    def correct(self, type_text: str) -> tuple[str, bool]:
        """Apply the community map: exact key first, then case/space-normalised."""
        if type_text in self._corrections:
            return self._corrections[type_text], True
        fixed = self._corrections_norm.get(_norm(type_text))
        return (fixed, True) if fixed is not None else (type_text, False)

    # ------------------------------------------------------------ fuzzy
    def _candidates(self, text: str, tier: str | None, limit: int = 2) -> list[tuple[str, float]]:
        choices, names = self._by_tier.get(tier, self._by_tier[None])
        query = _norm(text)
        if not query or not choices:
            return []
        hits = process.extract(query, choices, scorer=SHIP_SCORER, processor=None, limit=limit)
        return [(names[index], float(score)) for _choice, score, index in hits]

    def best_score(self, text: str, tier: str | None) -> float:
        """The best fuzzy score (0..100) of ``text`` among ships valid at ``tier``."""
        hits = self._candidates(self.correct(text)[0], snap_tier(tier) if tier else None, limit=1)
        return hits[0][1] if hits else 0.0

    def match(self, type_text: str, tier: str | None, ocr_confidence: float | None = None) -> ShipMatch:
        """The catalogue ship for a type reading at a tier (raw tiers are snapped first)."""
        snapped = snap_tier(tier) if tier else None
        text, corrected = self.correct(type_text or "")
        hits = self._candidates(text, snapped)
        if not hits or hits[0][1] < self.min_score:
            return ShipMatch(None, snapped, hits[0][1] / 100.0 if hits else 0.0, type_text, tier, corrected)
        (name, score), runner = hits[0], (hits[1] if len(hits) > 1 else (None, 0.0))
        confidence = self.confidence(score, runner[1], ocr_confidence)
        return ShipMatch(name, snapped, score / 100.0, type_text, tier, corrected, confidence, runner[0])

    def confidence(self, score: float, runner_up_score: float, ocr_confidence: float | None) -> float:
        """One 0..1 number: closeness x distinctness x OCR trust (all 0..100 scores in).

        * closeness: CONF_MATCH_FLOOR at ``min_score`` rising linearly to 1 at an exact match;
        * distinctness: CONF_AMBIGUITY_FLOOR when the runner-up ties, 1 once it trails by
          CONF_AMBIGUITY_MARGIN points (an exact match is always distinct);
        * OCR trust: CONF_OCR_FLOOR at tesseract confidence 0, 1 at 1 — a small weight because a
          close catalogue match already proves the reading, and tesseract's confidence is noisy.

        It is "calibrated-ish": an exact, unambiguous match of a confident read is ~0.98, a match
        at the threshold ~0.6 (the predecessor's "ask the user" band), an ambiguous one ~0.3.
        """
        span = max(1e-9, 100.0 - self.min_score)
        closeness = min(1.0, max(0.0, (score - self.min_score) / span))
        match_part = CONF_MATCH_FLOOR + (1 - CONF_MATCH_FLOOR) * closeness
        gap = 1.0 if score >= 100.0 else min(1.0, max(0.0, (score - runner_up_score) / CONF_AMBIGUITY_MARGIN))
        ambiguity_part = CONF_AMBIGUITY_FLOOR + (1 - CONF_AMBIGUITY_FLOOR) * gap
        ocr = CONF_OCR_DEFAULT if ocr_confidence is None else min(1.0, max(0.0, ocr_confidence))
        ocr_part = CONF_OCR_FLOOR + (1 - CONF_OCR_FLOOR) * ocr
        return round(match_part * ambiguity_part * ocr_part, 4)

    def match_lines(self, lines: Iterable[str], ocr_confidence: float | None = None) -> ShipMatch:
        """parse_type_tier + match in one call, using this matcher for the wrap decision."""
        type_text, tier = parse_type_tier(list(lines), self)
        return self.match(type_text, tier, ocr_confidence)
