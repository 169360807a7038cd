"""SQS and DynamoDB offline: moto's server, provisioned from infra/template.json.

The tables and queues come from the same CloudFormation file that
`chalice package` merges for AWS, deployed to the emulator's own
CloudFormation, so local and cloud cannot drift.
"""

from __future__ import annotations

import copy
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3

TEMPLATE = Path(__file__).resolve().parents[1] / "template.json"
LOCAL_RESOURCE_TYPES = {"AWS::DynamoDB::Table", "AWS::SQS::Queue"}
STACK_NAME = "gpucloud"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _references(node: Any) -> set[str]:
    """Logical ids a template fragment refers to (Ref, GetAtt, ${X} in Sub)."""
    found: set[str] = set()
    if isinstance(node, dict):
        if "Ref" in node:
            found.add(node["Ref"])
        if "Fn::GetAtt" in node:
            found.add(node["Fn::GetAtt"][0])
        if "Fn::Sub" in node:
            text = node["Fn::Sub"] if isinstance(node["Fn::Sub"], str) else node["Fn::Sub"][0]
            found.update(part.split("}")[0].split(".")[0] for part in text.split("${")[1:])
        for value in node.values():
            found |= _references(value)
    elif isinstance(node, list):
        for value in node:
            found |= _references(value)
    return found


def local_template(template_path: Path = TEMPLATE) -> dict[str, Any]:
    """The template's tables and queues alone: what an emulator can run."""
    full = json.loads(template_path.read_text())
    resources = {
        name: copy.deepcopy(resource)
        for name, resource in full["Resources"].items()
        if resource.get("Type") in LOCAL_RESOURCE_TYPES
    }
    keep = set(resources) | set(full.get("Parameters", {})) | {"AWS::StackName", "AWS::Region"}
    outputs = {
        name: output
        for name, output in full.get("Outputs", {}).items()
        if _references(output["Value"]) <= keep
    }
    return {
        "AWSTemplateFormatVersion": full["AWSTemplateFormatVersion"],
        "Parameters": full.get("Parameters", {}),
        "Resources": resources,
        "Outputs": outputs,
    }


def deploy(
    endpoint_url: str | None,
    region: str,
    parameters: dict[str, str] | None = None,
    stack_name: str = STACK_NAME,
) -> dict[str, str]:
    """Create (or reuse) the stack and return its outputs."""
    cloudformation = boto3.client("cloudformation", region_name=region, endpoint_url=endpoint_url)
    try:
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except cloudformation.exceptions.ClientError:
        stacks = []
    if not stacks or stacks[0]["StackStatus"].startswith("DELETE"):
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=json.dumps(local_template()),
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()],
        )
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 120}
        )
        stacks = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    return {o["OutputKey"]: o["OutputValue"] for o in stacks[0].get("Outputs", [])}


def environment_from_outputs(outputs: dict[str, str]) -> dict[str, str]:
    """The app's settings that point at the deployed tables and queues."""
    return {
        "API_KEYS_TABLE": outputs["ApiKeysTableName"],
        "DEPLOYMENTS_TABLE": outputs["DeploymentsTableName"],
        "JOBS_TABLE": outputs["JobsTableName"],
        "USAGE_TABLE": outputs["UsageTableName"],
        "JOBS_QUEUE_URL": outputs["JobsQueueUrl"],
        "JOBS_DLQ_URL": outputs["JobsDeadLetterQueueUrl"],
    }


class MotoServer:
    """moto's server in a child process (its own GIL, killed with the stack).

    The child runs from the repository's root so `infra.local.moto_server`
    imports whatever the caller's working directory.
    """

    def __init__(
        self, port: int | None = None, host: str = "127.0.0.1", module: str = "infra.local.moto_server"
    ) -> None:
        # infra.local.moto_server is moto with its O(queue/table size) hot spots
        # fixed; "moto.server" runs moto exactly as shipped.
        self.module = module
        self.host = host
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.module, "-H", self.host, "-p", str(self.port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).resolve().parents[2],
            env={**os.environ, "MOTO_CALL_RESET_API": "false"},
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.process.returncode}")
            try:
                with socket.create_connection((self.host, self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("moto server did not start in time")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
