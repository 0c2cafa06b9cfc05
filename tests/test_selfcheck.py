"""The self-check machinery: each key accepts right answers and gives the promised hints."""

import math

import pytest
import sympy as sp
import torch

from diffnotes import selfcheck
from diffnotes.selfcheck import Choice, Function, Number, Symbolic, Tensor, Verdict

t, a = sp.symbols("t a", positive=True)


def judge(key, answer):
    return key.judge(answer)


class TestSymbolic:
    key = Symbolic(sp.exp(-2 * t) * a, symbols=(t, a), variable="t",
                   mistakes=[(sp.exp(-t) * a, "the variance decays as e^{-2t}, not e^{-t}")])

    def test_equivalent_forms_accepted(self):
        assert judge(self.key, a * sp.exp(-t) ** 2)[0] == "correct"
        assert judge(self.key, "a*exp(-2*t)")[0] == "correct"

    def test_symbols_matched_by_name_whatever_the_assumptions(self):
        t_plain, a_plain = sp.symbols("t a")
        assert judge(self.key, a_plain * sp.exp(-2 * t_plain))[0] == "correct"

    def test_listed_mistake_gets_its_hint(self):
        assert judge(self.key, a * sp.exp(-t)) == ("wrong", self.key.mistakes[0][1])

    @pytest.mark.parametrize("factor, words", [(2, "twice"), (sp.Rational(1, 2), "half"),
                                               (-1, "sign"), (sp.log(2), "ln 2"),
                                               (7, "constant factor")])
    def test_constant_factors(self, factor, words):
        status, hint = judge(self.key, factor * a * sp.exp(-2 * t))
        assert status == "wrong" and words in hint

    def test_additive_constant(self):
        status, hint = judge(self.key, a * sp.exp(-2 * t) + 3)
        assert status == "wrong" and "additive" in hint

    def test_right_only_at_t_equal_one(self):
        status, hint = judge(self.key, a * sp.exp(-2 * t**2))
        assert status == "wrong" and "right at t = 1 but not in general" in hint

    def test_foreign_symbol(self):
        status, hint = judge(self.key, sp.Symbol("x") * a)
        assert status == "wrong" and "x" in hint

    def test_unreadable(self):
        assert judge(self.key, "exp(((")[0] == "invalid"
        assert judge(self.key, [1, 2])[0] == "invalid"

    def test_numeric_fallback_when_simplify_gives_up(self, monkeypatch):
        monkeypatch.setattr(sp, "simplify", lambda e: e)
        assert judge(self.key, a * sp.exp(-t) * sp.exp(-t))[0] == "correct"
        assert judge(self.key, a * sp.exp(-t))[0] == "wrong"


class TestNumber:
    key = Number(math.log(3, 2), rtol=1e-6, mistakes=[(1.0, "a three-way split gives more "
                                                            "than one bit")])

    def test_right(self):
        assert judge(self.key, math.log2(3))[0] == "correct"
        assert judge(self.key, torch.tensor(math.log2(3)))[0] == "correct"
        assert judge(self.key, sp.log(3, 2))[0] == "correct"

    def test_mistake_and_factors(self):
        assert judge(self.key, 1.0)[1].startswith("a three-way")
        assert "nats instead of bits" in judge(self.key, math.log(3))[1]
        assert "bits instead of nats" in Number(math.log(3)).judge(math.log2(3))[1]
        assert "twice" in judge(self.key, 2 * math.log2(3))[1]
        assert "sign" in judge(self.key, -math.log2(3))[1]

    def test_close_and_far(self):
        assert "close" in judge(self.key, math.log2(3) * (1 + 2e-6))[1]
        assert "too large" in judge(self.key, 3.0)[1]

    def test_invalid(self):
        assert judge(self.key, "many")[0] == "invalid"
        assert judge(self.key, float("nan"))[0] == "invalid"
        assert judge(self.key, torch.ones(2))[0] == "invalid"

    def test_lazy_reference_computed_once(self):
        calls = []

        def ref():
            calls.append(1)
            return 2.0

        key = Number(ref)
        assert not calls
        judge(key, 2.0)
        judge(key, 2.0)
        assert len(calls) == 1


class TestTensor:
    ref = torch.arange(6, dtype=torch.float64).reshape(2, 3) + 1

    def test_right_and_shapes(self):
        key = Tensor(self.ref)
        assert judge(key, self.ref.clone())[0] == "correct"
        assert judge(key, self.ref.tolist())[0] == "correct"
        assert "transposed" in judge(key, self.ref.T)[1]
        assert "wrong shape" in judge(key, self.ref.flatten())[1]
        assert judge(key, torch.ones(4))[0] == "invalid"

    def test_hints(self):
        key = Tensor(self.ref)
        assert "half" in judge(key, self.ref / 2)[1]
        assert "additive" in judge(key, self.ref + 1)[1]
        bad = self.ref.clone()
        bad[1, 2] = 0
        assert "index (1, 2)" in judge(key, bad)[1]


class TestFunction:
    key = Function(lambda t, x: math.exp(-t) * x, probes=[(0.5, 1.0), (1.0, 2.0), (2.0, 0.3)],
                   at=(0, 1.0, "t"))

    def test_right(self):
        assert judge(self.key, lambda t, x: x / math.exp(t))[0] == "correct"

    def test_hints(self):
        assert "right at t = 1 but not in general" in judge(
            self.key, lambda t, x: math.exp(-t * t) * x)[1]
        assert "twice" in judge(self.key, lambda t, x: 2 * math.exp(-t) * x)[1]
        assert "raised ZeroDivisionError" in judge(self.key, lambda t, x: 1 / 0)[1]
        assert judge(self.key, 3.0)[0] == "invalid"


class TestChoice:
    key = Choice("b", {"a": "yes", "b": "no", "c": "maybe"}, hints={"a": "think again"})

    def test_letters(self):
        assert judge(self.key, "b")[0] == "correct"
        assert judge(self.key, " (B) ")[0] == "correct"
        assert judge(self.key, "a") == ("wrong", "think again")
        assert judge(self.key, "c")[0] == "wrong"
        assert judge(self.key, "z")[0] == "invalid"
        assert judge(self.key, 3)[0] == "invalid"

    def test_several_right(self):
        key = Choice("ac", {"a": "", "b": "", "c": ""})
        assert judge(key, "ca")[0] == "correct"
        assert judge(key, ["a", "c"])[0] == "correct"
        assert "part of it" in judge(key, "a")[1]

    def test_bad_key(self):
        with pytest.raises(ValueError, match="correct"):
            Choice("d", {"a": "", "b": ""})


class TestRegistry:
    def test_check_and_verdict(self, monkeypatch):
        monkeypatch.setattr(selfcheck, "_REGISTRY", {})
        monkeypatch.setattr(selfcheck, "exercises", lambda: dict(selfcheck._REGISTRY))
        selfcheck.register("ex-zz-test", Number(2.0), chapter="test", kind="compute")
        v = selfcheck.check("ex-zz-test", 2.0)
        assert isinstance(v, Verdict) and v and str(v) == "✓ ex-zz-test: correct."
        assert v.require() is v
        wrong = selfcheck.check("ex-zz-test", 4.0)
        assert not wrong and str(wrong).startswith("✗ ex-zz-test: off by a factor of 2")
        with pytest.raises(AssertionError, match="factor of 2"):
            wrong.require()
        missing = selfcheck.check("ex-zz-test", None)
        assert missing.status == "missing" and "a number" in str(missing)
        with pytest.raises(ValueError, match="did you mean ex-zz-test"):
            selfcheck.check("ex-zz-tset", 2.0)
        with pytest.raises(ValueError, match="already registered"):
            selfcheck.register("ex-zz-test", Number(2.0), chapter="test", kind="compute")

    @pytest.mark.parametrize("kwargs, match", [
        ({"label": "tq-1"}, "label"), ({"kind": "prove"}, "kind"), ({"key": 3}, "key")])
    def test_register_validates(self, monkeypatch, kwargs, match):
        monkeypatch.setattr(selfcheck, "_REGISTRY", {})
        args = {"label": "ex-zz-1", "key": Number(1.0), "chapter": "t", "kind": "derive",
                **kwargs}
        with pytest.raises(ValueError, match=match):
            selfcheck.register(args.pop("label"), args.pop("key"), **args)


class TestGradedMode:
    """Graded wording: the kind of mistake, never its direction or size."""

    def test_number(self):
        key = Number(3.0, rtol=1e-6, mistakes=[(6.1, "you added 3.1", "additive"), (7.0, "no")])
        assert key.judge(5.0, mode="graded") == key.judge(1.0, mode="graded")
        assert key.judge(3.0 * (1 + 2e-6), mode="graded") == key.judge(1.0, mode="graded")
        assert "too" not in key.judge(5.0, mode="graded")[1]
        assert key.judge(6.0, mode="graded") == key.judge(1.5, mode="graded") == (
            "wrong", "off by a factor of 2")
        assert key.judge(6.1, mode="graded") == ("wrong", "off by an additive constant")
        assert key.judge(6.1) == ("wrong", "you added 3.1")      # self-study is the default
        assert key.judge(7.0, mode="graded") == ("wrong", "not right")   # no graded wording

    def test_symbolic(self):
        key = Symbolic(sp.exp(-2 * t) * a, symbols=(t, a))
        assert key.judge(7 * a * sp.exp(-2 * t), mode="graded")[1] == "off by a constant factor"
        assert key.judge(sp.log(2) * a * sp.exp(-2 * t), mode="graded")[1].startswith("nats")
        status, text = key.judge(a * sp.exp(-t) + t, mode="graded")
        assert text == "not equivalent to the expected expression"

    def test_tensor_and_function(self):
        ref = torch.arange(6, dtype=torch.float64).reshape(2, 3) + 1
        key = Tensor(ref)
        assert key.judge(ref.T, mode="graded")[1].startswith("a matrix is transposed")
        bad = ref.clone()
        bad[1, 2] = 0
        assert key.judge(bad, mode="graded") == (
            "wrong", "not right: 1 of 6 entries are outside the tolerance")
        fkey = Function(lambda x: 2 * x, probes=[(1.0,), (2.0,)],
                        mistakes=[(lambda x: x * x, "that squares x", "exponent")])
        assert fkey.judge(lambda x: x * x, mode="graded")[1] == "a power or an exponent is wrong"
        assert fkey.judge(lambda x: x * x)[1] == "that squares x"

    def test_choice(self):
        key = Choice("b", {"a": "", "b": "", "c": ""}, hints={"a": "b is the one"})
        assert key.judge("a", mode="graded") == ("wrong", "option a is not right")
        assert key.judge("a") == ("wrong", "b is the one")

    def test_modes(self):
        old = selfcheck.set_mode("graded")
        try:
            assert selfcheck.get_mode() == "graded"
            assert Number(1.0).judge(5.0)[1].startswith("not right: outside the tolerance")
        finally:
            selfcheck.set_mode(old)
        with pytest.raises(ValueError, match="mode"):
            selfcheck.set_mode("strict")
        with pytest.raises(ValueError, match="mistake"):
            Number(1.0, mistakes=[(2.0,)])


class TestTeachingFields:
    @pytest.mark.parametrize("kwargs, match", [
        ({"minutes": 0}, "minutes"), ({"difficulty": "hard"}, "difficulty"),
        ({"rubric": [(1, "a", "b")] * 2}, "3 or 4"),
        ({"rubric": [(1, "a", "b")] * 3, "kind": "derive"}, "explain"),
        ({"rubric": [(0, "a", "b")] * 3}, "points")])
    def test_register_validates(self, monkeypatch, kwargs, match):
        monkeypatch.setattr(selfcheck, "_REGISTRY", {})
        args = {"chapter": "t", "kind": "explain", **kwargs}
        with pytest.raises(ValueError, match=match):
            selfcheck.register("ex-zz-2", Choice("a", {"a": "", "b": ""}), **args)

    def test_stored(self, monkeypatch):
        monkeypatch.setattr(selfcheck, "_REGISTRY", {})
        ex = selfcheck.register("ex-zz-3", Choice("a", {"a": "", "b": ""}), chapter="t",
                                kind="explain", minutes=10, difficulty="routine",
                                rubric=[(2, "a", "says a"), (3, "b", "says b"),
                                        selfcheck.Criterion(1, "c", "says c")])
        assert ex.minutes == 10 and ex.difficulty == "routine" and ex.points == 6
        assert ex.rubric[0] == selfcheck.Criterion(2, "a", "says a")
