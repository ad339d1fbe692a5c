"""The STO item catalogue: which items exist, which slot each fits, and each ship's slot counts.

Recognition restricts its candidates per slot through this (a Deflector slot only considers
deflectors), central training validates community labels against it, and the build writer checks
that every item it writes exists in the category SETS will look it up in.

Two sources, one shape: the catalogue bundled with warpd (``warpd/data/catalog``, CC BY-SA, see its
SOURCE.md) and a player's own SETS cargo folder (``<SETS config>/cargo``: ``ship_list.json``,
``equipment.json``, ...), which is newer when SETS has refreshed it. Rows of the SETS format are
converted to the bundled format on load, so every rule below has a single implementation.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from warpd.slots import (
    BOFF_RANKS,
    SLOT_GROUPS,
    normalize_slot,
    tier_bonus,
    tiers_for_cargo_tier,
)

BUNDLED_DIR = Path(__file__).resolve().parent / "data" / "catalog"
CATALOG_FILES = ("ships.json", "equipment.json", "traits.json", "starship_traits.json", "boff_abilities.json")
SETS_SHIP_FILE = "ship_list.json"

RARITIES: tuple[str, ...] = ("Common", "Uncommon", "Rare", "Very Rare", "Ultra Rare", "Epic")
BASE_STARSHIP_TRAITS = 5
# Trait types SETS never shows in a trait panel (traits.json ``type``).
NON_PANEL_TRAIT_TYPES = frozenset({"doff", "boff"})
# SETS skips these hangar pets, except the two named ones (sets-build-format.md §6.3).
_SKIPPED_HANGAR = re.compile(r"^Hangar - (Advanced|Elite)\b")
_KEPT_HANGARS = frozenset({"Hangar - Elite Federation Mission Scout Ships", "Hangar - Elite Valor Fighters"})


class CatalogError(ValueError):
    """The catalogue folder is missing files or holds data that cannot be read; says which file."""


def sanitize_equipment_name(name: str) -> str:
    """SETS's item key: the wiki name cut at the first ``∞``, ``Mk X``, ``MK X`` or ``[``, less ``-S``.

    Items are named by this key everywhere (recognition, annotations, label maps, build files), and
    it is the icon's file stem in SETS's image cache.
    """
    key = name.replace("&quot;", '"').replace("&#34;", '"')
    for cut in ("∞", "Mk X", "MK X", "["):
        pos = key.find(cut)
        if pos >= 0:
            key = key[:pos]
    key = key.strip()
    if key.endswith("-S"):
        key = key[:-2]
    return key.strip()


def parse_boff_seat(seat: str) -> tuple[int, str, str | None] | None:
    """``"Lieutenant Commander Universal-Temporal Operative"`` -> ``(3, "Universal", "Temporal")``."""
    seat = " ".join(seat.split())
    if not seat:
        return None
    for rank_name in sorted(BOFF_RANKS, key=len, reverse=True):
        if seat.startswith(rank_name + " "):
            rest = seat[len(rank_name) + 1:]
            profession, _, spec = rest.partition("-")
            spec = spec.strip() or None
            if spec == "Temporal Operative":
                spec = "Temporal"
            return BOFF_RANKS[rank_name], profession.strip(), spec
    return None


@dataclass(frozen=True)
class Item:
    """One equipment item under its SETS key."""

    key: str
    type: str
    rarity: str | None


@dataclass(frozen=True)
class Ship:
    """A ship record from the ship list; counts are the ship's base (untiered) slot counts."""

    name: str  # the in-game type line, what OCR reads
    page: str  # SETS's key for the ship (a build file's ``space.ship``)
    tier: int
    types: tuple[str, ...]
    faction: str | None
    fore: int
    aft: int
    devices: int
    consoles_tac: int
    consoles_eng: int
    consoles_sci: int
    experimental: int
    secdeflector: int
    hangars: int
    uniconsole_name: str | None  # the NAME of the ship's universal console, not a count
    t5uconsole: str | None
    abilities: tuple[str, ...] = ()
    boff_seats: tuple[str, ...] = ()

    @property
    def valid_tiers(self) -> tuple[str, ...]:
        return tiers_for_cargo_tier(self.tier)

    @cached_property
    def boffs(self) -> list[tuple[int, str, str | None]]:
        """Seats as (rank, profession, spec), sorted the way SETS shows them (descending tuples)."""
        parsed = [p for p in (parse_boff_seat(s) for s in self.boff_seats) if p is not None]
        return sorted(parsed, key=lambda seat: (seat[0], seat[1], seat[2] or ""), reverse=True)

    def slot_counts(self, tier: str | None = None) -> dict[str, int]:
        """Slots per canonical space slot name at ``tier`` (default: the base tier), SETS's rules.

        -X adds one universal console, device and starship trait, -X2 two of each; T5-U and T5-X*
        add one console of the ship's ``t5uconsole`` type. ``uniconsole`` is a console's name and
        never counts.
        """
        tier = tier or self.valid_tiers[0]
        if tier not in self.valid_tiers:
            raise ValueError(f"{self.name!r} (tier {self.tier}) cannot be {tier}; valid: {self.valid_tiers}")
        bonus = tier_bonus(tier)
        uni = 1 if ("Innovation Effects" in self.abilities or self.name == "Federation Intel Holoship") else 0
        consoles = {"tac": self.consoles_tac, "eng": self.consoles_eng, "sci": self.consoles_sci}
        if tier.startswith(("T5-U", "T5-X")) and self.t5uconsole in consoles:
            consoles[self.t5uconsole] += 1
        return {
            "Fore Weapons": self.fore,
            "Aft Weapons": self.aft,
            "Experimental Weapon": self.experimental,
            "Deflector": 1,
            "Secondary Deflector": self.secdeflector,
            "Impulse Engines": 1,
            "Warp Core": 1,
            "Shields": 1,
            "Devices": self.devices + bonus,
            "Universal Consoles": uni + bonus,
            "Engineering Consoles": consoles["eng"],
            "Science Consoles": consoles["sci"],
            "Tactical Consoles": consoles["tac"],
            "Hangars": self.hangars,
            "Starship Traits": BASE_STARSHIP_TRAITS + bonus,
        }


@dataclass
class Catalog:
    """Items, traits, boff abilities and ships, with the slot rules applied."""

    source: Path
    items: dict[str, Item]
    ships: dict[str, Ship]
    traits: list[dict[str, Any]]
    starship_traits: list[str]
    boff_abilities: list[dict[str, Any]]
    _by_slot: dict[tuple[str, str | None], list[str]] = field(default_factory=dict, repr=False)
    _slot_sets: dict[tuple[str, str | None], frozenset[str]] = field(default_factory=dict, repr=False)

    # ---------------------------------------------------------------- loading
    @classmethod
    def load(cls, path: str | Path | None = None) -> "Catalog":
        """Load the bundled catalogue (``path=None``), a folder in its format, or a SETS cargo folder."""
        folder = Path(path) if path is not None else BUNDLED_DIR
        if not folder.is_dir():
            raise CatalogError(f"catalogue folder {folder} does not exist")
        if (folder / SETS_SHIP_FILE).is_file():
            raw = _read_sets_cargo(folder)
        else:
            raw = {name: _read_json(folder / name) for name in CATALOG_FILES}
        return cls._from_rows(folder, raw)

    @classmethod
    def _from_rows(cls, folder: Path, raw: dict[str, Any]) -> "Catalog":
        items: dict[str, Item] = {}
        for row in raw["equipment.json"]:
            item_type, key = row.get("type"), row.get("key") or sanitize_equipment_name(row.get("name") or "")
            if not key or not isinstance(item_type, str) or item_type.startswith("{{"):
                continue  # junk rows of the wiki export
            rarity = row.get("rarity") if row.get("rarity") in RARITIES else None
            items.setdefault(key, Item(key, item_type, rarity))
        ships = {}
        for row in raw["ships.json"]:
            ship = _ship_from_row(row)
            ships.setdefault(ship.name, ship)
        return cls(
            source=folder,
            items=items,
            ships=ships,
            traits=[t for t in raw["traits.json"] if t.get("name")],
            starship_traits=sorted({t["name"] for t in raw["starship_traits.json"] if t.get("name")}),
            boff_abilities=[b for b in raw["boff_abilities.json"] if b.get("name")],
        )

    # ---------------------------------------------------------------- queries
    @cached_property
    def ships_by_page(self) -> dict[str, Ship]:
        return {s.page: s for s in self.ships.values()}

    def ship(self, name: str) -> Ship:
        """A ship by its in-game type line or its SETS page name."""
        if name in self.ships:
            return self.ships[name]
        if name in self.ships_by_page:
            return self.ships_by_page[name]
        raise KeyError(f"unknown ship {name!r}")

    @cached_property
    def all_names(self) -> frozenset[str]:
        """Every name a slot can hold: equipment keys, traits, starship traits, boff abilities.

        The icon library is restricted to these, so a stray file in SETS's image cache never
        becomes an answer.
        """
        return frozenset(self.items) | {t["name"] for t in self.traits} | set(self.starship_traits) | {
            b["name"] for b in self.boff_abilities}

    def item_rarity(self, key: str) -> str | None:
        item = self.items.get(key)
        return item.rarity if item else None

    def items_for_slot(self, slot: str, environment: str | None = None) -> list[str]:
        """Every item name that can sit in ``slot`` (canonical or a known variant), sorted.

        ``environment`` only matters for boff seats ("space" by default); trait panels carry it
        in their name.
        """
        canonical = normalize_slot(slot)
        cache_key = (canonical, environment)
        if cache_key not in self._by_slot:
            self._by_slot[cache_key] = sorted(set(self._names_for_slot(canonical, environment or "space")))
        return self._by_slot[cache_key]

    def slot_accepts(self, slot: str, name: str, environment: str | None = None) -> bool:
        """Whether ``name`` is a valid item for ``slot`` (used to validate labels from the network)."""
        return name in self._slot_set(normalize_slot(slot), environment)

    def _slot_set(self, canonical: str, environment: str | None) -> frozenset[str]:
        key = (canonical, environment)
        if key not in self._slot_sets:
            self._slot_sets[key] = frozenset(self.items_for_slot(canonical, environment))
        return self._slot_sets[key]

    def _names_for_slot(self, canonical: str, environment: str) -> Iterable[str]:
        group = SLOT_GROUPS.get(canonical)
        if group is None:
            return []
        if group.kind == "equipment":
            return (k for k, item in self.items.items()
                    if item.type in group.item_types and not _skipped_hangar(canonical, k))
        if group.kind == "starship_trait":
            return self.starship_traits
        if group.kind == "trait":
            return self._trait_names(canonical, group.environment)
        if group.kind == "boff":
            profession = canonical.removeprefix("Boff ")
            return self._boff_names(profession, environment)
        return []

    def _trait_names(self, panel: str, environment: str) -> Iterable[str]:
        if "Active" in panel:
            wanted = {"activereputation"}
        elif "Reputation" in panel:
            wanted = {"reputation"}
        else:
            wanted = None  # personal: anything that is not rep, active rep, boff or doff
        for t in self.traits:
            if (t.get("environment") or "").lower() != environment:
                continue
            ttype = (t.get("type") or "").lower()
            if wanted is None:
                if ttype not in NON_PANEL_TRAIT_TYPES and ttype not in {"reputation", "activereputation"}:
                    yield t["name"]
            elif ttype in wanted:
                yield t["name"]

    def _boff_names(self, profession: str, environment: str) -> Iterable[str]:
        aliases = {"Temporal": {"Temporal", "Temporal Operative"}}
        wanted = aliases.get(profession, {profession})
        universal = profession in {"Universal", "Operations"}
        for b in self.boff_abilities:
            if (b.get("region") or "").lower() != environment:
                continue
            if universal and b.get("type") in {"Tactical", "Engineering", "Science"}:
                yield b["name"]
            elif b.get("type") in wanted:
                yield b["name"]


def _skipped_hangar(slot: str, key: str) -> bool:
    return slot == "Hangars" and bool(_SKIPPED_HANGAR.match(key)) and key not in _KEPT_HANGARS


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError:
        raise CatalogError(f"catalogue file {path} is missing") from None
    except (OSError, ValueError) as exc:
        raise CatalogError(f"catalogue file {path} cannot be read: {exc}") from None
    if not isinstance(data, list):
        raise CatalogError(f"catalogue file {path} should hold a JSON list of records")
    return data


def _as_int(value: Any) -> int:
    """Cargo counts arrive as ints, numeric strings, empty strings or null."""
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _ship_from_row(row: dict[str, Any]) -> Ship:
    consoles = row.get("consoles") or {}
    types = row.get("type") or []
    return Ship(
        name=str(row.get("name") or row.get("page")),
        page=str(row.get("page") or row.get("name")),
        tier=_as_int(row.get("tier")) or 1,
        types=tuple(types if isinstance(types, list) else [types]),
        faction=row.get("faction"),
        fore=_as_int(row.get("fore")),
        aft=_as_int(row.get("aft")),
        devices=_as_int(row.get("devices")),
        consoles_tac=_as_int(consoles.get("tac")),
        consoles_eng=_as_int(consoles.get("eng")),
        consoles_sci=_as_int(consoles.get("sci")),
        experimental=_as_int(row.get("experimental")),
        secdeflector=_as_int(row.get("secdeflector")),
        hangars=_as_int(row.get("hangars")),
        uniconsole_name=row.get("uniconsole") or None,
        t5uconsole=row.get("t5uconsole") or None,
        abilities=tuple(row.get("abilities") or ()),
        boff_seats=tuple(row.get("boffs") or ()),
    )


def _unescape(value: Any) -> Any:
    return html.unescape(value) if isinstance(value, str) else value


def _read_sets_cargo(folder: Path) -> dict[str, list[dict[str, Any]]]:
    """Convert SETS's raw CargoExport files (its ``cargo/`` folder) to the bundled record shape."""
    ships = []
    for row in _read_json(folder / SETS_SHIP_FILE):
        row = {k: _unescape(v) for k, v in row.items()}
        ships.append({
            "name": row.get("name") or row.get("Page"), "page": row.get("Page") or row.get("name"),
            "tier": row.get("tier"), "type": row.get("type"), "faction": row.get("faction"),
            "fore": row.get("fore"), "aft": row.get("aft"), "devices": row.get("devices"),
            "consoles": {"tac": row.get("consolestac"), "eng": row.get("consoleseng"),
                         "sci": row.get("consolessci")},
            "uniconsole": row.get("uniconsole"), "t5uconsole": row.get("t5uconsole"),
            "experimental": row.get("experimental"), "secdeflector": row.get("secdeflector"),
            "hangars": row.get("hangars"), "boffs": row.get("boffs"), "abilities": row.get("abilities"),
        })
    equipment = [
        {"key": sanitize_equipment_name(_unescape(r.get("name") or "")), "name": _unescape(r.get("name")),
         "type": r.get("type"), "rarity": r.get("rarity")}
        for r in _read_json(folder / "equipment.json")
    ]
    traits = [{"name": _unescape(r.get("name")), "type": r.get("type"), "environment": r.get("environment")}
              for r in _read_json(folder / "traits.json")]
    starship = [{"name": _unescape(r.get("name")), "type": r.get("type")}
                for r in _read_json(folder / "starship_traits.json")]
    boffs = [{"name": _unescape(r.get("name")), "type": r.get("type"), "region": r.get("region"),
              "ranks": [r.get(f"rank{i}rank") for i in (1, 2, 3) if r.get(f"rank{i}rank")]}
             for r in _read_json(folder / "boff_abilities.json")]
    return {"ships.json": ships, "equipment.json": equipment, "traits.json": traits,
            "starship_traits.json": starship, "boff_abilities.json": boffs}
