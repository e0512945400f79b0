"""Deterministic PNG plots (matplotlib, Agg): fixed size, fonts, and no metadata."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

STYLE = {"font.family": "DejaVu Sans", "font.size": 8, "svg.hashsalt": "geppetto"}


def png(fig) -> bytes:
    """The figure as PNG bytes without a timestamp or software tag; closes the figure."""
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    return out.getvalue()


def item_distributions(keys, options, human, models: dict[str, np.ndarray], limit=8) -> bytes:
    """Human vs model distributions of the first ``limit`` items, one panel per item."""
    keys = keys[:limit]
    cols = min(4, len(keys))
    rows = (len(keys) + cols - 1) // cols
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 1.8 * rows), squeeze=False)
        width = 0.8 / (1 + len(models))
        for n, key in enumerate(keys):
            ax = axes[n // cols][n % cols]
            x = np.arange(len(options[n]))
            ax.bar(x, human[n][: len(x)], width, label="people", color="0.4")
            for m, (label, dist) in enumerate(models.items()):
                ax.bar(x + (m + 1) * width, dist[n][: len(x)], width, label=label)
            ax.set_xticks(x + width * len(models) / 2, options[n])
            ax.set_title(key)
            ax.set_ylim(0, 1)
        for n in range(len(keys), rows * cols):
            axes[n // cols][n % cols].axis("off")
        axes[0][0].legend(fontsize=6)
        fig.subplots_adjust(hspace=0.5, wspace=0.3)  # tight_layout is slow on many panels
        return png(fig)


def reference_band(labels, values, lows, highs, reference, ref_low, ref_high, metric) -> bytes:
    """Each model's bias-corrected distance and interval, over the population reference band."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6, 1.2 + 0.35 * len(labels)))
        y = np.arange(len(labels))
        ax.axvspan(ref_low, ref_high, color="0.85", label="population reference (band)")
        ax.axvline(reference, color="0.5", lw=1)
        ax.errorbar(
            values,
            y,
            xerr=[
                np.maximum(np.subtract(values, lows), 0),
                np.maximum(np.subtract(highs, values), 0),
            ],
            fmt="o",
            color="C0",
            label="bias-corrected distance, calibrated interval",
        )
        ax.set_yticks(y, labels)
        ax.set_xlabel(f"mean {metric} distance to people")
        ax.legend(fontsize=6, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2, frameon=False)
        fig.tight_layout()
        return png(fig)


def heatmap(rows, columns, matrix, title) -> bytes:
    """A model × measure heat map with the values written in the cells."""
    matrix = np.asarray(matrix, dtype=float)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(1.2 + 1.1 * len(columns), 0.6 + 0.35 * len(rows)))
        ax.imshow(np.nan_to_num(matrix), cmap="viridis", aspect="auto", vmin=0, vmax=1)
        ax.set_xticks(range(len(columns)), columns, rotation=30, ha="right")
        ax.set_yticks(range(len(rows)), rows)
        for i in range(matrix.shape[0]):
            for j in range(matrix.shape[1]):
                if matrix[i, j] == matrix[i, j]:
                    ax.text(j, i, f"{matrix[i, j]:.3f}", ha="center", va="center", color="w")
        ax.set_title(title)
        fig.tight_layout()
        return png(fig)


def points(x, y, labels, xlabel, ylabel, xerr=None, yerr=None) -> bytes:
    """A labelled scatter (Π over release date, first- vs third-person accuracy)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.errorbar(x, y, xerr=xerr, yerr=yerr, fmt="o")
        for xi, yi, label in zip(x, y, labels, strict=True):
            ax.annotate(label, (xi, yi), fontsize=6, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.tight_layout()
        return png(fig)
