"""The hourly usage counters: their partitions, their sums, and reading them back.

The worker adds to `UsageCounterRecord` (chalicelib/usage.py, summing a batch
with this module's `Counters`); this module is also the read side shared by the
nightly rollup and the live part of the metrics API. An hour is read with one
Query per shard partition (`YYYY-MM-DDTHH#n`), never a Scan. Counters merge
by addition, latency histograms included, so shards, hours, keys and models
combine in any order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pynamodb.expressions.condition import Condition

from chalicelib.models import LATENCY_BUCKETS_MS, UsageCounterRecord

# Counter items per hour: spreads a busy hour's writes over this many
# partitions; the rollup reads each hour with this many queries.
USAGE_SHARDS = 4
BUCKETS = len(LATENCY_BUCKETS_MS)
PERCENTILES: tuple[tuple[str, float], ...] = (("p50", 0.50), ("p95", 0.95), ("p99", 0.99))


def hour_of(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H")


def latency_bucket(latency_ms: float) -> int:
    for index, upper in enumerate(LATENCY_BUCKETS_MS):
        if latency_ms <= upper:
            return index
    return len(LATENCY_BUCKETS_MS) - 1


def percentile(buckets: Sequence[int], quantile: float) -> int | None:
    """The upper bound (ms) of the bucket where the cumulative count reaches `quantile`.

    None when there are no requests. The last bucket is open-ended; it is
    reported as its lower bound (the largest finite bound, "at least that").
    """
    total = sum(buckets)
    if total <= 0:
        return None
    rank = max(math.ceil(quantile * total), 1)
    cumulative = 0
    for index, count in enumerate(buckets):
        cumulative += count
        if cumulative >= rank:
            return _bound(index)
    return _bound(len(buckets) - 1)


def _bound(index: int) -> int:
    upper = LATENCY_BUCKETS_MS[index]
    return int(upper if math.isfinite(upper) else LATENCY_BUCKETS_MS[index - 1])


@dataclass(slots=True)
class Counters:
    """Usage of some set of requests; adds up with any other."""

    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms_sum: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * BUCKETS)

    def merge(self, other: Counters) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.latency_ms_sum += other.latency_ms_sum
        self.buckets = [a + b for a, b in zip(self.buckets, other.buckets, strict=True)]

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @classmethod
    def from_record(cls, record: UsageCounterRecord) -> Counters:
        return cls(
            requests=int(record.requests or 0),
            errors=int(record.errors or 0),
            prompt_tokens=int(record.prompt_tokens or 0),
            completion_tokens=int(record.completion_tokens or 0),
            latency_ms_sum=int(record.latency_ms_sum or 0),
            buckets=[int(getattr(record, f"lat_{i}") or 0) for i in range(BUCKETS)],
        )

    @classmethod
    def from_sums(cls, sums: Sequence[Any]) -> Counters:
        """From the five sums and the bucket sums, in that order (a SQL row)."""
        requests, errors, prompt, completion, latency_sum, *buckets = (int(v or 0) for v in sums)
        return cls(requests, errors, prompt, completion, latency_sum, buckets[:BUCKETS])

    def public(self) -> dict[str, Any]:
        """The API's view: counts, tokens and latency percentiles."""
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "latency_ms": {name: percentile(self.buckets, q) for name, q in PERCENTILES},
        }


def split_key_model(key_model: str) -> tuple[str, str]:
    """`key_id#model` → (key_id, model); key ids never contain '#', models may."""
    key_id, _, model = key_model.partition("#")
    return key_id, model


def hour_partitions(hour: datetime) -> list[str]:
    return [f"{hour_of(hour)}#{shard}" for shard in range(USAGE_SHARDS)]


def read_hour(
    hour: datetime, key_id: str | None = None, model: str | None = None
) -> Iterator[tuple[str, str, Counters]]:
    """Every counter item of one UTC hour as (key_id, model, counters), shard by shard.

    The same (key, model) comes once per shard it was written to: callers
    merge. A key filter is a key condition (only that key's items are read);
    a model filter without a key is applied to what is read.
    """
    condition: Condition | None = None
    if key_id is not None and model is not None:
        condition = UsageCounterRecord.key_model == f"{key_id}#{model}"
    elif key_id is not None:
        condition = UsageCounterRecord.key_model.startswith(f"{key_id}#")
    for partition in hour_partitions(hour):
        for record in UsageCounterRecord.query(partition, range_key_condition=condition):
            item_key, item_model = split_key_model(record.key_model)
            if model is not None and item_model != model:
                continue
            yield item_key, item_model, Counters.from_record(record)


def hour_totals(
    hour: datetime, key_id: str | None = None, model: str | None = None
) -> dict[tuple[str, str], Counters]:
    """One hour's counters per (key_id, model), summed over the shards."""
    totals: dict[tuple[str, str], Counters] = {}
    for item_key, item_model, counters in read_hour(hour, key_id, model):
        found = totals.get((item_key, item_model))
        if found is None:
            totals[(item_key, item_model)] = counters
        else:
            found.merge(counters)
    return totals
