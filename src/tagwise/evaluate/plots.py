"""Plot helpers for the report: a headless pyplot, figures as inline images, the transfer heat map.

Labels and source names are user data: they are drawn as plain text (no mathtext), so a label such
as ``$x$`` renders as written instead of stopping the report.
"""
from __future__ import annotations

import base64
import html
import io

import numpy as np


def pyplot():
    """matplotlib.pyplot on the Agg backend with math-text parsing off."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False
    import matplotlib.pyplot as plt

    return plt


def plain_log_ticks(fig) -> None:
    """Tick labels of every log axis of ``fig`` as plain numbers (1, 10, 100, 1,000).

    matplotlib's default log-axis labels are math text (``$\\mathdefault{10^{2}}$``); with math-text
    parsing off (user labels are plain text) they would be drawn as that raw string."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    plain = FuncFormatter(lambda v, _pos: f"{v:,.0f}" if v >= 1 else f"{v:g}")
    for ax in fig.get_axes():
        for axis, scale in ((ax.xaxis, ax.get_xscale()), (ax.yaxis, ax.get_yscale())):
            if scale in ("log", "symlog"):
                axis.set_major_formatter(plain)
                axis.set_minor_formatter(NullFormatter())


def figure_to_img(fig, alt: str) -> str:
    """A matplotlib figure -> an inline ``<img>`` tag (PNG, base64)."""
    plt = pyplot()
    plain_log_ticks(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def transfer_heatmap_png(result: dict) -> bytes:
    """The transfer matrix as a PNG heat map (matplotlib, Agg backend)."""
    plt = pyplot()
    names = list(result["matrix"])  # trained on (rows)
    columns = list(result.get("columns") or names)  # tested on: test-only sources are columns only
    M = np.array([[np.nan if result["matrix"][a].get(b) is None else result["matrix"][a][b] for b in columns]
                  for a in names], dtype=float)
    fig, ax = plt.subplots(figsize=(1.2 + 0.9 * len(columns), 1.0 + 0.8 * len(names)), dpi=100)
    im = ax.imshow(M, cmap="viridis", vmin=0, vmax=max(1e-6, np.nanmax(M)) if np.isfinite(M).any() else 1)
    ax.set_xticks(range(len(columns)), columns, rotation=40, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set_xlabel("tested on")
    ax.set_ylabel("trained on")
    for i in range(len(names)):
        for j in range(len(columns)):
            ax.text(j, i, "-" if np.isnan(M[i, j]) else f"{M[i, j]:.2f}", ha="center", va="center",
                    color="white" if np.isnan(M[i, j]) or M[i, j] < np.nanmax(M) * 0.6 else "black", fontsize=8)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label=result["metric"])
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
