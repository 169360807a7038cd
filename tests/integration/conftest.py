"""Integration tests share the session's local stack (tests/conftest.py)."""
