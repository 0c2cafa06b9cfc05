r"""The tests of the graded assignments (otter-grader; ``tools/assignments.py``, issue 17).

Each exercise of an assignment has two tests, both written by ``tools/assignments.py`` into
otter's exception-based format and both calling this module:

* a **public** test, which a student runs with ``grader.check(...)``: :func:`require_form`
  checks only the *form* of the answer (a number, a tensor of the right shape, a sympy
  expression in the exercise's symbols, option letters of the question) and never its value;
* a **hidden** test, run only by the autograder: :func:`require_correct` judges the answer with
  the exercise's key (:mod:`diffnotes.selfcheck`) in graded mode, for the student's variant
  (``selfcheck.get_seed()`` when variants exist), and its failure message names the kind of
  mistake only.

Both raise ``AssertionError`` (otter's signal of a failed test) and never anything else for a
wrong or missing answer, so an untouched notebook scores zero without an error.
"""

from __future__ import annotations

from typing import Any

import sympy as sp

from . import selfcheck
from .selfcheck import Choice, Function, Number, Symbolic, Tensor

__all__ = ["answer_form", "require_correct", "require_form"]


def _key(label: str, seed: int | None = None):
    """The key of exercise ``label`` for the student's variant (the book's key without
    variants)."""
    ex = selfcheck.exercise(label)
    key_for = getattr(ex, "key_for", None)
    return key_for(seed) if key_for is not None else ex.key


def _reference(key) -> Any:
    """The key's reference value, evaluated once by the key itself (``Key._ref``)."""
    return key._ref()


def answer_form(label: str, answer: Any) -> str | None:
    """``None`` when ``answer`` has the form exercise ``label`` asks for, else what is wrong
    with its form; the value is never looked at.

    The form is: a real number (:class:`~diffnotes.selfcheck.Number`); a tensor or array of
    the reference's shape (:class:`~diffnotes.selfcheck.Tensor`); an expression sympy can
    read whose free symbols are among the exercise's (:class:`~diffnotes.selfcheck.Symbolic`);
    a callable (:class:`~diffnotes.selfcheck.Function`); letters of the question's options
    (:class:`~diffnotes.selfcheck.Choice`).
    """
    key = _key(label)
    if answer is None or answer is Ellipsis:
        return f"no answer yet: set `answer` to {key.expects}"
    if isinstance(key, Number):
        if isinstance(answer, bool) or selfcheck._as_float(answer) is None:
            return f"expected {key.expects}; got {type(answer).__name__}"
        return None
    if isinstance(key, Tensor):
        a = selfcheck._as_tensor(answer)
        if a is None:
            return f"expected {key.expects}; got {type(answer).__name__}"
        shape = tuple(selfcheck._as_tensor(_reference(key)).shape)
        if tuple(a.shape) != shape:
            return f"expected shape {shape}; got {tuple(a.shape)}"
        return None
    if isinstance(key, Symbolic):
        expr = key._parse(answer)
        if expr is None:
            return f"expected {key.expects}; could not read {type(answer).__name__}"
        allowed = {s.name for s in key.symbols}
        allowed |= {s.name for s in sp.sympify(_reference(key)).free_symbols}
        extra = {s.name for s in expr.free_symbols} - allowed
        if extra:
            return (f"uses symbol(s) {', '.join(sorted(extra))}; the exercise's symbols are "
                    f"{', '.join(sorted(allowed)) or 'none'}")
        return None
    if isinstance(key, Function):
        return None if callable(answer) and not isinstance(answer, sp.Basic) else (
            f"expected {key.expects}; got {type(answer).__name__}")
    if isinstance(key, Choice):
        letters = selfcheck._letters(answer)
        if not letters:
            return f"expected {key.expects}; got {type(answer).__name__}"
        unknown = letters - set(key.options)
        if unknown:
            return (f"{', '.join(sorted(unknown))} is not an option; the options are "
                    f"{', '.join(sorted(key.options))}")
        return None
    raise ValueError(f"label {label!r} has a key of unknown type {type(key).__name__}")


def require_form(label: str, answer: Any) -> None:
    """The public test: ``AssertionError`` unless ``answer`` has the form exercise ``label``
    asks for (:func:`answer_form`)."""
    problem = answer_form(label, answer)
    assert problem is None, f"{label}: {problem}"


def require_correct(label: str, answer: Any, seed: int | None = None) -> None:
    """The hidden test: ``AssertionError`` unless the key of exercise ``label`` (for variant
    ``seed``, default the current one) accepts ``answer``; the message is the graded-mode
    hint, which names the kind of mistake only."""
    problem = answer_form(label, answer)
    assert problem is None, f"{label}: {problem}"
    status, message = _key(label, seed).judge(answer, mode="graded")
    assert status == "correct", f"{label}: {message}"
