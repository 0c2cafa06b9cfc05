"""The benchmark helpers (benchmarks/run.py) and the memory-derived chunk size (issue 9)."""

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from diffnotes import mixtures
from diffnotes.lyapunov import local_spectrum
from diffnotes.mixtures import GaussianMixture
from diffnotes.processes import EDM, VP

F64 = torch.float64
ROOT = Path(__file__).resolve().parent.parent


def _load_bench():
    spec = importlib.util.spec_from_file_location("bench_run", ROOT / "benchmarks" / "run.py")
    mod = importlib.util.module_from_spec(spec)
    sys.modules["bench_run"] = mod
    spec.loader.exec_module(mod)
    return mod


bench = _load_bench()


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


# -- the naive baselines compute what diffnotes computes ------------------------------------------
@pytest.mark.parametrize("proc", [EDM(), VP()], ids=["EDM", "VP"])
def test_naive_score_posterior_equals_diffnotes(device, proc):
    mix = bench.make_mixture(7, 5, seed=3)
    x = mix.noised(0.8, proc).sample(30, torch.Generator().manual_seed(1))
    score, post = bench.naive_score_posterior(mix, x.numpy(), 0.8, proc)
    xd = x.to(device)
    assert np.allclose(score, mix.score(xd, 0.8, proc).cpu().numpy(), rtol=1e-12, atol=1e-12)
    assert np.allclose(post, mix.component_posterior(xd, 0.8, proc).cpu().numpy(),
                       rtol=1e-12, atol=1e-14)


def test_naive_score_float32_close():
    mix = bench.make_mixture(5, 4, seed=2)
    x = mix.noised(1.0, EDM()).sample(20, torch.Generator().manual_seed(2))
    score, _ = bench.naive_score_posterior(mix, x.numpy().astype(np.float32), 1.0, EDM())
    assert score.dtype == np.float32
    assert np.allclose(score, mix.score(x, 1.0, EDM()).numpy(), rtol=1e-4, atol=1e-4)


def test_naive_spectrum_equals_local_spectrum(device):
    mix = bench.make_mixture(4, 6, seed=5)
    x = mix.noised(0.7, EDM()).sample(12, torch.Generator().manual_seed(3))
    naive = bench.naive_spectrum(mix, x.numpy(), 0.7, EDM())
    batched = local_spectrum(mix, x.to(device), 0.7, EDM()).cpu().numpy()
    assert np.allclose(naive, batched, rtol=1e-10, atol=1e-10)


def test_naive_baselines_reject_full_covariances():
    mix = GaussianMixture(torch.zeros(2, 2, dtype=F64), None, torch.eye(2, dtype=F64))
    with pytest.raises(ValueError, match="isotropic"):
        bench.naive_score_posterior(mix, np.zeros((1, 2)), 1.0, EDM())
    with pytest.raises(ValueError, match="isotropic"):
        bench.naive_spectrum(mix, np.zeros((1, 2)), 1.0, EDM())


def test_fit_exponent_recovers_power_law():
    xs = np.array([10.0, 20.0, 40.0, 80.0])
    assert bench.fit_exponent(xs, 3.0 * xs**2.5) == pytest.approx(2.5, abs=1e-12)


# -- the benchmark cases run and report consistent figures ----------------------------------------
def test_kernel_case_runs(device):
    r = bench.kernel_case(200, 6, 5, F64, device, naive_rows=50, repeat=1)
    assert r["naive_rows"] == 50 and r["device"] == device.type
    for key in ("t_score", "t_post", "t_mm", "t_naive", "speedup", "gflops_score"):
        assert r[key] > 0 and np.isfinite(r[key])


def test_vt_case_runs_and_agrees(device):
    r = bench.vt_case(64, 300, 3000, device)
    assert r["device"] == device.type
    assert r["gamma"] == pytest.approx(2.0, rel=1e-12)
    assert abs(r["z"]) < 5  # direct and reduced estimate the same V (issue 9, chapter 7)
    assert r["peak_bytes"] is None or r["peak_bytes"] >= 0


def test_peak_memory_sees_an_allocation():
    _, peak = bench.peak_memory(lambda: torch.ones(2**24, dtype=F64).sum(), torch.device("cpu"))
    if peak is None:
        pytest.skip("peak RSS cannot be reset on this system")
    assert peak > 0.5 * 2**27  # a 128 MiB tensor


def test_book_section_without_and_with_exec_times(tmp_path):
    missing = bench.bench_book(tmp_path / "none.json")
    assert missing["source"] is None and missing["budgets"]
    assert all(b > 0 for b in missing["budgets"].values())
    f = tmp_path / "exec_times.json"
    f.write_text('[{"page": "book/01_twenty_questions", "runtime_s": 12.5, "budget_s": null}]')
    got = bench.bench_book(f)
    assert got["rows"][0]["budget_s"] == missing["budgets"]["book/01_twenty_questions"]


def test_quick_mode_writes_a_report(tmp_path, capsys):
    out = tmp_path / "RESULTS.md"
    assert bench.main(["--quick", "--no-gpu", "--out", str(out)]) == 0
    text = out.read_text()
    for heading in ("## Machine", "## 1.", "## 2.", "## 3.", "## 4.", "## 5. GPU"):
        assert heading in text
    assert "torch threads 2" in text
    if not torch.cuda.is_available():
        assert "no GPU was available" in text
    assert "| float64 | cpu |" in capsys.readouterr().out


# -- the chunk size follows free memory; CHUNK_ELEMENTS stays the cap and override ----------------
def test_chunk_budget_is_floored_and_capped(monkeypatch):
    x = torch.zeros(3, dtype=F64)
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: 1000)  # almost nothing free
    assert mixtures._chunk_elements(x) == mixtures._MIN_CHUNK_ELEMENTS
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: 2**50)  # plenty
    assert mixtures._chunk_elements(x) == mixtures.CHUNK_ELEMENTS
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: None)  # unreadable
    assert mixtures._chunk_elements(x) == mixtures.CHUNK_ELEMENTS
    assert mixtures._chunk_elements(None) == mixtures.CHUNK_ELEMENTS


def test_chunk_budget_scales_with_free_memory_and_dtype(monkeypatch):
    free = 2**31  # 2 GiB: the derived budget lies between floor and cap
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: free)
    b64 = mixtures._chunk_elements(torch.zeros(1, dtype=F64))
    b32 = mixtures._chunk_elements(torch.zeros(1, dtype=torch.float32))
    assert b64 == int(mixtures._MEMORY_FRACTION * free) // (8 * mixtures._LIVE_INTERMEDIATES)
    assert b32 == 2 * b64
    # the intermediates of one chunk fit in the allowed share of free memory
    assert b64 * 8 * mixtures._LIVE_INTERMEDIATES <= mixtures._MEMORY_FRACTION * free


def test_chunk_elements_constant_overrides(monkeypatch):
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: 2**50)
    monkeypatch.setattr(mixtures, "CHUNK_ELEMENTS", 7)
    assert mixtures._chunk_elements(torch.zeros(1, dtype=F64)) == 7
    steps = [sl.stop - sl.start for sl in mixtures._row_chunks(10, 3, like=torch.zeros(1))]
    assert steps == [2] * 5


def test_free_bytes_reads_the_device(device):
    free = mixtures._free_bytes(device)
    assert free is not None and free > 0
    assert 1 <= mixtures._chunk_elements(torch.zeros(1, device=device)) <= mixtures.CHUNK_ELEMENTS


def test_row_chunks_bounded_for_any_n(device, monkeypatch):
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: 1000)
    like = torch.zeros(1, device=device, dtype=F64)
    per_row = 1000
    for n in (1, 999, 10**6, 10**9):
        chunks = list(itertools.islice(mixtures._row_chunks(n, per_row, like=like), 50))
        assert max((sl.stop - sl.start) * per_row for sl in chunks) <= \
            mixtures._MIN_CHUNK_ELEMENTS


def test_memory_derived_chunks_equal_unchunked(device, monkeypatch):
    """Chunked through the free-memory path (not CHUNK_ELEMENTS) equals one chunk, full covs."""
    g = torch.Generator().manual_seed(9)
    A = torch.randn(3, 4, 4, dtype=F64, generator=g)
    mix = GaussianMixture(torch.randn(3, 4, dtype=F64, generator=g), None,
                          A @ A.transpose(1, 2) / 4)
    x = torch.randn(25, 4, dtype=F64, generator=g).to(device)
    calls = [mix.score, mix.score_jacobian, mix.posterior_cov, mix.score_divergence,
             mix.posterior_mean]
    full = [f(x, 0.5, VP()) for f in calls]
    monkeypatch.setattr(mixtures, "_free_bytes", lambda device: 0)
    monkeypatch.setattr(mixtures, "_MIN_CHUNK_ELEMENTS", 3 * 4 * 2)  # two rows per chunk
    assert mixtures._chunk_elements(x) == 24
    small = [f(x, 0.5, VP()) for f in calls]
    for a, b in zip(full, small, strict=True):
        assert torch.allclose(a, b, rtol=1e-13, atol=1e-13)
