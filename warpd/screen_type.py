"""Recognition stage 3: what kind of screen a screenshot is.

Works without any model, from what :func:`warpd.layout.find_layout` found (which panel kinds) and
the text it read (labels and headers: the keyword facts of sto-domain.md). An optional ONNX
screen classifier (MobileNetV3-Small, 224 px letterboxed input from :func:`screen_tensor`) is a
cross-check: agreement raises the confidence, disagreement with strong layout evidence keeps the
layout's answer at a lower confidence (the predecessor's model alone sent 96% of real screens to
UNKNOWN). A screen with no slots is UNKNOWN, whatever text it shows.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from warpd.layout import Layout, fold_text, match_label
from warpd.slots import GROUND_EQUIPMENT, SCREEN_TYPES, SPACE_EQUIPMENT, ScreenType

# ---------------------------------------------------------------- tunables
SCREEN_INPUT = 224
# ImageNet normalisation, as torchvision's MobileNetV3 was trained with; central must use the same.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
LETTERBOX_FILL = 0
# Confidence of a layout-only decision, and how agreement / disagreement with the model moves it.
LAYOUT_CONFIDENCE = 0.85
AGREE_BONUS = 0.1
DISAGREE_PENALTY = 0.25
# Label matches (0..1) needed before a keyword counts.
KEYWORD_MIN_SCORE = 0.8
# trait panels named by their own headers that make a screen with a "tree" on it a trait screen
MIN_NAMED_TRAIT_PANELS = 2

TRAIT_WORDS = ("personal space traits", "starship traits", "space reputation", "active space rep",
               "personal ground traits", "ground reputation", "active ground rep")
BOFF_WORDS = ("space stations", "standard away team", "bridge officer")
SPEC_WORDS = ("primary specialization", "secondary specialization")
SPACE_LABELS = {g.name for g in SPACE_EQUIPMENT}
GROUND_LABELS = {g.name for g in GROUND_EQUIPMENT} - {"Weapons"}


def keyword_type(texts: Iterable[str]) -> ScreenType | None:
    """The keyword fallback of sto-domain.md: headers first, then >= 2 equipment labels."""
    space, ground = set(), set()
    kinds = set()
    for text in texts:
        folded = fold_text(text)
        if not folded:
            continue
        name, score = match_label(text)
        if any(w in folded for w in TRAIT_WORDS) or (name and "Trait" in name or name in
                                                      ("Space Reputation", "Active Space Rep", "Ground Reputation",
                                                       "Active Ground Rep")) and score >= KEYWORD_MIN_SCORE:
            kinds.add("traits")
        elif any(w in folded for w in BOFF_WORDS) or (name in ("Space Stations", "Standard Away Team",
                                                               "Bridge Officer") and score >= KEYWORD_MIN_SCORE):
            kinds.add("boffs")
        elif any(w in folded for w in SPEC_WORDS) or (name and "Specialization" in name
                                                      and score >= KEYWORD_MIN_SCORE):
            kinds.add("specs")
        elif name and score >= KEYWORD_MIN_SCORE:
            if name in SPACE_LABELS:
                space.add(name)
            elif name in GROUND_LABELS:
                ground.add(name)
    if len(space) >= 2:
        kinds.add("space_eq")
    elif len(ground) >= 2:
        kinds.add("ground_eq")
    if not kinds:
        return None
    if len(kinds) >= 2:
        return ScreenType.GROUND_MIXED if "ground_eq" in kinds else ScreenType.SPACE_MIXED
    only = kinds.pop()
    return {"traits": ScreenType.TRAITS, "boffs": ScreenType.BOFFS, "specs": ScreenType.SPECIALIZATIONS,
            "space_eq": ScreenType.SPACE_EQ, "ground_eq": ScreenType.GROUND_EQ}[only]


def layout_type(layout: Layout) -> tuple[ScreenType, dict[str, Any]]:
    """The screen type the found panels imply (no slots -> UNKNOWN)."""
    anchored = any(p.kind in ("equipment", "boffs") and p.rows for p in layout.panels)
    # next to an equipment or boff panel, a trait grid with no header read is most likely a piece of
    # it (rows split off where a row was lost, seats whose markers were not seen): only named trait
    # panels make such a screen mixed
    kinds = [p.kind for p in layout.panels if p.rows and not (
        anchored and p.kind == "traits" and not any(r.slot for r in p.rows))]
    envs = [p.environment for p in layout.panels if p.kind == "equipment"]
    n_cells = len(layout.cells)
    evidence = {"panel_kinds": kinds, "equipment_env": envs, "cells": n_cells}
    if n_cells == 0:
        if "specs" in kinds:  # specialisation trees carry no slot cells
            return ScreenType.SPECIALIZATIONS, evidence
        return ScreenType.UNKNOWN, evidence
    distinct = set(kinds)
    if "equipment" in distinct and len(distinct) >= 2:
        return (ScreenType.GROUND_MIXED if "ground" in envs else ScreenType.SPACE_MIXED), evidence
    if distinct == {"equipment"}:
        return (ScreenType.GROUND_EQ if envs and envs[0] == "ground" else ScreenType.SPACE_EQ), evidence
    named_traits = sum(1 for p in layout.panels if p.kind == "traits" and p.rows and p.rows[0].slot)
    if "specs" in distinct and "boffs" not in distinct:
        # a trait screen never shows a specialisation tree, nor a tree screen trait headers: trait
        # panels named by their headers outweigh a 'tree' that was a headerless grid
        if named_traits >= MIN_NAMED_TRAIT_PANELS:
            return ScreenType.TRAITS, evidence
        return ScreenType.SPECIALIZATIONS, evidence
    if len(distinct) >= 2:
        ground = any(p.environment == "ground" for p in layout.panels)
        return (ScreenType.GROUND_MIXED if ground else ScreenType.SPACE_MIXED), evidence
    only = distinct.pop()
    return {"traits": ScreenType.TRAITS, "boffs": ScreenType.BOFFS,
            "specs": ScreenType.SPECIALIZATIONS}.get(only, ScreenType.UNKNOWN), evidence


def screen_tensor(rgb: np.ndarray) -> np.ndarray:
    """The screen classifier's input: RGB letterboxed to 224x224, ImageNet-normalised, NCHW float32.

    One function for training (central) and inference, so the two can never drift apart.
    """
    arr = np.asarray(rgb)[:, :, :3]
    h, w = arr.shape[:2]
    s = SCREEN_INPUT / max(h, w)
    nh, nw = max(1, round(h * s)), max(1, round(w * s))
    small = cv2.resize(np.ascontiguousarray(arr), (nw, nh), interpolation=cv2.INTER_AREA)
    canvas = np.full((SCREEN_INPUT, SCREEN_INPUT, 3), LETTERBOX_FILL, np.uint8)
    y0, x0 = (SCREEN_INPUT - nh) // 2, (SCREEN_INPUT - nw) // 2
    canvas[y0:y0 + nh, x0:x0 + nw] = small
    x = (canvas.astype(np.float32) / 255.0 - IMAGENET_MEAN) / IMAGENET_STD
    return x.transpose(2, 0, 1)[None].astype(np.float32)


def _model_vote(rgb: np.ndarray, session: Any, labels: Sequence[str] = SCREEN_TYPES) -> tuple[str, float]:
    inp = session.get_inputs()[0].name
    logits = np.asarray(session.run(None, {inp: screen_tensor(rgb)})[0]).reshape(-1)
    p = np.exp(logits - logits.max())
    p /= p.sum()
    k = int(np.argmax(p))
    return labels[k], float(p[k])


def classify(rgb: np.ndarray, layout: Layout, ocr_words: Iterable[str] | None = None,
             onnx_session: Any = None) -> tuple[ScreenType, float, dict[str, Any]]:
    """Screen type, confidence 0..1 and the evidence behind it."""
    texts = list(layout.texts) + [getattr(w, "text", w) for w in (ocr_words or [])]
    by_layout, evidence = layout_type(layout)
    by_words = keyword_type(texts)
    evidence["keywords"] = by_words.value if by_words else None
    if by_layout == ScreenType.UNKNOWN:
        result, conf = ScreenType.UNKNOWN, 0.8 if not texts else 0.7
    elif by_words is None or by_words == by_layout:
        result, conf = by_layout, LAYOUT_CONFIDENCE + (0.1 if by_words else 0.0)
    else:
        # words name panels the layout did not see (or vice versa): the union decides
        result, conf = by_layout, 0.6
        if by_layout in (ScreenType.SPACE_EQ, ScreenType.GROUND_EQ) and by_words not in (
                ScreenType.SPACE_EQ, ScreenType.GROUND_EQ):
            result = ScreenType.GROUND_MIXED if by_layout == ScreenType.GROUND_EQ else ScreenType.SPACE_MIXED
    if onnx_session is not None:
        label, p = _model_vote(rgb, onnx_session)
        evidence["model"] = {"label": label, "p": p}
        if label == result.value:
            conf = min(0.99, conf + AGREE_BONUS * p)
        else:
            conf = max(0.05, conf - DISAGREE_PENALTY * p)
    evidence["layout"] = by_layout.value
    return result, round(float(conf), 3), evidence
