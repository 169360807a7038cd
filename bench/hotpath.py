"""Hot-path profile: CPU time per completion in the API and worker handlers.

In one process (bench/harness.py), rounds of 10 API calls in flight and one
worker invocation for their batch, against an emulator in another process and
real Redis, so the handlers' thread CPU time (`time.thread_time`) excludes
time blocked on I/O (sockets to the emulator and Redis, BLPOP).

Two passes: one without a profiler gives the CPU per completion; one under
cProfile, with each invocation profiled on its own thread with the thread CPU
clock as the timer, gives the functions where that CPU goes (its overhead
inflates the profiled pass, so shares are scaled to the unprofiled figure).

Run: `.venv/bin/python -m bench profile [--rounds 30] [--top 20]`; the merged
profiles are saved to .local/bench/hotpath-{api,worker}.prof (for snakeviz,
`python -m pstats`, ...).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from bench.common import RESULTS, ROOT, command_line, heading, machine, print_machine, save, summary
from bench.harness import Harness

BATCH = 10
# Work a request should never redo once the process is warm.
ONCE_PER_PROCESS = (
    ("botocore/session.py", "create_client"),
    ("botocore/client.py", "create_client"),
    ("botocore/endpoint.py", "create_endpoint"),
    ("redis/client.py", "register_script"),
    ("pynamodb/connection/base.py", "session"),
    ("pydantic/type_adapter.py", "__init__"),
    ("chalicelib/settings.py", "get_settings"),
    ("chalicelib/services.py", "__init__"),
)
# New connections (TCP) per completion.
CONNECTIONS = (
    ("redis/connection.py", "_connect"),
    ("urllib3/connection.py", "_new_conn"),
)
# Where the CPU of an AWS or Redis call goes (inclusive time per completion).
INCLUSIVE = (
    ("chalicelib/jobs.py", "submit"),
    ("pynamodb/models.py", "save"),
    ("botocore/client.py", "_make_api_call"),
    ("botocore/auth.py", "add_auth"),
    ("botocore/serialize.py", "serialize_to_request"),
    ("botocore/parsers.py", "parse"),
    ("urllib3/connection.py", "connect"),
    ("http/client.py", "parse_headers"),
    ("redis/commands/core.py", "__call__"),
    ("chalicelib/openai_schema.py", "parse_chat_request"),
    ("chalicelib/keys.py", "authenticate"),
    ("chalicelib/usage.py", "_write_transaction"),
    ("chalicelib/worker.py", "run_job"),
    ("chalicelib/jobs.py", "settle_and_publish"),
    ("chalicelib/ratelimit.py", "settle"),
)
# Our functions worth counting per request (a call count > 1 is repeated work).
WATCH = (
    ("chalicelib/keys.py", "authenticate"),
    ("chalicelib/keys.py", "is_well_formed"),
    ("chalicelib/keys.py", "hash_key"),
    ("chalicelib/ratelimit.py", "current_month"),
    ("chalicelib/ratelimit.py", "headers"),
    ("chalicelib/services.py", "get_services"),
    ("chalicelib/openai_schema.py", "parse_json_body"),
)


def package_of(filename: str) -> str:
    path = filename.replace("\\", "/")
    if path.startswith("~") or path.startswith("<"):
        return "builtins (C)"
    root = str(ROOT) + "/"
    if path.startswith(root):
        relative = path[len(root) :]
        if relative.startswith(("chalicelib/", "app.py")):
            return "ours (app.py, chalicelib/)"
        if relative.startswith("bench/"):
            return "bench harness"
        if relative.startswith("infra/"):
            return "infra/local"
    marker = "site-packages/"
    if marker in path:
        top = path.split(marker, 1)[1].split("/", 1)[0]
        top = top.removesuffix(".py")
        return {"pydantic_core": "pydantic", "dateutil": "python-dateutil"}.get(top, top)
    return "stdlib"


def by_package(stats: pstats.Stats) -> dict[str, float]:
    totals: dict[str, float] = defaultdict(float)
    for (filename, _line, _name), (_cc, _nc, tottime, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        totals[package_of(filename)] += tottime
    return dict(sorted(totals.items(), key=lambda kv: -kv[1]))


def top_functions(stats: pstats.Stats, key: str, limit: int, ours_only: bool = False) -> list[dict[str, Any]]:
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        package = package_of(filename)
        if package == "bench harness":
            continue
        if ours_only and not package.startswith("ours"):
            continue
        short = filename.replace(str(ROOT) + "/", "").split("site-packages/")[-1]
        rows.append(
            {
                "function": f"{short}:{line}({name})" if not short.startswith("~") else name,
                "package": package,
                "calls": ncalls,
                "self_s": tottime,
                "cum_s": cumtime,
            }
        )
    rows.sort(key=lambda r: -r["self_s" if key == "self" else "cum_s"])
    return rows[:limit]


def inclusive_of(stats: pstats.Stats, wanted: tuple[tuple[str, str], ...]) -> dict[str, float]:
    """Inclusive seconds of each wanted function (outermost frames only: recursion not double counted)."""
    out: dict[str, float] = {}
    for (filename, _line, name), (_cc, _nc, _tt, cumtime, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for suffix, function in wanted:
            if filename.replace("\\", "/").endswith(suffix) and name == function:
                out[f"{suffix}:{function}"] = out.get(f"{suffix}:{function}", 0.0) + cumtime
    return out


def calls_of(stats: pstats.Stats, wanted: tuple[tuple[str, str], ...]) -> dict[str, int]:
    out: dict[str, int] = {}
    for (filename, _line, name), (_cc, ncalls, _tt, _ct, _callers) in stats.stats.items():  # type: ignore[attr-defined]
        for suffix, function in wanted:
            if filename.replace("\\", "/").endswith(suffix) and name == function:
                out[f"{suffix}:{function}"] = out.get(f"{suffix}:{function}", 0) + ncalls
    return out


class Profiles:
    """One cProfile per invocation, on the invoking thread, timed by thread CPU."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self._lock = threading.Lock()

    def wrap(self, run: Callable[[], Any]) -> Any:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        try:
            return run()
        finally:
            profile.disable()
            with self._lock:
                self.profiles.append(profile)

    def stats(self) -> pstats.Stats:
        stats = pstats.Stats(self.profiles[0])
        for profile in self.profiles[1:]:
            stats.add(profile)
        return stats


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench profile")
    parser.add_argument("--rounds", type=int, default=30, help="rounds of 10 completions per pass")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--emulator", choices=("fast", "stock"), default="fast")
    args = parser.parse_args(argv)
    info = machine()
    heading("profile: CPU per completion in the handlers")
    print_machine(info)
    harness = Harness(
        "infra.local.moto_server" if args.emulator == "fast" else "moto.server", batch=BATCH
    ).start()
    try:
        for _ in range(3):  # warm: connections, scripts, caches, clients
            harness.round()
        harness.clear_stats()
        for _ in range(args.rounds):
            harness.round()
        api_cpu = [s.cpu_ms for s in harness.api_stats]
        worker_cpu = [s.cpu_ms for s in harness.worker_stats]
        api_wall = [s.wall_ms - s.blpop_ms for s in harness.api_stats]
        worker_wall = [s.wall_ms for s in harness.worker_stats]

        api_profiles, worker_profiles = Profiles(), Profiles()
        harness.wrap_api = api_profiles.wrap
        harness.wrap_worker = worker_profiles.wrap
        harness.clear_stats()
        for _ in range(args.rounds):
            harness.round()
        profiled_api_cpu = [s.cpu_ms for s in harness.api_stats]
        profiled_worker_cpu = [s.cpu_ms for s in harness.worker_stats]
    finally:
        harness.stop()

    completions = args.rounds * BATCH
    api_stats, worker_stats = api_profiles.stats(), worker_profiles.stats()
    RESULTS.mkdir(parents=True, exist_ok=True)
    api_stats.dump_stats(str(RESULTS / "hotpath-api.prof"))
    worker_stats.dump_stats(str(RESULTS / "hotpath-worker.prof"))
    api_mean = sum(api_cpu) / len(api_cpu)
    worker_per_completion = sum(worker_cpu) / completions
    report: dict[str, Any] = {
        "machine": info,
        "command": command_line(),
        "completions_per_pass": completions,
        "api_cpu_ms": summary(api_cpu),
        "worker_batch_cpu_ms": summary(worker_cpu),
        "api_wall_ms_excluding_wait": summary(api_wall),
        "worker_batch_wall_ms": summary(worker_wall),
        "cpu_ms_per_completion": {
            "api": api_mean,
            "worker (batch of 10, per completion)": worker_per_completion,
            "total": api_mean + worker_per_completion,
        },
        "profiler_inflation": {
            "api": (sum(profiled_api_cpu) / len(profiled_api_cpu)) / api_mean,
            "worker": (sum(profiled_worker_cpu) / len(profiled_worker_cpu))
            / (sum(worker_cpu) / len(worker_cpu)),
        },
    }
    for role, stats, unprofiled_ms, per in (
        ("api", api_stats, api_mean, completions),
        ("worker", worker_stats, worker_per_completion, completions),
    ):
        packages = by_package(stats)
        total = sum(packages.values()) or 1.0
        report[role] = {
            "cpu_ms_per_completion_by_package": {k: v / total * unprofiled_ms for k, v in packages.items()},
            "top_self": top_functions(stats, "self", args.top),
            "top_ours_cumulative": top_functions(stats, "cum", args.top, ours_only=True),
            "once_per_process_work_in_steady_state": {
                k: v / per for k, v in calls_of(stats, ONCE_PER_PROCESS).items()
            },
            "calls_per_completion": {k: v / per for k, v in calls_of(stats, WATCH).items()},
            "inclusive_cpu_ms_per_completion": {
                k: v / total * unprofiled_ms for k, v in inclusive_of(stats, INCLUSIVE).items()
            },
            "new_connections_per_completion": {k: v / per for k, v in calls_of(stats, CONNECTIONS).items()},
            "profiled_seconds": total,
        }
    print_report(report, args.top)
    save("hotpath", report)
    return report


def print_report(report: dict[str, Any], top: int) -> None:
    cpu = report["cpu_ms_per_completion"]
    print(
        f"completions per pass: {report['completions_per_pass']} (rounds of 10 in flight, then their batch)"
    )
    print(
        f"CPU per completion (thread CPU, no profiler): API {cpu['api']:.2f} ms + worker "
        f"{cpu['worker (batch of 10, per completion)']:.2f} ms = {cpu['total']:.2f} ms"
    )
    print(
        f"  API handler: CPU p50 {report['api_cpu_ms']['p50']:.2f} ms, wall excluding the wait p50 "
        f"{report['api_wall_ms_excluding_wait']['p50']:.1f} ms; worker batch of 10: CPU p50 "
        f"{report['worker_batch_cpu_ms']['p50']:.2f} ms, "
        f"wall p50 {report['worker_batch_wall_ms']['p50']:.1f} ms"
    )
    inflation = report["profiler_inflation"]
    print(
        f"  (cProfile inflates CPU x{inflation['api']:.1f} API, x{inflation['worker']:.1f} worker: "
        "shares below are scaled)"
    )
    for role in ("api", "worker"):
        data = report[role]
        print(f"{role}: CPU ms per completion by package (self time):")
        for package, ms in data["cpu_ms_per_completion_by_package"].items():
            if ms >= 0.005:
                print(f"  {package:<32} {ms:6.3f}")
        total_profiled = data["profiled_seconds"]
        print(f"{role}: top {top} functions by self CPU (share of the profiled CPU):")
        for row in data["top_self"]:
            print(
                f"  {row['self_s'] / total_profiled * 100:5.1f}%  "
                f"{row['calls'] / report['completions_per_pass']:6.2f}/compl  "
                f"{row['function'][:100]}"
            )
        print(f"{role}: our functions by cumulative CPU (share of the profiled CPU):")
        for row in data["top_ours_cumulative"][:12]:
            print(
                f"  {row['cum_s'] / total_profiled * 100:5.1f}%  "
                f"{row['calls'] / report['completions_per_pass']:6.2f}/compl  "
                f"{row['function'][:100]}"
            )
        print(f"{role}: inclusive CPU ms per completion (scaled):")
        for name, ms in sorted(data["inclusive_cpu_ms_per_completion"].items(), key=lambda kv: -kv[1]):
            print(f"  {ms:6.3f}  {name}")
        once = data["once_per_process_work_in_steady_state"]
        print(
            f"{role}: once-per-process work seen per completion in steady state: "
            + (", ".join(f"{k} {v:.2f}" for k, v in once.items()) or "none")
        )
        print(
            f"{role}: calls per completion: "
            + ", ".join(f"{k} {v:.2f}" for k, v in data["calls_per_completion"].items())
        )
        print(
            f"{role}: new TCP connections per completion: "
            + (", ".join(f"{k} {v:.2f}" for k, v in data["new_connections_per_completion"].items()) or "none")
            + " (moto's werkzeug server closes every connection; AWS keeps them alive)"
        )


if __name__ == "__main__":
    main()
