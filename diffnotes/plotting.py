"""One look for every figure in the book: a style and a few small helpers."""

from __future__ import annotations

import matplotlib as mpl
import matplotlib.pyplot as plt
import numpy as np
import torch

#: Colours used across the book (colour-blind safe, Okabe-Ito).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

_STYLE = {
    "figure.figsize": (6.4, 3.6),
    "figure.dpi": 110,
    "savefig.dpi": 110,
    "figure.constrained_layout.use": True,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 11,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "legend.frameon": False,
    "lines.linewidth": 1.8,
    "axes.prop_cycle": mpl.cycler(color=PALETTE),
}


def use_book_style() -> None:
    """Apply the book's matplotlib style (call once at the top of a chapter)."""
    mpl.rcParams.update(_STYLE)


def _np(x) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        return x.detach().cpu().to(torch.float64).numpy()
    return np.asarray(x, dtype=float)


def error_band(ax, x, mean, stderr, *, label: str | None = None, n_sigma: float = 2.0,
               color=None, **line_kw):
    """Plot ``mean`` against ``x`` with a shaded band of ``± n_sigma`` standard errors."""
    x, m, s = _np(x), _np(mean), _np(stderr)
    (line,) = ax.plot(x, m, label=label, color=color, **line_kw)
    ax.fill_between(x, m - n_sigma * s, m + n_sigma * s, color=line.get_color(), alpha=0.25,
                    linewidth=0)
    return line


def figure(nrows: int = 1, ncols: int = 1, *, width: float = 6.4, height: float | None = None,
           **kw):
    """``plt.subplots`` in the book's style, sized by panel count."""
    use_book_style()
    if height is None:
        height = 3.2 * nrows
    return plt.subplots(nrows, ncols, figsize=(width, height), **kw)
