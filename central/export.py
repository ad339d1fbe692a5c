"""Write a trained icon classifier in the formats clients and the Hub expect, and check the ONNX copy.

Files (names and JSON shapes from ../shared/reference/community-pipeline.md):

* ``icon_classifier.onnx``: what the daemon runs (onnxruntime, no torch). Input ``input`` float32
  ``(batch, 3, 64, 48)`` = ``warpd.preprocess.icon_tensor`` stacked, batch axis dynamic; output
  ``logits`` with the **temperature already divided in** (``softmax(logits)`` is the calibrated
  probability), recorded as ``"onnx_temperature_folded": true`` in the meta;
* ``icon_classifier.pt``: ``torch.save(model.state_dict())`` of the raw model (no temperature), for
  fine-tuning the next version; load it with ``torch.load(..., weights_only=True)``;
* ``label_map.json``: ``{"0": "<item name>", ...}``;
* ``icon_classifier_meta.json``: ``{"n_classes", "input_size": [64, 48], "temperature", "mean", "std",
  ...}``; ``temperature`` applies to the ``.pt`` model's logits.

Every file is written to a temporary name and moved into place (``os.replace``): a reader never sees
half a model, and the ONNX file is only moved once it ran in onnxruntime and matched torch to 1e-4.

``warpd/formats.py`` (label map / model_version helpers) did not exist when this was written, so the
label-map reader/writer here are local; switch to the shared ones once they land.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from central.models import icon_model
from warpd.preprocess import IMAGENET_MEAN, IMAGENET_STD, TENSOR_SIZE

ONNX_OPSET = 18  # onnxruntime >= 1.14 runs it; the legacy exporter supports it
PARITY_TOL = 1e-4  # ONNX vs torch: absolute for logits within +-1, relative beyond (float32 over ~80 layers)
MODEL_FILE = "icon_classifier.pt"
ONNX_FILE = "icon_classifier.onnx"
LABEL_MAP_FILE = "label_map.json"
META_FILE = "icon_classifier_meta.json"


class TemperatureScaled(nn.Module):
    """``model(x) / T``: the calibrated logits, so clients need not know T."""

    def __init__(self, model: nn.Module, temperature: float):
        super().__init__()
        self.model = model
        self.register_buffer("inv_t", torch.tensor(1.0 / float(temperature), dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x) * self.inv_t


# ----------------------------------------------------------------------------- small files
def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, obj: Any) -> None:
    """Atomic, UTF-8, item names unescaped (they are read by people too)."""
    _atomic_write_bytes(Path(path), json.dumps(obj, indent=1, ensure_ascii=False).encode("utf-8"))


def write_label_map(path: Path, names: Sequence[str]) -> None:
    """``{"0": "<item name>", ...}`` in class order."""
    write_json(path, {str(i): n for i, n in enumerate(names)})


def read_label_map(path: Path) -> list[str]:
    """Class names in index order; gaps or non-integer keys are an error (a silent shift would
    relabel every class after it)."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path}: label map must be a JSON object")
    idx = sorted((int(k), str(v)) for k, v in raw.items())
    if [i for i, _ in idx] != list(range(len(idx))):
        raise ValueError(f"{path}: label map keys must be 0..{len(idx) - 1}")
    return [v for _, v in idx]


def meta_dict(n_classes: int, temperature: float, **extra: Any) -> dict[str, Any]:
    """The meta JSON: what a client needs to rebuild the exact input and read the output."""
    return {"n_classes": int(n_classes), "input_size": list(TENSOR_SIZE), "temperature": float(temperature),
            "mean": [float(v) for v in IMAGENET_MEAN], "std": [float(v) for v in IMAGENET_STD],
            "input_layout": "NCHW RGB float32, icon_tensor", "onnx_temperature_folded": True, **extra}


# ----------------------------------------------------------------------------- ONNX
def export_onnx(model: nn.Module, path: str | Path, temperature: float = 1.0, opset: int = ONNX_OPSET) -> Path:
    """Export ``model(x) / temperature`` to ONNX with a dynamic batch axis (model left unchanged)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    was_training = model.training
    net = TemperatureScaled(model, temperature).eval().to(memory_format=torch.contiguous_format)
    dummy = torch.zeros(2, 3, *TENSOR_SIZE)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(net, (dummy,), tmp, input_names=["input"], output_names=["logits"],
                              opset_version=opset, dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                              dynamo=False)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        model.train(was_training)
    return path


def onnx_session(path: str | Path):
    """An onnxruntime CPU session for the exported file."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def parity_error(out: np.ndarray, ref: np.ndarray) -> float:
    """Largest ``|out - ref| / max(1, |ref|)``: absolute for small logits, relative for large ones.

    Why not a plain absolute bound: a cosine head multiplies by its learnt scale (logits of 20-30),
    and float32 sums that onnxruntime and oneDNN order differently then differ by ~1e-3 absolute
    (seen at two threads) while agreeing to ~5e-5 relative, far below anything a decision notices.
    """
    ref64 = np.asarray(ref, np.float64)
    return float((np.abs(np.asarray(out, np.float64) - ref64) / np.maximum(1.0, np.abs(ref64))).max(initial=0.0))


def parity_samples(bank: Any, n: int = 7, seed: int = 0) -> np.ndarray | None:
    """A few synthetic crops of ``bank`` (a central.crops.IconBank): the ONNX check on inputs like the
    daemon's rather than on noise; None for an empty bank (the check then uses random inputs)."""
    from central.crops import AugmentConfig, synth_batch
    from warpd.preprocess import normalise_batch

    if not len(bank):
        return None
    rng = np.random.default_rng(seed)
    return normalise_batch(synth_batch(bank, rng.integers(0, len(bank), n), rng, AugmentConfig()))


def check_onnx(path: str | Path, model: nn.Module, samples: np.ndarray | None = None, temperature: float = 1.0,
               tol: float = PARITY_TOL) -> float:
    """Run the ONNX file in onnxruntime and compare with torch; returns the :func:`parity_error`.

    Compared on the raw logit scale (ONNX output x T against ``model(x)``): the folded division by T
    is exact, and a small fitted T must not turn float rounding of the network into a false alarm.
    Raises when it exceeds ``tol``. Pass real crops as ``samples`` (the trainer does); the default is
    5 random inputs (an odd batch also exercises the dynamic axis).
    """
    import onnx

    onnx.checker.check_model(str(path))
    x = samples if samples is not None else np.random.default_rng(0).standard_normal((5, 3, *TENSOR_SIZE))
    x = np.ascontiguousarray(x, dtype=np.float32)
    was_training = model.training
    model.eval()
    with torch.inference_mode():
        ref = model(torch.from_numpy(x)).numpy()
    model.train(was_training)
    sess = onnx_session(path)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    diff = parity_error(out.astype(np.float64) * float(temperature), ref)
    if not diff <= tol:
        raise ValueError(f"ONNX output differs from torch by {diff:.2e} (> {tol:.0e}, relative beyond |1|)")
    return diff


# ----------------------------------------------------------------------------- all artefacts
def save_artifacts(out_dir: str | Path, model: nn.Module, names: Sequence[str], temperature: float,
                   samples: np.ndarray | None = None, extra_meta: Mapping[str, Any] | None = None,
                   onnx: bool = True) -> dict[str, Path]:
    """Write the model files into ``out_dir`` (each atomically); ONNX is checked before it is placed."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if len(names) != _n_out(model):
        raise ValueError(f"{len(names)} names for a {_n_out(model)}-class model")
    paths: dict[str, Path] = {}
    if onnx:
        staged = export_onnx(model, out / f".staged-{ONNX_FILE}", temperature)
        try:
            diff = check_onnx(staged, model, samples, temperature)
            paths["onnx"] = out / ONNX_FILE
            os.replace(staged, paths["onnx"])
        finally:
            staged.unlink(missing_ok=True)
        extra_meta = {"onnx_parity_max_rel": diff, "onnx_opset": ONNX_OPSET, **(extra_meta or {})}
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    import io

    buf = io.BytesIO()
    torch.save(state, buf)
    paths["pt"] = out / MODEL_FILE
    _atomic_write_bytes(paths["pt"], buf.getvalue())
    paths["label_map"] = out / LABEL_MAP_FILE
    write_label_map(paths["label_map"], names)
    paths["meta"] = out / META_FILE
    write_json(paths["meta"], meta_dict(len(names), temperature, **(extra_meta or {})))
    return paths


def _n_out(model: nn.Module) -> int:
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    return int(last.out_features)


def load_icon_classifier(model_dir: str | Path) -> tuple[nn.Module, list[str], dict[str, Any]]:
    """(model in eval mode, class names, meta) from a folder written by :func:`save_artifacts`;
    weights only: nothing in the files can run code."""
    folder = Path(model_dir)
    names = read_label_map(folder / LABEL_MAP_FILE)
    meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    if int(meta.get("n_classes", len(names))) != len(names):
        raise ValueError(f"{folder}: meta says {meta.get('n_classes')} classes, label map has {len(names)}")
    model = icon_model(len(names))
    state = torch.load(folder / MODEL_FILE, map_location="cpu", weights_only=True)
    model.load_state_dict(state)
    return model.eval(), names, meta
