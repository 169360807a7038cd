-- Usage rolled up from DynamoDB's hourly counters by the nightly rollup.
CREATE TABLE usage_hourly (
    hour              timestamptz NOT NULL,
    key_id            text        NOT NULL,
    model             text        NOT NULL,
    requests          bigint      NOT NULL DEFAULT 0,
    errors            bigint      NOT NULL DEFAULT 0,
    prompt_tokens     bigint      NOT NULL DEFAULT 0,
    completion_tokens bigint      NOT NULL DEFAULT 0,
    latency_ms_sum    bigint      NOT NULL DEFAULT 0,
    latency_buckets   bigint[]    NOT NULL,
    PRIMARY KEY (hour, key_id, model)
);

CREATE TABLE usage_daily (
    day               date        NOT NULL,
    key_id            text        NOT NULL,
    model             text        NOT NULL,
    requests          bigint      NOT NULL DEFAULT 0,
    errors            bigint      NOT NULL DEFAULT 0,
    prompt_tokens     bigint      NOT NULL DEFAULT 0,
    completion_tokens bigint      NOT NULL DEFAULT 0,
    latency_ms_sum    bigint      NOT NULL DEFAULT 0,
    latency_buckets   bigint[]    NOT NULL,
    PRIMARY KEY (day, key_id, model)
);

CREATE TABLE rollup_runs (
    id          bigserial   PRIMARY KEY,
    day         date        NOT NULL,
    started_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    status      text        NOT NULL,
    rows        integer     NOT NULL DEFAULT 0,
    error       text
);
CREATE INDEX rollup_runs_day ON rollup_runs (day, finished_at DESC);
