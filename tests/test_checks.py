"""The check helpers: they pass on truth, fail on falsehood, and say so."""

import pytest
import sympy as sp
import torch

from diffnotes import MCEstimate, check_close, check_identity, check_mc, mc_estimate


def test_mc_estimate_mean_and_stderr():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64)
    e = mc_estimate(x)
    assert e.value == 2.5 and e.n == 4
    assert abs(e.stderr - float(x.std()) / 2) < 1e-12


def test_check_mc_passes_and_fails(capsys):
    est = MCEstimate(0.4496, 0.0012, 1000)
    z = check_mc(est, 0.4501, label="demo")
    out = capsys.readouterr().out
    assert "0.4496 ± 0.0012 vs 0.4501 exact: ✓ within 5σ" in out
    assert z == pytest.approx(-0.4167, abs=1e-3)
    with pytest.raises(AssertionError, match="outside 5σ"):
        check_mc(est, 0.46)
    # two estimates: errors combine in quadrature
    z2 = check_mc(MCEstimate(1.0, 0.3, 10), MCEstimate(0.0, 0.4, 10), verbose=False)
    assert z2 == pytest.approx(2.0)


def test_check_mc_needs_an_error():
    with pytest.raises(ValueError, match="standard error"):
        check_mc(1.0, 1.0)
    with pytest.raises(ValueError, match="samples must have shape"):
        mc_estimate(torch.ones(1))
    with pytest.raises(ValueError, match="finite"):
        mc_estimate(torch.tensor([1.0, float("nan")]))


def test_check_identity():
    x = sp.symbols("x", real=True)
    check_identity(sp.sin(x) ** 2 + sp.cos(x) ** 2, 1, verbose=False)
    check_identity(sp.Matrix([[x, 1]]), sp.Matrix([[x, 1]]), verbose=False)
    with pytest.raises(AssertionError, match="fails"):
        check_identity(sp.sin(x), sp.cos(x))
    with pytest.raises(AssertionError):
        check_identity(sp.Matrix([[x, 1]]), sp.Matrix([[x, 2]]))


def test_check_close():
    check_close(torch.tensor([1.0, 2.0]), [1.0, 2.0 + 1e-13], verbose=False)
    with pytest.raises(AssertionError):
        check_close(1.0, 1.1, rtol=1e-3, atol=0)
    with pytest.raises(ValueError, match="one shape"):
        check_close([1.0, 2.0], [1.0])


def test_tally_counts_and_reports_one_line(capsys):
    from diffnotes.checks import MCEstimate, Tally

    tally = Tally("demo")
    tally.close(1.0, 1.0 + 1e-13, label="a")
    tally.identity(sp.Symbol("x") ** 2, sp.Symbol("x") * sp.Symbol("x"), label="b")
    tally.mc(MCEstimate(1.0, 0.1, 10), 1.2, label="c")
    tally.require(2 > 1, "order")
    tally.skip("rare-event dominated")
    line = tally.report()
    assert capsys.readouterr().out.strip() == line
    assert line.startswith("✓ demo: 4 checks passed (1 within 5σ, max |z| = 2.00; 3 exact)")
    assert line.endswith("1 skipped (rare-event dominated)")


def test_tally_raises_on_a_failing_check_and_on_no_check():
    from diffnotes.checks import MCEstimate, Tally

    tally = Tally("demo")
    with pytest.raises(AssertionError, match="outside 5σ"):
        tally.mc(MCEstimate(1.0, 0.01, 10), 2.0)
    with pytest.raises(AssertionError, match="fails"):
        tally.require(False, "order")
    with pytest.raises(AssertionError, match="no check ran"):
        Tally("empty").report()
    with pytest.raises(ValueError, match="reason"):
        Tally().skip("")
