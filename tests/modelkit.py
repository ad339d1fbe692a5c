"""Real ONNX models for tests, built without torch: a nearest-template linear classifier.

It runs the shared :func:`warpd.preprocess.icon_tensor` input through Flatten → L2-normalise →
MatMul with the normalised templates, so it is a genuine (if crude) classifier that ONNX Runtime
loads and runs exactly as it would a trained network.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
from PIL import Image

from warpd import formats
from warpd.preprocess import TENSOR_SIZE, icon_tensor

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def template_classifier_bytes(icons: list[np.ndarray], scale: float = 20.0) -> bytes:
    """The ONNX model's bytes: one output per icon."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    feats = np.stack([icon_tensor(i).ravel() for i in icons]).astype(np.float32)
    feats /= np.linalg.norm(feats, axis=1, keepdims=True)
    weight = numpy_helper.from_array((feats.T * scale).astype(np.float32), "W")
    h, w = TENSOR_SIZE
    graph = helper.make_graph(
        [helper.make_node("Flatten", ["x"], ["f"], axis=1),
         helper.make_node("LpNormalization", ["f"], ["n"], axis=1, p=2),
         helper.make_node("MatMul", ["n", "W"], ["logits"])],
        "templates", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, h, w])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", len(icons)])], [weight])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    buf = io.BytesIO()
    onnx.save(model, buf)
    return buf.getvalue()


def example_icons(rarity: str = "Very Rare") -> tuple[list[str], list[np.ndarray]]:
    """The examples' icon library, framed as the game shows items."""
    from warpd.synth.icons import apply_rarity, name_from_icon_file

    files = sorted((EXAMPLES / "icons").glob("*.png"))
    names = [name_from_icon_file(f) for f in files]
    icons = [np.asarray(apply_rarity(Image.open(f).convert("RGB"), rarity).convert("RGB")) for f in files]
    return names, icons


def model_files(temperature: float = 1.0) -> dict[str, bytes]:
    """An icon-classifier model set as the knowledge repo publishes it (file name → bytes)."""
    names, icons = example_icons()
    return {
        formats.ICON_ONNX: template_classifier_bytes(icons),
        formats.LABEL_MAP: json.dumps(formats.label_map_json(names)).encode(),
        formats.ICON_META: json.dumps({"n_classes": len(names), "input_size": list(TENSOR_SIZE),
                                       "temperature": temperature}).encode(),
        formats.CORRECTIONS: json.dumps({"F1eet Support Cruiser": "Fleet Support Cruiser"}).encode(),
    }


def write_models(folder: Path, files: dict[str, bytes] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in (files or model_files()).items():
        (folder / name).write_bytes(data)
    return folder
