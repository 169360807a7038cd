"""Per-key rate limits and monthly quota: one atomic Redis round trip per request.

Algorithm: GCRA (the generic cell rate algorithm), once for requests per
minute and once for tokens per minute. GCRA stores one number per limit (the
theoretical arrival time), needs no cleanup of old entries as a sliding log
does, and is exact at any instant rather than at window edges as a fixed
window is: a key with limit L may burst L at once and then gets L per minute,
evenly. Both limits, the monthly quota and the key's version are checked in
one Lua script, so the check is atomic across any number of API instances and
costs one round trip.

Tokens are reserved from the request's `max_tokens` (or `DEFAULT_MAX_TOKENS`)
times `n`, plus the prompt; the worker refunds the difference once the real
usage is known (`settle`), so a burst of long answers cannot overshoot by more
than the reservations in flight.

When Redis is unreachable the limiter fails open: requests are served
without limits, a warning is logged, and /health reports Redis down.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import redis
from redis.client import Pipeline
from redis.exceptions import NoScriptError

from chalicelib.errors import QuotaExceeded, RateLimited

log = logging.getLogger(__name__)

# KEYS: requests TAT, tokens TAT, monthly quota counter, key version
# ARGV: rpm, tpm, request cost, token cost, quota (-1: none)
# Returns: allowed, reason, remaining req, reset req ms, remaining tok,
#          reset tok ms, retry after ms, key version
_CHECK = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2])
local cost_req, cost_tok = tonumber(ARGV[3]), tonumber(ARGV[4])
local quota = tonumber(ARGV[5])
local version = tonumber(redis.call('GET', KEYS[4]) or '0')

local function gcra(key, limit, cost)
  local interval = 60000 / limit
  local burst = 60000
  local tat = tonumber(redis.call('HGET', key, 'tat') or '0')
  if tat < now then tat = now end
  local new_tat = tat + cost * interval
  local allow_at = new_tat - burst
  local wait = 0
  if allow_at > now then wait = allow_at - now end
  local used_if_taken = new_tat - now
  local used_now = tat - now
  return new_tat, wait, used_if_taken, used_now, interval
end

local function left(used, interval)
  local remaining = math.floor((60000 - used) / interval)
  if remaining < 0 then remaining = 0 end
  return remaining
end

local req_tat, req_wait, req_taken, req_now, req_int = gcra(KEYS[1], rpm, cost_req)
local tok_tat, tok_wait, tok_taken, tok_now, tok_int = gcra(KEYS[2], tpm, cost_tok)

local reason = 0
local retry = 0
if cost_tok > tpm then
  reason = 4
elseif quota >= 0 and tonumber(redis.call('GET', KEYS[3]) or '0') >= quota and cost_req > 0 then
  reason = 3
elseif req_wait > 0 then
  reason, retry = 1, req_wait
elseif tok_wait > 0 then
  reason, retry = 2, tok_wait
end

-- A refused request takes nothing: report the limits as they stand.
local req_used, tok_used = req_now, tok_now
if reason == 0 then req_used, tok_used = req_taken, tok_taken end
if reason == 0 and (cost_req > 0 or cost_tok > 0) then
  redis.call('HSET', KEYS[1], 'tat', req_tat, 'interval', req_int)
  redis.call('PEXPIRE', KEYS[1], math.ceil(req_tat - now) + 1000)
  redis.call('HSET', KEYS[2], 'tat', tok_tat, 'interval', tok_int)
  redis.call('PEXPIRE', KEYS[2], math.ceil(tok_tat - now) + 1000)
end
return {reason == 0 and 1 or 0, reason, left(req_used, req_int), math.ceil(req_used), left(tok_used, tok_int),
        math.ceil(tok_used), math.ceil(retry), version}
"""

# KEYS: tokens TAT, monthly quota counter; ARGV: tokens to refund, tokens used
_SETTLE = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) * 1000 + tonumber(now_parts[2]) / 1000
local refund = tonumber(ARGV[1])
local tat = tonumber(redis.call('HGET', KEYS[1], 'tat') or '0')
local interval = tonumber(redis.call('HGET', KEYS[1], 'interval') or '0')
if refund > 0 and tat > now and interval > 0 then
  local new_tat = tat - refund * interval
  if new_tat < now then new_tat = now end
  redis.call('HSET', KEYS[1], 'tat', new_tat)
end
if tonumber(ARGV[2]) > 0 then
  redis.call('INCRBY', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], 40 * 86400)
end
return 1
"""

_REASONS = {1: "requests", 2: "tokens", 3: "quota", 4: "too_large"}


def _keys(key_id: str, month: str) -> list[str]:
    return [f"rl:{key_id}:req", f"rl:{key_id}:tok", f"quota:{key_id}:{month}", f"keyver:{key_id}"]


def current_month(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).strftime("%Y-%m")


def format_duration(ms: int) -> str:
    """As OpenAI writes resets: `12ms`, `1s`, `6m0s`, `1h2m3s`."""
    if ms < 1000:
        return f"{max(ms, 0)}ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{round(seconds, 3):g}s"
    whole = int(round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return (f"{hours}h" if hours else "") + f"{minutes}m{secs}s"


@dataclass(frozen=True)
class LimitStatus:
    rpm: int
    tpm: int
    remaining_requests: int
    reset_requests_ms: int
    remaining_tokens: int
    reset_tokens_ms: int
    key_version: int
    # The month whose quota the tokens were reserved against: the worker settles against the same one.
    month: str

    def headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit-requests": str(self.rpm),
            "x-ratelimit-remaining-requests": str(self.remaining_requests),
            "x-ratelimit-reset-requests": format_duration(self.reset_requests_ms),
            "x-ratelimit-limit-tokens": str(self.tpm),
            "x-ratelimit-remaining-tokens": str(self.remaining_tokens),
            "x-ratelimit-reset-tokens": format_duration(self.reset_tokens_ms),
        }


class RateLimiter:
    """Built once per process: the scripts are registered once, then EVALSHA."""

    def __init__(self, client: redis.Redis) -> None:
        self._client = client
        self._check = client.register_script(_CHECK)
        self._settle = client.register_script(_SETTLE)

    def check(
        self,
        key_id: str,
        rpm: int,
        tpm: int,
        requests: int,
        tokens: int,
        monthly_quota: int | None,
    ) -> LimitStatus | None:
        """Reserve `requests` and `tokens` or raise 429; None if Redis is down (fail open: nothing
        was reserved)."""
        month = current_month()
        try:
            raw = self._check(
                keys=_keys(key_id, month),
                args=[rpm, tpm, requests, tokens, -1 if monthly_quota is None else monthly_quota],
            )
        except redis.RedisError as exc:
            log.warning("rate limits not enforced, Redis unavailable: %s", exc.__class__.__name__)
            return None
        allowed, reason, req_left, req_reset, tok_left, tok_reset, retry_ms, version = (int(v) for v in raw)
        status = LimitStatus(rpm, tpm, req_left, req_reset, tok_left, tok_reset, version, month)
        if allowed:
            return status
        raise _refusal(_REASONS[reason], status, retry_ms, tokens, monthly_quota)

    def publish_key_version(self, key_id: str, version: int) -> None:
        """Tell every API instance that the key changed (best effort: caches expire anyway)."""
        try:
            self._client.set(f"keyver:{key_id}", version)
        except redis.RedisError as exc:
            log.warning("key change not broadcast (caches expire in seconds): %s", exc.__class__.__name__)

    def settle(self, settlements: list[Settlement]) -> None:
        """Refund what requests reserved but did not use and add their use to
        the monthly quota: one pipelined round trip for a whole batch."""
        if not settlements:
            return
        try:
            pipe = self._client.pipeline(transaction=False)
            self.add_settlements(pipe, settlements)
            self.resettle_unscripted(settlements, pipe.execute(raise_on_error=False))
        except redis.RedisError as exc:
            log.warning("token reservations not settled: %s", exc.__class__.__name__)

    def add_settlements(self, pipe: Pipeline, settlements: list[Settlement]) -> int:
        """Queue the settlements on a pipeline the caller executes, so they share its round trip, and
        say how many commands that queued (their replies go to `resettle_unscripted`).

        It queues SCRIPT LOAD, then one EVALSHA per settlement. Not the registered `Script`: redis-py
        sends SCRIPT EXISTS before every pipeline that carries one, a round trip more per batch. The
        load in the same pipeline means a Redis that restarted or flushed its scripts still runs the
        settlements before the pipeline's later commands (the waiters' notifications).
        """
        if not settlements:
            return 0
        pipe.script_load(_SETTLE)
        for item in settlements:
            keys, args = item.script_call()
            pipe.evalsha(self._settle.sha, len(keys), *keys, *args)
        return 1 + len(settlements)

    def resettle_unscripted(self, settlements: list[Settlement], replies: list[object]) -> None:
        """Check the replies (pipeline executed with `raise_on_error=False`) of what `add_settlements`
        queued; redo a settlement refused with NOSCRIPT (its script flushed between the load and the
        call) through the registered script, which loads it again."""
        if not settlements:
            return
        failed = replies[0] if isinstance(replies[0], Exception) else None
        for item, reply in zip(settlements, replies[1 : 1 + len(settlements)], strict=True):
            if isinstance(reply, NoScriptError):
                keys, args = item.script_call()
                self._settle(keys=keys, args=args)
            elif isinstance(reply, Exception) and failed is None:
                failed = reply  # raised once the other settlements are redone
        if failed is not None:
            raise failed


@dataclass(frozen=True)
class Settlement:
    key_id: str
    month: str
    reserved_tokens: int
    used_tokens: int

    @classmethod
    def of_job(cls, key_id: str, month: str | None, reserved: float | None, used: int) -> Settlement:
        return cls(key_id, month or current_month(), int(reserved or 0), used)

    def script_call(self) -> tuple[list[str], list[int]]:
        """KEYS and ARGV of the settle script: the tokens TAT and the month's quota counter; the
        refund (what was reserved but not used) and the tokens used."""
        keys = _keys(self.key_id, self.month)
        return [keys[1], keys[2]], [max(self.reserved_tokens - self.used_tokens, 0), self.used_tokens]


def _refusal(
    reason: str, status: LimitStatus, retry_ms: int, tokens: int, quota: int | None
) -> RateLimited | QuotaExceeded:
    headers = status.headers()
    if reason == "quota":
        return QuotaExceeded(
            f"This key has used its monthly quota of {quota} tokens. Raise the key's "
            "monthly_token_quota or wait for the next month (UTC).",
            headers=headers,
        )
    if reason == "too_large":
        return RateLimited(
            f"Request too large: it may use {tokens} tokens (prompt + max_tokens x n), above this "
            f"key's limit of {status.tpm} tokens per minute. Shorten the prompt, lower max_tokens or n, "
            "or raise the key's rate_limit_tpm.",
            headers=headers,
            param="max_tokens",
        )
    retry_seconds = max(math.ceil(retry_ms / 1000), 1)
    headers["retry-after"] = str(retry_seconds)
    headers["retry-after-ms"] = str(retry_ms)
    if reason == "requests":
        message = f"Rate limit reached: {status.rpm} requests per minute for this key."
    else:
        message = (
            f"Rate limit reached: {status.tpm} tokens per minute for this key "
            f"(this request reserves {tokens})."
        )
    return RateLimited(f"{message} Retry in {format_duration(retry_ms)}.", headers=headers)
