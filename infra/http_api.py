"""Put an API Gateway HTTP API in front of the API Lambda, beside the REST API Chalice generates.

    python -m infra.http_api build/package/sam.json

Chalice only generates REST APIs ($3.50 per million requests); an HTTP API costs $1.00 per million,
and API Gateway was 39 % of the bill per completion (docs/PERFORMANCE.md, section 3.4). Its Lambda
proxy integration with payload format 1.0 sends the event shape a REST proxy integration sends, with
`requestContext.resourcePath` set to the matched route's path, so Chalice routes it unchanged.

The routes are generated from the app's own route table, so they cannot drift from it: one route per
path and method, plus `$default`, which sends every other URL to the Lambda too, where the edge
middleware answers an OpenAI-shaped 404 (API Gateway's own would be `{"message": "Not Found"}`).
CORS is the HTTP API's own (it answers preflights and ignores the Lambda's CORS headers), for the
dashboard's origin only, and only when `DashboardOrigin` is set.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chalicelib.http import CATCH_ALL_ROUTE

API = "HttpApi"
INTEGRATION = "HttpApiIntegration"
SOURCE_ARN = "arn:${AWS::Partition}:execute-api:${AWS::Region}:${AWS::AccountId}:${HttpApi}/*"
# API Gateway's limit for HTTP API integrations is 30 s; the API Lambda answers within 25 s
# (RESULT_TIMEOUT_SECONDS) or returns the job id.
INTEGRATION_TIMEOUT_MS = 30_000


def route_keys(routes: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """`METHOD /path` for every route of a Chalice route table, sorted, then `$default`."""
    keys = sorted(f"{method} {path}" for path, methods in routes.items() for method in methods)
    return [*keys, CATCH_ALL_ROUTE]


def _logical_id(route_key: str) -> str:
    if route_key == CATCH_ALL_ROUTE:
        return "HttpApiRouteDefault"
    words = re.findall(r"[A-Za-z0-9]+", route_key)
    return "HttpApiRoute" + "".join(word[:1].upper() + word[1:] for word in words)


def http_api_resources(
    routes: Mapping[str, Mapping[str, Any]], function: str = "APIHandler"
) -> dict[str, Any]:
    """The resources, condition and output to merge into the packaged template."""
    resources: dict[str, Any] = {
        API: {
            "Type": "AWS::ApiGatewayV2::Api",
            "Properties": {
                "Name": {"Fn::Sub": "${AWS::StackName}-api"},
                "ProtocolType": "HTTP",
                "Description": "GPU Cloud's OpenAI-compatible and admin API (payload format 1.0).",
                "CorsConfiguration": {
                    "Fn::If": [
                        "HasDashboardOrigin",
                        {
                            "AllowOrigins": [{"Ref": "DashboardOrigin"}],
                            "AllowMethods": ["GET", "POST", "PATCH", "DELETE"],
                            "AllowHeaders": ["authorization", "content-type"],
                            "ExposeHeaders": ["x-gpucloud-job-id"],
                            "MaxAge": 600,
                        },
                        {"Ref": "AWS::NoValue"},
                    ]
                },
            },
        },
        INTEGRATION: {
            "Type": "AWS::ApiGatewayV2::Integration",
            "Properties": {
                "ApiId": {"Ref": API},
                "IntegrationType": "AWS_PROXY",
                "IntegrationUri": {"Fn::GetAtt": [function, "Arn"]},
                "PayloadFormatVersion": "1.0",
                "TimeoutInMillis": INTEGRATION_TIMEOUT_MS,
            },
        },
        "HttpApiStage": {
            "Type": "AWS::ApiGatewayV2::Stage",
            "Properties": {"ApiId": {"Ref": API}, "StageName": "$default", "AutoDeploy": True},
        },
        "HttpApiInvokePermission": {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "Action": "lambda:InvokeFunction",
                "FunctionName": {"Ref": function},
                "Principal": "apigateway.amazonaws.com",
                "SourceArn": {"Fn::Sub": SOURCE_ARN},
            },
        },
    }
    for key in route_keys(routes):
        resources[_logical_id(key)] = {
            "Type": "AWS::ApiGatewayV2::Route",
            "Properties": {
                "ApiId": {"Ref": API},
                "RouteKey": key,
                "Target": {"Fn::Sub": "integrations/${" + INTEGRATION + "}"},
            },
        }
    return {
        "Conditions": {
            "HasDashboardOrigin": {"Fn::Not": [{"Fn::Equals": [{"Ref": "DashboardOrigin"}, ""]}]}
        },
        "Resources": resources,
        "Outputs": {
            "HttpApiUrl": {
                "Description": "The API's URL through the HTTP API ($1.00 per million requests; the REST "
                "API's EndpointURL costs $3.50): give this one to clients.",
                "Value": {"Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}/"},
            }
        },
    }


def add_http_api(template: dict[str, Any], routes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    for section, entries in http_api_resources(routes).items():
        clashes = set(entries) & set(template.get(section, {}))
        if clashes:
            raise ValueError(f"the template already has {section} {sorted(clashes)}")
        template.setdefault(section, {}).update(entries)
    return template


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    from app import app  # the route table is the app's own

    template = add_http_api(json.loads(path.read_text()), app.routes)
    path.write_text(json.dumps(template, indent=2) + "\n")
    print(f"{path}: HTTP API with {len(route_keys(app.routes))} routes added")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
