r"""The book's two kinds of check: Monte Carlo estimates with error bars, and sympy identities.

Every chapter ends its derivations with :func:`check_identity` (exact, symbolic) and its
numeric experiments with :func:`check_mc` (a z-test at a stated number of standard errors).
Both print one line a reader can read and raise ``AssertionError`` when the check fails.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import sympy as sp
import torch


@dataclass(frozen=True)
class MCEstimate:
    r"""A Monte Carlo estimate: ``value`` with standard error ``stderr`` from ``n`` samples."""

    value: float
    stderr: float
    n: int

    def __str__(self) -> str:
        return f"{_fmt(self.value, self.stderr)} ± {_fmt(self.stderr, self.stderr)}"

    def __format__(self, spec: str) -> str:
        return str(self)


def _digits(err: float) -> int:
    if not math.isfinite(err) or err <= 0:
        return 6
    return max(0, min(12, 1 - int(math.floor(math.log10(err)))))


def _fmt(x: float, err: float) -> str:
    d = _digits(err)
    if abs(x) >= 1e5 or (x != 0 and abs(x) < 1e-4 and err < 1e-5):
        return f"{x:.{max(d - 2, 3)}e}"
    return f"{x:.{d}f}"


def mc_estimate(samples: torch.Tensor) -> MCEstimate:
    r"""Sample mean and its standard error :math:`s/\sqrt{n}` of i.i.d. scalar samples.

    Parameters
    ----------
    samples : tensor of shape ``(n,)``, ``n >= 2``; accumulated in float64.
    """
    x = torch.as_tensor(samples)
    if x.ndim != 1 or x.shape[0] < 2:
        raise ValueError(f"samples must have shape (n,) with n >= 2; got {tuple(x.shape)}")
    x = x.detach().to(torch.float64)
    if not bool(torch.isfinite(x).all()):
        raise ValueError("samples must be finite (no NaN or inf)")
    n = x.shape[0]
    return MCEstimate(float(x.mean()), float(x.std(unbiased=True)) / math.sqrt(n), n)


def _as_estimate(x) -> MCEstimate:
    if isinstance(x, MCEstimate):
        return x
    return MCEstimate(float(x), 0.0, 0)


def check_mc(
    estimate: MCEstimate,
    reference,
    *,
    label: str = "",
    n_sigma: float = 5.0,
    ref_name: str = "exact",
    verbose: bool = True,
) -> float:
    r"""Assert that a Monte Carlo estimate agrees with a reference within ``n_sigma`` errors.

    The test statistic is :math:`z = (\hat\mu - \mu_{\rm ref}) / \sqrt{se^2 + se_{\rm ref}^2}`,
    where the reference may itself be an :class:`MCEstimate` (two independent estimators).
    At ``n_sigma = 5`` the two-sided false-alarm rate of a correct estimator with Gaussian
    errors is :math:`5.7\times 10^{-7}`. Prints e.g.
    ``0.4496 ± 0.0012 vs 0.4501 exact: ✓ within 5σ (z = -0.42)``.

    Returns
    -------
    z : the standardised difference.
    """
    if not n_sigma > 0:
        raise ValueError(f"n_sigma must be positive; got {n_sigma}")
    est = _as_estimate(estimate)
    ref = _as_estimate(reference)
    se = math.hypot(est.stderr, ref.stderr)
    diff = est.value - ref.value
    if se == 0.0:
        raise ValueError("check_mc needs a standard error: estimate and reference are both exact")
    z = diff / se
    ok = abs(z) <= n_sigma
    ref_txt = str(ref) if ref.n else _fmt(ref.value, se)
    mark = "✓" if ok else "✗"
    line = (
        f"{label + ': ' if label else ''}{est} vs {ref_txt} {ref_name}: "
        f"{mark} {'within' if ok else 'outside'} {n_sigma:g}σ (z = {z:+.2f})"
    )
    if verbose:
        print(line)
    if not ok:
        raise AssertionError(line)
    return z


def check_identity(lhs, rhs=0, *, label: str = "", verbose: bool = True) -> None:
    r"""Assert the symbolic identity ``lhs == rhs`` by ``sympy.simplify(lhs - rhs) == 0``.

    Works for scalars and for sympy matrices (every entry must simplify to zero).
    Raises ``AssertionError`` showing the non-zero residual.
    """
    diff = sp.sympify(lhs) - sp.sympify(rhs)
    if isinstance(diff, sp.MatrixBase):
        residual = diff.applyfunc(sp.simplify)
        ok = residual.is_zero_matrix is True
    else:
        residual = sp.simplify(diff)
        ok = residual == 0
    if not ok:
        raise AssertionError(f"{label or 'identity'} fails: simplify(lhs - rhs) = {residual}")
    if verbose:
        print(f"✓ {label or 'identity'}: simplify(lhs - rhs) = 0")


def check_close(
    actual,
    expected,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-12,
    label: str = "",
    verbose: bool = True,
) -> float:
    r"""Assert a deterministic numeric agreement (closed form against quadrature, say).

    Passes when :math:`|a - e| \le atol + rtol\,|e|` elementwise; returns the largest
    absolute difference. For random quantities use :func:`check_mc` instead.
    """
    a = torch.as_tensor(actual, dtype=torch.float64)
    e = torch.as_tensor(expected, dtype=torch.float64)
    if a.shape != e.shape:
        raise ValueError(f"actual and expected must have one shape; got {tuple(a.shape)} "
                         f"and {tuple(e.shape)}")
    err = (a - e).abs()
    ok = bool((err <= atol + rtol * e.abs()).all())
    worst = float(err.max()) if err.numel() else 0.0
    line = (f"{label + ': ' if label else ''}max |difference| = {worst:.2e} "
            f"{'✓' if ok else '✗'} (rtol {rtol:g}, atol {atol:g})")
    if verbose:
        print(line)
    if not ok:
        raise AssertionError(line)
    return worst


class Tally:
    r"""Run many checks quietly and print one line: the folded "Verification" cells of the book.

    Each method runs the check of the same name (:func:`check_mc`, :func:`check_identity`,
    :func:`check_close`) with ``verbose=False``; a failing check raises ``AssertionError`` with
    its full line at once, as it would alone. :meth:`skip` records a case that is not tested
    and why (never counted as passed). :meth:`report` prints, e.g.
    ``✓ Theorem 3.1: 61 checks passed (40 within 5σ, max |z| = 3.1; 21 exact); 3 skipped
    (rare-event dominated)`` and returns the line.

    Example
    -------
    >>> tally = Tally("posterior mean")
    >>> tally.close(1.0, 1.0)
    >>> _ = tally.report()
    ✓ posterior mean: 1 check passed (1 exact)
    """

    def __init__(self, label: str = "") -> None:
        self.label = label
        self.n_mc = 0
        self.n_exact = 0
        self.max_abs_z = 0.0
        self.n_sigma: set[float] = set()
        self.skipped: list[str] = []
        self.lines: list[str] = []

    def mc(self, estimate, reference, *, label: str = "", n_sigma: float = 5.0,
           ref_name: str = "exact") -> float:
        """:func:`check_mc` without printing; returns z."""
        z = check_mc(estimate, reference, label=label, n_sigma=n_sigma, ref_name=ref_name,
                     verbose=False)
        self.n_mc += 1
        self.max_abs_z = max(self.max_abs_z, abs(z))
        self.n_sigma.add(n_sigma)
        self.lines.append(f"{label}: z = {z:+.2f}")
        return z

    def identity(self, lhs, rhs=0, *, label: str = "") -> None:
        """:func:`check_identity` without printing."""
        check_identity(lhs, rhs, label=label, verbose=False)
        self.n_exact += 1
        self.lines.append(f"{label}: identity holds")

    def close(self, actual, expected, *, rtol: float = 1e-10, atol: float = 1e-12,
              label: str = "") -> float:
        """:func:`check_close` without printing; returns the largest absolute difference."""
        worst = check_close(actual, expected, rtol=rtol, atol=atol, label=label, verbose=False)
        self.n_exact += 1
        self.lines.append(f"{label}: max |difference| = {worst:.2e}")
        return worst

    def require(self, condition: bool, message: str) -> None:
        """A plain assertion that counts as an exact check (an inequality, a sign, an order)."""
        if not bool(condition):
            raise AssertionError(f"{self.label + ': ' if self.label else ''}{message} fails")
        self.n_exact += 1
        self.lines.append(f"{message}: holds")

    def skip(self, reason: str) -> None:
        """Record a case that was not tested, with the reason (reported, never passed)."""
        if not reason:
            raise ValueError("reason must say why the case is skipped")
        self.skipped.append(reason)

    @property
    def n_checks(self) -> int:
        return self.n_mc + self.n_exact

    def report(self, verbose: bool = True) -> str:
        """Print and return the one-line summary; raises if no check ran at all."""
        if self.n_checks == 0:
            raise AssertionError(f"{self.label or 'tally'}: no check ran")
        parts = []
        if self.n_mc:
            sig = "/".join(f"{s:g}" for s in sorted(self.n_sigma))
            parts.append(f"{self.n_mc} within {sig}σ, max |z| = {self.max_abs_z:.2f}")
        if self.n_exact:
            parts.append(f"{self.n_exact} exact")
        n = self.n_checks
        line = (f"✓ {self.label + ': ' if self.label else ''}{n} check{'s' if n != 1 else ''} "
                f"passed ({'; '.join(parts)})")
        if self.skipped:
            reasons = sorted(set(self.skipped))
            line += f"; {len(self.skipped)} skipped ({'; '.join(reasons)})"
        if verbose:
            print(line)
        return line
