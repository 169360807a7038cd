"""`make run`: the whole platform on one machine, in the foreground.

Starts the emulator (or uses `AWS_ENDPOINT_URL`), provisions it from
infra/template.json, finds or embeds Redis and Postgres, applies migrations,
then serves the API (and the dashboard under /dashboard/) and runs the SQS
pollers. Ctrl-C or SIGTERM stops everything it started.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from infra.local.state import admin_token
from infra.local.state import state_dir as local_state_dir

ROOT = Path(__file__).resolve().parents[2]
log = logging.getLogger(__name__)


def main() -> int:
    logging.basicConfig(
        level=os.environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(name)s %(levelname)s: %(message)s"
    )
    sys.path.insert(0, str(ROOT))
    from infra.local import dependencies, emulator

    state_dir = local_state_dir()
    host = os.environ.get("HOST", "127.0.0.1")
    port = int(os.environ.get("PORT", "8000"))
    workers = int(os.environ.get("WORKERS", "2"))
    region = os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    os.environ.setdefault("AWS_REGION", region)
    stoppers: list[Callable[[], None]] = []
    child_pids: list[int] = []

    if os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("LOCAL_AWS") == "real":
        log.info("using AWS at %s", os.environ.get("AWS_ENDPOINT_URL", "your account"))
    else:
        moto = emulator.MotoServer(
            module=os.environ.get("LOCAL_MOTO_MODULE", "infra.local.moto_server")
        ).start()
        if moto.process is not None:
            child_pids.append(moto.process.pid)
        stoppers.append(moto.stop)
        os.environ["AWS_ENDPOINT_URL"] = moto.url
        # moto accepts any credentials; these keep boto3 from finding real ones.
        os.environ["AWS_ACCESS_KEY_ID"] = "testing"
        os.environ["AWS_SECRET_ACCESS_KEY"] = "testing"  # noqa: S105 - emulator only
        os.environ.pop("AWS_SESSION_TOKEN", None)
        os.environ.pop("AWS_PROFILE", None)

    try:
        outputs = emulator.deploy(
            os.environ.get("AWS_ENDPOINT_URL"),
            region,
            parameters={
                "VisibilityTimeout": os.environ.get("LOCAL_VISIBILITY_TIMEOUT", "30"),
                "MaxReceiveCount": os.environ.get("QUEUE_MAX_RECEIVES", "3"),
            },
            stack_name=os.environ.get("LOCAL_STACK_NAME", emulator.STACK_NAME),
        )
        os.environ.update(emulator.environment_from_outputs(outputs))
        redis_url, stop_redis = dependencies.redis_url(state_dir)
        database_url, stop_pg = dependencies.postgres_url(
            state_dir, os.environ.get("LOCAL_DATABASE", "gpucloud")
        )
        stoppers += [s for s in (stop_redis, stop_pg) if s is not None]
        os.environ["REDIS_URL"] = redis_url
        os.environ["DATABASE_URL"] = database_url
        os.environ["ADMIN_TOKEN"] = admin_token(state_dir, create=True)

        import app as application
        from chalicelib.deployments import ensure_default_deployments
        from chalicelib.postgres import migrate
        from chalicelib.services import get_services
        from infra.local import gateway, poller
        from infra.local.scheduler import start_scheduler

        services = get_services()
        migrate(services.postgres())
        ensure_default_deployments(services.settings.default_models)

        server = gateway.serve(application.app, host, port, ROOT / "frontend_static")
        port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="gateway", daemon=True).start()
        stoppers.append(server.shutdown)
        pollers = poller.PollerPool(workers)
        stoppers.append(pollers.stop)
        # EventBridge's part: the nightly rollup, on the same schedule as on AWS.
        stoppers.append(start_scheduler(application.rollup, services.settings.rollup_schedule))

        api_url = f"http://{host}:{port}"
        state = {
            "api_url": api_url,
            "openai_base_url": f"{api_url}/v1",
            "dashboard_url": f"{api_url}/dashboard/",
            "aws_endpoint_url": os.environ.get("AWS_ENDPOINT_URL"),
            "redis_url": redis_url,
            "database_url": database_url,
            "workers": workers,
            "pid": os.getpid(),
            "child_pids": child_pids + pollers.pids,
        }
        state_dir.mkdir(parents=True, exist_ok=True)
        (state_dir / "stack.json").write_text(json.dumps(state, indent=2) + "\n")
        print(f"API:          {api_url}   (OpenAI base_url: {api_url}/v1)")
        print(f"Dashboard:    {api_url}/dashboard/")
        print(f"Admin token:  {os.environ['ADMIN_TOKEN']}   (also in {state_dir / 'admin_token'})")
        print(f"Emulator:     {os.environ.get('AWS_ENDPOINT_URL')}")
        print(f"Redis:        {redis_url}")
        print(f"Postgres:     {database_url}")
        print(f"GPU Cloud is ready on {api_url} with {workers} worker poller(s).", flush=True)
        _wait_for_signal()
    finally:
        for stop in reversed(stoppers):
            try:
                stop()
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("error while stopping")
        print("GPU Cloud stopped.", flush=True)
    return 0


def _wait_for_signal() -> None:
    stopped = threading.Event()

    def _on_signal(signum: int, frame: Any) -> None:
        stopped.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    stopped.wait()


if __name__ == "__main__":
    raise SystemExit(main())
