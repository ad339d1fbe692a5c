"""The one image preprocessing every recogniser, the daemon's ONNX classifier and central training share.

Why one module: the predecessor lost a quarter of its classifier accuracy because training resized
icons to 128 px while inference used 224 px, and an earlier version skipped the RGB conversion and
normalisation training had used. Everything that turns pixels into model input lives here, so
training and inference import the same functions and a parity test can pin them down.

Conventions (all functions):

* images are ``numpy`` arrays in **RGB** order (never OpenCV's BGR), ``uint8``, shape ``(H, W, 3)``;
  grey ``(H, W)`` and RGBA ``(H, W, 4)`` inputs are accepted and converted (alpha is dropped, as the
  game composites nothing behind an icon);
* a bbox is ``(x, y, w, h)`` in screenshot pixels, top-left origin (the annotation format);
* resizing uses ``INTER_AREA`` when shrinking (it averages, so small targets do not alias) and
  ``INTER_LINEAR`` when enlarging.

Pure numpy/OpenCV: the daemon does not ship torch.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

# ImageNet statistics (RGB, for values in [0, 1]): the CNN backbones are pretrained with these, so the
# classifier is fine-tuned and run with them too.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)
# The classifier's native input, (H, W): the game's icon is 49x64 (W x H), so 64x48 keeps its aspect
# and its resolution; no 224 px upsampling that would only invent pixels.
TENSOR_SIZE: tuple[int, int] = (64, 48)
# The training-data crop stored as crops/<sha256>.png and hashed by the pHash knowledge: 64x64 RGB.
CANONICAL_SIZE = 64


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A ``(H, W, 3)`` uint8 RGB view/copy of a grey, RGB or RGBA array (PIL images are converted)."""
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        if np.issubdtype(arr.dtype, np.floating) and arr.size and float(np.nanmax(arr)) <= 1.0:
            arr = arr * 255.0  # float images in [0, 1]
        arr = np.clip(np.nan_to_num(arr), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    if arr.shape[2] == 1:
        return np.repeat(arr, 3, axis=2)
    return arr[:, :, :3]


def resize(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """Resize to (H, W): area averaging when shrinking, bilinear when enlarging."""
    h, w = int(size_hw[0]), int(size_hw[1])
    if h <= 0 or w <= 0:
        raise ValueError(f"target size must be positive, got {size_hw}")
    ih, iw = image.shape[:2]
    if (ih, iw) == (h, w):
        return image
    interp = cv2.INTER_AREA if h <= ih and w <= iw else cv2.INTER_LINEAR
    return cv2.resize(image, (w, h), interpolation=interp)


def clamp_bbox(bbox: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """``(x, y, w, h)`` rounded to whole pixels and clipped to the image; w or h may become 0."""
    x, y, w, h = (float(v) for v in bbox)
    x0 = int(round(min(max(x, 0.0), width)))
    y0 = int(round(min(max(y, 0.0), height)))
    x1 = int(round(min(max(x + w, 0.0), width)))
    y1 = int(round(min(max(y + h, 0.0), height)))
    return x0, y0, max(x1 - x0, 0), max(y1 - y0, 0)


def crop_to_icon(rgb_image: np.ndarray, bbox: Sequence[float]) -> np.ndarray:
    """Cut a slot's bbox ``(x, y, w, h)`` out of a screenshot, clamped to the image.

    Returns a contiguous RGB copy (so later in-place work never touches the screenshot). A bbox
    that lies wholly outside the image is an error rather than an empty array, because an empty
    crop would only fail later, further from its cause.
    """
    img = as_rgb(rgb_image)
    x, y, w, h = clamp_bbox(bbox, img.shape[1], img.shape[0])
    if w == 0 or h == 0:
        raise ValueError(f"bbox {tuple(bbox)} lies outside the {img.shape[1]}x{img.shape[0]} image")
    return np.ascontiguousarray(img[y:y + h, x:x + w])


def icon_tensor(crop_rgb: np.ndarray, size: tuple[int, int] = TENSOR_SIZE) -> np.ndarray:
    """The classifier's input for one crop: float32 ``(3, H, W)``.

    RGB order, resized to ``size`` (H, W), scaled to [0, 1], then normalised per channel with the
    ImageNet mean and standard deviation: ``(x / 255 - IMAGENET_MEAN) / IMAGENET_STD``. Stack
    several with ``np.stack`` for a batch ``(N, 3, H, W)``.
    """
    img = resize(as_rgb(crop_rgb), size).astype(np.float32) * (1.0 / 255.0)
    img = (img - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(img.transpose(2, 0, 1), dtype=np.float32)


def _normalise_lut() -> np.ndarray:
    """(3, 256) float32: icon_tensor's ``(x * (1/255) - mean) / std`` for every uint8 value, per channel.

    Computed with the same float32 operations as ``icon_tensor``, so a look-up gives bit-identical
    values (and costs one gather instead of three float passes).
    """
    x = np.arange(256, dtype=np.uint8).astype(np.float32) * (1.0 / 255.0)
    return np.ascontiguousarray(((x[:, None] - IMAGENET_MEAN) / IMAGENET_STD).T, dtype=np.float32)


_LUT = _normalise_lut()


def normalise_batch(batch_hwc: np.ndarray) -> np.ndarray:
    """uint8 ``(N, H, W, 3)`` RGB already at the model size -> float32 ``(N, 3, H, W)`` model input."""
    arr = np.asarray(batch_hwc)
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[3] != 3:
        raise ValueError(f"expected uint8 (N, H, W, 3), got {arr.dtype} {arr.shape}")
    out = np.empty((arr.shape[0], 3, arr.shape[1], arr.shape[2]), np.float32)
    for c in range(3):
        out[:, c] = _LUT[c][arr[..., c]]
    return out


def to_model_size(crop_rgb: np.ndarray, size: tuple[int, int] = TENSOR_SIZE) -> np.ndarray:
    """The uint8 resize step of :func:`icon_tensor` (same function, same interpolation rule)."""
    return resize(as_rgb(crop_rgb), size)


def icon_batch(crops: Sequence[np.ndarray] | np.ndarray, size: tuple[int, int] = TENSOR_SIZE) -> np.ndarray:
    """Vectorised :func:`warpd.preprocess.icon_tensor` for many crops: float32 ``(N, 3, H, W)``.

    Crops may have different sizes (each is resized like icon_tensor does); a uint8 array already at
    ``size`` skips the resize. Training (central) and the daemon's ONNX classifier both call this.
    """
    if isinstance(crops, np.ndarray) and crops.ndim == 4 and crops.dtype == np.uint8 \
            and crops.shape[1:3] == tuple(size) and crops.shape[3] == 3:
        return normalise_batch(crops)
    if len(crops) == 0:
        return np.zeros((0, 3, *size), np.float32)
    return normalise_batch(np.stack([to_model_size(c, size) for c in crops]))


def canonical_crop(crop_rgb: np.ndarray) -> np.ndarray:
    """The 64x64 uint8 RGB crop stored as training data and hashed by the pHash knowledge.

    The full bbox is squeezed to a square (aspect not kept) exactly as the predecessor's seed did,
    so its stored crops and knowledge hashes stay comparable.
    """
    return np.ascontiguousarray(resize(as_rgb(crop_rgb), (CANONICAL_SIZE, CANONICAL_SIZE)))


def screen_sample(rgb_image: np.ndarray, blackout: Sequence[Sequence[float] | None] = (),
                  max_side: int = 224) -> np.ndarray:
    """The screen-type training sample: the whole frame shrunk to ``max_side`` with boxes blacked out.

    Privacy first: the ship-name box (and any other box given) is filled black on the full-size
    image *before* shrinking, so not a pixel of it survives; no full screenshot ever leaves the
    machine, only this. The aspect ratio is kept (the classifier letterboxes it).
    """
    img = as_rgb(rgb_image).copy()
    height, width = img.shape[:2]
    for box in blackout:
        if box is None:
            continue
        x, y, w, h = clamp_bbox(box, width, height)
        img[y:y + h, x:x + w] = 0
    scale = min(1.0, max_side / max(height, width))
    return resize(img, (max(1, round(height * scale)), max(1, round(width * scale))))
