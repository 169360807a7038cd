"""Debian's Chromium, as the dashboard's browser tests and its benchmark launch it."""

from __future__ import annotations

from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root, and quiet: this machine's closed network refuses
# Chromium's background connections (sync, component updates, QUIC).
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
