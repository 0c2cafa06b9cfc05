"""Run the stages of ``make test`` one after the other and say what each cost.

Each stage is a make target, run as ``make <stage>``; the first failing stage stops the run,
like make itself. At the end (after a failure too) a table gives every stage's wall time and
status, and the total; it is also written to ``_build/test_stages.json``.

    python tools/stages.py lint pytest execute ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv: list[str] | None = None) -> int:
    stages = list(sys.argv[1:] if argv is None else argv)
    if not stages:
        print("usage: python tools/stages.py STAGE [STAGE ...]")
        return 2
    make = os.environ.get("MAKE", "make")
    rows, status = [], 0
    start_all = time.perf_counter()
    for stage in stages:
        start = time.perf_counter()
        rc = subprocess.call([make, "--no-print-directory", stage], cwd=ROOT)
        rows.append((stage, time.perf_counter() - start, "ok" if rc == 0 else f"FAILED ({rc})"))
        if rc != 0:
            status = rc
            break
    rows += [(s, 0.0, "not run") for s in stages[len(rows):]]
    total = time.perf_counter() - start_all
    print("\nmake test, stage by stage:")
    for stage, seconds, state in rows:
        print(f"  {stage:16s} {seconds:7.1f} s  {state}")
    print(f"  {'total':16s} {total:7.1f} s  ({total / 60:.1f} min)")
    out = ROOT / "_build" / "test_stages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"stages": [{"stage": s, "seconds": round(t, 1), "status": st}
                                          for s, t, st in rows],
                               "total_seconds": round(total, 1)}, indent=1))
    return status


if __name__ == "__main__":
    sys.exit(main())
