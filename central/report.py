"""The run report: Markdown plus PNG plots, written to the work folder (and optionally committed).

What a maintainer needs to judge a run at a glance: whether it was promoted and why not, the figures
(val_acc, regression top-1 old/new, ECE, classes, samples, installs), the training curve, where the
model fails (per-class accuracy histogram and the worst classes, the most confused pairs) and whether
its confidences can be trusted (reliability diagram). Plots use matplotlib's Agg backend (no display
on a CI runner); when matplotlib is missing the Markdown is still written, without images.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from central.evaluate import EvalResult, confused_pairs, per_class_accuracy, reliability_bins

REPORT_MD = "report.md"


def _plt() -> Any:
    """matplotlib.pyplot on the Agg backend, or None."""
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - matplotlib is in the [train] extra
        return None
    return plt


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def plot_per_class(result: EvalResult, path: Path) -> bool:
    """Histogram of per-class regression accuracy."""
    plt = _plt()
    if plt is None or not result.n:
        return False
    acc = [c / n for c, n in per_class_accuracy(result).values() if n]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.hist(acc, bins=20, range=(0, 1), color="#3572a5")
    ax.set_xlabel("per-class top-1 accuracy (regression set)")
    ax.set_ylabel("classes")
    ax.set_title(f"{len(acc)} classes, mean {sum(acc) / max(1, len(acc)):.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_reliability(result: EvalResult, path: Path) -> bool:
    """Reliability diagram: accuracy against mean confidence per bin, bar width = count share."""
    plt = _plt()
    if plt is None or not result.n:
        return False
    bins = reliability_bins(result)
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    mids = [(b["lo"] + b["hi"]) / 2 for b in bins if b["n"]]
    accs = [b["accuracy"] for b in bins if b["n"]]
    ax.bar(mids, accs, width=0.09, alpha=0.7, color="#3572a5", label="accuracy")
    ax.plot([b["confidence"] for b in bins if b["n"]], accs, "o-", color="#c0392b", ms=3,
            label="(confidence, accuracy)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("calibrated top-1 confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"ECE {result.ece:.3f} on {result.n} crops")
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def plot_history(history: Sequence[Mapping[str, float]], path: Path) -> bool:
    """Validation accuracy and training loss over the run."""
    plt = _plt()
    if plt is None or not history:
        return False
    fig, ax = plt.subplots(figsize=(6, 3.5))
    steps = [h["step"] for h in history]
    ax.plot(steps, [h["val_acc"] for h in history], "o-", label="val_acc")
    ax.set_xlabel("step")
    ax.set_ylabel("val_acc")
    ax2 = ax.twinx()
    ax2.plot(steps, [h["train_loss"] for h in history], "s--", color="#c0392b", label="train loss")
    ax2.set_ylabel("train loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(_fmt(c).replace("|", "\\|") for c in row) + " |" for row in rows]
    return out


def write_report(folder: Path, *, status: str, reasons: Sequence[str], figures: Mapping[str, Any],
                 new: EvalResult | None, old: EvalResult | None, history: Sequence[Mapping[str, float]] = (),
                 vote: Mapping[str, Any] | None = None, timings: Mapping[str, float] | None = None,
                 worst: int = 15) -> Path:
    """Write ``report.md`` (+ PNGs) into ``folder``; returns the Markdown file."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    lines = [f"# Central training run: {status}", ""]
    if reasons:
        lines += ["## Why it was not promoted", ""] + [f"- {r}" for r in reasons] + [""]
    lines += ["## Figures", ""] + _table(["figure", "value"], sorted(figures.items())) + [""]
    if timings:
        lines += ["## Timings (s)", ""] + _table(["stage", "seconds"], [(k, f"{v:.2f}") for k, v in timings.items()])
        lines.append("")
    if vote:
        lines += ["## Vote", ""] + _table(["what", "count"], sorted(vote.items())) + [""]
    if plot_history(history, folder / "training.png"):
        lines += ["## Training", "", "![training curve](training.png)", ""]
    if new is not None and new.n:
        if old is not None:
            lines += [f"Regression top-1: published {_fmt(old.top1)} -> candidate {_fmt(new.top1)} "
                      f"on {new.n} crops.", ""]
        if plot_per_class(new, folder / "per_class.png"):
            lines += ["## Per-class accuracy", "", "![per-class accuracy](per_class.png)", ""]
        ranked = sorted(per_class_accuracy(new).items(), key=lambda kv: (kv[1][0] / max(1, kv[1][1]), kv[0]))
        lines += [f"### Worst {min(worst, len(ranked))} classes", ""]
        lines += _table(["class", "correct", "total"], [(n, c, t) for n, (c, t) in ranked[:worst]]) + [""]
        pairs = confused_pairs(new, worst)
        if pairs:
            lines += ["## Most confused pairs", ""] + _table(["true", "predicted", "count"], pairs) + [""]
        if plot_reliability(new, folder / "reliability.png"):
            lines += ["## Reliability", "", "![reliability diagram](reliability.png)", ""]
    path = folder / REPORT_MD
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def report_files(folder: Path) -> dict[str, bytes]:
    """The report's files (name -> bytes) for committing under ``reports/<stamp>/``."""
    folder = Path(folder)
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file() and p.suffix in (".md", ".png")}


__all__ = ["REPORT_MD", "plot_history", "plot_per_class", "plot_reliability", "report_files", "write_report"]
