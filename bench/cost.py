"""Cost model: calls per completion, handler durations, and the AWS bill per 1,000,000.

In one process (bench/harness.py): the real handlers, an emulator in a child
process, real Redis. Every AWS call is counted by service and operation with
botocore's event hooks (on every client, pynamodb's included), every Redis
round trip and command on redis-py's connection, every Lambda invocation.

Traffic shapes:
- busy: rounds of 10 API calls in flight, then one worker invocation for
  their batch of 10 (Lambda's SQS batch size), as under steady load;
- one at a time: a request, its own worker invocation (batch of 1), as at
  low traffic; this also gives the API Lambda's duration, which includes the
  wait for the worker (the API Lambda blocks until the result is pushed).

Item sizes for DynamoDB's write units come from the items actually written
(DynamoDB's size rules), index projections from infra/template.json, memory
sizes from .chalice/config.json. Every price and assumption is printed next to
the result.

Run: `.venv/bin/python -m bench cost [--rounds 30] [--sequential 40] [--emulator stock]`.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import time
from collections import Counter
from typing import Any

from bench.common import ROOT, command_line, heading, machine, print_machine, save, summary
from bench.harness import Harness, Tally

# us-east-1 list prices (as given in the issue; on-demand, no free tier)
PRICES = {
    "apigw_rest_per_m": 3.50,
    "apigw_http_per_m": 1.00,
    "lambda_requests_per_m": 0.20,
    "lambda_gb_s": 0.0000166667,
    "sqs_per_m": 0.40,
    "ddb_wru_per_m": 0.625,
    "ddb_rru_per_m": 0.125,
}
BATCH = 10
TABLES = {  # logical id in infra/template.json -> environment variable with its name
    "ApiKeysTable": "API_KEYS_TABLE",
    "DeploymentsTable": "DEPLOYMENTS_TABLE",
    "JobsTable": "JOBS_TABLE",
    "UsageTable": "USAGE_TABLE",
}


# ---- DynamoDB item size (the documented rules) ---------------------------------


def _number_size(text: str) -> int:
    digits = text.lstrip("-").replace(".", "").lstrip("0").rstrip("0") or "0"
    return (len(digits) + 1) // 2 + 1


def attribute_size(value: dict[str, Any]) -> int:
    ((kind, raw),) = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        return _number_size(str(raw))
    if kind == "B":
        return len(raw) if isinstance(raw, bytes) else len(base64.b64decode(raw))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(v.encode()) for v in raw)
    if kind == "NS":
        return sum(_number_size(v) for v in raw)
    if kind == "L":
        return 3 + sum(1 + attribute_size(v) for v in raw)
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + attribute_size(v) for k, v in raw.items())
    return len(json.dumps(raw))


def item_size(item: dict[str, dict[str, Any]]) -> int:
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


def units(size: int, unit: int) -> int:
    return max(math.ceil(size / unit), 1)


# ---- what the template and the Chalice config say ---------------------------------


def table_schemas() -> dict[str, dict[str, Any]]:
    template = json.loads((ROOT / "infra" / "template.json").read_text())
    out = {}
    for logical, resource in template["Resources"].items():
        if resource.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = resource["Properties"]
        keys = [k["AttributeName"] for k in props["KeySchema"]]
        indexes = []
        for gsi in props.get("GlobalSecondaryIndexes", []):
            projection = gsi["Projection"]
            indexes.append(
                {
                    "name": gsi["IndexName"],
                    "keys": [k["AttributeName"] for k in gsi["KeySchema"]],
                    "type": projection["ProjectionType"],
                    "include": projection.get("NonKeyAttributes", []),
                }
            )
        out[logical] = {"keys": keys, "indexes": indexes}
    return out


def lambda_memory_mb() -> dict[str, int]:
    config = json.loads((ROOT / ".chalice" / "config.json").read_text())
    functions = config.get("lambda_functions", {})
    default = int(config.get("lambda_memory_size", 128))
    return {
        name: int(functions.get(name, {}).get("lambda_memory_size", default))
        for name in ("api_handler", "worker")
    }


def projected(item: dict[str, Any], table_keys: list[str], index: dict[str, Any]) -> dict[str, Any] | None:
    """The item as the index stores it (None: the item has no index key, not in the index)."""
    if any(k not in item for k in index["keys"]):
        return None
    if index["type"] == "ALL":
        return item
    keep = set(table_keys) | set(index["keys"])
    if index["type"] == "INCLUDE":
        keep |= set(index["include"])
    return {k: v for k, v in item.items() if k in keep}


# ---- the measurement ----------------------------------------------------------------


def per_completion(tally: Tally, completions: int) -> dict[str, Any]:
    aws: Counter[str] = Counter()
    by_role: Counter[str] = Counter()
    for (role, service, op), count in tally.aws.items():
        aws[f"{role} {service}.{op}"] += count
        by_role[role] += count
    redis_commands: Counter[str] = Counter()
    for (role, command), count in tally.redis_commands.items():
        redis_commands[f"{role} {command}"] += count
    return {
        "completions": completions,
        "aws_calls": {k: v / completions for k, v in sorted(aws.items())},
        "aws_calls_by_role": {k: v / completions for k, v in sorted(by_role.items())},
        "aws_calls_total": sum(tally.aws.values()) / completions,
        "aws_by_resource": {
            f"{r} {op} {res}": v / completions for (r, op, res), v in sorted(tally.by_resource.items())
        },
        "aws_ms_mean": {
            f"{role} {service}.{op}": tally.aws_ms[(role, service, op)] / count
            for (role, service, op), count in sorted(tally.aws.items())
        },
        "redis_round_trips": {k: v / completions for k, v in sorted(tally.redis_round_trips.items())},
        "redis_commands": {k: v / completions for k, v in sorted(redis_commands.items())},
    }


def written_items(harness: Harness, tally: Tally) -> dict[str, Any]:
    """The items the hot path wrote: each job as put and as it ended, a counter, the key row."""
    import os

    import boto3

    names = {logical: os.environ[env] for logical, env in TABLES.items()}
    logical_of = {v: k for k, v in names.items()}
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=harness.emulator.url)
    puts: list[dict[str, Any]] = []
    counter_keys: list[dict[str, Any]] = []
    apikey_keys: list[dict[str, Any]] = []
    for _role, operation, params in tally.dynamodb_writes:
        if operation == "PutItem" and logical_of.get(params["TableName"]) == "JobsTable":
            puts.append(params["Item"])
        if operation == "TransactWriteItems":
            for entry in params["TransactItems"]:
                op = entry.get("Update") or {}
                table = logical_of.get(op.get("TableName", ""))
                if table == "UsageTable":
                    counter_keys.append(op["Key"])
                elif table == "ApiKeysTable":
                    apikey_keys.append(op["Key"])

    def read(table: str, key: dict[str, Any]) -> dict[str, Any] | None:
        got: dict[str, Any] | None = client.get_item(
            TableName=names[table], Key=key, ConsistentRead=True
        ).get("Item")
        return got

    jobs = []
    for put in puts[:100]:
        final = read("JobsTable", {"job_id": put["job_id"]})
        if final is not None:
            jobs.append((put, final))
    counters = [c for c in (read("UsageTable", k) for k in counter_keys[:10]) if c]
    api_keys = [k for k in (read("ApiKeysTable", k) for k in apikey_keys[:1]) if k]
    deployment = read("DeploymentsTable", {"name": {"S": "gpt-3.5-turbo"}})
    return {
        "jobs": jobs,
        "counters": counters,
        "api_keys": api_keys,
        "deployments": [deployment] if deployment else [],
    }


def item_sizes(items: dict[str, Any]) -> dict[str, Any]:
    return {
        "job_put": summary([float(item_size(put)) for put, _ in items["jobs"]]),
        "job_final": summary([float(item_size(final)) for _, final in items["jobs"]]),
        "usage_counter": summary([float(item_size(i)) for i in items["counters"]]),
        "api_key": summary([float(item_size(i)) for i in items["api_keys"]]),
        "deployment": summary([float(item_size(i)) for i in items["deployments"]]),
    }


def write_units(
    items: dict[str, Any], schemas: dict[str, Any], per_batch: int = BATCH, result_chars: int | None = None
) -> dict[str, Any]:
    """DynamoDB write units per completion, line by line, averaged over the jobs written.

    With `result_chars`, each job's stored answer is replaced by one of that many
    characters (what-if: longer answers than the simulated model's 8-40 words).
    """
    jobs = schemas["JobsTable"]
    pairs = items["jobs"]
    if result_chars is not None:
        pairs = [(put, {**final, "result": {"S": "x" * result_chars}}) for put, final in pairs]
    counter = max((item_size(c) for c in items["counters"]), default=300)
    api_key = max((item_size(k) for k in items["api_keys"]), default=400)

    def mean(values: list[float]) -> float:
        return sum(values) / len(values) if values else 0.0

    lines: list[dict[str, Any]] = [
        {
            "what": "Job PutItem (queued), base table",
            "wru": mean([units(item_size(p), 1024) for p, _ in pairs]),
            "per": 1,
        }
    ]
    for index in jobs["indexes"]:
        sizes = [projected(p, jobs["keys"], index) for p, _ in pairs]
        lines.append(
            {
                "what": f"  the same, index {index['name']} ({index['type']})",
                "wru": mean([units(item_size(x), 1024) if x is not None else 0 for x in sizes]),
                "per": 1,
            }
        )
    lines.append(
        {
            "what": "Job update in TransactWriteItems (x2: transactional)",
            "wru": mean([2 * units(max(item_size(p), item_size(f)), 1024) for p, f in pairs]),
            "per": 1,
        }
    )
    for index in jobs["indexes"]:
        changed = index["type"] != "KEYS_ONLY"  # the update sets status, tokens, result: not keys
        sizes = [projected(f, jobs["keys"], index) for _, f in pairs]
        lines.append(
            {
                "what": f"  the same, index {index['name']} ({index['type']})",
                "wru": mean([units(item_size(x), 1024) if x is not None and changed else 0 for x in sizes]),
                "per": 1,
            }
        )
    lines.append(
        {
            "what": "usage counter ADD in the transaction (x2)",
            "wru": 2 * units(counter, 1024),
            "per": per_batch,
        }
    )
    lines.append(
        {"what": "key totals ADD in the transaction (x2)", "wru": 2 * units(api_key, 1024), "per": per_batch}
    )
    total = sum(line["wru"] / line["per"] for line in lines)
    return {"lines": lines, "wru_per_completion": total}


def _with_projection(schemas: dict[str, Any], projection: str, include: list[str]) -> dict[str, Any]:
    changed = json.loads(json.dumps(schemas))
    for index in changed["JobsTable"]["indexes"]:
        index["type"] = projection
        index["include"] = include
    return changed


def bill(
    calls: dict[str, Any],
    durations: dict[str, float],
    wru: float,
    rru: float,
    batch: float,
    memory: dict[str, int],
) -> dict[str, Any]:
    """Dollars per 1,000,000 completions."""
    million = 1_000_000
    sqs_requests = calls.get("sqs", 0.0)
    api_gb_s = memory["api_handler"] / 1024 * math.ceil(durations["api_ms"]) / 1000
    worker_gb_s = memory["worker"] / 1024 * math.ceil(durations["worker_batch_ms"]) / 1000 / batch
    lines = {
        "API Gateway HTTP API (HttpApiUrl)": PRICES["apigw_http_per_m"],
        "Lambda requests (API 1 + worker 1/batch)": (1 + 1 / batch) * PRICES["lambda_requests_per_m"],
        "Lambda compute, API handler": api_gb_s * million * PRICES["lambda_gb_s"],
        "Lambda compute, worker": worker_gb_s * million * PRICES["lambda_gb_s"],
        "SQS requests": sqs_requests * PRICES["sqs_per_m"],
        "DynamoDB write units": wru * PRICES["ddb_wru_per_m"],
        "DynamoDB read units": rru * PRICES["ddb_rru_per_m"],
    }
    total = sum(lines.values())
    return {
        "lines": lines,
        "total": total,
        "total_with_rest_api": total - PRICES["apigw_http_per_m"] + PRICES["apigw_rest_per_m"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench cost")
    parser.add_argument("--rounds", type=int, default=30, help="busy rounds of 10 completions")
    parser.add_argument("--sequential", type=int, default=40, help="one-at-a-time completions")
    parser.add_argument(
        "--emulator",
        choices=("fast", "stock"),
        default="fast",
        help="fast: moto with infra/local/moto_server.py's fixes (durations nearer AWS's)",
    )
    args = parser.parse_args(argv)
    info = machine()
    heading("cost: calls per completion and the AWS bill per 1,000,000")
    print_machine(info)
    module = "infra.local.moto_server" if args.emulator == "fast" else "moto.server"
    harness = Harness(module, batch=BATCH).start()
    try:
        report = measure(harness, args.rounds, args.sequential)
    finally:
        harness.stop()
    report.update({"machine": info, "command": command_line(), "emulator": module})
    print_report(report)
    save("cost", report)
    return report


def measure(harness: Harness, rounds: int, sequential: int) -> dict[str, Any]:
    # A fresh process: connections, Lua scripts, caches, clients.
    harness.clear_stats()
    harness.round()
    cold = per_completion(harness.recorder.reset(), BATCH)

    # Busy: batches of 10.
    harness.clear_stats()
    harness.recorder.record_writes = True
    began = time.perf_counter()
    for _ in range(rounds):
        harness.round()
    busy_seconds = time.perf_counter() - began
    harness.recorder.record_writes = False
    busy_tally = harness.recorder.reset()
    completions = rounds * BATCH
    busy = per_completion(busy_tally, completions)
    busy["seconds"] = busy_seconds
    busy["batch_sizes"] = dict(Counter(harness.batch_sizes))
    busy["worker_batch_ms"] = summary([s.wall_ms for s in harness.worker_stats])
    busy["worker_batch_cpu_ms"] = summary([s.cpu_ms for s in harness.worker_stats])
    busy["api_cpu_ms"] = summary([s.cpu_ms for s in harness.api_stats])
    busy["api_ms_excluding_wait"] = summary([s.wall_ms - s.blpop_ms for s in harness.api_stats])
    items = written_items(harness, busy_tally)
    sizes = item_sizes(items)

    # One at a time: the API Lambda's duration includes the wait for the worker.
    harness.clear_stats()
    with harness.background_worker():
        time.sleep(0.2)
        harness.recorder.reset()
        for _ in range(sequential):
            harness.call_api()
    seq_tally = harness.recorder.reset()
    seq = per_completion(seq_tally, sequential)
    seq["api_ms"] = summary([s.wall_ms for s in harness.api_stats])
    seq["api_wait_ms"] = summary([s.blpop_ms for s in harness.api_stats])
    seq["worker_batch_ms"] = summary([s.wall_ms for s in harness.worker_stats])
    seq["batch_sizes"] = dict(Counter(harness.batch_sizes))

    # A key seen a moment ago: no DynamoDB read (KEY_CACHE_SECONDS).
    harness.clear_stats()
    with harness.background_worker():
        harness.call_api()
        harness.recorder.reset()
        harness.call_api()
        repeat = harness.recorder.reset()
    repeat_reads = sum(
        v for (role, _, op), v in repeat.aws.items() if role == "api" and op in ("GetItem", "Query")
    )

    schemas = table_schemas()
    wru = write_units(items, schemas)
    from chalicelib.request_log import _ATTRIBUTES as LOG_COLUMNS

    include = [c for c in LOG_COLUMNS if c not in ("job_id", "key_id", "day", "created_at")]
    what_if = {
        "as is": wru["wru_per_completion"],
        "answers of 2,000 characters": write_units(items, schemas, result_chars=2000)["wru_per_completion"],
        "job indexes INCLUDE the request log's columns": write_units(
            items, _with_projection(schemas, "INCLUDE", include)
        )["wru_per_completion"],
        "the same, answers of 2,000 characters": write_units(
            items, _with_projection(schemas, "INCLUDE", include), result_chars=2000
        )["wru_per_completion"],
        "job indexes KEYS_ONLY (the log reads rows by key)": write_units(
            items, _with_projection(schemas, "KEYS_ONLY", [])
        )["wru_per_completion"],
    }
    memory = lambda_memory_mb()
    # Reads per completion as measured (busy: one process serves every request, so the key and
    # deployment caches are shared; on Lambda each instance has its own), and the worst case.
    api_reads = sum(v for k, v in busy["aws_by_resource"].items() if k.startswith("api GetItem"))
    rru_measured = api_reads * 1.0
    rru_worst = 1.0 + 0.5  # key (consistent, 1 RRU) + deployment (eventually consistent, 0.5 RRU)
    sqs_calls = sum(v for k, v in busy["aws_calls"].items() if " sqs." in k)
    durations = {"api_ms": seq["api_ms"]["p50"], "worker_batch_ms": busy["worker_batch_ms"]["p50"]}
    busy_bill = bill({"sqs": sqs_calls}, durations, wru["wru_per_completion"], rru_measured, BATCH, memory)
    worst_bill = bill(
        {"sqs": sum(v for k, v in seq["aws_calls"].items() if " sqs." in k)},
        {"api_ms": seq["api_ms"]["p50"], "worker_batch_ms": seq["worker_batch_ms"]["p50"]},
        write_units(items, schemas, per_batch=1)["wru_per_completion"],
        rru_worst,
        1,
        memory,
    )
    return {
        "cold_round": cold,
        "busy": busy,
        "sequential": seq,
        "repeat_key_reads": repeat_reads,
        "item_sizes": sizes,
        "schemas": schemas,
        "write_units": wru,
        "write_units_what_if": what_if,
        "memory_mb": memory,
        "durations_used": durations,
        "rru_per_completion": {"measured_busy": rru_measured, "worst": rru_worst},
        "bill_busy": busy_bill,
        "bill_one_at_a_time": worst_bill,
        "prices": PRICES,
    }


def _targets(report: dict[str, Any]) -> list[tuple[str, str, bool]]:
    busy = report["busy"]
    aws_total = busy["aws_calls_total"]
    ddb_writes = sum(
        v
        for k, v in busy["aws_calls"].items()
        if k.split()[1] in ("dynamodb.PutItem", "dynamodb.UpdateItem", "dynamodb.TransactWriteItems")
    )
    api_rt = busy["redis_round_trips"].get("api", 0.0)
    api_cmds = {k.split()[1]: v for k, v in busy["redis_commands"].items() if k.startswith("api ")}
    return [
        (
            "AWS API calls per completion, amortised <= 3",
            f"{aws_total:.2f} (DynamoDB writes {ddb_writes:.2f})",
            aws_total <= 3 and ddb_writes <= 2,
        ),
        (
            "no DynamoDB read for a key seen in the last seconds",
            f"{report['repeat_key_reads']} reads on the second request of a key",
            report["repeat_key_reads"] == 0,
        ),
        (
            "<= 2 Redis round trips on the API side, the wait is a push",
            f"{api_rt:.2f} round trips ({', '.join(f'{k} {v:.2f}' for k, v in api_cmds.items())})",
            api_rt <= 2.0 + 1e-9 and "BLPOP" in api_cmds,
        ),
    ]


def print_report(report: dict[str, Any]) -> None:
    busy, seq, cold = report["busy"], report["sequential"], report["cold_round"]
    print(
        f"emulator: {report['emulator']}; traffic: {busy['completions']} completions in batches "
        f"{busy['batch_sizes']}"
    )
    print("AWS API calls per completion (busy, batches of 10):")
    for name, value in busy["aws_calls"].items():
        print(f"  {name:<34} {value:6.3f}   mean {busy['aws_ms_mean'][name]:6.1f} ms each (emulator)")
    print(f"  {'total':<34} {busy['aws_calls_total']:6.3f}")
    print("  by table / queue: " + ", ".join(f"{k} {v:.3f}" for k, v in busy["aws_by_resource"].items()))
    print(
        "Redis per completion (busy): round trips "
        + ", ".join(f"{k} {v:.2f}" for k, v in busy["redis_round_trips"].items())
    )
    print("  commands: " + ", ".join(f"{k} {v:.2f}" for k, v in busy["redis_commands"].items()))
    print(
        f"Lambda invocations per completion: API 1, worker {1 / BATCH:.2f} (busy), 1 (one at a time: "
        f"batches {seq['batch_sizes']})"
    )
    print("first round of a fresh process (10 completions), per completion:")
    print("  AWS: " + ", ".join(f"{k} {v:.2f}" for k, v in cold["aws_calls"].items()))
    print("  Redis round trips: " + ", ".join(f"{k} {v:.2f}" for k, v in cold["redis_round_trips"].items()))
    print("  Redis commands: " + ", ".join(f"{k} {v:.2f}" for k, v in cold["redis_commands"].items()))
    print("handler durations (this machine, emulator):")
    print(
        f"  API, one at a time (billed: includes the wait): p50 {seq['api_ms']['p50']:.1f} ms, "
        f"p95 {seq['api_ms']['p95']:.1f} ms; of which waiting in BLPOP p50 {seq['api_wait_ms']['p50']:.1f} ms"
    )
    print(
        f"  API, busy, excluding the wait: p50 {busy['api_ms_excluding_wait']['p50']:.1f} ms; "
        f"thread CPU p50 {busy['api_cpu_ms']['p50']:.2f} ms"
    )
    print(
        f"  worker, batch of 10: p50 {busy['worker_batch_ms']['p50']:.1f} ms, thread CPU p50 "
        f"{busy['worker_batch_cpu_ms']['p50']:.2f} ms; batch of 1: p50 {seq['worker_batch_ms']['p50']:.1f} ms"
    )
    sizes = report["item_sizes"]
    print(
        "item sizes (bytes, DynamoDB rules): "
        + ", ".join(
            f"{k} {v.get('p50', 0):.0f}" for k, v in sizes.items() if isinstance(v, dict) and "n" in v
        )
    )
    print(
        "DynamoDB write units per completion (items <= 1 KB = 1 unit; transactional x2; "
        "indexes from the template):"
    )
    for line in report["write_units"]["lines"]:
        per = f" / {line['per']}" if line["per"] != 1 else ""
        print(f"  {line['what']:<58} {line['wru']:.2f}{per}")
    print(f"  {'total':<58} {report['write_units']['wru_per_completion']:.2f}")
    print(
        "  what if (WRU per completion): "
        + "; ".join(f"{k} {v:.2f}" for k, v in report["write_units_what_if"].items())
    )
    rru = report["rru_per_completion"]
    print(
        f"DynamoDB read units per completion: measured {rru['measured_busy']:.3f}, "
        f"worst case {rru['worst']:.1f}"
    )
    for title, key, note in (
        (
            "busy (batches of 10, reads as measured)",
            "bill_busy",
            "durations: API one-at-a-time p50, worker batch-of-10 p50",
        ),
        (
            "one at a time (batches of 1, every key/deployment read missed)",
            "bill_one_at_a_time",
            "durations: one-at-a-time p50s",
        ),
    ):
        b = report[key]
        print(f"AWS bill per 1,000,000 chat completions, {title} ({note}):")
        for name, dollars in b["lines"].items():
            print(f"  {name:<48} ${dollars:8.3f}")
        print(
            f"  {'total':<48} ${b['total']:8.2f}   "
            f"(through Chalice's REST API instead, EndpointURL: ${b['total_with_rest_api']:.2f})"
        )
    prices = report["prices"]
    memory = report["memory_mb"]
    print("assumptions:")
    print(
        f"  prices us-east-1 list: API Gateway REST ${prices['apigw_rest_per_m']}/M, "
        f"HTTP ${prices['apigw_http_per_m']}/M; Lambda ${prices['lambda_requests_per_m']}/M requests + "
        f"${prices['lambda_gb_s']}/GB-s (x86, 1 ms billing); "
        f"SQS standard ${prices['sqs_per_m']}/M requests (a batch of 10 = 1); DynamoDB on-demand "
        f"${prices['ddb_wru_per_m']}/M WRU, ${prices['ddb_rru_per_m']}/M RRU; no free tier"
    )
    print(
        f"  memory from .chalice/config.json: API {memory['api_handler']} MB, worker {memory['worker']} MB; "
        "the API Lambda is billed for the whole wait for its result"
    )
    print(
        "  durations measured here against the emulator, not AWS; on AWS the API Lambda's wait also holds "
        "SQS -> Lambda pickup latency: each extra 10 ms of wait adds "
        f"${memory['api_handler'] / 1024 * 0.010 * 1e6 * prices['lambda_gb_s']:.3f} per 1M"
    )
    print(
        "  DynamoDB: writes per index as standard writes of the projected item; index projections from "
        "infra/template.json; reads: key GetItem strongly consistent (1 RRU), deployment eventually (0.5)"
    )
    print(
        "  not included: CloudWatch Logs, data transfer, ElastiCache (Redis), RDS (Postgres), the ESM's idle "
        "long polls (~0.65M SQS requests/month whatever the traffic, ~$0.26), the nightly rollup"
    )
    print("targets:")
    for title, value, met in _targets(report):
        print(f"  {'MET    ' if met else 'NOT MET'} {title}: {value}")


if __name__ == "__main__":
    main()
