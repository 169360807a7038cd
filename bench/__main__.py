"""`make bench`: every benchmark, or one. They print figures and never fail the tests.

    .venv/bin/python -m bench                 # all of them, each in a fresh interpreter
    .venv/bin/python -m bench e2e [options]   # local stack: latency/throughput at c=1, 8, 32 + floors
    .venv/bin/python -m bench drain           # 2,000-job and 20-job backlogs drained by the workers
    .venv/bin/python -m bench cost            # AWS/Redis/Lambda calls per completion, bill per 1M
    .venv/bin/python -m bench profile         # CPU per completion in the handlers, top functions
    .venv/bin/python -m bench coldstart       # import time of app.py, deployment package size

`python -m bench NAME --help` lists a benchmark's options. Results are also
written as JSON to .local/bench/ (with the latency plot, perf-latency.svg);
docs/PERFORMANCE.md explains them.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from importlib import import_module

BENCHES: dict[str, str] = {
    "e2e": "bench.e2e",
    "drain": "bench.drain",
    "cost": "bench.cost",
    "profile": "bench.hotpath",
    "coldstart": "bench.coldstart",
}


def _run_one(name: str, argv: list[str]) -> None:
    entry: Callable[[list[str]], object] = import_module(BENCHES[name]).main
    entry(argv)


# What `python -m bench` runs: every benchmark, plus the e2e run with the proposed
# infra/local fixes, so the plot shows both.
ALL: list[list[str]] = [
    ["e2e"],
    ["e2e", "--variant", "moto-as-shipped"],
    ["drain"],
    ["cost"],
    ["profile"],
    ["coldstart"],
]


def _run_all() -> int:
    """Each benchmark in its own interpreter: the in-process ones import the app
    with their own environment, the cold start needs a fresh one anyway."""
    failed = []
    for args in ALL:
        began = time.perf_counter()
        code = subprocess.run([sys.executable, "-m", "bench", *args], check=False).returncode
        label = " ".join(args)
        outcome = "ok" if code == 0 else f"exit {code}"
        print(f"[bench {label}: {outcome}, {time.perf_counter() - began:.0f} s]")
        if code != 0:
            failed.append(label)
    if "e2e --variant moto-as-shipped" not in failed:
        subprocess.run([sys.executable, "-m", "bench.plot", "--overlay", "moto-as-shipped"], check=False)
    if failed:
        print(f"benchmarks that did not finish: {', '.join(failed)}")
    # Figures only: a benchmark never fails the build.
    return 0


def main() -> int:
    args = sys.argv[1:]
    if not args or args[0] == "all":
        return _run_all()
    if args[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if args[0] not in BENCHES:
        print(f"unknown benchmark {args[0]!r}; one of: {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    _run_one(args[0], args[1:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
