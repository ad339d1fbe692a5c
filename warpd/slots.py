"""The game's vocabulary: screen types, slot names, tiers, and which item types fit which slot.

These strings are the API between every stage (recognition output, annotations, uploads, label
maps, build files) and between the daemon and ``central``: they are defined here once. The facts
come from ``shared/reference/sto-domain.md``; the catalogue's own ``type`` spellings are the
authority for item types.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class ScreenType(str, Enum):
    """What a screenshot shows; the screen classifier's labels and ``screen_types/<TYPE>/`` folders."""

    SPACE_EQ = "SPACE_EQ"
    GROUND_EQ = "GROUND_EQ"
    TRAITS = "TRAITS"
    BOFFS = "BOFFS"
    SPECIALIZATIONS = "SPECIALIZATIONS"
    SPACE_MIXED = "SPACE_MIXED"
    GROUND_MIXED = "GROUND_MIXED"
    UNKNOWN = "UNKNOWN"


SCREEN_TYPES: tuple[str, ...] = tuple(t.value for t in ScreenType)


@dataclass(frozen=True)
class SlotGroup:
    """One row (or panel) of slots as the game shows it.

    ``build_key`` is the list in a SETS build file that the slot fills (``None`` when SETS has
    no place for it); ``item_types`` are catalogue ``type`` values that may sit in it.
    """

    name: str
    max_count: int
    kind: str  # "equipment" | "trait" | "starship_trait" | "boff" | "spec" | "text"
    environment: str  # "space" | "ground"
    build_key: str | None
    item_types: frozenset[str] = frozenset()
    label_lines: tuple[str, ...] = ()  # how the game prints the label: two-word labels on two lines


def _eq(name: str, n: int, env: str, key: str, types: set[str], lines: tuple[str, ...]) -> SlotGroup:
    return SlotGroup(name, n, "equipment", env, key, frozenset(types), lines)


CONSOLE_TYPES = frozenset(
    {"Ship Engineering Console", "Ship Science Console", "Ship Tactical Console", "Universal Console"}
)

# Space equipment rows, in the game's visual order top to bottom, with the usual maximum count.
SPACE_EQUIPMENT: tuple[SlotGroup, ...] = (
    _eq("Fore Weapons", 5, "space", "fore_weapons",
        {"Ship Fore Weapon", "Ship Weapon", "Experimental Weapon"}, ("Fore", "Weapons")),
    _eq("Aft Weapons", 5, "space", "aft_weapons", {"Ship Aft Weapon", "Ship Weapon"}, ("Aft", "Weapons")),
    _eq("Experimental Weapon", 1, "space", "experimental", {"Experimental Weapon"}, ("Experimental", "Weapon")),
    _eq("Deflector", 1, "space", "deflector", {"Ship Deflector Dish"}, ("Deflector",)),
    _eq("Secondary Deflector", 1, "space", "sec_def", {"Ship Secondary Deflector"}, ("Secondary", "Deflector")),
    _eq("Impulse Engines", 1, "space", "engines", {"Impulse Engine"}, ("Impulse", "Engines")),
    _eq("Warp Core", 1, "space", "core", {"Warp Engine", "Singularity Engine"}, ("Warp", "Core")),
    _eq("Shields", 1, "space", "shield", {"Ship Shields"}, ("Shields",)),
    _eq("Devices", 6, "space", "devices", {"Ship Device"}, ("Devices",)),
    _eq("Universal Consoles", 3, "space", "uni_consoles", set(CONSOLE_TYPES), ("Universal", "Consoles")),
    _eq("Engineering Consoles", 5, "space", "eng_consoles",
        {"Ship Engineering Console", "Universal Console"}, ("Engineering", "Consoles")),
    _eq("Science Consoles", 5, "space", "sci_consoles",
        {"Ship Science Console", "Universal Console"}, ("Science", "Consoles")),
    _eq("Tactical Consoles", 5, "space", "tac_consoles",
        {"Ship Tactical Console", "Universal Console"}, ("Tactical", "Consoles")),
    _eq("Hangars", 4, "space", "hangars", {"Hangar Bay"}, ("Hangars",)),
)

# Ground equipment (Kit Modules: 6 usual, geometry allows 7).
GROUND_EQUIPMENT: tuple[SlotGroup, ...] = (
    _eq("Kit Modules", 7, "ground", "kit_modules", {"Kit Module", "Kit Modules"}, ("Kit", "Modules")),
    _eq("Kit", 1, "ground", "kit", {"Kit"}, ("Kit",)),
    _eq("Body Armor", 1, "ground", "armor", {"Body Armor", "Ground Armor"}, ("Body", "Armor")),
    _eq("EV Suit", 1, "ground", "ev_suit", {"EV Suit"}, ("EV", "Suit")),
    _eq("Personal Shield", 1, "ground", "personal_shield", {"Personal Shield"}, ("Personal", "Shield")),
    _eq("Weapons", 2, "ground", "weapons", {"Ground Weapon", "Sniper Rifle"}, ("Weapons",)),
    _eq("Ground Devices", 3, "ground", "ground_devices", {"Ground Device"}, ("Ground", "Devices")),
)

# Trait panels. Which catalogue traits fit each panel is the catalogue's rule (warpd.catalog), as SETS
# decides it: reputation / activereputation by type, everything else personal, boff and doff traits never.
TRAITS: tuple[SlotGroup, ...] = (
    SlotGroup("Personal Space Traits", 11, "trait", "space", "traits"),
    SlotGroup("Starship Traits", 7, "starship_trait", "space", "starship_traits"),
    SlotGroup("Space Reputation", 5, "trait", "space", "rep_traits"),
    SlotGroup("Active Space Rep", 5, "trait", "space", "active_rep_traits"),
    SlotGroup("Personal Ground Traits", 10, "trait", "ground", "traits"),
    SlotGroup("Ground Reputation", 5, "trait", "ground", "rep_traits"),
    SlotGroup("Active Ground Rep", 5, "trait", "ground", "active_rep_traits"),
)

# the same trait panel in the other environment: a screen of one environment shows one set
TRAIT_COUNTERPARTS: dict[str, str] = {
    "Personal Space Traits": "Personal Ground Traits", "Space Reputation": "Ground Reputation",
    "Active Space Rep": "Active Ground Rep"}
TRAIT_COUNTERPARTS.update({v: k for k, v in list(TRAIT_COUNTERPARTS.items())})


def trait_slot_in(slot: str | None, environment: str | None) -> str | None:
    """A trait panel's name in ``environment``: a header read as the other environment's ("Space
    Reputation" on a ground screen) names its counterpart. Other slots, or no environment: unchanged."""
    if environment and slot in TRAIT_COUNTERPARTS and SLOT_GROUPS[slot].environment != environment:
        return TRAIT_COUNTERPARTS[slot]
    return slot

BOFF_PROFESSIONS: tuple[str, ...] = ("Tactical", "Engineering", "Science", "Operations", "Universal")
BOFF_SPECIALIZATIONS: tuple[str, ...] = ("Intelligence", "Command", "Pilot", "Miracle Worker", "Temporal")
BOFF_RANKS: dict[str, int] = {"Ensign": 1, "Lieutenant": 2, "Lieutenant Commander": 3, "Lt. Commander": 3,
                              "Commander": 4}

# Bridge officer seats are named "Boff <Profession>"; abilities per seat = rank count.
BOFFS: tuple[SlotGroup, ...] = tuple(
    SlotGroup(f"Boff {p}", 4, "boff", "space", "boffs") for p in BOFF_PROFESSIONS + BOFF_SPECIALIZATIONS
)

PRIMARY_SPECS: tuple[str, ...] = ("Command", "Intelligence", "Miracle Worker", "Pilot", "Temporal")
SECONDARY_ONLY_SPECS: tuple[str, ...] = ("Constable", "Commando", "Strategist")
SPECIALIZATIONS: tuple[SlotGroup, ...] = (
    SlotGroup("Primary Specialization", 1, "spec", "space", "primary_spec"),
    SlotGroup("Secondary Specialization", 1, "spec", "space", "secondary_spec"),
)

# Text slots. Ship Name is position-only: never cropped, never OCR'd into data, never uploaded.
SHIP_NAME, SHIP_TYPE, SHIP_TIER = "Ship Name", "Ship Type", "Ship Tier"
TEXT_SLOTS: tuple[str, ...] = (SHIP_NAME, SHIP_TYPE, SHIP_TIER)
TEXT_SLOTS_TRAINABLE: frozenset[str] = frozenset({SHIP_TYPE, SHIP_TIER})

ALL_GROUPS: tuple[SlotGroup, ...] = SPACE_EQUIPMENT + GROUND_EQUIPMENT + TRAITS + BOFFS + SPECIALIZATIONS
SLOT_GROUPS: dict[str, SlotGroup] = {g.name: g for g in ALL_GROUPS}

# Name variants seen in real data (predecessor files, OCR, old uploads) -> canonical slot name.
SLOT_ALIASES: dict[str, str] = {
    "shield": "Shields",
    "hangar": "Hangars",
    "engines": "Impulse Engines",
    "impulse": "Impulse Engines",
    "impulse engine": "Impulse Engines",
    "experimental": "Experimental Weapon",
    "experimental weapons": "Experimental Weapon",
    "sec-def": "Secondary Deflector",
    "sec def": "Secondary Deflector",
    "secondary deflectors": "Secondary Deflector",
    "deflectors": "Deflector",
    "device": "Devices",
    "universal console": "Universal Consoles",
    "engineering console": "Engineering Consoles",
    "science console": "Science Consoles",
    "tactical console": "Tactical Consoles",
    "eng consoles": "Engineering Consoles",
    "sci consoles": "Science Consoles",
    "tac consoles": "Tactical Consoles",
    "fore weapon": "Fore Weapons",
    "aft weapon": "Aft Weapons",
    "kit module": "Kit Modules",
    "ground device": "Ground Devices",
    "weapon": "Weapons",
    "ground weapons": "Weapons",
    "body armour": "Body Armor",
    "armor": "Body Armor",
    "ev suit": "EV Suit",
    "shield (personal)": "Personal Shield",
    "space reputation traits": "Space Reputation",
    "active space reputation": "Active Space Rep",
    "ground reputation traits": "Ground Reputation",
    "active ground reputation": "Active Ground Rep",
}


class UnknownSlotError(ValueError):
    """A slot name that is neither canonical nor a known variant (a typo or foreign data)."""


def normalize_slot(name: str) -> str:
    """Map any spelling seen in real data to the canonical slot name; raise on unknown names.

    Data from the network and from older tools is validated through this, so a made-up slot can
    never enter the training set.
    """
    stripped = " ".join(str(name).split())
    if stripped in SLOT_GROUPS or stripped in TEXT_SLOTS:
        return stripped
    lowered = stripped.lower()
    for canonical in (*SLOT_GROUPS, *TEXT_SLOTS):
        if canonical.lower() == lowered:
            return canonical
    if lowered in SLOT_ALIASES:
        return SLOT_ALIASES[lowered]
    raise UnknownSlotError(f"unknown slot name {name!r}")


# Valid ship tiers, as SETS spells them.
TIERS: tuple[str, ...] = ("T1", "T2", "T3", "T4", "T5", "T5-U", "T5-X", "T5-X2", "T6", "T6-X", "T6-X2")


def tiers_for_cargo_tier(tier: int) -> tuple[str, ...]:
    """The tier strings a ship of cargo tier ``tier`` can carry (T5 and T6 ships can be upgraded)."""
    if tier == 5:
        return ("T5", "T5-U", "T5-X", "T5-X2")
    if tier == 6:
        return ("T6", "T6-X", "T6-X2")
    return (f"T{tier}",)


def tier_bonus(tier: str) -> int:
    """Extra universal consoles / devices / starship traits an upgraded tier grants (-X +1, -X2 +2)."""
    if tier.endswith("-X2"):
        return 2
    if tier.endswith("-X"):
        return 1
    return 0
