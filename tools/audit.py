"""Known-vulnerability audit of every installed distribution, through PyPI's JSON API.

pip-audit asks PyPI for each pinned release (`/pypi/<name>/<version>/json`). The package index this
project is developed against answers that with 404, so pip-audit reports "not found on PyPI" for every
package and checks nothing. The index does serve the project endpoint (`/pypi/<name>/json`), whose
`vulnerabilities` are those of the project's latest release (PyPI's documented meaning). So:

- per-release data, where the index has it, is used as pip-audit uses it;
- otherwise, a release that *is* the latest is checked against the project endpoint's list;
- a release older than the latest cannot be checked there, and is reported as unchecked with the reason
  (usually a parent package's upper bound), never as clean.

Exit status: 1 if any known, not withdrawn vulnerability affects an installed release, 2 if the index
could not be read, else 0. Run with `make audit`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import os
import re
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

DEFAULT_INDEX = os.environ.get("PYPI_JSON_URL", "https://pypi.org")
REQUIREMENT_FILES = ("requirements.txt", "requirements-dev.txt")


@dataclass(frozen=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    fixed_in: tuple[str, ...]


@dataclass
class Finding:
    name: str
    version: str
    source: str  # "release", "latest" or "unchecked"
    advisories: list[Advisory] = field(default_factory=list)
    latest: str | None = None
    reason: str = ""


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def installed() -> list[tuple[str, str]]:
    seen: dict[str, tuple[str, str]] = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            seen[canonical(name)] = (name, dist.version)
    return sorted(seen.values(), key=lambda pair: canonical(pair[0]))


def direct_pins(paths: Iterable[Path]) -> set[str]:
    names: set[str] = set()
    for path in paths:
        for line in path.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                names.add(canonical(re.split(r"[\[=<>!~ ;]", line, maxsplit=1)[0]))
    return names


def advisories(payload: dict[str, object]) -> list[Advisory]:
    found: list[Advisory] = []
    for entry in payload.get("vulnerabilities") or []:  # type: ignore[attr-defined]
        if entry.get("withdrawn"):
            continue
        found.append(
            Advisory(
                id=str(entry.get("id")),
                aliases=tuple(entry.get("aliases") or ()),
                fixed_in=tuple(entry.get("fixed_in") or ()),
            )
        )
    return found


def held_back_by(name: str, latest: str, requires_python: str | None) -> str:
    """Why the installed release is not the latest: a parent's bound, or the latest needs another Python."""
    try:
        newest = Version(latest)
    except InvalidVersion:
        return f"latest is {latest}"
    if requires_python:
        try:
            python_ok = Requirement(f"python{requires_python}").specifier.contains(
                ".".join(map(str, sys.version_info[:3]))
            )
        except InvalidRequirement:
            python_ok = True
        if not python_ok:
            return f"its latest release ({latest}) needs Python {requires_python}"
    for dist in importlib.metadata.distributions():
        for line in dist.requires or ():
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra's or another platform's requirement: not what holds this one back
            if canonical(requirement.name) == canonical(name) and not requirement.specifier.contains(
                newest, prereleases=True
            ):
                return f"{dist.metadata['Name']} requires {requirement.name}{requirement.specifier}"
    return f"not the latest release ({latest}): upgrade its pin"


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def audit_one(client: httpx.Client, name: str, version: str) -> Finding:
    release = client.get(f"/pypi/{name}/{version}/json")
    if release.status_code == 200:
        return Finding(name, version, "release", advisories(release.json()))
    project = client.get(f"/pypi/{name}/json") if release.status_code == 404 else release
    if project.status_code != 200:
        # Not on the index (a local distribution) or the index failed for it: say so, go on.
        return Finding(name, version, "unchecked", reason=f"the index answered HTTP {project.status_code}")
    payload = project.json()
    latest = str(payload["info"]["version"])
    if _same_version(latest, version):
        return Finding(name, version, "latest", advisories(payload), latest=latest)
    return Finding(
        name,
        version,
        "unchecked",
        latest=latest,
        reason=(
            f"the index has advisories only for the latest release ({latest}); held back: "
            + held_back_by(name, latest, payload["info"].get("requires_python"))
        ),
    )


def audit(
    packages: Sequence[tuple[str, str]],
    index: str = DEFAULT_INDEX,
    transport: httpx.BaseTransport | None = None,
) -> list[Finding]:
    with (
        httpx.Client(base_url=index, timeout=30, follow_redirects=True, transport=transport) as client,
        ThreadPoolExecutor(max_workers=8) as pool,
    ):
        return list(pool.map(lambda pair: audit_one(client, *pair), packages))


def report(findings: Sequence[Finding], direct: set[str]) -> int:
    vulnerable = [f for f in findings if f.advisories]
    unchecked = [f for f in findings if f.source == "unchecked"]
    for finding in vulnerable:
        for adv in finding.advisories:
            aliases = ", ".join(adv.aliases)
            fixed = ", ".join(adv.fixed_in) or "no fixed release"
            print(f"VULNERABLE {finding.name}=={finding.version}: {adv.id} ({aliases}); fixed in {fixed}")
    for finding in unchecked:
        kind = "direct pin" if canonical(finding.name) in direct else "installed by another package"
        print(f"unchecked  {finding.name}=={finding.version} ({kind}): {finding.reason}")
    checked = len(findings) - len(unchecked)
    by_release = sum(1 for f in findings if f.source == "release")
    print(
        f"{len(findings)} distributions installed: {checked} checked "
        f"({by_release} by per-release data, {checked - by_release} as the latest release), "
        f"{len(unchecked)} unchecked, {sum(len(f.advisories) for f in vulnerable)} known vulnerabilities"
    )
    return 1 if vulnerable else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--index", default=DEFAULT_INDEX, help="base URL of the PyPI JSON API")
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parent.parent
    try:
        findings = audit(installed(), args.index)
    except httpx.HTTPError as exc:
        print(f"audit: could not read {args.index}: {exc}", file=sys.stderr)
        return 2
    return report(findings, direct_pins(root / name for name in REQUIREMENT_FILES))


if __name__ == "__main__":
    sys.exit(main())
