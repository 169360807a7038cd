"""`make package` builds the AWS deployment and cfn-lint accepts it."""

from __future__ import annotations

import json
import subprocess

from tests.conftest import ROOT


def test_make_package_builds_a_lint_clean_template() -> None:
    result = subprocess.run(["make", "package"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    template = json.loads((ROOT / "build" / "package" / "sam.json").read_text())
    resources = template["Resources"]
    worker_events = resources["Worker"]["Properties"]["Events"]["WorkerSqsEventSource"]["Properties"]
    assert worker_events["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert worker_events["BatchSize"] == 10
    queue = resources["JobsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]}
    # Least privilege: the data policies name the tables and queues, never "*".
    for policy in ("ApiHandlerDataPolicy", "WorkerDataPolicy"):
        for statement in resources[policy]["Properties"]["PolicyDocument"]["Statement"]:
            assert statement["Resource"] != "*"
            assert all(not action.endswith(":*") for action in statement["Action"])
    # The HTTP API beside Chalice's REST API: every route of the app, the catch-all, payload format 1.0.
    from app import app

    routes = {
        r["Properties"]["RouteKey"] for r in resources.values() if r["Type"] == "AWS::ApiGatewayV2::Route"
    }
    assert routes == {f"{m} {path}" for path, methods in app.routes.items() for m in methods} | {"$default"}
    integration = resources["HttpApiIntegration"]["Properties"]
    assert (integration["IntegrationType"], integration["PayloadFormatVersion"]) == ("AWS_PROXY", "1.0")
    assert "HttpApiUrl" in template["Outputs"] and "EndpointURL" in template["Outputs"]
    zipped_mb = (ROOT / "build" / "package" / "deployment.zip").stat().st_size / 1e6
    assert zipped_mb < 50, f"Lambda rejects packages over 50 MB zipped; this one is {zipped_mb:.1f} MB"
