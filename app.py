"""GPU Cloud's Lambda functions: wiring only; the work is in chalicelib/."""

from __future__ import annotations

from typing import Any

from chalice import Chalice
from chalice.app import CloudWatchEvent, SQSEvent

from chalicelib.http import edge_middleware
from chalicelib.rollup import run_scheduled
from chalicelib.routes.admin_api import admin_api
from chalicelib.routes.health import health_api
from chalicelib.routes.metrics_api import metrics_api
from chalicelib.routes.openai_api import openai_api
from chalicelib.services import get_services
from chalicelib.settings import get_settings
from chalicelib.worker import QueueMessage, handle_batch

settings = get_settings()

app = Chalice(app_name="gpucloud")
app.debug = settings.debug
app.register_middleware(edge_middleware, "http")
app.register_blueprint(openai_api)
app.register_blueprint(admin_api)
app.register_blueprint(health_api)
app.register_blueprint(metrics_api)


@app.on_sqs_message(queue=settings.jobs_queue_name, batch_size=10, name="worker")
def worker(event: SQSEvent) -> dict[str, Any]:
    messages = [QueueMessage.from_lambda_record(r.to_dict()) for r in event]
    return handle_batch(messages, get_services())


@app.schedule(settings.rollup_schedule, name="rollup")
def rollup(event: CloudWatchEvent) -> dict[str, Any]:
    return run_scheduled(event.time, get_services())
