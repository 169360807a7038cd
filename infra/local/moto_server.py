"""moto's server with three O(size) hot spots fixed: the local stack's emulator.

    .venv/bin/python -m infra.local.moto_server -H 127.0.0.1 -p 5000

Measured in docs/PERFORMANCE.md (section 2): with moto as shipped a 2,000-job
backlog drains at ~6 jobs/s and the stack slows down as its tables grow; with
these patches, at ~240 jobs/s whatever the depth.

Same arguments as `python -m moto.server`. What it changes (moto 5.2.5; each
is emulator-only: AWS's services have none of these costs):

1. SQS ReceiveMessage checks each message's retention with
   `SQSBackend.is_message_valid_based_on_retention_period`, which calls
   `get_queue_attributes(["MessageRetentionPeriod"])`; that builds
   `Queue.attributes` three times, and each build counts the queue's delayed,
   invisible and visible messages (three scans of every message). A receive of
   10 messages from a 2,000-message queue makes ~180,000 message visits.
   Here: the retention period is read from the queue object directly.
2. SQS's clock, `unix_time()`, builds two datetimes per call and is called once
   per message per scan; here it is `time.time()` (same value).
3. DynamoDB TransactWriteItems deep-copies every table the transaction names,
   once per item, as a rollback copy: a 12-item commit against a jobs table of
   N rows copies 10*N items. The worker's commit gets slower with every job
   the stack has ever run. Here: only the touched items are copied and put
   back if the transaction is cancelled (same semantics).

4. DynamoDB writes are serialised by one lock: moto's threaded server can
   otherwise lose one of two concurrent ADDs to the same item.
5. The server finds each request's service by listing moto's package directory
   and matching every service's URL patterns, under a global lock; here the
   answer is kept per host.

Everything else is moto as shipped. The patches target moto 5.2.5 (the pinned
version); with any other version the server runs unpatched and says so.
"""

from __future__ import annotations

import copy as _copy
import logging
import sys
import threading
import time
import types
from typing import Any


def _fast_unix_time(dt: Any = None) -> float:
    if dt is None:
        return time.time()
    return float(_ORIGINAL_UNIX_TIME(dt))


def _fast_unix_time_millis(dt: Any = None) -> float:
    return _fast_unix_time(dt) * 1000.0


_ORIGINAL_UNIX_TIME: Any = None


def apply() -> None:
    global _ORIGINAL_UNIX_TIME
    from moto.dynamodb import models as ddb_models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table
    from moto.sqs import models as sqs_models

    # 1 + 2: SQS
    _ORIGINAL_UNIX_TIME = sqs_models.unix_time
    sqs_models.unix_time = _fast_unix_time
    sqs_models.unix_time_millis = _fast_unix_time_millis

    def is_message_valid_based_on_retention_period(self: Any, queue_name: str, message: Any) -> bool:
        queue = self.get_queue(queue_name)
        retain_until = int(queue.message_retention_period) + message.sent_timestamp / 1000
        return bool(retain_until > time.time())

    sqs_models.SQSBackend.is_message_valid_based_on_retention_period = (  # type: ignore[method-assign]
        is_message_valid_based_on_retention_period
    )

    # 3: DynamoDB transactions back up the items they touch, not whole tables.
    real_copy = _copy

    def _deepcopy(obj: Any, memo: Any = None) -> Any:
        # Only transact_write_items deep-copies Table objects in this module.
        return obj if isinstance(obj, Table) else real_copy.deepcopy(obj, memo)

    shim = types.SimpleNamespace(**{name: getattr(real_copy, name) for name in ("copy", "Error")})
    shim.deepcopy = _deepcopy
    ddb_models.copy = shim  # type: ignore[assignment]
    original = ddb_models.DynamoDBBackend.transact_write_items

    def _key_of(table: Any, op_type: str, op: dict[str, Any]) -> tuple[Any, Any]:
        attrs = op["Item"] if op_type == "Put" else op["Key"]
        hash_value = DynamoType(attrs[table.hash_key_attr])
        range_value = DynamoType(attrs[table.range_key_attr]) if table.range_key_attr else None
        return hash_value, range_value

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        backups: list[tuple[Any, Any, Any, Any]] = []
        for item in transact_items:
            try:
                op_type, op = next(iter(item.items()))
                table = self.get_table(op["TableName"])
                hash_value, range_value = _key_of(table, op_type, op)
                current = table.get_item(hash_value, range_value)
            except Exception:  # noqa: BLE001, S112 - the original call reports it properly
                continue
            backups.append((table, hash_value, range_value, real_copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, saved in reversed(backups):
                table.delete_item(hash_value, range_value)
                if saved is not None:
                    if range_value is not None:
                        table.items[hash_value][range_value] = saved
                    else:
                        table.items[hash_value] = saved
            raise

    ddb_models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]

    # 4: moto's server answers in threads, but its DynamoDB writes are
    # read-modify-write in Python with no lock: two workers adding to the same
    # item at once (a key's totals) could lose one ADD, which DynamoDB never
    # does. One lock serialises the writes, as DynamoDB's item-level atomicity
    # and serialisable transactions would.
    _serialise_writes(ddb_models.DynamoDBBackend)

    # 5: the server finds each request's service under one global lock, by listing moto's package
    # directory (twice: once for the gateway's host, once for the service the signature names) and
    # trying every service's URL patterns: a fifth of its CPU under load. The answer for a host
    # never changes, so it is computed once per host.
    _cache_service_lookup()


def _cache_service_lookup() -> None:
    from moto import backends
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules
    original = DomainDispatcherApplication.get_backend_for_host
    known: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in known:
            known[host] = original(self, host)
        return known[host]

    DomainDispatcherApplication.get_backend_for_host = get_backend_for_host  # type: ignore[method-assign]


PATCHED_MOTO_VERSION = "5.2.5"


_WRITE_LOCK = threading.RLock()
_WRITES = ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item")


def _serialise_writes(backend: Any) -> None:
    for name in _WRITES:
        original = getattr(backend, name, None)
        if original is None:
            continue

        def locked(self: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            with _WRITE_LOCK:
                return _original(self, *args, **kwargs)

        setattr(backend, name, locked)


def apply_if_supported() -> bool:
    """Patch moto (in this process) if it is the version the patches target."""
    import moto

    if moto.__version__ != PATCHED_MOTO_VERSION:
        print(f"moto {moto.__version__} is not {PATCHED_MOTO_VERSION}: running it unpatched", file=sys.stderr)
        return False
    apply()
    return True


def main(argv: list[str] | None = None) -> None:
    apply_if_supported()
    # One access-log line per AWS call ("POST / 200": every call looks alike) cost the emulator 3 % of
    # its CPU under load and filled the stack's log; errors are still logged.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from moto.server import main as moto_main

    moto_main(argv if argv is not None else sys.argv[1:])


if __name__ == "__main__":
    main()
