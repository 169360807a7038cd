"""Schemathesis fuzzes the running stack with requests generated from docs/openapi.yaml.

Every operation gets a bounded number of generated requests, valid ones
(positive) and invalid ones (negative); each answer must not be a 5xx, must
have a status the spec documents for the operation, and must match the
documented schema. Admin operations use the admin token, /v1 a fresh key with
generous limits.

The spec is narrowed for the run (`fuzz_document`): each narrowing says why.
They keep the run fast and this machine's traffic local.
Objects other tests rely on (the default deployments, keys that existed
before the run, the fuzzer's own key) are never changed or deleted: a
generated request aimed at one is pointed at a sacrificial object instead.
"""

from __future__ import annotations

import copy
import json
import os
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import hypothesis
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.errors import FailureGroup
from schemathesis.specs.openapi.checks import response_schema_conformance, status_code_conformance

from infra.local.launcher import RunningStack

SPEC_PATH = Path(__file__).resolve().parents[2] / "docs" / "openapi.yaml"
# Bounded so that the whole file runs in well under 90 s on 2 cores; raise them for a deeper run.
POSITIVE_EXAMPLES = int(os.environ.get("GPUCLOUD_FUZZ_POSITIVE", "25"))
NEGATIVE_EXAMPLES = int(os.environ.get("GPUCLOUD_FUZZ_NEGATIVE", "10"))
SEED = int(os.environ.get("GPUCLOUD_FUZZ_SEED", "20261127"))
DEFAULT_DEPLOYMENTS = ("gpt-3.5-turbo", "text-embedding-3-small")
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
# Not fuzzed: it takes no input, and sends every dead letter (other tests' too) back to the queue.
# test_openapi_contract.py calls it once.
EXCLUDED = {"POST /api/dlq/redrive"}
MAX_REPORTED_PER_OPERATION = 3
INFERENCE_MODELS = {
    "/v1/chat/completions": DEFAULT_DEPLOYMENTS[0],
    "/v1/completions": DEFAULT_DEPLOYMENTS[0],
    "/v1/embeddings": DEFAULT_DEPLOYMENTS[1],
}


def fuzz_document() -> dict[str, Any]:
    """docs/openapi.yaml narrowed for the fuzz run."""
    document: dict[str, Any] = copy.deepcopy(yaml.safe_load(SPEC_PATH.read_text()))
    schemas = document["components"]["schemas"]
    parameters = document["components"]["parameters"]

    # Speed: a simulated deployment may legitimately take a minute per answer; the fuzzer's don't.
    simulated = schemas["SimulatedSettings"]["properties"]
    simulated["ttft_ms"]["maximum"] = 20
    simulated["per_token_ms"]["maximum"] = 0.5
    # Local traffic only: an upstream deployment's provisioning calls its base_url, which would be
    # any host on the internet here. Only simulated deployments are created or reconfigured.
    schemas["DeploymentCreate"]["oneOf"] = schemas["DeploymentCreate"]["oneOf"][:1]
    schemas["DeploymentUpdate"]["properties"]["config"] = {
        "anyOf": [{"$ref": "#/components/schemas/SimulatedSettings"}, {"type": "null"}]
    }
    # Speed: usage reads one DynamoDB query per shard per live hour, and a rollup 96 per day (a year
    # of either takes ~30 s here: reported). Periods stay within a couple of days, or so far from
    # today that nothing is read.
    parameters["Hours"]["schema"]["maximum"] = 48
    schemas["DateOrDateTime"]["pattern"] = (
        r"^(1[0-9]|[3-9][0-9])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])$"
    )
    rollup = schemas["RollupRequest"]["properties"]
    rollup["from"] = rollup["to"] = {"type": "string", "pattern": r"^2025-01-0[1-3]$"}

    return document


@dataclass
class Tally:
    calls: Counter[str] = field(default_factory=Counter)
    statuses: dict[str, Counter[int]] = field(default_factory=lambda: defaultdict(Counter))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failing_calls: Counter[str] = field(default_factory=Counter)
    substituted: Counter[str] = field(default_factory=Counter)
    refused: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def summary(self, elapsed: float) -> str:
        lines = [
            f"schemathesis {schemathesis.__version__}: {sum(self.calls.values())} calls to "
            f"{len(self.calls)} operations in {elapsed:.1f} s (seed {SEED}, "
            f"{POSITIVE_EXAMPLES} positive + {NEGATIVE_EXAMPLES} negative examples per operation)"
        ]
        for label in sorted(self.calls, key=lambda op: (op.split()[1], op.split()[0])):
            statuses = " ".join(f"{code}x{n}" for code, n in sorted(self.statuses[label].items()))
            failing = f"  FAILED {self.failing_calls[label]}" if self.failing_calls[label] else ""
            lines.append(f"  {label:<34} {self.calls[label]:>4} calls  [{statuses}]{failing}")
        for label, refusals in sorted(self.refused.items()):
            lines.append(f"  {label}: {len(refusals)} valid request(s) refused with 400, e.g. {refusals[0]}")
        if self.substituted:
            lines.append(
                f"  aimed at sacrificial objects instead of protected ones: {dict(self.substituted)}"
            )
        return "\n".join(lines)


@dataclass
class Target:
    """What the fuzzer sends with, and what it must leave alone."""

    api_url: str
    admin_token: str
    api_key: str
    sacrificial_key: str
    sacrificial_deployment: str
    job_id: str
    protected_keys: frozenset[str]
    protected_deployments: frozenset[str]


@pytest.fixture(scope="module")
def target(stack: RunningStack, admin: httpx.Client) -> Iterator[Target]:
    fuzz = admin.post(
        "/api/keys", json={"name": "schemathesis", "rate_limit_rpm": 100_000, "rate_limit_tpm": 100_000_000}
    )
    assert fuzz.status_code == 201, fuzz.text
    api_key = fuzz.json()["key"]
    sacrificial = admin.post("/api/keys", json={"name": "schemathesis sacrificial"})
    assert sacrificial.status_code == 201, sacrificial.text
    deployment = f"fuzz-{uuid.uuid4().hex[:10]}"
    created = admin.post("/api/deployments", json={"name": deployment})
    assert created.status_code == 201, created.text
    completion = httpx.post(
        f"{stack.api_url}/v1/chat/completions",
        json={
            "model": DEFAULT_DEPLOYMENTS[0],
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 2,
        },
        headers={"Authorization": f"Bearer {api_key}"},
        timeout=60,
    )
    assert completion.status_code == 200, completion.text
    keys = {k["id"] for k in admin.get("/api/keys").json()["data"]}
    deployments = {d["name"] for d in admin.get("/api/deployments").json()["data"]}
    yield Target(
        api_url=stack.api_url,
        admin_token=stack.admin_token,
        api_key=api_key,
        sacrificial_key=sacrificial.json()["id"],
        sacrificial_deployment=deployment,
        job_id=completion.json()["id"].removeprefix("chatcmpl-"),
        protected_keys=frozenset(keys - {sacrificial.json()["id"]}),
        protected_deployments=frozenset((deployments | set(DEFAULT_DEPLOYMENTS)) - {deployment}),
    )
    admin.delete(f"/api/deployments/{deployment}")


def _protect(case: schemathesis.Case, target: Target, tally: Tally) -> None:
    """Point a change or deletion of a protected object at the sacrificial one."""
    if case.method.upper() not in {"PATCH", "DELETE"}:
        return
    parameters = case.path_parameters or {}
    for name, protected, substitute in (
        ("key_id", target.protected_keys, target.sacrificial_key),
        ("name", target.protected_deployments, target.sacrificial_deployment),
    ):
        value = parameters.get(name)
        if isinstance(value, str) and unquote(value) in protected:
            parameters[name] = substitute
            tally.substituted[f"{case.method.upper()} {case.operation.path}"] += 1


def _aim(case: schemathesis.Case, target: Target, aim: int) -> None:
    """Aim a valid request at real objects (aim 1), and ask for an async answer too (aim 2).

    Generated ids and model names almost never exist: without this, the success paths of
    most operations would go untested. Hypothesis draws `aim`, so runs stay reproducible.
    """
    if aim == 0:
        return
    path = case.operation.path
    real = {
        "key_id": target.sacrificial_key,
        "name": target.sacrificial_deployment,
        "job_id": target.job_id,
        "model_id": DEFAULT_DEPLOYMENTS[0],
    }
    for name in case.path_parameters or {}:
        if name in real:
            case.path_parameters[name] = real[name]
    if path in INFERENCE_MODELS and isinstance(case.body, dict):
        case.body["model"] = INFERENCE_MODELS[path]
        if aim == 2 and case.headers is not None:
            case.headers["X-GPUCloud-Async"] = "true"


def _headers(case: schemathesis.Case, target: Target) -> dict[str, str]:
    if case.operation.path.startswith("/api/"):
        return {"Authorization": f"Bearer {target.admin_token}"}
    if case.operation.path.startswith("/v1/"):
        return {"Authorization": f"Bearer {target.api_key}"}
    return {}


def _looks_like_json(content: bytes) -> bool:
    try:
        json.loads(content)
    except ValueError:
        return False
    return True


def _exercise(
    case: schemathesis.Case, mode: schemathesis.GenerationMode, aim: int, target: Target, tally: Tally
) -> None:
    label = f"{case.method.upper()} {case.operation.path}"
    _aim(case, target, aim)
    _protect(case, target, tally)
    headers = _headers(case, target)
    response = case.call(base_url=target.api_url, headers=headers, timeout=60)
    tally.calls[label] += 1
    tally.statuses[label][response.status_code] += 1
    if mode == schemathesis.GenerationMode.POSITIVE and response.status_code == 400:
        # Valid by the spec, refused by the server: the spec is looser than the validation.
        sent = case.body if isinstance(case.body, dict | list | str) else case.query
        tally.refused[label].append(f"{json.dumps(sent, default=str)[:300]} -> {response.text[:300]}")
    try:
        case.validate_response(response, checks=CHECKS, headers=headers)
    except (FailureGroup, AssertionError) as failure:
        tally.failing_calls[label] += 1
        if len(tally.failures[label]) < MAX_REPORTED_PER_OPERATION:
            curl = case.as_curl_command(headers=headers)
            tally.failures[label].append(f"{str(failure)[:3000]}\n{curl[:1500]}")


def _fuzz(
    operation: Any, mode: schemathesis.GenerationMode, examples: int, target: Target, tally: Tally
) -> None:
    # Negative cases stay as generated: aiming them could make them valid.
    aims = st.integers(0, 2) if mode == schemathesis.GenerationMode.POSITIVE else st.just(0)

    @hypothesis.seed(SEED)
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        verbosity=Verbosity.quiet,
    )
    @given(case=operation.as_strategy(generation_mode=mode), aim=aims)
    def run(case: schemathesis.Case, aim: int) -> None:
        _exercise(case, mode, aim, target, tally)

    try:
        run()
    except hypothesis.errors.Unsatisfiable:
        # An operation without parameters or body (GET /health) has no invalid variant.
        if mode != schemathesis.GenerationMode.NEGATIVE:
            raise


def test_every_operation_conforms_to_the_spec_under_fuzzing(
    target: Target, capsys: pytest.CaptureFixture[str]
) -> None:
    document = fuzz_document()
    config = schemathesis.Config.from_dict({"generation": {"with-security-parameters": False}})
    schema = schemathesis.openapi.from_dict(document, config=config)
    tally = Tally()
    began = time.monotonic()
    labels = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), (
            f"docs/openapi.yaml has an operation schemathesis cannot read: {result}"
        )
        operation = result.ok()
        labels.append(operation.label)
        if operation.label in EXCLUDED:
            continue
        _fuzz(operation, schemathesis.GenerationMode.POSITIVE, POSITIVE_EXAMPLES, target, tally)
        _fuzz(operation, schemathesis.GenerationMode.NEGATIVE, NEGATIVE_EXAMPLES, target, tally)
    summary = tally.summary(time.monotonic() - began)
    with capsys.disabled():
        print("\n" + summary)
    # Every documented operation but the excluded ones was called at least once.
    assert set(tally.calls) == set(labels) - EXCLUDED, set(labels) - EXCLUDED - set(tally.calls)
    report = [f"{label}:\n" + "\n".join(messages) for label, messages in sorted(tally.failures.items())]
    assert not report, "\n\n".join(report)
