"""Draw the map of the book for the landing page: which chapter's result feeds which.

Writes ``book/figures/chapter_map.svg`` (deterministic: fixed hash salt, no date), and with
``--check`` exits 1 when the committed file differs from what this script draws.
Run ``make figures`` after changing ``CHAPTERS`` or ``EDGES``.
"""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "book" / "figures" / "chapter_map.svg"

# chapter key: (title, key result, (x, y) centre)
CHAPTERS = {
    "1": ("1  Twenty Questions", "one answer removes\nat most one bit", (1.6, 5.0)),
    "2": ("2  Diffusion and the score", "Tweedie: the score is\nthe posterior mean", (6.0, 5.0)),
    "3": ("3  Information transfer", "entropy rate\n= score norm", (1.6, 3.0)),
    "4": ("4  Symmetry breaking", "fixed points branch\nat a critical time", (6.0, 3.0)),
    "5": ("5  Lyapunov spectra", "divergence\n= entropy production", (10.4, 3.0)),
    "7": ("7  Speciation", "variance of the path\npeaks at the decision", (3.8, 1.0)),
    "6": ("6  Fisher geometry", "entropy rate\n= Fisher trace", (8.2, 1.0)),
    "A": ("A  Appendix proofs", "every step checked", (1.6, -1.0)),
    "8": ("8  Entropic time", "equal information\nper sampling step", (8.2, -1.0)),
    "9": ("9  Handwritten digits", "the same windows\non real data", (3.8, -3.0)),
    "10": ("10  Guidance", "a field that decides\nearly, at a cost", (8.2, -3.0)),
}

# (from, to, what is carried, where along the arrow its label sits)
EDGES = [
    ("1", "3", "bits removed\nper answer", 0.5),
    ("2", "3", "score, posterior", 0.5),
    ("2", "4", "denoiser\nfixed points", 0.5),
    ("2", "5", "velocity field", 0.5),
    ("4", "5", "branching", 0.5),
    ("3", "7", "chain rule", 0.4),
    ("4", "7", "critical time", 0.3),
    ("3", "6", "posterior covariance", 0.72),
    ("5", "6", "score Jacobian", 0.5),
    ("7", "A", "effective SNR", 0.5),
    ("7", "8", "entropy rate\nin its windows", 0.5),
    ("7", "9", "speciation time", 0.55),
    ("7", "10", "class entropy", 0.62),
    ("8", "10", "schedules", 0.5),
]

BOX_W, BOX_H = 2.9, 0.95
BEYOND = {"8", "9", "10"}  # the chapters beyond the paper, drawn in another colour


def draw() -> plt.Figure:
    plt.rcParams["svg.hashsalt"] = "diffnotes-chapter-map"
    plt.rcParams["svg.fonttype"] = "path"
    fig, ax = plt.subplots(figsize=(9.6, 7.4))
    ax.set(xlim=(-0.05, 12.05), ylim=(-3.65, 5.6), aspect="equal")
    ax.axis("off")
    for key, (title, result, (x, y)) in CHAPTERS.items():
        face = "#f4f4f4" if key == "A" else "#fbf3e6" if key in BEYOND else "#eef3fb"
        ax.add_patch(FancyBboxPatch((x - BOX_W / 2, y - BOX_H / 2), BOX_W, BOX_H,
                                    boxstyle="round,pad=0.04,rounding_size=0.12",
                                    facecolor=face, edgecolor="#3b6ea8", linewidth=1.2))
        ax.text(x, y + 0.22, title, ha="center", va="center", fontsize=9.5, weight="bold")
        ax.text(x, y - 0.17, result, ha="center", va="center", fontsize=8, color="#333333",
                linespacing=1.1)
    for a, b, what, where in EDGES:
        (xa, ya), (xb, yb) = CHAPTERS[a][2], CHAPTERS[b][2]
        if abs(ya - yb) < 1e-9:       # same row: from side to side
            start = (xa + BOX_W / 2 * (1 if xb > xa else -1), ya)
            end = (xb - BOX_W / 2 * (1 if xb > xa else -1), yb)
        else:                          # a row down: bottom to top, fanned out towards the target
            lean = max(-0.35 * BOX_W, min(0.35 * BOX_W, 0.3 * (xb - xa)))
            start, end = (xa + lean, ya - BOX_H / 2), (xb - lean, yb + BOX_H / 2)
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=11,
                                     color="#555555", linewidth=1.0,
                                     shrinkA=2, shrinkB=2, connectionstyle="arc3,rad=0.0"))
        mx = start[0] + where * (end[0] - start[0])
        my = start[1] + where * (end[1] - start[1])
        ax.text(mx, my, what, ha="center", va="center", fontsize=7, color="#555555",
                linespacing=1.15, bbox={"boxstyle": "round,pad=0.15", "facecolor": "white",
                                       "edgecolor": "none", "alpha": 0.9})
    fig.tight_layout(pad=0.2)
    return fig


def render() -> bytes:
    buf = io.BytesIO()
    fig = draw()
    fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return buf.getvalue()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the file is stale")
    args = parser.parse_args(argv)
    svg = render()
    if args.check:
        if not OUT.exists() or OUT.read_bytes() != svg:
            print(f"{OUT.relative_to(ROOT)} is stale: run `make figures`")
            return 1
        print(f"{OUT.relative_to(ROOT)} is up to date")
        return 0
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_bytes(svg)
    print(f"wrote {OUT.relative_to(ROOT)} ({len(svg) / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
