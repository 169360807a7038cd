"""A short soak on the shared stack: every accepted request accounted for, exactly once."""

from __future__ import annotations

from bench.soak import soak
from infra.local.launcher import RunningStack


def test_mixed_traffic_is_fully_accounted_for(stack: RunningStack) -> None:
    report = soak(stack, seconds=8, clients=4, keys=2)
    print(f"\nsoak: {report['requests']} requests in {report['seconds']}s, errors {report['errors']}")
    assert report["requests"] > 20
    assert report["lost"] == 0
    assert report["stuck"] == 0
    assert report["not_ended"] == 0
    assert set(report["by_mode"]) >= {"plain", "stream", "async"}
    assert len(report["keys"]) == 2
    for key in report["keys"].values():
        # The request log, the hourly counters and the key totals agree.
        assert key["request_log"] == key["counters"] == key["key_total"] >= key["accepted"] > 0
    # Only the poisoned requests may fail: as the model's error, or as a 504 when their
    # retries outlast the wait (the job then ends failed later, and is accounted for).
    assert all(kind.startswith("poison") for kind in report["errors"]), report["errors"]
