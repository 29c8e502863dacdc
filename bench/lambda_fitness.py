"""Lambda fitness benchmark: how long importing app.py takes, and how big the package is.

Import time is the part of a cold start that the code controls. Each run starts a fresh
interpreter with `python -X importtime -c "import app"` and reads the cumulative time of the
top-level `app` import from the report. One run first compiles the bytecode and is not counted,
because a deployed package ships its .pyc files warm. The figure is the median of the counted
runs.

The package is what `chalice package --stage dev` builds for the Lambda functions
(deployment.zip). It runs offline with dummy credentials and a dummy stream ARN, as `make
deploy-check` does. The first build downloads Lambda-compatible wheels of requirements.txt from
PyPI and caches them in .chalice/deployments; later builds reuse them.

The script ends by printing one JSON line of figures.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from bench._stack import REPO_ROOT, print_figures

# Bound that bench/run_all.py gives this script; the first package build downloads wheels.
TIME_LIMIT_S = 240

DEFAULT_RUNS = 9
DUMMY_ENVIRONMENT = {
    "AWS_DEFAULT_REGION": "ap-northeast-2",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "STOCKFEED_STREAM_ARN": (
        "arn:aws:dynamodb:ap-northeast-2:123456789012:table/stockfeed-dev-stores"
        "/stream/2020-03-15T00:00:00.000"
    ),
}


def import_time_us(module: str = "app") -> tuple[int, list[tuple[int, str]]]:
    """Import `module` in a fresh interpreter; returns its cumulative microseconds and the
    five slowest imports by their own (self) time, as (microseconds, name)."""
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=REPO_ROOT,
        env={**os.environ, **DUMMY_ENVIRONMENT},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"importing {module} failed:\n{completed.stderr[-2000:]}")

    cumulative: int | None = None
    own_times: list[tuple[int, str]] = []
    # Lines read "import time:  <self us> |  <cumulative us> | <indent><name>".
    for line in completed.stderr.splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        own, total, name = (part.strip() for part in line[len("import time:") :].split("|"))
        own_times.append((int(own), name))
        if name == module:
            cumulative = int(total)
    if cumulative is None:
        raise RuntimeError(f"-X importtime printed no line for {module}")
    return cumulative, sorted(own_times, reverse=True)[:5]


def package_bytes() -> int:
    """Build the dev stage's deployment package in a temporary directory; returns its size."""
    chalice = Path(sys.executable).parent / "chalice"
    with tempfile.TemporaryDirectory(prefix="bench-package-") as directory:
        completed = subprocess.run(
            [str(chalice), "package", "--stage", "dev", directory],
            cwd=REPO_ROOT,
            env={**os.environ, **DUMMY_ENVIRONMENT},
            capture_output=True,
            text=True,
            timeout=TIME_LIMIT_S - 30,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(f"chalice package failed:\n{completed.stderr[-2000:]}")
        return (Path(directory) / "deployment.zip").stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description="Import time of app.py and the package size.")
    parser.add_argument("--runs", type=int, default=DEFAULT_RUNS, help="Counted import runs.")
    arguments = parser.parse_args()

    import_time_us()  # compiles the bytecode; not counted
    runs = [import_time_us() for _ in range(arguments.runs)]
    median_us = statistics.median(cumulative for cumulative, _slowest in runs)
    size = package_bytes()

    figures = {
        "import_time_ms": round(median_us / 1000, 1),
        "import_time_runs_ms": [round(cumulative / 1000, 1) for cumulative, _ in runs],
        "import_slowest_self_ms": {name: round(own / 1000, 1) for own, name in runs[-1][1]},
        # MB = 10^6 bytes.
        "package_mb": round(size / 1_000_000, 2),
        "package_bytes": size,
    }
    print_figures(figures)


if __name__ == "__main__":
    main()
