"""Run the stages of ``make test`` one after the other and say what each cost.

Each stage is a make target, run as ``make <stage>``; the first failing stage stops the run,
like make itself. At the end (after a failure too) a table gives every stage's wall time and
status, and the total; it is also written to ``_build/test_stages.json``.

A stage written ``A+B`` runs the targets ``A`` and ``B`` at the same time (``A``'s output
streams, ``B``'s is kept in ``_build/B.log`` and printed when it ends) and fails if either
does: ``make test`` grades the assignments while the Colab-like run goes on, each with one
thread (``OMP_NUM_THREADS=1``) on the CI machine's two cores.

``--background TARGET:STAGE`` starts ``make TARGET`` at once, beside the stages (its output in
``_build/background.log``), and waits for it before ``STAGE`` runs: ``make test`` builds the
Colab-like venv (mostly unpacking wheels) while the CPU-bound stages run. A failed background
build is reported; the stage that needs it then builds it again in the foreground and fails
visibly if it still cannot.

    python tools/stages.py [--background TARGET:STAGE] lint pytest execute ... A+B
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    background: dict[str, subprocess.Popen] = {}
    make = os.environ.get("MAKE", "make")
    (ROOT / "_build").mkdir(exist_ok=True)
    while args and args[0] == "--background":
        if len(args) < 2 or ":" not in args[1]:
            print("--background needs TARGET:STAGE")
            return 2
        target, before = args[1].rsplit(":", 1)
        log = open(ROOT / "_build" / "background.log", "a")  # noqa: SIM115 - closed by the OS
        background[before] = subprocess.Popen([make, "--no-print-directory", target], cwd=ROOT,
                                              stdout=log, stderr=subprocess.STDOUT)
        print(f"started `make {target}` in the background (needed by {before})")
        args = args[2:]
    stages = args
    if not stages:
        print("usage: python tools/stages.py [--background TARGET:STAGE] STAGE [STAGE ...]")
        return 2
    rows, status = [], 0
    start_all = time.perf_counter()
    for stage in stages:
        job = background.pop(stage, None)
        if job is not None:
            waited = time.perf_counter()
            rc = job.wait()
            print(f"background build for {stage}: exit {rc}, waited "
                  f"{time.perf_counter() - waited:.1f} s"
                  + ("" if rc == 0 else " (see _build/background.log; retrying in the stage)"))
        start = time.perf_counter()
        first, *others = stage.split("+")
        # parts run at once share the two cores: one thread each, or torch's OpenMP threads
        # oversubscribe them and a cell can take ten times its time
        env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1") if others else None
        beside = []
        for other in others:
            log = open(ROOT / "_build" / f"{other}.log", "w")  # noqa: SIM115 - closed below
            job = subprocess.Popen([make, "--no-print-directory", other], cwd=ROOT, stdout=log,
                                   stderr=subprocess.STDOUT, env=env)
            ended: dict = {}
            waiter = threading.Thread(target=lambda j=job, e=ended: e.update(
                rc=j.wait(), at=time.perf_counter()), daemon=True)
            waiter.start()
            beside.append((other, log, waiter, ended))
        rc = subprocess.call([make, "--no-print-directory", first], cwd=ROOT, env=env)
        if others:
            rows.append((first, time.perf_counter() - start, "ok" if rc == 0 else
                         f"FAILED ({rc})"))
        for other, log, waiter, ended in beside:
            waiter.join()
            log.close()
            print(f"\n--- make {other} (run beside {first}; _build/{other}.log) ---")
            print((ROOT / "_build" / f"{other}.log").read_text(), end="", flush=True)
            rows.append((other, ended["at"] - start,
                         "ok" if ended["rc"] == 0 else f"FAILED ({ended['rc']})"))
            rc = rc or ended["rc"]
        rows.append((stage, time.perf_counter() - start, "ok" if rc == 0 else f"FAILED ({rc})"))
        if rc != 0:
            status = rc
            break
    for job in background.values():  # a stage that never ran: do not leave its build behind
        job.wait()
    ran = {r[0] for r in rows}
    rows += [(s, 0.0, "not run") for s in stages if s not in ran]
    total = time.perf_counter() - start_all
    print("\nmake test, stage by stage:")
    for stage, seconds, state in rows:
        print(f"  {stage:16s} {seconds:7.1f} s  {state}")
    print(f"  {'total':16s} {total:7.1f} s  ({total / 60:.1f} min)")
    shares = ROOT / "_build" / "execute_shares.json"
    if "execute" in ran and shares.is_file():
        data = json.loads(shares.read_text())
        pages = data["pages"]
        whole = sum(p["seconds"] for p in pages) or 1.0
        print(f"\nexecute: each page once, {data['jobs']} at a time, {data['wall_seconds']:.0f} s "
              "wall:")
        for p in pages:
            print(f"  {p['page']:28s} {p['seconds']:7.1f} s  {100 * p['seconds'] / whole:5.1f} % "
                  f"of the stage's page time, {100 * p['seconds'] / p['budget_s']:5.1f} % of its "
                  f"{p['budget_s']:.0f} s budget")
    out = ROOT / "_build" / "test_stages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"stages": [{"stage": s, "seconds": round(t, 1), "status": st}
                                          for s, t, st in rows],
                               "total_seconds": round(total, 1)}, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
