"""GET /api/requests: the request log (Job rows), newest first, a page at a time.

With `apiKeyId` it reads the jobs-of-a-key index (key_id, created_at);
otherwise the jobs-of-a-day index (day, created_at), walking days backwards
from today for as long as the log is kept (`REQUEST_LOG_RETENTION_DAYS`). Both
are Queries in descending order over indexes that hold keys only (cheaper
writes on the hot path); each page of keys is then read from the table in one
BatchGetItem, and `model` and `status` filter those rows, so a filtered page
may take several reads. Only the log's columns are read: never the request
body or the result.

The cursor is opaque to clients: base64 of the index, its partition and the
last row's position, from which the next page's query starts.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import islice
from typing import Any

from chalice.app import Request
from pynamodb.exceptions import PynamoDBException

from chalicelib import jobs
from chalicelib.errors import InvalidRequest, ServiceUnavailable
from chalicelib.metrics import int_param, query_params, text_param
from chalicelib.models import JobRecord, int_or_none, iso_utc, utcnow
from chalicelib.services import Services

DEFAULT_LIMIT = 50
MAX_LIMIT = 200
STATUSES = (jobs.QUEUED, jobs.RUNNING, jobs.SUCCEEDED, jobs.FAILED, jobs.CANCELLED)
# What a log row shows; `request` and `result` are deliberately not read.
_ATTRIBUTES = [
    "job_id",
    "key_id",
    "day",
    "model",
    "status",
    "prompt_tokens",
    "completion_tokens",
    "queue_ms",
    "model_ms",
    "latency_ms",
    "error_code",
    "error_message",
    "created_at",
    "finished_at",
]
_FILTERED_PAGE_SIZE = 200


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the index, its partition, and the last row's keys."""

    index: str  # "by_key" | "by_day": the cursor's own names, stable across index renames
    partition: str  # a key id, or a day
    created_at: str  # as stored
    job_id: str

    def encode(self) -> str:
        raw = json.dumps([self.index, self.partition, self.created_at, self.job_id], separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, value: str) -> Cursor:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            index, partition, created_at, job_id = json.loads(raw)
            if index not in ("by_key", "by_day") or not all(
                isinstance(part, str) and part for part in (partition, created_at, job_id)
            ):
                raise ValueError(value)
            if index == "by_day":
                datetime.strptime(partition, "%Y-%m-%d")
        except (ValueError, TypeError, binascii.Error):
            raise InvalidRequest(
                "Invalid value for 'cursor': pass the next_cursor of a previous page unchanged.",
                param="cursor",
            ) from None
        return cls(index, partition, created_at, job_id)

    def start_key(self) -> dict[str, dict[str, str]]:
        """The query's ExclusiveStartKey: the table's key and the index's key."""
        partition_attribute = "key_id" if self.index == "by_key" else "day"
        return {
            "job_id": {"S": self.job_id},
            partition_attribute: {"S": self.partition},
            "created_at": {"S": self.created_at},
        }


def _cursor_after(index: str, record: JobRecord) -> Cursor:
    partition = record.key_id if index == "by_key" else record.day
    return Cursor(index, partition, JobRecord.created_at.serialize(record.created_at), record.job_id)


def _filter(model: str | None, status: str | None) -> Callable[[JobRecord], bool] | None:
    if model is None and status is None:
        return None
    return lambda row: (model is None or row.model == model) and (status is None or row.status == status)


def _index_entries(
    key_id: str | None, cursor: Cursor | None, page_size: int, oldest_day: str
) -> Iterator[tuple[str, JobRecord]]:
    """Index entries (keys only), newest first, after `cursor`, as (index, entry)."""
    if key_id is not None:
        start = cursor.start_key() if cursor is not None else None
        for entry in JobRecord.by_key.query(
            key_id, scan_index_forward=False, last_evaluated_key=start, page_size=page_size
        ):
            yield "by_key", entry
        return
    today = utcnow().date()
    day = datetime.strptime(cursor.partition, "%Y-%m-%d").date() if cursor is not None else today
    start = cursor.start_key() if cursor is not None else None
    while day.isoformat() >= oldest_day:
        for entry in JobRecord.by_day.query(
            day.isoformat(), scan_index_forward=False, last_evaluated_key=start, page_size=page_size
        ):
            yield "by_day", entry
        start = None
        day -= timedelta(days=1)


def _newest_first(
    key_id: str | None,
    cursor: Cursor | None,
    keep: Callable[[JobRecord], bool] | None,
    page_size: int,
    oldest_day: str,
) -> Iterator[tuple[str, JobRecord]]:
    """Log rows, newest first, after `cursor`, as (index, row): a page of index keys at a time, its
    rows read in one batch."""
    entries = _index_entries(key_id, cursor, page_size, oldest_day)
    while batch := list(islice(entries, page_size)):
        job_ids = [entry.job_id for _, entry in batch]
        rows = {row.job_id: row for row in JobRecord.batch_get(job_ids, attributes_to_get=_ATTRIBUTES)}
        for index, entry in batch:
            row = rows.get(entry.job_id)
            # A row gone since its index entry was read (expired) is simply not listed.
            if row is not None and (keep is None or keep(row)):
                yield index, row


def log_row(record: JobRecord) -> dict[str, Any]:
    return {
        "id": record.job_id,
        "key_id": record.key_id,
        "model": record.model,
        "status": record.status,
        "prompt_tokens": int(record.prompt_tokens or 0),
        "completion_tokens": int(record.completion_tokens or 0),
        "queue_ms": int_or_none(record.queue_ms),
        "model_ms": int_or_none(record.model_ms),
        "latency_ms": int_or_none(record.latency_ms),
        "error_code": record.error_code,
        "error_message": record.error_message,
        "created_at": iso_utc(record.created_at),
        "finished_at": iso_utc(record.finished_at),
    }


def list_requests(request: Request, services: Services) -> dict[str, Any]:
    """GET /api/requests?apiKeyId=&model=&status=&limit=&cursor="""
    params = query_params(request)
    key_id = text_param(params, "apiKeyId")
    model = text_param(params, "model")
    status = text_param(params, "status")
    if status is not None and status not in STATUSES:
        raise InvalidRequest(f"Invalid value for 'status': use one of {', '.join(STATUSES)}.", param="status")
    limit = int_param(params, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT)
    raw_cursor = text_param(params, "cursor")
    cursor = Cursor.decode(raw_cursor) if raw_cursor is not None else None
    if cursor is not None and (cursor.index == "by_key") != (key_id is not None):
        raise InvalidRequest("This cursor belongs to a listing with other filters.", param="cursor")
    if cursor is not None and key_id is not None and cursor.partition != key_id:
        raise InvalidRequest("This cursor belongs to another key's listing.", param="cursor")
    keep = _filter(model, status)
    page_size = _FILTERED_PAGE_SIZE if keep is not None else limit + 1
    retention = timedelta(days=services.settings.request_log_retention_days)
    oldest_day = (utcnow() - retention).date().isoformat()
    rows: list[tuple[str, JobRecord]] = []
    try:
        # One row more than asked for tells whether there is a next page.
        for item in _newest_first(key_id, cursor, keep, page_size, oldest_day):
            rows.append(item)
            if len(rows) > limit:
                break
    except PynamoDBException as exc:
        raise ServiceUnavailable(
            f"The request log (DynamoDB) is unavailable: {type(exc).__name__}.", code="dynamodb_unavailable"
        ) from exc
    page = rows[:limit]
    next_cursor = _cursor_after(*page[-1]).encode() if len(rows) > limit else None
    return {"object": "list", "data": [log_row(record) for _, record in page], "next_cursor": next_cursor}
