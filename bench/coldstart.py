"""Cold start: importing app.py in a fresh interpreter, and the deployment package's size.

Import time, each the median of N fresh interpreters (`time.perf_counter()`
around `import app`, inside the interpreter, so interpreter start-up is
reported apart):
- dev tree: the repository with its bytecode cache warm (what
  `python -X importtime -c "import app"` shows);
- package as built: app.py and its dependencies from the deployment zip that
  `chalice package` builds, with boto3 from outside it (the Lambda runtime
  provides boto3), and NO bytecode: the zip has no .pyc and /var/task is
  read-only, so a Lambda cold start compiles every module it imports;
- package with bytecode: the same tree after `compileall` (the proposal).
Then the first request's one-time set-up (clients, pools), `-X importtime`'s
biggest modules, and the package: zipped and unzipped size against Lambda's
limits, its biggest parts, what pruning botocore's unused service models saves.

The package is built with `chalice package` (what `make package` runs, without
cfn-lint) into a temporary directory, so the shared build/ is not touched.

Run: `.venv/bin/python -m bench coldstart [--runs 7] [--reuse-package build/package/deployment.zip]`.
"""

from __future__ import annotations

import argparse
import compileall
import io
import os
import py_compile
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from bench.common import ROOT, command_line, heading, machine, print_machine, save

LAMBDA_ZIPPED_MB = 50
LAMBDA_UNZIPPED_MB = 250
TARGET_IMPORT_MS = 300
TARGET_ZIPPED_MB = 30
# botocore service models the functions use (DynamoDB, SQS, Secrets Manager; STS for credentials).
BOTOCORE_SERVICES_USED = ("dynamodb", "sqs", "secretsmanager", "sts")

_IMPORT = "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"
_FIRST_REQUEST = """
import time
t = time.perf_counter()
import app
imported = time.perf_counter()
from chalicelib.services import get_services
from chalicelib.models import JobRecord, ApiKeyRecord
s = get_services()
s.sqs; s.redis; s.rate_limiter; s.key_cache; s.deployment_cache
JobRecord._get_connection().connection.client
ApiKeyRecord._get_connection().connection.client
done = time.perf_counter()
print((imported - t) * 1000, (done - imported) * 1000)
"""


def lambda_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PYTHON"))}
    env.update(
        {
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "GPUCLOUD_STAGE": "dev",
        }
    )
    return env


def _runs(command: list[str], runs: int, cwd: Path, env: dict[str, str]) -> list[list[float]]:
    out = []
    for _ in range(runs):
        result = subprocess.run(
            command, cwd=cwd, env=env, capture_output=True, text=True, timeout=120, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{' '.join(command[:4])}... failed: {result.stderr[-2000:]}")
        out.append([float(x) for x in result.stdout.split()])
    return out


def interpreter_startup_ms(runs: int) -> float:
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def importtime(cwd: Path, env: dict[str, str], extra: list[str]) -> dict[str, Any]:
    """`python -X importtime -c "import app"`: the biggest modules (self) and packages (sum of self)."""
    result = subprocess.run(
        [sys.executable, *extra, "-X", "importtime", "-c", "import app"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    modules: list[tuple[str, int, int]] = []
    for line in result.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, cumulative_text, module = line.split("|", 2)
        self_text = head.split(":", 1)[1]
        modules.append((module.rstrip()[1:], int(self_text), int(cumulative_text)))
    packages: dict[str, int] = defaultdict(int)
    for name, self_us, _ in modules:
        packages[name.strip().split(".")[0]] += self_us
    top_level = {name.strip(): cumulative for name, _, cumulative in modules if not name.startswith(" ")}
    return {
        "total_ms": sum(s for _, s, _ in modules) / 1000,
        "packages_ms": {k: v / 1000 for k, v in sorted(packages.items(), key=lambda kv: -kv[1])[:15]},
        "modules_self_ms": [
            {"module": n.strip(), "self_ms": s / 1000, "cumulative_ms": c / 1000}
            for n, s, c in sorted(modules, key=lambda m: -m[1])[:15]
        ],
        "app_cumulative_ms": top_level.get("app", 0) / 1000,
        "chalicelib_cumulative_ms": {
            n.strip(): c / 1000 for n, _, c in modules if n.strip().startswith("chalicelib.") and c > 5000
        },
    }


def build_package(out_dir: Path) -> tuple[Path, float]:
    began = time.perf_counter()
    env = {**os.environ, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1")}
    result = subprocess.run(
        [
            str(Path(sys.executable).parent / "chalice"),
            "package",
            "--stage",
            "dev",
            "--merge-template",
            "infra/template.json",
            str(out_dir),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"chalice package failed: {result.stdout[-1500:]} {result.stderr[-1500:]}")
    # What `make package` ships: unused botocore models dropped, bytecode compiled in.
    from infra.package_lambda import finish

    finish(out_dir / "deployment.zip")
    return out_dir / "deployment.zip", time.perf_counter() - began


def package_report(zip_path: Path) -> dict[str, Any]:
    archive = zipfile.ZipFile(zip_path)
    unzipped: Counter[str] = Counter()
    zipped: Counter[str] = Counter()
    botocore_data_zipped = 0
    botocore_data_kept = 0
    files = 0
    for info in archive.infolist():
        files += 1
        top = info.filename.split("/", 1)[0]
        unzipped[top] += info.file_size
        zipped[top] += info.compress_size
        if info.filename.startswith("botocore/data/"):
            botocore_data_zipped += info.compress_size
            parts = info.filename.split("/")
            if len(parts) == 3 or parts[2] in BOTOCORE_SERVICES_USED:
                botocore_data_kept += info.compress_size
    size = zip_path.stat().st_size
    return {
        "zip": str(zip_path),
        "zipped_mb": size / 1e6,
        "unzipped_mb": sum(unzipped.values()) / 1e6,
        "files": files,
        "pyc_files": sum(1 for n in archive.namelist() if n.endswith(".pyc")),
        "biggest": [
            {"part": k, "zipped_mb": zipped[k] / 1e6, "unzipped_mb": v / 1e6}
            for k, v in unzipped.most_common(12)
        ],
        "botocore_data_zipped_mb": botocore_data_zipped / 1e6,
        "pruned_zipped_mb": (size - botocore_data_zipped + botocore_data_kept) / 1e6,
    }


def _runtime_dir(base: Path) -> Path:
    """What the Lambda runtime adds after /var/task: boto3 (and s3transfer, which it needs)."""
    runtime = base / "runtime"
    runtime.mkdir()
    import boto3
    import s3transfer

    for module in (boto3, s3transfer):
        source = Path(module.__file__ or "").parent
        (runtime / source.name).symlink_to(source)
    return runtime


def package_imports(zip_path: Path, runs: int, base: Path) -> dict[str, Any]:
    task = base / "task"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(task)
    runtime = _runtime_dir(base)
    empty_cache = base / "no-pycache"
    empty_cache.mkdir()
    env = lambda_env()
    path_setup = f"import sys; sys.path[:0] = [{str(task)!r}, {str(runtime)!r}]; "
    # -I: isolated (no user site, no cwd on the path); -S: not the venv's site-packages.
    cold = [
        sys.executable,
        "-I",
        "-S",
        "-B",
        "-X",
        f"pycache_prefix={empty_cache}",
        "-c",
        path_setup + _IMPORT,
    ]
    no_bytecode = [row[0] for row in _runs(cold, runs, task, env)]
    compile_began = time.perf_counter()
    compileall.compile_dir(
        str(task),
        quiet=1,
        workers=0,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )
    compile_s = time.perf_counter() - compile_began
    warm = [sys.executable, "-I", "-S", "-B", "-c", path_setup + _IMPORT]
    with_bytecode = [row[0] for row in _runs(warm, runs, task, env)]
    pyc_zip = io.BytesIO()
    with zipfile.ZipFile(pyc_zip, "w", zipfile.ZIP_DEFLATED) as out:
        for pyc in task.rglob("*.pyc"):
            out.write(pyc, pyc.relative_to(task))
    return {
        "no_bytecode_ms": statistics.median(no_bytecode),
        "with_bytecode_ms": statistics.median(with_bytecode),
        "no_bytecode_samples": no_bytecode,
        "with_bytecode_samples": with_bytecode,
        "compileall_s": compile_s,
        "pyc_zipped_mb": len(pyc_zip.getvalue()) / 1e6,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m bench coldstart")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--reuse-package", type=Path, default=None, help="measure this deployment.zip instead of building one"
    )
    args = parser.parse_args(argv)
    info = machine()
    heading("coldstart: import app.py, deployment package")
    print_machine(info)
    env = lambda_env()
    report: dict[str, Any] = {"machine": info, "command": command_line(), "runs": args.runs}
    report["interpreter_startup_ms"] = interpreter_startup_ms(args.runs)
    _runs([sys.executable, "-c", "import app"], 1, ROOT, env)  # make sure the bytecode cache is warm
    dev = _runs([sys.executable, "-c", _FIRST_REQUEST], args.runs, ROOT, env)
    report["dev_import_ms"] = statistics.median(r[0] for r in dev)
    report["dev_import_samples"] = [r[0] for r in dev]
    report["first_request_setup_ms"] = statistics.median(r[1] for r in dev)
    report["importtime"] = importtime(ROOT, env, [])

    with tempfile.TemporaryDirectory(prefix="gpucloud-coldstart-") as tmp:
        base = Path(tmp)
        if args.reuse_package is not None:
            zip_path, build_s = args.reuse_package, None
        else:
            zip_path, build_s = build_package(base / "package")
        report["package_build_s"] = build_s
        report["package"] = package_report(zip_path)
        report["package_import"] = package_imports(zip_path, args.runs, base)
        shutil.rmtree(base / "task", ignore_errors=True)
    print_report(report)
    save("coldstart", report)
    return report


def print_report(report: dict[str, Any]) -> None:
    it = report["importtime"]
    pkg = report["package"]
    imp = report["package_import"]
    print(f"interpreter start-up (python -c pass, wall): {report['interpreter_startup_ms']:.0f} ms")
    print(
        f"import app, dev tree, bytecode cached: median {report['dev_import_ms']:.0f} ms of {report['runs']} "
        f"(samples {', '.join(f'{x:.0f}' for x in report['dev_import_samples'])})"
    )
    print(
        "import app from the package, its bytecode ignored (as before make package compiled it in): "
        f"median {imp['no_bytecode_ms']:.0f} ms"
    )
    print(
        "import app from the package as make package ships it (.pyc compiled in, unchecked-hash): "
        f"median {imp['with_bytecode_ms']:.0f} ms; the .pyc files add {imp['pyc_zipped_mb']:.1f} MB zipped"
    )
    print(
        f"first request's one-time set-up after import (boto3 SQS client, pynamodb clients, Redis pool, "
        f"scripts): {report['first_request_setup_ms']:.0f} ms"
    )
    print(
        f"-X importtime (dev tree): app cumulative {it['app_cumulative_ms']:.0f} ms; by package (self time):"
    )
    print("  " + ", ".join(f"{k} {v:.0f}" for k, v in it["packages_ms"].items() if v >= 1))
    print(
        "  biggest modules (self ms / cumulative ms): "
        + ", ".join(
            f"{m['module']} {m['self_ms']:.0f}/{m['cumulative_ms']:.0f}" for m in it["modules_self_ms"][:10]
        )
    )
    print(
        "  chalicelib modules over 5 ms cumulative: "
        + ", ".join(
            f"{k} {v:.0f}" for k, v in sorted(it["chalicelib_cumulative_ms"].items(), key=lambda kv: -kv[1])
        )
    )
    built = f"built in {report['package_build_s']:.0f} s" if report.get("package_build_s") else "reused"
    print(
        f"deployment package ({built}): {pkg['zipped_mb']:.1f} MB zipped (Lambda limit {LAMBDA_ZIPPED_MB}), "
        f"{pkg['unzipped_mb']:.1f} MB unzipped (limit {LAMBDA_UNZIPPED_MB}), {pkg['files']} files, "
        f"{pkg['pyc_files']} .pyc"
    )
    print(
        "  biggest parts (zipped / unzipped MB): "
        + ", ".join(f"{b['part']} {b['zipped_mb']:.1f}/{b['unzipped_mb']:.1f}" for b in pkg["biggest"][:8])
    )
    print(
        f"  botocore/data (every AWS service's model) is {pkg['botocore_data_zipped_mb']:.1f} MB zipped; "
        "keeping "
        f"only {', '.join(BOTOCORE_SERVICES_USED)} gives a {pkg['pruned_zipped_mb']:.1f} MB zip"
    )
    print("targets:")
    met = max(report["dev_import_ms"], imp["with_bytecode_ms"]) < TARGET_IMPORT_MS
    print(
        f"  {'MET    ' if met else 'NOT MET'} importing app.py under {TARGET_IMPORT_MS} ms: "
        f"{report['dev_import_ms']:.0f} ms (dev tree, bytecode cached); {imp['with_bytecode_ms']:.0f} ms "
        f"from the package as shipped ({imp['no_bytecode_ms']:.0f} ms if its bytecode is ignored)"
    )
    met = pkg["zipped_mb"] < TARGET_ZIPPED_MB
    print(
        f"  {'MET    ' if met else 'NOT MET'} deployment package under {TARGET_ZIPPED_MB} MB zipped: "
        f"{pkg['zipped_mb']:.1f} MB"
    )


if __name__ == "__main__":
    main()
