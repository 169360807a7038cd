"""`python -m infra.local` with the local-emulation fix the benchmarks propose, for measuring it.

    BENCH_PATCH_NODELAY=1 .venv/bin/python -m bench.patched_stack

The API Gateway emulator (`infra/local/gateway.py`) answers with two socket
writes (headers, then body) on a socket that still has Nagle's algorithm on:
the body waits for the client's delayed ACK of the headers, about 40 ms on
Linux, on every request. `disable_nagle_algorithm = True` on the handler
(socketserver sets TCP_NODELAY) removes the wait. Applied here to every
StreamRequestHandler of this process before the stack starts; with the
variable unset this is exactly `python -m infra.local`.
"""

from __future__ import annotations

import os
import socketserver


def main() -> int:
    if os.environ.get("BENCH_PATCH_NODELAY") == "1":
        socketserver.StreamRequestHandler.disable_nagle_algorithm = True
    from infra.local.stack import main as stack_main

    return stack_main()


if __name__ == "__main__":
    raise SystemExit(main())
