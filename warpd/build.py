"""Stage 6 of recognition: turn per-screenshot readings into a SETS build file that SETS can load.

A build written here must load in both SETS generations (``shared/reference/sets-build-format.md``):

* only the seven classic top-level keys and no ``_version`` by default, because SETS before
  2026-04 silently ignores any file whose key set differs (``_version`` only on request);
* every list exactly as long as ``empty_build``'s, because the loader indexes by position;
* ``None`` where the ship has no slot, ``''`` where it has an empty one;
* every item in the category SETS looks it up in: a known name in the wrong category is a second
  KeyError in SETS's loader, which nothing catches. So items are checked against the catalogue and
  SETS's category rules before they are written, and whatever is dropped is said in the report;
* every boff ability with a ``rank``, rarities spelled exactly as SETS's six.

:func:`validate_sets_build` re-implements those loader rules, so tests (and the daemon, before it
writes) can prove a build loadable without SETS.

Input is the recognition contract, one dict per screenshot::

    {"file", "screen_type", "screen_confidence",
     "ship": {"type", "tier", "confidence", "name_bbox"},
     "slots": [{"slot", "index", "bbox", "state", "item", "confidence", "decision", "source",
                "candidates", ["seat"], ["rarity"]}], "error"}

``seat`` (boff seats, top to bottom) and ``rarity`` (one of SETS's six, when recognition read the
frame colour; otherwise the catalogue's rarity, then ``rarity_default``) are optional.
"""

from __future__ import annotations

import copy
import functools
import json
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from warpd.fsutil import write_atomic
from warpd.catalog import RARITIES, Catalog, Ship
from warpd.slots import (
    GROUND_EQUIPMENT,
    SLOT_GROUPS,
    SPACE_EQUIPMENT,
    TIERS,
    UnknownSlotError,
    normalize_slot,
)

# ----------------------------------------------------------------------------- SETS format constants
SETS_TOP_KEYS: tuple[str, ...] = ("space", "ground", "captain", "space_skills", "skill_unlocks",
                                  "ground_skills", "skill_desc")
VERSION_KEY = "_version"
BUILD_VERSION = 1
TEMPLATE_SHIPS = ("", "<Pick Ship>")  # both select SETS's SHIP_TEMPLATE
TEMPLATE_FILE_STEM = "(Ship Template)"
MARKS: tuple[str, ...] = ("Mk I", "Mk II", "Mk III", "Mk IV", "MK V", "MK VI", "MK VII", "MK VIII", "MK IX",
                          "MK X", "Mk XI", "Mk XII", "Mk XIII", "Mk XIV", "Mk XV", "∞")
MODIFIER_SLOTS = 5
ABILITY_RANKS: tuple[str, ...] = ("I", "II", "III")
# Seat rank words as the catalogue spells them (three spellings of Lieutenant Commander).
RANK_LEVELS: dict[str, int] = {"ensign": 1, "lieutenant": 2, "lieutenant commander": 3, "lt. commander": 3,
                               "lt commander": 3, "commander": 4}
BOFF_SLOTS = 4
SPACE_SEATS, GROUND_SEATS = 6, 4
DOFF_SLOTS = 6
CAREER_PROFESSIONS: tuple[str, ...] = ("Tactical", "Engineering", "Science")
UNIVERSAL_PROFESSIONS = frozenset({"Universal", "Operations"})
GROUND_BOFF_SPECS: tuple[str, ...] = ("Command", "Intelligence", "Miracle Worker", "Temporal")
SPEC_ALIASES = {"Temporal Operative": "Temporal"}
# SETS's SHIP_TEMPLATE: six Commander Universal seats, in SETS's sorted order (their specs).
TEMPLATE_SEAT_SPECS: tuple[str | None, ...] = ("Temporal", "Pilot", "Miracle Worker", "Intelligence", "Command",
                                               None)
SCIENCE_DESTROYER_TYPES = frozenset({"Science Destroyer", "Science Destroyer Warbird"})
ELITE_TRAIT_INDEX, ALIEN_TRAIT_INDEX, SPECIES_TRAIT_INDEX = 9, 10, 11
GROUND_SCREENS = frozenset({"GROUND_EQ", "GROUND_MIXED"})
SPACE_SCREENS = frozenset({"SPACE_EQ", "SPACE_MIXED"})
READING_STATES = frozenset({"item", "empty", "locked"})

# The catalogue ``type`` values each SETS equipment category holds (EQUIPMENT_TYPES plus the cache's
# merges, sets-build-format.md §5 and §9). Stricter than warpd.slots where SETS is stricter: an
# Experimental Weapon is not in SETS's fore_weapons, "Kit Modules"/"Ground Armor"/"Sniper Rifle"
# rows are in no SETS category at all.
# Game item types SETS has no place for in the category a slot fills: an Experimental Weapon can sit
# in a fore slot in the game but is not in SETS's fore_weapons; the odd wiki rows "Kit Modules",
# "Ground Armor" and "Sniper Rifle" are in no SETS category at all.
SETS_EXCLUDED_TYPES: dict[str, frozenset[str]] = {
    "fore_weapons": frozenset({"Experimental Weapon"}),
    "kit_modules": frozenset({"Kit Modules"}),
    "armor": frozenset({"Ground Armor"}),
    "weapons": frozenset({"Sniper Rifle"}),
}
SETS_CATEGORY_TYPES: dict[str, frozenset[str]] = {
    g.build_key: g.item_types - SETS_EXCLUDED_TYPES.get(g.build_key, frozenset())
    for g in SPACE_EQUIPMENT + GROUND_EQUIPMENT if g.build_key
}

_DEFAULT_SPACE_SPECS = [["Tactical", "Temporal"], ["Tactical", "Pilot"], ["Tactical", "Miracle Worker"],
                        ["Tactical", "Intelligence"], ["Tactical", "Command"], ["Tactical", None]]


def _personal_traits() -> list:
    """Personal traits: 0-8 normal, 9 elite captain, 10 alien only, 11 the species trait."""
    return [""] * 9 + [None, None, ""]


def empty_space() -> dict[str, Any]:
    """``empty_build()['space']`` of SETS, the lengths every written list must keep."""
    return {
        "ship": "", "tier": "", "ship_name": "", "ship_desc": "",
        "fore_weapons": [None] * 5, "aft_weapons": [None] * 5, "experimental": [None], "devices": [None] * 6,
        "hangars": [None] * 2, "deflector": [""], "engines": [""], "core": [""], "shield": [""],
        "sec_def": [None], "uni_consoles": [None] * 3, "eng_consoles": [None] * 5, "sci_consoles": [None] * 5,
        "tac_consoles": [None] * 5, "traits": _personal_traits(), "starship_traits": [None] * 7,
        "rep_traits": [None] * 5, "active_rep_traits": [None] * 5,
        "boffs": [[None] * BOFF_SLOTS for _ in range(SPACE_SEATS)],
        "boff_specs": copy.deepcopy(_DEFAULT_SPACE_SPECS),
        "doffs_spec": [""] * DOFF_SLOTS, "doffs_variant": [""] * DOFF_SLOTS,
    }


def empty_ground() -> dict[str, Any]:
    """``empty_build()['ground']`` of SETS."""
    return {
        "kit": [""], "armor": [""], "ev_suit": [""], "personal_shield": [""], "weapons": [""] * 2,
        "kit_modules": [""] * 5 + [None], "ground_devices": [""] * 4 + [None], "traits": _personal_traits(),
        "rep_traits": [""] * 5, "active_rep_traits": [None] * 5,
        "boffs": [[""] * BOFF_SLOTS for _ in range(GROUND_SEATS)],
        "boff_profs": ["Tactical"] * GROUND_SEATS, "boff_specs": ["Command"] * GROUND_SEATS,
        "doffs_spec": [""] * DOFF_SLOTS, "doffs_variant": [""] * DOFF_SLOTS, "ground_desc": "",
    }


# (segment, build key) -> canonical slot, for the catalogue's slot rules; derived from warpd.slots.
_SLOT_FOR_KEY: dict[tuple[str, str], str] = {
    (g.environment, g.build_key): g.name for g in SLOT_GROUPS.values()
    if g.kind in ("equipment", "trait", "starship_trait") and g.build_key
}
_TRAIT_KEYS = ("traits", "starship_traits", "rep_traits", "active_rep_traits")


class MixedShipsError(ValueError):
    """Results of different ships were given to :func:`merge_results`; use :func:`group_by_ship`."""


# ----------------------------------------------------------------------------- report
@dataclass(frozen=True)
class BuildNote:
    """One thing the writer dropped, changed or inferred; ``code`` is stable for tests and the UI."""

    code: str  # unknown_item | wrong_category | beyond_ship | no_slot | no_seat | no_rank | unknown_ship | ...
    message: str
    slot: str | None = None
    index: int | None = None
    item: str | None = None

    def __str__(self) -> str:
        return self.message


class SetsBuild(dict):
    """A SETS build dict (serialises as plain JSON) that also carries the writer's report."""

    def __init__(self, data: Mapping[str, Any], report: list[BuildNote]):
        super().__init__(data)
        self.report = report


# ----------------------------------------------------------------------------- merging
@dataclass(frozen=True)
class SlotKey:
    """Where a reading goes: slot row, position, boff seat (boffs only) and environment."""

    slot: str
    index: int
    seat: int | None = None
    environment: str = "space"


@dataclass(frozen=True)
class Reading:
    """The winning reading of one slot across screenshots."""

    key: SlotKey
    state: str
    item: str | None
    confidence: float
    decision: str
    file: str | None
    rarity: str | None = None


@dataclass
class MergedBuild:
    """One ship's readings from one or more screenshots; the input of :func:`to_sets_build`."""

    ship_type: str | None = None
    tier: str | None = None
    ship_confidence: float = 0.0
    readings: dict[SlotKey, Reading] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    notes: list[BuildNote] = field(default_factory=list)


def _ship_text(result: Mapping[str, Any]) -> tuple[str | None, str | None, float]:
    """(type, tier, confidence) of a result's ship line; blanks become None."""
    ship = result.get("ship") or {}
    if not isinstance(ship, Mapping):
        return None, None, 0.0
    ship_type = " ".join(str(ship.get("type") or "").split()) or None
    tier = str(ship.get("tier") or "").strip().upper() or None
    return ship_type, tier, _as_float(ship.get("confidence"))


def _as_float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def group_by_ship(results: Iterable[Mapping[str, Any]], *,
                  attach_shipless: bool = True) -> dict[tuple[str | None, str | None], list[Mapping[str, Any]]]:
    """Results keyed by (ship type, tier): one build per key.

    A result with the type but no tier joins that type's only tiered group (the tier OCR failed
    on one screenshot). Ship-less results (ground, traits, boffs screens) belong to the captain's
    current ship, so with ``attach_shipless`` they join the only ship group when there is exactly
    one; otherwise they form the ``(None, None)`` group, written with the template ship.
    """
    groups: dict[tuple[str | None, str | None], list[Mapping[str, Any]]] = {}
    untiered, shipless = [], []
    for result in results:
        ship_type, tier, _ = _ship_text(result)
        if ship_type is None:
            shipless.append(result)
        elif tier is None:
            untiered.append(result)
        else:
            groups.setdefault((ship_type, tier), []).append(result)
    for result in untiered:
        ship_type = _ship_text(result)[0]
        same_type = [key for key in groups if key[0] == ship_type and key[1] is not None]
        key = same_type[0] if len(same_type) == 1 else (ship_type, None)
        groups.setdefault(key, []).append(result)
    if shipless:
        ship_keys = [key for key in groups if key[0] is not None]
        key = ship_keys[0] if attach_shipless and len(ship_keys) == 1 else (None, None)
        groups.setdefault(key, []).extend(shipless)
    return groups


def merge_results(results: Iterable[Mapping[str, Any]], catalog: Catalog | None = None) -> MergedBuild:
    """Several screenshots of one ship -> one set of readings; per slot the most confident wins.

    Results with an ``error`` and readings decided "reject" never enter. Results naming different
    ship types raise :class:`MixedShipsError` (split them with :func:`group_by_ship` first).
    ``catalog`` only helps tell ground from space boff screens that carry no other hint.
    """
    results = list(results)
    merged = MergedBuild()
    ship_types = {t for t in (_ship_text(r)[0] for r in results if not r.get("error")) if t}
    if len(ship_types) > 1:
        raise MixedShipsError(f"results show different ships {sorted(ship_types)}; group them with "
                              "group_by_ship() and merge each group")
    for result in results:
        name = str(result.get("file") or "")
        if result.get("error"):
            merged.notes.append(BuildNote("screenshot_error", f"{name or 'a screenshot'} was left out: "
                                                              f"{result.get('error')}"))
            continue
        merged.files.append(name)
        _merge_ship(merged, result)
        env = _boff_environment(result, catalog)
        for entry in result.get("slots") or ():
            reading = _reading(entry, name, env, merged.notes)
            if reading is None:
                continue
            best = merged.readings.get(reading.key)
            if best is None or reading.confidence > best.confidence:
                merged.readings[reading.key] = reading
    return merged


def _merge_ship(merged: MergedBuild, result: Mapping[str, Any]) -> None:
    """Keep the most confident ship type and, separately, the most confident tier reading."""
    ship_type, tier, confidence = _ship_text(result)
    if ship_type and (merged.ship_type is None or confidence > merged.ship_confidence):
        merged.ship_type, merged.ship_confidence = ship_type, confidence
        if tier:
            merged.tier = tier
    elif tier and merged.tier is None:
        merged.tier = tier


def _boff_environment(result: Mapping[str, Any], catalog: Catalog | None) -> str:
    """Space or ground for a screenshot's boff seats: the screen type, else the abilities' region."""
    explicit = result.get("environment")
    if explicit in ("space", "ground"):
        return explicit
    screen = result.get("screen_type")
    if screen in GROUND_SCREENS:
        return "ground"
    if screen in SPACE_SCREENS or catalog is None:
        return "space"
    index = _ability_index(catalog)
    votes = {"space": 0, "ground": 0}
    for entry in result.get("slots") or ():
        if str(entry.get("slot", "")).startswith("Boff ") and entry.get("item"):
            for env in votes:
                votes[env] += (str(entry["item"]), env) in index
    return "ground" if votes["ground"] > votes["space"] else "space"


def _reading(entry: Mapping[str, Any], file: str, env: str, notes: list[BuildNote]) -> Reading | None:
    """One slot entry of a result as a Reading, or None when it must not enter the build."""
    if entry.get("decision") == "reject" or entry.get("state") not in READING_STATES:
        return None
    try:
        slot = normalize_slot(str(entry.get("slot", "")))
        index = int(entry.get("index"))
    except (UnknownSlotError, TypeError, ValueError):
        notes.append(BuildNote("unknown_slot", f"{file}: slot {entry.get('slot')!r} index {entry.get('index')!r} "
                                               "is not a build slot; ignored", slot=str(entry.get("slot"))))
        return None
    group = SLOT_GROUPS.get(slot)
    if group is None or index < 0:
        return None  # text slots (ship name/type/tier) are not build cells
    item = entry.get("item") if entry.get("state") == "item" else None
    if entry.get("state") == "item" and not item:
        return None
    seat = entry.get("seat") if group.kind == "boff" else None
    key = SlotKey(slot, index, int(seat) if isinstance(seat, (int, float)) else None,
                  env if group.kind == "boff" else group.environment)
    rarity = entry.get("rarity") if entry.get("rarity") in RARITIES else None
    return Reading(key, str(entry["state"]), str(item) if item else None, _as_float(entry.get("confidence")),
                   str(entry.get("decision") or ""), file, rarity)


# ----------------------------------------------------------------------------- catalogue helpers
_ABILITY_INDEXES: dict[int, tuple[Catalog, dict[tuple[str, str], list[dict[str, Any]]]]] = {}


def _ability_index(catalog: Catalog) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Boff ability rows by (name, "space"|"ground"), built once per catalogue object.

    Cached by identity (a Catalog is an unhashable dataclass); the catalogue is kept alive with
    its index so an id is never reused for a different one.
    """
    cached = _ABILITY_INDEXES.get(id(catalog))
    if cached is not None and cached[0] is catalog:
        return cached[1]
    index: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in catalog.boff_abilities:
        region = str(row.get("region") or "").lower()
        index.setdefault((row["name"], region), []).append(row)
    if len(_ABILITY_INDEXES) >= 4:
        _ABILITY_INDEXES.clear()
    _ABILITY_INDEXES[id(catalog)] = (catalog, index)
    return index


def _vote(seen: "_SeenSeat", catalog: Catalog, env: str, choices: Iterable[str]) -> str | None:
    """The profession or spec most of a seat's abilities belong to, among ``choices``."""
    wanted = set(choices)
    counts = Counter(t for r in seen.readings.values() if r.state == "item" and r.item
                     for t in sorted(_ability_types(catalog, r.item, env) & wanted))
    return counts.most_common(1)[0][0] if counts else None


def _ability_types(catalog: Catalog, name: str, env: str) -> set[str]:
    """The professions/specs (SETS spelling) an ability belongs to."""
    return {SPEC_ALIASES.get(r.get("type"), r.get("type")) for r in _ability_index(catalog).get((name, env), ())}


def _ability_rank(catalog: Catalog, name: str, env: str, allowed: set[str], level: int) -> str | None:
    """The highest of I/II/III the ability reaches in a slot of ``level`` (1 Ensign .. 4 Commander).

    A boff slot's position is its rank; SETS's own fix-up searches III, II, I, so the highest rank
    that fits is what SETS would pick too. None when the ability cannot sit this low.
    """
    for row in _ability_index(catalog).get((name, env), ()):
        if SPEC_ALIASES.get(row.get("type"), row.get("type")) not in allowed:
            continue
        best = None
        for number, rank_word in enumerate((row.get("ranks") or [])[:len(ABILITY_RANKS)]):
            needed = RANK_LEVELS.get(" ".join(str(rank_word).lower().split()))
            if needed is not None and needed <= level:
                best = ABILITY_RANKS[number]
        return best
    return None


def _item_in_category(catalog: Catalog, segment: str, key: str, name: str) -> bool:
    """Whether SETS finds ``name`` in the category of list ``key``: catalogue rule and SETS's types."""
    item = catalog.items.get(name)
    if item is None or item.type not in SETS_CATEGORY_TYPES.get(key, frozenset()):
        return False
    return catalog.slot_accepts(_SLOT_FOR_KEY[(segment, key)], name)


def _item_problem(catalog: Catalog, segment: str, key: str, name: str) -> str | None:
    """Why ``name`` cannot be written to ``segment.key`` ("unknown_item"/"wrong_category"), or None."""
    if key in SETS_CATEGORY_TYPES:
        if _item_in_category(catalog, segment, key, name):
            return None
        return "wrong_category" if name in catalog.items else "unknown_item"
    if catalog.slot_accepts(_SLOT_FOR_KEY[(segment, key)], name):
        return None
    known = name in catalog.starship_traits or any(t.get("name") == name for t in catalog.traits)
    return "wrong_category" if known else "unknown_item"


# ----------------------------------------------------------------------------- ship layout
@dataclass(frozen=True)
class Seat:
    """A space boff seat as SETS shows it: abilities count, profession, specialization."""

    slots: int
    profession: str
    spec: str | None


def _ship_seats(ship: Ship | None) -> list[Seat]:
    """The ship's seats in SETS's order (at most six); the template's six Commander Universal seats."""
    if ship is None:
        return [Seat(BOFF_SLOTS, "Universal", spec) for spec in TEMPLATE_SEAT_SPECS]
    destroyer = bool(SCIENCE_DESTROYER_TYPES & {t.strip() for t in ship.types})
    seats = []
    for rank, profession, spec in ship.boffs[:SPACE_SEATS]:
        slots = rank
        if destroyer and (rank, profession) in ((3, "Tactical"), (4, "Science")):
            slots = BOFF_SLOTS
        seats.append(Seat(min(slots, BOFF_SLOTS), profession, spec))
    return seats


def _space_counts(ship: Ship | None, tier: str) -> dict[str, int]:
    """Slots per space build key; the template has every slot."""
    if ship is None:
        return {key: len(value) for key, value in empty_space().items() if isinstance(value, list)}
    counts = {SLOT_GROUPS[name].build_key: n for name, n in ship.slot_counts(tier).items()
              if name in SLOT_GROUPS and SLOT_GROUPS[name].build_key}
    counts["starship_traits"] = ship.slot_counts(tier)["Starship Traits"]
    return counts


def _resolve_ship(merged: MergedBuild, catalog: Catalog, notes: list[BuildNote]) -> Ship | None:
    """The catalogue ship for the type line read; the tier picks between "X" and "X (T6)" rows.

    The wiki names a T6 remake of a T5 ship "<name> (T6)" while the game shows both as "<name>".
    """
    if not merged.ship_type:
        return None
    names = [merged.ship_type]
    if merged.tier and re.fullmatch(r"T\d.*", merged.tier):
        names.insert(0, f"{merged.ship_type} ({merged.tier[:2]})")
    found = []
    for name in names:
        try:
            found.append(catalog.ship(name))
        except KeyError:
            continue
    for ship in found:
        if merged.tier in ship.valid_tiers:
            return ship
    if found:
        return found[0]
    notes.append(BuildNote("unknown_ship", f"ship type {merged.ship_type!r} is not in the catalogue; the build "
                                           "uses SETS's ship template (pick the ship in SETS)"))
    return None


def _resolve_tier(ship: Ship, merged: MergedBuild, notes: list[BuildNote]) -> str:
    """The recognised tier when the ship can have it; else the lowest tier that fits what was seen."""
    if merged.tier in ship.valid_tiers:
        return merged.tier
    seen: dict[str, int] = {}
    for key, reading in merged.readings.items():
        if reading.state in ("item", "empty") and key.slot in ("Devices", "Universal Consoles", "Starship Traits",
                                                                "Engineering Consoles", "Science Consoles",
                                                                "Tactical Consoles"):
            seen[key.slot] = max(seen.get(key.slot, 0), key.index + 1)
    chosen = ship.valid_tiers[-1]
    for tier in ship.valid_tiers:
        counts = ship.slot_counts(tier)
        if all(counts.get(slot, 0) >= n for slot, n in seen.items()):
            chosen = tier
            break
    what = f"tier {merged.tier!r} is not valid for {ship.name!r}" if merged.tier else "no tier was read"
    notes.append(BuildNote("tier_inferred", f"{what}; wrote {chosen}, the lowest of {', '.join(ship.valid_tiers)} "
                                            "with room for every slot seen"))
    return chosen


# ----------------------------------------------------------------------------- build assembly
def _equipment_record(catalog: Catalog, reading: Reading, rarity_default: str) -> dict[str, Any]:
    rarity = reading.rarity or catalog.item_rarity(reading.item or "") or rarity_default
    return {"item": reading.item, "rarity": rarity, "mark": "", "modifiers": [""] * MODIFIER_SLOTS}


def _sized_list(length: int, count: int) -> list:
    """``''`` for the ``count`` slots the ship has, ``None`` for the rest."""
    return ["" if i < count else None for i in range(length)]


def _place_cells(build: dict[str, Any], catalog: Catalog, readings: Iterable[Reading], rarity_default: str,
                 notes: list[BuildNote], counts: dict[str, int]) -> None:
    """Equipment and trait readings into their lists, each checked against SETS's category."""
    for reading in readings:
        group = SLOT_GROUPS[reading.key.slot]
        segment, key, index = group.environment, group.build_key, reading.key.index
        cells = build[segment][key]
        where = f"{reading.key.slot} #{index + 1}"
        capacity = SPECIES_TRAIT_INDEX if key == "traits" else len(cells)  # the species slot is SETS's to set
        if index >= capacity:
            if reading.state == "item":
                notes.append(BuildNote("no_slot", f"{where}: SETS has only {capacity} pickable {key} slots; "
                                                  f"{reading.item} not written", reading.key.slot, index, reading.item))
            continue
        if segment == "space" and index >= counts.get(key, len(cells)) and key not in ("traits",):
            if reading.state == "item":
                notes.append(BuildNote("beyond_ship", f"{where}: the ship has {counts.get(key, 0)} {key} slots at "
                                                      f"this tier; {reading.item} not written",
                                       reading.key.slot, index, reading.item))
            continue
        if reading.state == "locked":
            continue
        if reading.state == "empty":
            cells[index] = ""
            continue
        problem = _item_problem(catalog, segment, key, reading.item)
        if problem:
            wrong = "is in another category than" if problem == "wrong_category" else "is not a catalogue item for"
            notes.append(BuildNote(problem, f"{where}: {reading.item!r} {wrong} {segment} {key}; dropped",
                                   reading.key.slot, index, reading.item))
            continue
        if key in _TRAIT_KEYS:
            cells[index] = {"item": reading.item}
        else:
            cells[index] = _equipment_record(catalog, reading, rarity_default)


def _space_segment(ship: Ship | None, tier: str, counts: dict[str, int]) -> dict[str, Any]:
    """``space`` with every list sized and ``None``/``''`` set per the ship's counts."""
    space = empty_space()
    space["ship"] = ship.page if ship else ""
    space["tier"] = tier
    for key, value in space.items():
        if isinstance(value, list) and key in counts and key not in ("traits", "boffs", "boff_specs"):
            space[key] = _sized_list(len(value), counts[key])
    space["rep_traits"] = [""] * 5
    space["active_rep_traits"] = [""] * 5
    return space


# -- boff seats
@dataclass
class _SeenSeat:
    """A recognised seat: its slot name's profession/spec and its readings by position."""

    order: int
    label: str  # profession or spec from "Boff <label>"
    readings: dict[int, Reading]

    @property
    def needed(self) -> int:
        used = [i for i, r in self.readings.items() if r.state in ("item", "empty")]
        return max(used) + 1 if used else 0


def _seen_seats(readings: Iterable[Reading], env: str) -> list[_SeenSeat]:
    """Boff readings grouped into seats (by ``seat``; by slot name when no seat was given)."""
    seats: dict[Any, _SeenSeat] = {}
    for reading in readings:
        key = reading.key
        if key.environment != env:
            continue
        group_id = ("seat", key.seat) if key.seat is not None else ("slot", key.slot)
        if group_id not in seats:
            seats[group_id] = _SeenSeat(0, key.slot.removeprefix("Boff "), {})
        seats[group_id].readings[key.index] = reading
    ordered = sorted(seats.items(), key=lambda kv: (kv[0][0] != "seat", kv[0][1] if kv[0][0] == "seat" else 0))
    for number, (_, seat) in enumerate(ordered):
        seat.order = number
    return [seat for _, seat in ordered]


def _seat_score(seen: _SeenSeat, seat: Seat, seat_index: int) -> float | None:
    """How well a recognised seat fits a ship seat; None when the profession cannot match."""
    label = SPEC_ALIASES.get(seen.label, seen.label)
    if label == seat.profession or (seat.spec and label == seat.spec):
        score = 4.0
    elif label in UNIVERSAL_PROFESSIONS and seat.profession == "Universal":
        score = 4.0
    elif seat.profession == "Universal" and label in CAREER_PROFESSIONS:
        score = 2.0
    else:
        return None
    if seat.slots < seen.needed:
        score -= 3.0
    return score - 0.01 * abs(seen.order - seat_index)


def _assign_seats(seen: list[_SeenSeat], seats: list[Seat]) -> dict[int, int]:
    """Recognised seat order -> ship seat index, maximising the total fit (tiny exhaustive search)."""

    @functools.lru_cache(maxsize=None)
    def best(i: int, used: int) -> tuple[float, tuple[int | None, ...]]:
        if i == len(seen):
            return 0.0, ()
        result = best(i + 1, used)
        options = [(result[0], (None,) + result[1])]
        for j, seat in enumerate(seats):
            if used & (1 << j):
                continue
            score = _seat_score(seen[i], seat, j)
            if score is not None:
                rest = best(i + 1, used | (1 << j))
                options.append((score + rest[0], (j,) + rest[1]))
        return max(options, key=lambda option: option[0])

    _, choice = best(0, 0)
    return {seen[i].order: j for i, j in enumerate(choice) if j is not None}


def _seat_profession(seat: Seat, seen: _SeenSeat, catalog: Catalog) -> str:
    """The career a seat holds: fixed by the ship, or for a Universal seat the officer's career.

    A Universal seat seats one officer of one career: the recognised label when it names a career,
    else the career most of its abilities belong to, else SETS's default Tactical.
    """
    if seat.profession not in UNIVERSAL_PROFESSIONS:
        return seat.profession
    if seen.label in CAREER_PROFESSIONS:
        return seen.label
    return _vote(seen, catalog, "space", CAREER_PROFESSIONS) or "Tactical"


def _fill_seat(cells: list, seen: _SeenSeat, allowed: set[str], slots: int, env: str, catalog: Catalog,
               notes: list[BuildNote]) -> None:
    """Abilities of one seat into ``cells`` with their rank; what does not fit is reported."""
    for index, reading in sorted(seen.readings.items()):
        where = f"{reading.key.slot} seat {seen.order + 1} #{index + 1}"
        if reading.state != "item":
            continue
        if index >= slots:
            notes.append(BuildNote("beyond_ship", f"{where}: the seat has {slots} slots; {reading.item} not written",
                                   reading.key.slot, index, reading.item))
            continue
        types = _ability_types(catalog, reading.item, env)
        if not types:
            notes.append(BuildNote("unknown_item", f"{where}: {reading.item!r} is not a {env} boff ability; dropped",
                                   reading.key.slot, index, reading.item))
            continue
        if not types & allowed:
            notes.append(BuildNote("wrong_category", f"{where}: {reading.item!r} ({', '.join(sorted(types))}) does "
                                                     f"not fit a {'/'.join(sorted(allowed))} seat; dropped",
                                   reading.key.slot, index, reading.item))
            continue
        rank = _ability_rank(catalog, reading.item, env, allowed, index + 1)
        if rank is None:
            notes.append(BuildNote("no_rank", f"{where}: {reading.item!r} has no rank that fits slot {index + 1}; "
                                              "dropped", reading.key.slot, index, reading.item))
            continue
        cells[index] = {"item": reading.item, "rank": rank}


def _space_boffs(space: dict[str, Any], ship: Ship | None, readings: list[Reading], catalog: Catalog,
                 notes: list[BuildNote]) -> None:
    """``boffs`` and ``boff_specs`` from the ship's seats, recognised seats matched onto them."""
    seats = _ship_seats(ship)
    for i, seat in enumerate(seats):
        space["boffs"][i] = ["" if k < seat.slots else None for k in range(BOFF_SLOTS)]
        profession = "Tactical" if seat.profession in UNIVERSAL_PROFESSIONS else seat.profession
        space["boff_specs"][i] = [profession, seat.spec or ""]
    seen = _seen_seats(readings, "space")
    assignment = _assign_seats(seen, seats)
    for recognised in seen:
        j = assignment.get(recognised.order)
        if j is None:
            if any(r.state == "item" for r in recognised.readings.values()):
                notes.append(BuildNote("no_seat", f"Boff {recognised.label} seat {recognised.order + 1}: the ship "
                                                  "has no matching seat; its abilities were not written",
                                       f"Boff {recognised.label}"))
            continue
        seat = seats[j]
        profession = _seat_profession(seat, recognised, catalog)
        allowed = {profession} | ({seat.spec} if seat.spec else set())
        _fill_seat(space["boffs"][j], recognised, allowed, seat.slots, "space", catalog, notes)
        space["boff_specs"][j][0] = profession


def _ground_boffs(ground: dict[str, Any], readings: list[Reading], catalog: Catalog,
                  notes: list[BuildNote]) -> None:
    """Ground seats in the order seen (4 seats of 4 slots); profession and spec from label and abilities."""
    for recognised in _seen_seats(readings, "ground"):
        if recognised.order >= GROUND_SEATS:
            notes.append(BuildNote("no_seat", f"Boff {recognised.label}: SETS has {GROUND_SEATS} ground seats; "
                                              "this one was not written", f"Boff {recognised.label}"))
            continue
        label = SPEC_ALIASES.get(recognised.label, recognised.label)
        profession = label if label in CAREER_PROFESSIONS else (
            _vote(recognised, catalog, "ground", CAREER_PROFESSIONS) or "Tactical")
        spec = label if label in GROUND_BOFF_SPECS else (
            _vote(recognised, catalog, "ground", GROUND_BOFF_SPECS) or "Command")
        _fill_seat(ground["boffs"][recognised.order], recognised, {profession, spec}, BOFF_SLOTS, "ground",
                   catalog, notes)
        ground["boff_profs"][recognised.order] = profession
        ground["boff_specs"][recognised.order] = spec


def to_sets_build(merged: MergedBuild, catalog: Catalog, *, include_version: bool = False,
                  rarity_default: str = "Very Rare") -> SetsBuild:
    """The SETS build dict for ``merged`` (a :class:`SetsBuild`: a dict with a ``report`` of notes).

    Written keys: ``space`` and ``ground`` only (captain and skills keep SETS's defaults), plus
    ``_version: 1`` when ``include_version`` (new SETS only). Items SETS would not find in the
    slot's category are left out and named in ``report``, never written.
    """
    if rarity_default not in RARITIES:
        raise ValueError(f"rarity_default {rarity_default!r} must be one of {RARITIES}")
    notes = list(merged.notes)
    ship = _resolve_ship(merged, catalog, notes)
    tier = _resolve_tier(ship, merged, notes) if ship else ""
    counts = _space_counts(ship, tier)
    build: dict[str, Any] = {"space": _space_segment(ship, tier, counts), "ground": empty_ground()}
    readings = sorted(merged.readings.values(), key=lambda r: (r.key.slot, r.key.seat or 0, r.key.index))
    boff_readings = [r for r in readings if SLOT_GROUPS[r.key.slot].kind == "boff"]
    cell_readings = [r for r in readings if SLOT_GROUPS[r.key.slot].kind in ("equipment", "trait", "starship_trait")]
    build["ground"]["active_rep_traits"] = [""] * len(build["ground"]["active_rep_traits"])  # slots exist
    _place_cells(build, catalog, cell_readings, rarity_default, notes, counts)
    if any(SLOT_GROUPS[r.key.slot].kind == "spec" and r.state == "item" for r in readings):
        notes.append(BuildNote("not_written", "specializations were read but are not written: the captain "
                                              "segment is left to SETS's defaults"))
    _space_boffs(build["space"], ship, boff_readings, catalog, notes)
    _ground_boffs(build["ground"], boff_readings, catalog, notes)
    for segment in ("space", "ground"):
        traits = build[segment]["traits"]
        if traits[ELITE_TRAIT_INDEX] or traits[ALIEN_TRAIT_INDEX]:
            notes.append(BuildNote("captain_slot", f"{segment} trait slots 10/11 hold traits: SETS shows them only "
                                                   "for an elite (slot 10) or alien (slot 11) captain"))
    if include_version:
        build[VERSION_KEY] = BUILD_VERSION
    return SetsBuild(build, notes)


def builds_from_results(results: Iterable[Mapping[str, Any]], catalog: Catalog,
                        **options: Any) -> dict[tuple[str | None, str | None], SetsBuild]:
    """Group, merge and convert in one call: one build per (ship type, tier)."""
    return {key: to_sets_build(merge_results(group, catalog), catalog, **options)
            for key, group in group_by_ship(results).items()}


# ----------------------------------------------------------------------------- writing
_FORBIDDEN_CHARS = re.compile(r'[<>:"/\\|?*\x00-\x1f\x7f]')
_WINDOWS_RESERVED = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)),
                               *(f"LPT{i}" for i in range(1, 10))})
MAX_STEM_BYTES = 200  # well under the 255-byte name limit of common filesystems


def build_file_name(ship_name_or_type: str | None, ship: str | None = None, ext: str = ".json") -> str:
    """SETS's proposed name, ``"<ship_name> (<ship>)"``, made safe on Windows and Linux.

    ``build_file_name("U.S.S. Example", "Akira Heavy Escort")`` -> ``"U.S.S. Example (Akira Heavy
    Escort).json"``; with one part only that part; with none ``"(Ship Template).json"``.
    """
    first, second = (_clean_part(p) for p in (ship_name_or_type, ship))
    stem = f"{first} ({second})" if first and second else (first or second or TEMPLATE_FILE_STEM)
    stem = stem.rstrip(" .")
    if stem.split(".")[0].strip().upper() in _WINDOWS_RESERVED:
        stem = "_" + stem
    encoded = stem.encode("utf-8")[:MAX_STEM_BYTES]
    stem = encoded.decode("utf-8", errors="ignore").rstrip(" .") or TEMPLATE_FILE_STEM
    return stem + ext


def _clean_part(part: str | None) -> str:
    return " ".join(_FORBIDDEN_CHARS.sub("_", part or "").split()).strip(" .")


def build_json(build: Mapping[str, Any]) -> str:
    """The file text exactly as SETS writes it: ``json.dump`` defaults, so ASCII with ``\\uXXXX``."""
    return json.dumps(dict(build), ensure_ascii=True)


def write_build(build: Mapping[str, Any], path: str | os.PathLike) -> Path:
    """Write ``build`` to ``path`` atomically (temp file in the same folder, then ``os.replace``).

    SETS (or the user) may open the file at any moment; it must never see half a build.
    """
    target = Path(path)
    write_atomic(target, build_json(build).encode("ascii"))
    return target


# ----------------------------------------------------------------------------- validation
def validate_sets_build(build: Any, catalog: Catalog, *, allow_version: bool = False) -> list[str]:
    """Problems that would make SETS fail to load ``build`` or lose data; empty means loadable.

    The rules of SETS's loader (sets-build-format.md §1, §5): the top-level key set (old SETS
    ignores files whose keys are not among the seven), list lengths equal to ``empty_build``'s,
    items in the category SETS looks them up in, rarities among the six, boff abilities with a
    rank, and a ship and tier SETS knows. ``_version`` is a problem unless ``allow_version``.
    """
    if not isinstance(build, Mapping):
        return [f"a build must be a JSON object, not {type(build).__name__}"]
    problems: list[str] = []
    allowed_keys = set(SETS_TOP_KEYS) | ({VERSION_KEY} if allow_version else set())
    extra = sorted(set(build) - allowed_keys)
    if extra:
        problems.append(f"top-level keys {extra} are not SETS keys; old SETS ignores such a file "
                        f"(needs len(keys | empty_build keys) == {len(SETS_TOP_KEYS)})")
    if VERSION_KEY in build and build[VERSION_KEY] != BUILD_VERSION:
        problems.append(f"{VERSION_KEY} is {build[VERSION_KEY]!r}, SETS knows only {BUILD_VERSION}")
    for segment, template in (("space", empty_space()), ("ground", empty_ground())):
        if segment in build:
            problems += _validate_segment(build[segment], segment, template, catalog)
    if "space" in build and isinstance(build["space"], Mapping):
        problems += _validate_ship(build["space"], catalog)
    return problems


def _validate_segment(data: Any, segment: str, template: dict[str, Any], catalog: Catalog) -> list[str]:
    if not isinstance(data, Mapping):
        return [f"{segment} must be an object"]
    problems: list[str] = []
    for key, default in template.items():
        if key not in data:
            continue  # SETS keeps its default for a missing key
        value = data[key]
        if isinstance(default, list):
            if not isinstance(value, list) or len(value) != len(default):
                length = len(value) if isinstance(value, list) else type(value).__name__
                problems.append(f"{segment}.{key} must be a list of {len(default)}, got {length}")
                continue
            if key == "boffs":
                problems += _validate_boffs(data, segment, catalog)
            elif key in SETS_CATEGORY_TYPES or key in _TRAIT_KEYS:
                problems += _validate_cells(value, segment, key, catalog)
        elif isinstance(default, str) and not isinstance(value, str):
            problems.append(f"{segment}.{key} must be a string")
    return problems


def _cell_record(cell: Any, where: str, what: str, problems: list[str]) -> Mapping[str, Any] | None:
    """A build cell's record, or None for an empty cell; a malformed cell is reported and is None too."""
    if cell is None or cell == "":
        return None
    if not isinstance(cell, Mapping) or not isinstance(cell.get("item"), str):
        problems.append(f"{where} must be None, '' or {what}")
        return None
    return cell


def _validate_cells(cells: list, segment: str, key: str, catalog: Catalog) -> list[str]:
    problems = []
    for i, cell in enumerate(cells):
        where = f"{segment}.{key}[{i}]"
        if _cell_record(cell, where, "a record with an item", problems) is None or cell["item"] == "":
            continue
        problem = _item_problem(catalog, segment, key, cell["item"])
        if problem:
            problems.append(f"{where}: {cell['item']!r} is not in SETS's {key} "
                            f"({'known item, wrong category' if problem == 'wrong_category' else 'unknown'})")
        if key in SETS_CATEGORY_TYPES:
            problems += _validate_equipment_fields(cell, where)
    return problems


def _validate_equipment_fields(cell: Mapping[str, Any], where: str) -> list[str]:
    problems = []
    if cell.get("rarity") not in RARITIES:
        problems.append(f"{where}: rarity {cell.get('rarity')!r} is not one of {RARITIES} (SETS raises "
                        "AttributeError)")
    if cell.get("mark", "") not in ("",) + MARKS:
        problems.append(f"{where}: mark {cell.get('mark')!r} is not a SETS mark")
    mods = cell.get("modifiers")
    if not isinstance(mods, list) or len(mods) != MODIFIER_SLOTS or \
            not all(m is None or isinstance(m, str) for m in mods):
        problems.append(f"{where}: modifiers must be a list of {MODIFIER_SLOTS} strings or None")
    return problems


def _validate_boffs(data: Mapping[str, Any], segment: str, catalog: Catalog) -> list[str]:
    problems = []
    seats, specs = data["boffs"], data.get("boff_specs")
    profs = data.get("boff_profs")
    for s, seat in enumerate(seats):
        if not isinstance(seat, list) or len(seat) != BOFF_SLOTS:
            problems.append(f"{segment}.boffs[{s}] must be a list of {BOFF_SLOTS}")
            continue
        allowed = _validated_seat_types(segment, s, specs, profs)
        for i, cell in enumerate(seat):
            where = f"{segment}.boffs[{s}][{i}]"
            if _cell_record(cell, where, "an ability record", problems) is None:
                continue
            if cell.get("rank") not in ABILITY_RANKS:
                problems.append(f"{where}: {cell['item']!r} needs a rank of I, II or III (SETS raises KeyError)")
            types = _ability_types(catalog, cell["item"], segment)
            if not types:
                problems.append(f"{where}: {cell['item']!r} is not a {segment} boff ability")
            elif allowed and not types & allowed:
                problems.append(f"{where}: {cell['item']!r} does not fit a {'/'.join(sorted(allowed))} seat")
    return problems


def _validated_seat_types(segment: str, s: int, specs: Any, profs: Any) -> set[str]:
    """Ability types the seat ``s`` accepts per the build's own boff_specs/boff_profs (empty: unknown)."""
    try:
        if segment == "space":
            profession, spec = specs[s][0], specs[s][1]
        else:
            profession, spec = profs[s], specs[s]
    except (TypeError, IndexError, KeyError):
        return set()
    allowed = set(CAREER_PROFESSIONS) if profession in UNIVERSAL_PROFESSIONS else (
        {profession} if profession else set())
    if spec:
        allowed.add(SPEC_ALIASES.get(spec, spec))
    return allowed


def _validate_ship(space: Mapping[str, Any], catalog: Catalog) -> list[str]:
    ship_key, tier = space.get("ship", ""), space.get("tier", "")
    if ship_key in TEMPLATE_SHIPS:
        return [] if tier in ("",) + TIERS else [f"space.tier {tier!r} is not a SETS tier"]
    ship = catalog.ships_by_page.get(ship_key)
    if ship is None:
        return [f"space.ship {ship_key!r} is not a ship page SETS knows (KeyError in cargo.ships)"]
    if tier not in ship.valid_tiers:
        return [f"space.tier {tier!r} is not valid for {ship_key!r} ({', '.join(ship.valid_tiers)})"]
    return []
