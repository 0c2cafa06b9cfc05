"""The Colab-like run: pins generated from Colab's freeze, and stalls that fail fast."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import colab_pins  # noqa: E402
import colab_test  # noqa: E402


def test_requirements_colab_is_generated_from_the_freeze():
    assert colab_pins.main(["--check"]) == 0, "run `make colab-pins` and commit the result"


def test_pins_are_colabs_versions_but_for_the_documented_exceptions():
    freeze = colab_pins.read_freeze()
    rows = colab_pins.pins(freeze)
    names = {colab_pins.canonical(r[0]) for r in rows}
    kernel_stack = {"ipykernel", "ipython", "jupyter-client", "pyzmq", "tornado", "traitlets",
                    "nbclient", "nbformat"}
    book = {"torch", "numpy", "scipy", "matplotlib", "sympy", "ipywidgets"}
    assert kernel_stack | book <= names
    for name, version, _, note in rows:
        key = colab_pins.canonical(name)
        if key in colab_pins.EXCEPTIONS:
            assert note.startswith("exception") and version == colab_pins.EXCEPTIONS[key][0]
        else:
            assert version == freeze[key][1], name
    # what the issue quotes from Colab's freeze
    assert freeze["ipython"][1] == "7.34.0" and freeze["jupyter-client"][1] == "7.4.9"
    assert freeze["torch"][1] == "2.11.0"  # read from the wheel URL, without +cpu


def test_installed_mismatches_name_a_wrong_version(tmp_path):
    freeze = colab_pins.read_freeze()
    installed = {colab_pins.canonical(n): v for n, v, _, _ in colab_pins.pins(freeze)}
    assert colab_pins.installed_mismatches(installed) == []
    installed["ipython"] = "9.18.1"
    del installed["pyzmq"]
    wrong = colab_pins.installed_mismatches(installed)
    assert any(w.startswith("ipython: 9.18.1 installed, pinned 7.34.0") for w in wrong)
    assert any(w.startswith("pyzmq: not installed") for w in wrong)


def test_freeze_parse_rejects_a_missing_file(tmp_path):
    with pytest.raises(ValueError, match="freeze file not found"):
        colab_pins.read_freeze(tmp_path / "nope.txt")


def _notebook(tmp_path, sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    path = tmp_path / "stall.ipynb"
    nbformat.write(nb, path)
    return path


def test_a_stalled_cell_fails_within_its_limit_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setattr(colab_test, "MIN_CELL_S", 2.0)
    stall = "import time\ntime.sleep(60)  # the stall"
    path = _notebook(tmp_path, ["x = 1", stall, "print('never')"])
    normal = {colab_test.cell_key(stall): 0.05}  # normally instant: its limit is 2 s
    start = time.perf_counter()
    run = colab_test.run_notebook(path, "python3", normal, wall_limit=120)
    elapsed = time.perf_counter() - start
    assert not run.ok
    assert "code cell 2 ('import time')" in run.status and "2 s" in run.status, run.status
    assert elapsed < 40, f"the stall cost {elapsed:.0f} s"


def test_a_notebook_over_its_wall_limit_fails_and_names_the_running_cell(tmp_path):
    path = _notebook(tmp_path, ["import time"] + [f"time.sleep(1.0)  # {i}" for i in range(30)])
    run = colab_test.run_notebook(path, "python3", {}, wall_limit=8)
    assert not run.ok
    assert "wall limit 8 s" in run.status and "time.sleep(1.0)" in run.status, run.status
    assert run.seconds < 40


def test_a_normal_notebook_is_ok_and_its_cells_are_timed(tmp_path):
    path = _notebook(tmp_path, ["x = 1", "print(x + 1)"])
    run = colab_test.run_notebook(path, "python3", {}, wall_limit=120)
    assert run.ok, run.status
    assert [c["cell"] for c in run.cells] == [1, 2]


def test_rearm_wakes_a_poll_whose_reply_arrived_during_a_shadow_send():
    """The widget stall's mechanism, without Jupyter: a reply arrives while a synchronous
    shadow of the asyncio socket sends (nbclient's widget sync); the asyncio poll must still
    wake at once after ``rearm``. Without it, it wakes only at its timeout (shown when the
    race reproduces; it depends on timing)."""
    import asyncio

    import zmq
    import zmq.asyncio

    async def one(rearm: bool) -> float:
        ctx, sctx = zmq.asyncio.Context(), zmq.Context()
        router = sctx.socket(zmq.ROUTER)
        port = router.bind_to_random_port("tcp://127.0.0.1")
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(f"tcp://127.0.0.1:{port}")
        try:
            await dealer.send(b"hello")
            ident, _ = router.recv_multipart()
            start = time.perf_counter()
            poll = asyncio.ensure_future(dealer.poll(3000))
            await asyncio.sleep(0.05)
            router.send_multipart([ident, b"execute_reply"])
            time.sleep(0.05)  # the loop is busy while the reply arrives
            zmq.Socket.shadow(dealer.underlying).send(b"comm_msg")
            if rearm:
                colab_test.rearm(dealer)
            ready = await poll
            assert ready and await dealer.recv() == b"execute_reply"
            return time.perf_counter() - start
        finally:
            dealer.close(0)
            router.close(0)
            sctx.term()
            ctx.term()

    assert asyncio.run(one(rearm=True)) < 1.0
    without = asyncio.run(one(rearm=False))
    print(f"without rearm the poll woke after {without:.2f} s (timeout 3 s)")


def test_rearm_after_send_patches_the_channel_once():
    import jupyter_client.channels

    colab_test.rearm_after_send()
    first = jupyter_client.channels.ZMQSocketChannel.send
    colab_test.rearm_after_send()
    assert jupyter_client.channels.ZMQSocketChannel.send is first
    assert getattr(first, "_rearms", False)


def test_the_book_build_loads_the_cure_before_it_executes_a_chapter():
    """The book build executes chapters through nbclient too (myst-nb): a widget cell stalled
    there for the whole 300 s cell timeout and then passed (chapter 4, 316 s instead of ~15 s).
    The extension that patches the channels is one of the build's local extensions."""
    import jupyter_client.channels
    import yaml

    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["sphinx"]["local_extensions"].get("kernel_rearm") == "book/_ext"
    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    import kernel_rearm

    assert kernel_rearm.setup(None)["parallel_read_safe"]
    assert getattr(jupyter_client.channels.ZMQSocketChannel.send, "_rearms", False)
    assert colab_test.rearm_after_send is kernel_rearm.rearm_after_send
