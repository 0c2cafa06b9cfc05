"""The book's one device rule: CUDA when present, else CPU; float64 for checks."""

from __future__ import annotations

import torch

#: The dtype every exact check uses.
CHECK_DTYPE = torch.float64


def default_device() -> torch.device:
    """CUDA when a GPU is available, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def generator(seed: int, device: torch.device | str | None = None) -> torch.Generator:
    """A ``torch.Generator`` on ``device`` (default: :func:`default_device`) seeded with ``seed``.

    Library code never touches the global seed; every random function takes one of these.
    """
    dev = torch.device(device) if device is not None else default_device()
    g = torch.Generator(device=dev)
    g.manual_seed(int(seed))
    return g
