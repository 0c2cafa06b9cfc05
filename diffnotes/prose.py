r"""Numbers that the prose of a chapter states, inserted from the cell that computes them.

A chapter never types a number that one of its cells computes: the cell calls
:func:`glue` and the text writes ``{glue:text}`key:.2f``` (myst-nb's role), so the sentence and
the computation cannot drift apart. Inside the book's build (myst-nb's kernel) :func:`glue`
registers the value with :func:`myst_nb.glue` without displaying it; anywhere else (Colab,
plain Jupyter, a script) myst-nb is absent and :func:`glue` prints one line ``key = value``, so
the reader of a notebook sees the number the text refers to below the cell that made it (the
exported notebooks write each glued number as its key in code, e.g. ```et-hier-drop90```).
``make test`` executes the pages in a Colab-like venv without myst-nb and builds the site from
those outputs (``tools/execute_book.py``); it sets ``DIFFNOTES_GLUE=record``, and :func:`glue`
then writes myst-nb's own glue record (a display output under the
``application/papermill.record/`` prefix with ``scrapbook`` metadata) instead of printing.
"""

from __future__ import annotations

import numbers
import os
import re

import torch

__all__ = ["glue"]

_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]*$")


def _plain(value):
    """A Python ``int``, ``float``, ``bool`` or ``str`` for ``value`` (a number, 0-d tensor,
    numpy scalar or string): what myst-nb's ``{glue:text}`` can format with a format spec."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"value: expected one number, got a tensor of shape "
                             f"{tuple(value.shape)}")
        value = value.item()
    if isinstance(value, (bool, str)):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if hasattr(value, "item") and callable(value.item):  # numpy scalar or 0-d array
        return _plain(value.item())
    raise ValueError(f"value: expected a number or a string, got {type(value).__name__}")


def glue(key: str, value):
    r"""Register ``value`` under ``key`` for the prose's ``{glue:text}`key:fmt``` role.

    Parameters
    ----------
    key : str
        Letters, digits, ``_``, ``.`` and ``-``, starting with a letter; unique within the page
        (the book prefixes it with the chapter's tag, e.g. ``"et-hier-drop90"``).
    value : number, 0-d tensor, numpy scalar or str
        Stored as a plain Python value, so a format spec (``:.2f``, ``:.0f``, ``:d``) applies.

    Returns
    -------
    The plain value, so ``x = glue("k", expr)`` keeps a name for it.
    """
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(f"key: expected letters, digits, '_', '.', '-' starting with a letter, "
                         f"got {key!r}")
    plain = _plain(value)
    try:
        from myst_nb import glue as _myst_glue
    except ImportError:
        if os.environ.get("DIFFNOTES_GLUE") == "record":
            _record(key, plain)
        else:
            print(f"{key} = {plain}")
    else:
        _myst_glue(key, plain, display=False)
    return plain


GLUE_PREFIX = "application/papermill.record/"   # myst-nb's (and scrapbook's) glue prefix


def _record(key: str, plain) -> None:
    """What ``myst_nb.glue(key, plain, display=False)`` writes, without myst-nb installed."""
    from IPython.core.formatters import format_display_data
    from IPython.display import display

    bundle, metadata = format_display_data(plain)
    metadata["scrapbook"] = {"name": key, "mime_prefix": GLUE_PREFIX}
    display({GLUE_PREFIX + k: v for k, v in bundle.items()}, raw=True, metadata=metadata)
