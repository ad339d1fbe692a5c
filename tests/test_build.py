"""Stage 6: recognition results -> SETS build files that both SETS generations load.

Expectations for real catalogue ships are written out as numbers (from the ship rows), not
recomputed with the code under test.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from warpd.build import (
    SETS_TOP_KEYS,
    MergedBuild,
    MixedShipsError,
    build_file_name,
    build_json,
    builds_from_results,
    empty_ground,
    empty_space,
    group_by_ship,
    merge_results,
    to_sets_build,
    validate_sets_build,
    write_build,
)

AJAX = "Ajax Engineering Pilot Escort"  # T6, experimental 1, fore 5 aft 2, devices 2, tac 5 eng 4 sci 2
AELAHL = "Aelahl Light Warbird Battlecruiser"  # T6, no experimental, fore 4 aft 4, devices 4, eng 5 sci 2 tac 3
BEAM = "Advanced Disruptor Beam Array"  # Ship Weapon: fits fore and aft
TORPEDO = "Adaptive Transphasic Torpedo"
MINE = "Advanced Fleet Chroniton Mine Launcher"  # Ship Aft Weapon
EXPERIMENTAL = "Agonized Subatomic Disintegrator"
DEFLECTOR = "Adapted K.H.G. Graviton Deflector Array"
WARP_CORE = "Advanced Fleet Hyper-Charged Warp Core"
SINGULARITY_CORE = "Advanced Fleet Hyper-Charged Singularity Core"
UNI_CONSOLE = "Console - Universal - Ablative Generator"
TAC_CONSOLE = "Console - Advanced Tactical - Vulnerability Exploiter"
ENG_CONSOLE = "Console - Advanced Engineering - Isomagnetic Plasma Distribution Manifold"
DEVICE = "Advanced Battery - Energy Amplifier"


def slot(name, index, item=None, *, state=None, confidence=0.9, decision="auto", **extra):
    entry = {"slot": name, "index": index, "bbox": [0, 0, 47, 56], "state": state or ("item" if item else "empty"),
             "item": item, "confidence": confidence, "decision": decision, "source": "test",
             "candidates": [[item, confidence]] if item else []}
    entry.update(extra)
    return entry


def result(slots, *, ship=None, tier=None, screen="SPACE_EQ", file="shot.png", error=None, ship_conf=0.95):
    ship_block = {"type": ship, "tier": tier, "confidence": ship_conf, "name_bbox": [10, 10, 200, 20]} if ship else None
    return {"file": file, "screen_type": screen, "screen_confidence": 0.97, "ship": ship_block, "slots": slots,
            "error": error}


def build_for(catalog, results, **kw):
    return to_sets_build(merge_results(results, catalog), catalog, **kw)


def roundtrip(build):
    return json.loads(build_json(build))


def codes(build):
    return [note.code for note in build.report]


# ----------------------------------------------------------------------------- shape
def _assert_lengths(build):
    for segment, template in (("space", empty_space()), ("ground", empty_ground())):
        for key, default in template.items():
            if isinstance(default, list):
                assert len(build[segment][key]) == len(default), f"{segment}.{key}"
    assert [len(seat) for seat in build["space"]["boffs"]] == [4] * 6
    assert [len(seat) for seat in build["ground"]["boffs"]] == [4] * 4


def test_empty_build_lengths_match_the_spec():
    space, ground = empty_space(), empty_ground()
    expected = {"fore_weapons": 5, "aft_weapons": 5, "experimental": 1, "devices": 6, "hangars": 2, "deflector": 1,
                "engines": 1, "core": 1, "shield": 1, "sec_def": 1, "uni_consoles": 3, "eng_consoles": 5,
                "sci_consoles": 5, "tac_consoles": 5, "traits": 12, "starship_traits": 7, "rep_traits": 5,
                "active_rep_traits": 5, "boffs": 6, "boff_specs": 6, "doffs_spec": 6, "doffs_variant": 6}
    assert {k: len(space[k]) for k in expected} == expected
    assert {k: len(ground[k]) for k in ("kit_modules", "ground_devices", "weapons", "traits", "boffs")} == \
        {"kit_modules": 6, "ground_devices": 5, "weapons": 2, "traits": 12, "boffs": 4}


def test_t6_ship_with_experimental_slot_none_vs_empty(catalog):
    build = build_for(catalog, [result([], ship=AJAX, tier="T6")])
    space = build["space"]
    _assert_lengths(build)
    assert space["ship"] == AJAX and space["tier"] == "T6"
    assert space["fore_weapons"] == [""] * 5
    assert space["aft_weapons"] == ["", "", None, None, None]
    assert space["experimental"] == [""]
    assert space["devices"] == ["", "", None, None, None, None]
    assert space["uni_consoles"] == [None, None, None]
    assert space["tac_consoles"] == [""] * 5
    assert space["eng_consoles"] == ["", "", "", "", None]
    assert space["sci_consoles"] == ["", "", None, None, None]
    assert space["sec_def"] == [None] and space["hangars"] == [None, None]
    assert space["deflector"] == space["engines"] == space["core"] == space["shield"] == [""]
    assert space["starship_traits"] == [""] * 5 + [None, None]
    assert space["traits"] == [""] * 9 + [None, None, ""]
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_t6_ship_without_experimental_slot(catalog):
    space = build_for(catalog, [result([], ship=AELAHL, tier="T6")])["space"]
    assert space["experimental"] == [None]
    assert space["fore_weapons"] == ["", "", "", "", None]
    assert space["aft_weapons"] == ["", "", "", "", None]
    assert space["devices"] == ["", "", "", "", None, None]
    assert space["eng_consoles"] == [""] * 5
    assert space["tac_consoles"] == ["", "", "", None, None]


@pytest.mark.parametrize("tier,devices,uni,starship", [("T6", 2, 0, 5), ("T6-X", 3, 1, 6), ("T6-X2", 4, 2, 7)])
def test_upgraded_tiers_add_devices_uni_consoles_and_starship_traits(catalog, tier, devices, uni, starship):
    space = build_for(catalog, [result([], ship=AJAX, tier=tier)])["space"]
    assert space["tier"] == tier
    assert space["devices"].count("") == devices and len(space["devices"]) == 6
    assert space["uni_consoles"].count("") == uni and len(space["uni_consoles"]) == 3
    assert space["starship_traits"].count("") == starship and len(space["starship_traits"]) == 7


def test_ship_is_written_by_its_sets_page(catalog):
    build = build_for(catalog, [result([], ship="Heavy Escort", tier="T3")])
    assert build["space"]["ship"] == "Akira Heavy Escort"
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_missing_tier_is_inferred_from_slots_seen(catalog):
    build = build_for(catalog, [result([slot("Devices", 3, DEVICE)], ship=AJAX, tier=None)])
    assert build["space"]["tier"] == "T6-X2"
    assert build["space"]["devices"][3]["item"] == DEVICE
    assert "tier_inferred" in codes(build)


def test_invalid_tier_for_ship_is_replaced(catalog):
    build = build_for(catalog, [result([], ship=AJAX, tier="T5-U")])
    assert build["space"]["tier"] == "T6"
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_unknown_ship_falls_back_to_template(catalog):
    build = build_for(catalog, [result([slot("Fore Weapons", 4, BEAM)], ship="Imaginary Cruiser", tier="T6")])
    assert build["space"]["ship"] == "" and build["space"]["tier"] == ""
    assert build["space"]["fore_weapons"][4]["item"] == BEAM
    assert "unknown_ship" in codes(build)
    assert validate_sets_build(roundtrip(build), catalog) == []


# ----------------------------------------------------------------------------- merging
def test_highest_confidence_wins_across_three_screenshots(catalog):
    shots = [
        result([slot("Fore Weapons", 0, BEAM, confidence=0.55)], ship=AJAX, tier="T6", file="a.png"),
        result([slot("Fore Weapons", 0, TORPEDO, confidence=0.91)], ship=AJAX, tier="T6", file="b.png"),
        result([slot("Fore Weapons", 0, BEAM, confidence=0.70, decision="ask")], ship=AJAX, tier="T6", file="c.png"),
    ]
    merged = merge_results(shots, catalog)
    assert merged.files == ["a.png", "b.png", "c.png"]
    assert build_for(catalog, shots)["space"]["fore_weapons"][0]["item"] == TORPEDO
    assert build_for(catalog, shots[::-1])["space"]["fore_weapons"][0]["item"] == TORPEDO


def test_rejects_and_errors_never_enter(catalog):
    shots = [
        result([slot("Fore Weapons", 0, BEAM, confidence=0.6)], ship=AJAX, tier="T6"),
        result([slot("Fore Weapons", 0, TORPEDO, confidence=0.99, decision="reject")], ship=AJAX, tier="T6"),
        result([slot("Fore Weapons", 0, DEVICE, confidence=1.0)], ship=AJAX, tier="T6", error="decode failed"),
    ]
    build = build_for(catalog, shots)
    assert build["space"]["fore_weapons"][0]["item"] == BEAM
    assert "screenshot_error" in codes(build)


def test_confident_empty_reading_beats_weak_item(catalog):
    shots = [result([slot("Fore Weapons", 1, BEAM, confidence=0.5)], ship=AJAX, tier="T6"),
             result([slot("Fore Weapons", 1, None, confidence=0.95)], ship=AJAX, tier="T6")]
    assert build_for(catalog, shots)["space"]["fore_weapons"][1] == ""


def test_different_ships_are_not_merged():
    shots = [result([], ship=AJAX, tier="T6"), result([], ship=AELAHL, tier="T6")]
    with pytest.raises(MixedShipsError):
        merge_results(shots)
    groups = group_by_ship(shots + [result([], screen="TRAITS")])
    assert set(groups) == {(AJAX, "T6"), (AELAHL, "T6"), (None, None)}


def test_group_by_ship_attaches_shipless_and_untiered_screens():
    shots = [result([], ship=AJAX, tier="T6-X2", file="eq.png"), result([], ship=AJAX, file="eq2.png"),
             result([], screen="TRAITS", file="traits.png"), result([], screen="BOFFS", file="boffs.png")]
    groups = group_by_ship(shots)
    assert list(groups) == [(AJAX, "T6-X2")]
    assert [r["file"] for r in groups[(AJAX, "T6-X2")]] == ["eq.png", "eq2.png", "traits.png", "boffs.png"]
    assert set(group_by_ship(shots, attach_shipless=False)) == {(AJAX, "T6-X2"), (None, None)}


def test_builds_from_results_one_per_ship(catalog):
    shots = [result([slot("Fore Weapons", 0, BEAM)], ship=AJAX, tier="T6"),
             result([slot("Fore Weapons", 0, TORPEDO)], ship=AELAHL, tier="T6")]
    builds = builds_from_results(shots, catalog)
    assert builds[(AJAX, "T6")]["space"]["fore_weapons"][0]["item"] == BEAM
    assert builds[(AELAHL, "T6")]["space"]["fore_weapons"][0]["item"] == TORPEDO


# ----------------------------------------------------------------------------- categories
def test_wrong_category_and_unknown_items_are_dropped_and_reported(catalog):
    shots = [result([slot("Fore Weapons", 0, DEFLECTOR), slot("Deflector", 0, "Made-up Deflector of Doom"),
                     slot("Aft Weapons", 0, MINE), slot("Fore Weapons", 1, MINE)], ship=AJAX, tier="T6")]
    build = build_for(catalog, shots)
    space = build["space"]
    assert space["fore_weapons"][0] == "" and space["deflector"] == [""] and space["fore_weapons"][1] == ""
    assert space["aft_weapons"][0]["item"] == MINE
    notes = {(n.code, n.item) for n in build.report}
    assert ("wrong_category", DEFLECTOR) in notes
    assert ("unknown_item", "Made-up Deflector of Doom") in notes
    assert ("wrong_category", MINE) in notes
    text = build_json(build)
    assert DEFLECTOR not in text and "Made-up" not in text
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_experimental_weapon_in_fore_slot_is_not_written(catalog):
    """warpd.slots lets Fore Weapons hold Experimental Weapons; SETS's fore_weapons category does not."""
    assert catalog.slot_accepts("Fore Weapons", EXPERIMENTAL)
    build = build_for(catalog, [result([slot("Fore Weapons", 0, EXPERIMENTAL),
                                        slot("Experimental Weapon", 0, EXPERIMENTAL)], ship=AJAX, tier="T6")])
    assert build["space"]["fore_weapons"][0] == ""
    assert build["space"]["experimental"][0]["item"] == EXPERIMENTAL
    assert "wrong_category" in codes(build)


def test_sets_category_membership_rules(catalog):
    shots = [result([slot("Fore Weapons", 0, BEAM), slot("Aft Weapons", 0, BEAM),
                     slot("Tactical Consoles", 0, UNI_CONSOLE), slot("Engineering Consoles", 0, UNI_CONSOLE),
                     slot("Science Consoles", 0, UNI_CONSOLE), slot("Universal Consoles", 0, TAC_CONSOLE),
                     slot("Universal Consoles", 1, ENG_CONSOLE), slot("Tactical Consoles", 1, ENG_CONSOLE),
                     slot("Warp Core", 0, SINGULARITY_CORE)], ship=AJAX, tier="T6-X2")]
    build = build_for(catalog, shots)
    space = build["space"]
    assert space["fore_weapons"][0]["item"] == space["aft_weapons"][0]["item"] == BEAM
    assert space["tac_consoles"][0]["item"] == space["eng_consoles"][0]["item"] == UNI_CONSOLE
    assert space["sci_consoles"][0]["item"] == UNI_CONSOLE
    assert space["uni_consoles"][0]["item"] == TAC_CONSOLE and space["uni_consoles"][1]["item"] == ENG_CONSOLE
    assert space["tac_consoles"][1] == ""  # an engineering console never sits in a tactical slot
    assert space["core"][0]["item"] == SINGULARITY_CORE
    assert [n.item for n in build.report if n.code == "wrong_category"] == [ENG_CONSOLE]
    assert validate_sets_build(roundtrip(build), catalog) == []
    warp = build_for(catalog, [result([slot("Warp Core", 0, WARP_CORE)], ship=AJAX, tier="T6")])
    assert warp["space"]["core"][0]["item"] == WARP_CORE


def test_items_beyond_the_ships_slots_are_reported(catalog):
    build = build_for(catalog, [result([slot("Aft Weapons", 3, BEAM), slot("Starship Traits", 6, "1.21 Terrawatts"),
                                        slot("Hangars", 3, "Hangar - 32c. Federation Shuttlecraft")],
                                       ship=AJAX, tier="T6")])
    assert build["space"]["aft_weapons"][3] is None and build["space"]["starship_traits"][6] is None
    assert codes(build).count("beyond_ship") == 2 and "no_slot" in codes(build)


def test_equipment_record_schema_and_rarity(catalog):
    build = build_for(catalog, [result([slot("Fore Weapons", 0, BEAM), slot("Deflector", 0, DEFLECTOR,
                                                                             rarity="Epic")],
                                       ship=AJAX, tier="T6")], rarity_default="Rare")
    record = build["space"]["fore_weapons"][0]
    assert set(record) == {"item", "rarity", "mark", "modifiers"}
    assert record["rarity"] == (catalog.item_rarity(BEAM) or "Rare")
    assert record["mark"] == "" and record["modifiers"] == [""] * 5
    assert build["space"]["deflector"][0]["rarity"] == "Epic"
    with pytest.raises(ValueError):
        build_for(catalog, [], rarity_default="Very rare")


def test_uncatalogued_rarity_uses_the_default(catalog):
    no_rarity = "Engineering Kit Module - Quick Fix"
    assert catalog.item_rarity(no_rarity) is None
    build = build_for(catalog, [result([slot("Kit Modules", 2, no_rarity)], screen="GROUND_EQ")],
                      rarity_default="Ultra Rare")
    assert build["ground"]["kit_modules"][2]["rarity"] == "Ultra Rare"


# ----------------------------------------------------------------------------- traits
def test_traits_are_item_records_in_their_panels(catalog):
    personal, starship = "A Good Day to Die", "1.21 Terrawatts"
    rep, active = "Active Hull Hardening", "Anti-Time Entanglement Singularity"
    ground_trait, ground_rep = "Absolute Candor", "Active Armor Hardening"
    shots = [result([slot("Personal Space Traits", 0, personal), slot("Starship Traits", 4, starship),
                     slot("Space Reputation", 2, rep), slot("Active Space Rep", 0, active),
                     slot("Space Reputation", 3, personal)], screen="TRAITS"),
             result([slot("Personal Ground Traits", 1, ground_trait), slot("Ground Reputation", 0, ground_rep)],
                    screen="TRAITS")]
    build = build_for(catalog, shots)
    space, ground = build["space"], build["ground"]
    assert space["traits"][0] == {"item": personal} and space["starship_traits"][4] == {"item": starship}
    assert space["rep_traits"][2] == {"item": rep} and space["active_rep_traits"][0] == {"item": active}
    assert space["rep_traits"][3] == ""  # a personal trait in the reputation panel is dropped
    assert ground["traits"][1] == {"item": ground_trait} and ground["rep_traits"][0] == {"item": ground_rep}
    assert ("wrong_category", personal) in {(n.code, n.item) for n in build.report}
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_elite_and_alien_trait_slots(catalog):
    build = build_for(catalog, [result([slot("Personal Space Traits", 9, "A Good Day to Die"),
                                        slot("Personal Space Traits", 11, "Ablative Shell")], screen="TRAITS")])
    traits = build["space"]["traits"]
    assert traits[9] == {"item": "A Good Day to Die"} and traits[10] is None and traits[11] == ""
    assert "captain_slot" in codes(build) and "no_slot" in codes(build)
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_t6_remake_row_is_chosen_by_tier(catalog):
    t5 = build_for(catalog, [result([], ship="Heavy Strike Wing Escort", tier="T5-U")])["space"]
    t6 = build_for(catalog, [result([], ship="Heavy Strike Wing Escort", tier="T6-X")])["space"]
    assert (t5["ship"], t5["tier"]) == ("Armitage Heavy Strike Wing Escort", "T5-U")
    assert (t6["ship"], t6["tier"]) == ("Alita Heavy Strike Wing Escort", "T6-X")


# ----------------------------------------------------------------------------- boffs
def _abilities(build, segment="space"):
    return [cell for seat in build[segment]["boffs"] for cell in seat if isinstance(cell, dict)]


def test_boff_abilities_carry_ranks_from_the_slot_position(catalog):
    # Ajax seats in SETS order: Cmdr Tac-Pilot, LtCdr Eng, Lt Universal, Lt Tac, Lt Sci-Pilot.
    shots = [result([slot("Boff Tactical", 0, "Tactical Team", seat=0), slot("Boff Tactical", 2, "Tactical Team",
                                                                             seat=3),
                     slot("Boff Tactical", 3, "Attack Pattern Beta", seat=0),
                     slot("Boff Tactical", 1, "Attack Pattern Beta", seat=0)], screen="BOFFS")]
    build = build_for(catalog, [result([], ship=AJAX, tier="T6")] + shots)
    boffs = build["space"]["boffs"]
    assert boffs[0][0] == {"item": "Tactical Team", "rank": "I"}
    assert boffs[0][1] == {"item": "Attack Pattern Beta", "rank": "I"}  # Lieutenant slot: rank I
    assert boffs[0][3] == {"item": "Attack Pattern Beta", "rank": "III"}
    assert all(cell.get("rank") in ("I", "II", "III") for cell in _abilities(build))
    # The second recognised Tactical seat (3 slots seen) lands on a Lieutenant seat: its third ability is reported.
    assert "beyond_ship" in codes(build)
    assert validate_sets_build(roundtrip(build), catalog) == []
    assert validate_sets_build(roundtrip(build), catalog, allow_version=True) == []


def test_ability_too_high_for_its_slot_is_dropped(catalog):
    build = build_for(catalog, [result([slot("Boff Tactical", 0, "Attack Pattern Beta", seat=0)], ship=AJAX,
                                       tier="T6")])
    assert build["space"]["boffs"][0][0] == ""
    assert "no_rank" in codes(build)


def test_boff_seats_are_matched_by_profession_not_position(catalog):
    shots = [result([slot("Boff Engineering", 0, "Emergency Power to Shields", seat=0),
                     slot("Boff Science", 0, "Science Team", seat=1),
                     slot("Boff Tactical", 0, "Tactical Team", seat=2),
                     slot("Boff Tactical", 3, "Attack Pattern Beta", seat=2)], ship=AJAX, tier="T6")]
    build = build_for(catalog, shots)
    boffs, specs = build["space"]["boffs"], build["space"]["boff_specs"]
    assert specs[:5] == [["Tactical", "Pilot"], ["Engineering", ""], ["Tactical", ""], ["Tactical", ""],
                         ["Science", "Pilot"]]
    assert boffs[0][0]["item"] == "Tactical Team" and boffs[0][3]["item"] == "Attack Pattern Beta"
    assert boffs[1][0]["item"] == "Emergency Power to Shields"
    assert boffs[4][0]["item"] == "Science Team"
    assert boffs[1][3] is None and boffs[2][2:] == [None, None] and boffs[5] == [None] * 4
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_universal_seat_takes_the_officers_career(catalog):
    # Ajax's Lieutenant Universal seat; a "Boff Universal" label holding science abilities.
    build = build_for(catalog, [result([slot("Boff Universal", 0, "Science Team", seat=2),
                                        slot("Boff Universal", 1, "Hazard Emitters", seat=2)], ship=AJAX,
                                       tier="T6")])
    assert build["space"]["boff_specs"][2] == ["Science", ""]
    assert build["space"]["boffs"][2][:2] == [{"item": "Science Team", "rank": "I"},
                                              {"item": "Hazard Emitters", "rank": "II"}]
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_wrong_profession_ability_is_dropped(catalog):
    build = build_for(catalog, [result([slot("Boff Tactical", 0, "Science Team", seat=0)], ship=AELAHL,
                                       tier="T6")])
    assert _abilities(build) == []
    assert set(codes(build)) & {"wrong_category", "no_seat"}


def test_ground_boffs(catalog):
    shots = [result([slot("Boff Tactical", 0, "Cease Fire", seat=0), slot("Boff Tactical", 1, "Battle Strategies",
                                                                          seat=0),
                     slot("Boff Engineering", 0, "Chroniton Mine Barrier", seat=1)], screen="GROUND_MIXED")]
    build = build_for(catalog, shots)
    ground = build["ground"]
    assert ground["boffs"][0][:2] == [{"item": "Cease Fire", "rank": "I"}, {"item": "Battle Strategies", "rank": "I"}]
    assert ground["boffs"][1][0] == {"item": "Chroniton Mine Barrier", "rank": "I"}
    assert ground["boff_profs"][:2] == ["Tactical", "Engineering"]
    assert _abilities(build, "space") == []
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_boff_screen_environment_from_abilities(catalog):
    shots = [result([slot("Boff Tactical", 0, "Cease Fire", seat=0)], screen="BOFFS")]
    build = build_for(catalog, shots)
    assert build["ground"]["boffs"][0][0]["item"] == "Cease Fire"


# ----------------------------------------------------------------------------- ship-less screens
def test_shipless_results_make_a_valid_template_build(catalog):
    ground_eq = [slot("Kit Modules", 0, "Assault Kit Module - Corrosive Grenade"),
                 slot("Kit", 0, "Aetherian Universal Kit Frame"), slot("Body Armor", 0, "Adapted M.A.C.O. Armor"),
                 slot("Weapons", 1, '"Avalanche"'), slot("Ground Devices", 0, "Abomidorable Snowman"),
                 slot("EV Suit", 0, "Armored Environmental Suit"),
                 slot("Personal Shield", 0, "Adaptation Personal Shield")]
    shots = [result(ground_eq, screen="GROUND_EQ"),
             result([slot("Personal Space Traits", 0, "A Good Day to Die")], screen="TRAITS"),
             result([slot("Boff Pilot", 0, "Attack Pattern Lambda", seat=0),
                     slot("Boff Tactical", 0, "Tactical Team", seat=1)], screen="BOFFS")]
    build = build_for(catalog, shots)
    space, ground = build["space"], build["ground"]
    assert space["ship"] == "" and space["tier"] == ""
    assert space["fore_weapons"] == [""] * 5 and space["uni_consoles"] == [""] * 3 and space["hangars"] == ["", ""]
    assert space["starship_traits"] == [""] * 7 and space["experimental"] == [""] and space["sec_def"] == [""]
    assert ground["kit_modules"][0]["item"] == "Assault Kit Module - Corrosive Grenade"
    assert ground["weapons"][1]["item"] == '"Avalanche"' and ground["kit"][0]["item"] == "Aetherian Universal Kit Frame"
    assert ground["kit_modules"][5] is None and ground["ground_devices"][4] is None
    pilot_seat = space["boff_specs"].index(["Tactical", "Pilot"])
    assert space["boffs"][pilot_seat][0] == {"item": "Attack Pattern Lambda", "rank": "I"}
    assert {"item": "Tactical Team", "rank": "I"} in _abilities(build)
    _assert_lengths(build)
    assert validate_sets_build(roundtrip(build), catalog) == []


def test_empty_input_is_a_valid_template_build(catalog):
    build = to_sets_build(MergedBuild(), catalog)
    assert validate_sets_build(roundtrip(build), catalog) == []


# ----------------------------------------------------------------------------- keys and versions
def test_old_sets_key_set_rule_and_version(catalog):
    build = build_for(catalog, [result([], ship=AJAX, tier="T6")])
    assert "_version" not in build
    assert set(build) <= set(SETS_TOP_KEYS)
    assert len(set(build) | set(SETS_TOP_KEYS)) == 7  # old SETS's check
    versioned = build_for(catalog, [result([], ship=AJAX, tier="T6")], include_version=True)
    assert versioned["_version"] == 1
    assert validate_sets_build(roundtrip(versioned), catalog, allow_version=True) == []
    assert any("_version" in p for p in validate_sets_build(roundtrip(versioned), catalog))
    odd = dict(roundtrip(build), extra={})
    assert any("old SETS" in p for p in validate_sets_build(odd, catalog))


def test_validator_catches_what_crashes_sets(catalog):
    good = roundtrip(build_for(catalog, [result([slot("Fore Weapons", 0, BEAM),
                                                 slot("Boff Tactical", 0, "Tactical Team", seat=0)],
                                                ship=AJAX, tier="T6")]))
    assert validate_sets_build(good, catalog) == []

    def broken(mutate):
        data = json.loads(json.dumps(good))
        mutate(data)
        return validate_sets_build(data, catalog)

    assert broken(lambda d: d["space"]["fore_weapons"].pop())  # short list: IndexError in SETS
    assert broken(lambda d: d["space"]["traits"].append(""))  # long list
    assert broken(lambda d: d["space"]["fore_weapons"][0].update(rarity="Very rare"))  # AttributeError
    assert broken(lambda d: d["space"]["fore_weapons"][0].update(item=DEFLECTOR))  # second KeyError
    assert broken(lambda d: d["space"]["fore_weapons"][0].update(item="Nothing Like It"))
    assert broken(lambda d: d["space"]["boffs"][0][0].pop("rank"))
    assert broken(lambda d: d["space"]["boffs"].pop())
    assert broken(lambda d: d["space"].update(ship="No Such Ship"))
    assert broken(lambda d: d["space"].update(tier="T5-X"))
    assert broken(lambda d: d["space"]["tac_consoles"].__setitem__(0, {"item": ENG_CONSOLE, "rarity": "Rare",
                                                                       "mark": "", "modifiers": [""] * 5}))
    assert broken(lambda d: d["space"]["fore_weapons"][0].update(modifiers=["", ""]))
    assert broken(lambda d: d["ground"]["kit_modules"].append(""))
    assert validate_sets_build([], catalog)


# ----------------------------------------------------------------------------- writing
def test_write_build_is_sets_json_ascii_and_atomic(catalog, tmp_path):
    trait = "Intelligence Agent Attaché"
    build = build_for(catalog, [result([slot("Personal Space Traits", 0, trait), slot("Fore Weapons", 0, BEAM)],
                                       ship=AJAX, tier="T6")])
    build["space"]["fore_weapons"][0]["mark"] = "∞"
    path = tmp_path / "x.json"
    path.write_text("old content")
    assert write_build(build, path) == path
    raw = path.read_bytes()
    assert raw.isascii()
    assert b"\\u221e" in raw and b"Attach\\u00e9" in raw
    assert raw.decode("ascii") == json.dumps(build)  # exactly what SETS's json.dump writes
    assert b"\n" not in raw
    assert os.listdir(tmp_path) == ["x.json"]  # no temp file left behind
    loaded = json.loads(raw)
    assert loaded["space"]["traits"][0] == {"item": trait}
    assert validate_sets_build(loaded, catalog) == []


def test_write_build_failure_leaves_old_file(catalog, tmp_path, monkeypatch):
    path = tmp_path / "keep.json"
    path.write_text('{"space": {}}')

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        write_build(build_for(catalog, []), path)
    assert path.read_text() == '{"space": {}}'
    assert os.listdir(tmp_path) == ["keep.json"]


@pytest.mark.parametrize("args,expected", [
    (("U.S.S. Example", "Akira Heavy Escort"), "U.S.S. Example (Akira Heavy Escort).json"),
    ((None, None), "(Ship Template).json"),
    (("", ""), "(Ship Template).json"),
    (("Fleet Support Cruiser", "T6-X2"), "Fleet Support Cruiser (T6-X2).json"),
    (('I.K.S. <Bad>: "Name"/\\|?*', "K't'inga"), "I.K.S. _Bad__ _Name______ (K't'inga).json"),
    (("CON", None), "_CON.json"),
    (("Trailing dots...", None), "Trailing dots.json"),
    (("Tab\tand\nnewline", None), "Tab_and_newline.json"),
])
def test_build_file_name(args, expected):
    assert build_file_name(*args) == expected


def test_build_file_name_length_and_png():
    name = build_file_name("Ä" * 300, "Ship", ext=".png")
    assert name.endswith(".png") and len(name.encode("utf-8")) <= 204


def test_written_file_name_is_creatable(catalog, tmp_path):
    path = tmp_path / build_file_name('Weird: "ship" / name?', AJAX)
    write_build(build_for(catalog, []), path)
    assert Path(path).is_file()
