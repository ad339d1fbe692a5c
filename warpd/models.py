"""The models folder: ONNX classifiers, their label maps, pHash knowledge and the OCR corrections map.

Every file is optional: recognition works with none of them (template matching, layout evidence)
and gets better with each. What is there is validated before it is used, because it came from the
network (the community update) or from a user's folder: ONNX only (never a pickle), label maps
whose size equals the model's output, knowledge and corrections through :mod:`warpd.formats`.
:func:`load_model_set` is also the updater's verification step: a download that does not load
here is never installed.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from warpd import formats
from warpd.icon_index import PhashKnowledge
from warpd.preprocess import TENSOR_SIZE, icon_tensor
from warpd.screen_type import screen_tensor

log = logging.getLogger(__name__)


class ModelError(ValueError):
    """A model file that is present but unusable; the message names the file and the reason."""


@dataclass
class OnnxClassifier:
    """An ONNX image classifier with its class names and softmax temperature.

    ``temperature`` comes from the model's meta file (central fits it on validation data); the
    probabilities the daemon thresholds on are ``softmax(logits / temperature)``.
    """

    session: Any
    labels: list[str]
    temperature: float = 1.0
    input_name: str = ""

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """Raw logits for an ``(N, 3, H, W)`` float32 batch."""
        out = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})[0]
        return np.asarray(out, np.float32).reshape(len(batch), -1)

    def probabilities(self, batch: np.ndarray) -> np.ndarray:
        """Calibrated class probabilities, ``(N, n_classes)``."""
        z = self.logits(batch) / max(self.temperature, 1e-6)
        z -= z.max(axis=1, keepdims=True)
        p = np.exp(z)
        return p / p.sum(axis=1, keepdims=True)

    # onnxruntime's InferenceSession is what screen_type.classify expects for its cross-check
    def run(self, outputs: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        return self.session.run(outputs, feeds)

    def get_inputs(self) -> Any:
        return self.session.get_inputs()


@dataclass
class ModelSet:
    """What a models folder provides; absent parts are None / empty."""

    folder: Path | None = None
    icon: OnnxClassifier | None = None
    screen: OnnxClassifier | None = None
    knowledge: PhashKnowledge | None = None
    corrections: dict[str, str] = field(default_factory=dict)
    version: formats.ModelVersion | None = None
    problems: list[str] = field(default_factory=list)

    def describe(self) -> str:
        """One line for logs and ``warpd doctor``."""
        parts = [f"icon classifier ({len(self.icon.labels)} classes)" if self.icon else "no icon classifier",
                 "screen classifier" if self.screen else "no screen classifier",
                 f"{len(self.knowledge)} pHash entries" if self.knowledge else "no pHash knowledge",
                 f"{len(self.corrections)} ship corrections"]
        when = f", trained {formats.format_utc(self.version.trained_at)}" if self.version else ""
        return ", ".join(parts) + when


def _session(path: Path, threads: int) -> Any:
    """An onnxruntime CPU session; ONNX Runtime parses the protobuf, nothing is executed as code."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ModelError(f"{path.name} is not a loadable ONNX model: {str(exc)[:200]}") from exc


def _classifier(model_path: Path, labels: list[str], temperature: float, sample: np.ndarray,
                threads: int) -> OnnxClassifier:
    """Load and smoke-run a classifier: its output width must equal the label count."""
    session = _session(model_path, threads)
    clf = OnnxClassifier(session, labels, temperature, session.get_inputs()[0].name)
    try:
        out = clf.logits(sample)
    except Exception as exc:
        raise ModelError(f"{model_path.name} does not run on a {sample.shape} input: {str(exc)[:200]}") from exc
    if out.shape[1] != len(labels):
        raise ModelError(f"{model_path.name} has {out.shape[1]} outputs but its label map has {len(labels)} names")
    if not np.all(np.isfinite(out)):
        raise ModelError(f"{model_path.name} produced non-finite outputs")
    return clf


def _temperature(meta_path: Path) -> float:
    if not meta_path.is_file():
        return 1.0
    meta = formats.read_json_object(meta_path.read_bytes(), meta_path.name)
    t = meta.get("temperature", 1.0)
    if not isinstance(t, (int, float)) or not 0.05 <= float(t) <= 20.0:
        raise ModelError(f"{meta_path.name}: temperature {t!r} is not a number in 0.05..20")
    size = meta.get("input_size")
    if size is not None and list(size) != list(TENSOR_SIZE):
        raise ModelError(f"{meta_path.name}: input_size {size} differs from the engine's {list(TENSOR_SIZE)}")
    return float(t)


def load_icon_classifier(folder: Path, threads: int = 1) -> OnnxClassifier | None:
    """icon_classifier.onnx + label_map.json (+ meta), or None when the model is absent."""
    model = folder / formats.ICON_ONNX
    if not model.is_file():
        return None
    labels_path = folder / formats.LABEL_MAP
    if not labels_path.is_file():
        raise ModelError(f"{formats.ICON_ONNX} is there but {formats.LABEL_MAP} is missing")
    labels = formats.parse_label_map(labels_path.read_bytes())
    sample = icon_tensor(np.zeros((64, 49, 3), np.uint8))[None]
    return _classifier(model, labels, _temperature(folder / formats.ICON_META), sample, threads)


def load_screen_classifier(folder: Path, threads: int = 1) -> OnnxClassifier | None:
    """screen_classifier.onnx + screen_classifier_labels.json, or None when absent."""
    model = folder / formats.SCREEN_ONNX
    if not model.is_file():
        return None
    labels_path = folder / formats.SCREEN_LABELS
    if not labels_path.is_file():
        raise ModelError(f"{formats.SCREEN_ONNX} is there but {formats.SCREEN_LABELS} is missing")
    labels = formats.parse_screen_labels(labels_path.read_bytes())
    sample = screen_tensor(np.zeros((90, 160, 3), np.uint8))
    return _classifier(model, labels, 1.0, sample, threads)


def load_model_set(folder: str | Path | None, threads: int = 1, *, strict: bool = False) -> ModelSet:
    """Everything usable in ``folder``.

    With ``strict`` (the updater's verification) any unusable file raises :class:`ModelError`;
    otherwise it is logged, recorded in ``problems`` and left out, so one bad file never stops
    recognition.
    """
    result = ModelSet(Path(folder) if folder else None)
    if result.folder is None or not result.folder.is_dir():
        return result
    base = result.folder
    loaders: Sequence[tuple[str, Any]] = (
        ("icon", lambda: load_icon_classifier(base, threads)),
        ("screen", lambda: load_screen_classifier(base, threads)),
        ("knowledge", lambda: _knowledge(base)),
        ("corrections", lambda: _corrections(base)),
        ("version", lambda: _version(base)),
    )
    for attr, load in loaders:
        try:
            value = load()
        except (ModelError, formats.FormatError, OSError, json.JSONDecodeError) as exc:
            if strict:
                raise ModelError(str(exc)) from exc
            log.warning("Model file left out of %s: %s. Recognition goes on without it; a community update "
                        "or deleting the file fixes this.", base, exc)
            result.problems.append(str(exc))
            continue
        if value is not None:
            setattr(result, attr, value)
    return result


def _knowledge(folder: Path) -> PhashKnowledge | None:
    for path in (folder / formats.KNOWLEDGE_FILE, folder.parent / formats.KNOWLEDGE_FILE):
        if path.is_file():
            return PhashKnowledge.from_mapping(formats.parse_knowledge(path.read_bytes()))
    return None


def _corrections(folder: Path) -> dict[str, str]:
    path = folder / formats.CORRECTIONS
    return formats.parse_corrections(path.read_bytes()) if path.is_file() else {}


def _version(folder: Path) -> formats.ModelVersion | None:
    path = folder / formats.MODEL_VERSION
    return formats.parse_model_version(path.read_bytes()) if path.is_file() else None
