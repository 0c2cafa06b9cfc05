"""diffnotes.glue: the value the prose's {glue:text} role formats, and its bad input."""

import ast
import subprocess
import sys

import numpy as np
import pytest
import torch

from diffnotes import glue


@pytest.mark.parametrize("value, plain", [
    (torch.tensor(0.25, dtype=torch.float64), 0.25),
    (torch.tensor([3]), 3),
    (np.float32(1.5), 1.5),
    (np.int64(7), 7),
    (2, 2),
    ("EDM", "EDM"),
])
def test_glue_returns_a_plain_python_value(value, plain):
    out = glue("t-key", value)
    assert out == plain and type(out) is type(plain)


def test_the_value_is_what_the_role_formats():
    # myst-nb's {glue:text}`key:.2f` literal-evaluates the text/plain of the glued value
    out = glue("t-float", torch.tensor(0.123456, dtype=torch.float64))
    assert f"{ast.literal_eval(repr(out)):.2f}" == "0.12"


@pytest.mark.parametrize("key", ["", "1abc", "a b", "a:b", None])
def test_bad_key_is_a_value_error(key):
    with pytest.raises(ValueError, match="key"):
        glue(key, 1.0)


@pytest.mark.parametrize("value", [torch.ones(2), [1, 2], None, object()])
def test_bad_value_is_a_value_error(value):
    with pytest.raises(ValueError, match="value"):
        glue("t-key", value)


def test_without_myst_nb_it_prints_the_key_and_value():
    # Colab has no myst-nb: the reader sees the number under the cell that computes it
    code = ("import sys; sys.modules['myst_nb'] = None\n"
            "from diffnotes import glue; glue('ch-x', 0.5)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "ch-x = 0.5"


def test_record_without_myst_nb_is_myst_nbs_own(monkeypatch):
    """DIFFNOTES_GLUE=record (the Colab-like build run, no myst-nb there) writes exactly what
    myst_nb.glue(key, value, display=False) writes, so the build finds the key."""
    import IPython.display
    import myst_nb.ext.glue as myst_glue

    from diffnotes import prose

    seen = []
    capture = lambda *a, **k: seen.append((a, k))  # noqa: E731
    monkeypatch.setattr(myst_glue, "ipy_display", capture)
    monkeypatch.setattr(IPython.display, "display", capture)
    myst_glue.glue("et-x", 0.125, display=False)
    prose._record("et-x", 0.125)
    assert len(seen) == 2 and seen[0] == seen[1]
    (bundle,), kwargs = seen[1]
    assert set(bundle) == {prose.GLUE_PREFIX + "text/plain"}
    assert kwargs["metadata"]["scrapbook"]["name"] == "et-x"
