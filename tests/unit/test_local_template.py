"""The emulator gets the tables and queues of the very template AWS gets."""

from __future__ import annotations

import json

from infra.local.emulator import TEMPLATE, local_template


def test_local_template_is_the_data_resources_of_the_deploy_template() -> None:
    full = json.loads(TEMPLATE.read_text())
    local = local_template()
    data_types = {"AWS::DynamoDB::Table", "AWS::SQS::Queue"}
    expected = {name for name, r in full["Resources"].items() if r.get("Type") in data_types}
    assert set(local["Resources"]) == expected
    assert {
        "ApiKeysTable",
        "JobsTable",
        "UsageTable",
        "DeploymentsTable",
        "JobsQueue",
        "JobsDeadLetterQueue",
    } <= expected
    for name in expected:
        assert local["Resources"][name] == full["Resources"][name]
    assert "JobsQueueUrl" in local["Outputs"]


def test_the_worker_reports_partial_batch_failures_on_aws() -> None:
    full = json.loads(TEMPLATE.read_text())
    event = full["Resources"]["Worker"]["Properties"]["Events"]["WorkerSqsEventSource"]
    assert event["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
