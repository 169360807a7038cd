"""`make audit`: what it concludes from the index's answers (a stand-in index; the tool is the real one)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tools.audit import audit, direct_pins, report

ADVISORY: dict[str, object] = {
    "id": "PYSEC-2099-1",
    "aliases": ["CVE-2099-1"],
    "fixed_in": ["2.0"],
    "withdrawn": None,
}
WITHDRAWN: dict[str, object] = {"id": "PYSEC-2099-2", "fixed_in": [], "withdrawn": "2099-01-02T00:00:00Z"}


def index(routes: dict[str, dict[str, object]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        body = routes.get(request.url.path)
        return httpx.Response(404) if body is None else httpx.Response(200, content=json.dumps(body))

    return httpx.MockTransport(answer)


def project(latest: str, vulnerabilities: list[dict[str, object]]) -> dict[str, object]:
    return {"info": {"version": latest, "requires_python": None}, "vulnerabilities": vulnerabilities}


def test_release_data_is_used_where_the_index_has_it_and_a_vulnerability_fails_the_audit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = index({"/pypi/lib/1.0/json": {"info": {}, "vulnerabilities": [ADVISORY, WITHDRAWN]}})
    findings = audit([("lib", "1.0")], "https://index.test", transport)
    assert [(f.source, [a.id for a in f.advisories]) for f in findings] == [("release", ["PYSEC-2099-1"])]
    assert report(findings, {"lib"}) == 1
    assert "VULNERABLE lib==1.0: PYSEC-2099-1 (CVE-2099-1); fixed in 2.0" in capsys.readouterr().out


def test_the_latest_release_is_checked_against_the_project_list(capsys: pytest.CaptureFixture[str]) -> None:
    transport = index({"/pypi/lib/json": project("1.0", [WITHDRAWN])})
    findings = audit([("lib", "1.0")], "https://index.test", transport)
    assert [(f.source, f.advisories) for f in findings] == [("latest", [])]
    assert report(findings, set()) == 0
    out = capsys.readouterr().out
    assert "1 checked (0 by per-release data, 1 as the latest release), 0 unchecked" in out


def test_an_older_release_is_reported_unchecked_not_clean(capsys: pytest.CaptureFixture[str]) -> None:
    # The project list describes 2.0 only: its being empty says nothing about 1.0.
    transport = index({"/pypi/lib/json": project("2.0", [])})
    findings = audit([("lib", "1.0")], "https://index.test", transport)
    assert [(f.source, f.latest) for f in findings] == [("unchecked", "2.0")]
    assert report(findings, {"lib"}) == 0
    out = capsys.readouterr().out
    assert "unchecked  lib==1.0 (direct pin)" in out and "upgrade its pin" in out


def test_a_version_spelled_otherwise_is_still_the_latest_and_a_missing_project_does_not_stop_the_audit(
    capsys: pytest.CaptureFixture[str],
) -> None:
    transport = index({"/pypi/lib/json": project("1.0.0", [ADVISORY])})
    findings = audit([("lib", "1.0"), ("private-thing", "0.1")], "https://index.test", transport)
    assert [(f.name, f.source) for f in findings] == [("lib", "latest"), ("private-thing", "unchecked")]
    assert report(findings, set()) == 1
    out = capsys.readouterr().out
    assert "VULNERABLE lib==1.0: PYSEC-2099-1" in out
    assert "unchecked  private-thing==0.1" in out and "HTTP 404" in out


def test_direct_pins_are_read_from_requirement_lines(tmp_path: Path) -> None:
    path = tmp_path / "requirements.txt"
    path.write_text("-r other.txt\n# note\npsycopg[binary]==3.3.9\nPyYAML==6.0.4  # why\nmoto[server]==5\n")
    assert direct_pins([path]) == {"psycopg", "pyyaml", "moto"}
