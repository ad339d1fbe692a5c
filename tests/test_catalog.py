"""The catalogue: slot rules, ship slot counts (SETS's rules), and reading a SETS cargo folder."""

from __future__ import annotations

import json

import pytest

from warpd.catalog import Catalog, CatalogError, parse_boff_seat, sanitize_equipment_name
from warpd.slots import SLOT_GROUPS, SPACE_EQUIPMENT, UnknownSlotError, normalize_slot


def test_bundled_catalogue_sizes(catalog):
    assert len(catalog.ships) == 789
    assert len(catalog.items) > 3000
    assert "Phaser Beam Array" in catalog.items


@pytest.mark.parametrize("slot,must,must_not", [
    ("Fore Weapons", ["Phaser Beam Array", "Phaser Dual Heavy Cannons"], ["Phaser Turret Mine Launcher"]),
    ("Aft Weapons", ["Phaser Beam Array", "Phaser Turret"], ["Phaser Dual Heavy Cannons"]),
    ("Warp Core", ["Elite Fleet Plasma-Integrated Warp Core", "Elite Fleet Plasma-Integrated Singularity Core"], []),
    ("Deflector", ["Elite Fleet Intervention Protomatter Deflector Array"], ["Phaser Beam Array"]),
])
def test_items_for_slot_examples(catalog, slot, must, must_not):
    items = set(catalog.items_for_slot(slot))
    for name in must:
        if name in catalog.items:  # the examples are real catalogue names; guard against data refreshes
            assert name in items, name
    for name in must_not:
        assert name not in items, name


def test_slot_item_types_follow_the_rules(catalog):
    for slot in ("Fore Weapons", "Aft Weapons", "Deflector", "Impulse Engines", "Warp Core", "Shields",
                 "Devices", "Hangars", "Experimental Weapon", "Secondary Deflector"):
        allowed = SLOT_GROUPS[slot].item_types
        names = catalog.items_for_slot(slot)
        assert names, slot
        assert {catalog.items[n].type for n in names} <= allowed
    # dual cannons fit only Fore, mines only Aft (their types say so in the catalogue)
    fore, aft = set(catalog.items_for_slot("Fore Weapons")), set(catalog.items_for_slot("Aft Weapons"))
    assert not any("Dual Heavy Cannons" in n for n in aft)
    assert not any(n.endswith("Mine Launcher") for n in fore if catalog.items[n].type == "Ship Aft Weapon")
    # singularity cores count as warp cores; universal consoles fit every console slot
    assert {"Warp Engine", "Singularity Engine"} <= {catalog.items[n].type for n in catalog.items_for_slot("Warp Core")}
    uni = {n for n, i in catalog.items.items() if i.type == "Universal Console"}
    for slot in ("Engineering Consoles", "Science Consoles", "Tactical Consoles", "Universal Consoles"):
        assert uni <= set(catalog.items_for_slot(slot))
    tac = {n for n, i in catalog.items.items() if i.type == "Ship Tactical Console"}
    assert tac <= set(catalog.items_for_slot("Universal Consoles"))
    assert not tac & set(catalog.items_for_slot("Science Consoles"))


def test_trait_panels_and_boff_seats(catalog):
    personal = set(catalog.items_for_slot("Personal Space Traits"))
    rep = set(catalog.items_for_slot("Space Reputation"))
    active = set(catalog.items_for_slot("Active Space Rep"))
    assert personal and rep and active
    assert not personal & rep and not rep & active
    boff_only = ({t["name"] for t in catalog.traits if t["type"] == "boff"}
                 - {t["name"] for t in catalog.traits if t["type"] != "boff"})
    assert boff_only and not boff_only & personal  # SETS never offers boff traits in a captain's panel
    assert catalog.items_for_slot("Starship Traits") == catalog.starship_traits
    tac = set(catalog.items_for_slot("Boff Tactical"))
    assert "Attack Pattern Beta" in tac and "Aceton Beam" not in tac
    assert tac <= set(catalog.items_for_slot("Boff Universal"))
    assert set(catalog.items_for_slot("Boff Tactical", "ground")).isdisjoint(tac)


def test_uniconsole_is_a_name_not_a_count(catalog):
    """The predecessor's pitfall: ``uniconsole`` names the ship's console; it adds no slot."""
    ship = next(s for s in catalog.ships.values()
                if s.uniconsole_name and "Innovation Effects" not in s.abilities and s.tier == 6)
    assert ship.uniconsole_name.startswith("Console - ")
    assert ship.slot_counts("T6")["Universal Consoles"] == 0


def test_tier_modifiers(catalog):
    ship = catalog.ship("Achilles Miracle Worker Heavy Destroyer")  # has Innovation Effects
    base, x, x2 = (ship.slot_counts(t) for t in ("T6", "T6-X", "T6-X2"))
    assert base["Universal Consoles"] == 1 and x["Universal Consoles"] == 2 and x2["Universal Consoles"] == 3
    assert x["Devices"] == base["Devices"] + 1 and x2["Devices"] == base["Devices"] + 2
    assert (base["Starship Traits"], x["Starship Traits"], x2["Starship Traits"]) == (5, 6, 7)
    assert base["Fore Weapons"] == 5 and base["Experimental Weapon"] == 1
    with pytest.raises(ValueError, match="cannot be T5-U"):
        ship.slot_counts("T5-U")


def test_t5u_adds_a_console_of_its_type(catalog):
    ship = next(s for s in catalog.ships.values() if s.tier == 5 and s.t5uconsole == "eng")
    assert ship.slot_counts("T5-U")["Engineering Consoles"] == ship.slot_counts("T5")["Engineering Consoles"] + 1
    assert ship.slot_counts("T5-X")["Engineering Consoles"] == ship.slot_counts("T5")["Engineering Consoles"] + 1
    assert ship.slot_counts("T5-U")["Science Consoles"] == ship.slot_counts("T5")["Science Consoles"]


def test_every_ship_fits_the_game_rows(catalog):
    for ship in catalog.ships.values():
        counts = ship.slot_counts(ship.valid_tiers[-1])
        for group in SPACE_EQUIPMENT:
            assert 0 <= counts[group.name] <= group.max_count + (2 if group.name == "Hangars" else 0), (ship.name, group.name)
        assert ship.page and ship.name


def test_lookup_by_name_and_page(catalog):
    assert catalog.ship("Heavy Escort").page == "Akira Heavy Escort"
    assert catalog.ship("Akira Heavy Escort").name == "Heavy Escort"
    with pytest.raises(KeyError):
        catalog.ship("No Such Ship")


def test_boff_seat_parsing(catalog):
    assert parse_boff_seat("Lieutenant Commander Universal-Temporal Operative") == (3, "Universal", "Temporal")
    assert parse_boff_seat("Lt. Commander Science") == (3, "Science", None)
    assert parse_boff_seat("Ensign Engineering") == (1, "Engineering", None)
    assert parse_boff_seat("") is None
    ship = catalog.ship("Achilles Miracle Worker Heavy Destroyer")
    ranks = [seat[0] for seat in ship.boffs]
    assert ranks == sorted(ranks, reverse=True) and ranks[0] == 4


@pytest.mark.parametrize("raw,key", [
    ("Phaser Beam Array Mk XII", "Phaser Beam Array"),
    ("32nd Century Phaser Rifle ∞ [CritD]x2 [CritH]", "32nd Century Phaser Rifle"),
    ("Console - Tactical - Vulnerability Locator MK XV", "Console - Tactical - Vulnerability Locator"),
    ("Prototype Dranuur Beam Array [Acc]", "Prototype Dranuur Beam Array"),
    ("Shield Array-S", "Shield Array"),
    ("&quot;Avalanche&quot;", '"Avalanche"'),
])
def test_sanitize_equipment_name(raw, key):
    assert sanitize_equipment_name(raw) == key


def test_bundled_keys_match_sanitizer(catalog):
    rows = json.loads((catalog.source / "equipment.json").read_text())
    mismatched = [r for r in rows if r.get("name") and sanitize_equipment_name(r["name"]) != r["key"]]
    assert len(mismatched) <= len(rows) * 0.01, mismatched[:5]


def test_hangar_skip_rule(catalog):
    hangars = catalog.items_for_slot("Hangars")
    assert not any(h.startswith("Hangar - Advanced") for h in hangars)
    assert all(not h.startswith("Hangar - Elite") or h in {
        "Hangar - Elite Federation Mission Scout Ships", "Hangar - Elite Valor Fighters"} for h in hangars)


def test_slot_aliases():
    assert normalize_slot("Shield") == "Shields"
    assert normalize_slot("hangar") == "Hangars"
    assert normalize_slot("Engines") == "Impulse Engines"
    assert normalize_slot("Experimental") == "Experimental Weapon"
    assert normalize_slot("Sec-Def") == "Secondary Deflector"
    assert normalize_slot("  fore   weapons ") == "Fore Weapons"
    assert normalize_slot("Ship Type") == "Ship Type"
    with pytest.raises(UnknownSlotError):
        normalize_slot("CLI Test Slot")


def test_slot_accepts_validates_labels(catalog):
    assert catalog.slot_accepts("Warp Core", "Elite Fleet Plasma-Integrated Warp Core") or \
        "Elite Fleet Plasma-Integrated Warp Core" not in catalog.items
    core = catalog.items_for_slot("Warp Core")[0]
    assert catalog.slot_accepts("Warp Core", core)
    assert not catalog.slot_accepts("Impulse Engines", core)  # a warp core confirmed under Engines
    assert not catalog.slot_accepts("Deflector", "CLI Test Item")


def _write_sets_cargo(folder, catalog_dir):
    """Rewrite the bundled catalogue in SETS's raw CargoExport field names (its cargo/ folder)."""
    folder.mkdir()
    ships = json.loads((catalog_dir / "ships.json").read_text())
    (folder / "ship_list.json").write_text(json.dumps([{
        "Page": s["page"], "name": s["name"], "tier": s["tier"], "type": s["type"], "fore": s["fore"],
        "aft": s["aft"], "devices": s["devices"], "consolestac": s["consoles"]["tac"],
        "consoleseng": s["consoles"]["eng"], "consolessci": s["consoles"]["sci"], "uniconsole": s["uniconsole"],
        "t5uconsole": s["t5uconsole"], "experimental": s["experimental"], "secdeflector": s["secdeflector"],
        "hangars": s["hangars"], "boffs": s["boffs"], "abilities": s["abilities"]} for s in ships]))
    eq = json.loads((catalog_dir / "equipment.json").read_text())
    (folder / "equipment.json").write_text(json.dumps(
        [{"Page": e["name"], "name": (e["name"] or "").replace('"', "&quot;"), "type": e["type"],
          "rarity": e["rarity"]} for e in eq]))
    for name in ("traits.json", "starship_traits.json"):
        (folder / name).write_text((catalog_dir / name).read_text())
    boffs = json.loads((catalog_dir / "boff_abilities.json").read_text())
    (folder / "boff_abilities.json").write_text(json.dumps([
        {"_pageName": b["name"], "name": b["name"], "type": b["type"], "region": b["region"],
         **{f"rank{i + 1}rank": r for i, r in enumerate(b["ranks"])}} for b in boffs]))


def test_reads_a_sets_cargo_folder(tmp_path, catalog):
    cargo = tmp_path / "cargo"
    _write_sets_cargo(cargo, catalog.source)
    sets = Catalog.load(cargo)
    assert sets.ships.keys() == catalog.ships.keys()
    ship = sets.ship("Achilles Miracle Worker Heavy Destroyer")
    assert ship.slot_counts("T6-X2") == catalog.ship("Achilles Miracle Worker Heavy Destroyer").slot_counts("T6-X2")
    assert set(sets.items_for_slot("Warp Core")) == set(catalog.items_for_slot("Warp Core"))
    assert '"Avalanche"' in sets.items  # HTML entities unescaped, key sanitised on load
    assert sets.items_for_slot("Boff Tactical") == catalog.items_for_slot("Boff Tactical")


def test_missing_or_broken_folder(tmp_path):
    with pytest.raises(CatalogError, match="does not exist"):
        Catalog.load(tmp_path / "nope")
    (tmp_path / "ships.json").write_text("{not json")
    with pytest.raises(CatalogError, match="ships.json"):
        Catalog.load(tmp_path)
