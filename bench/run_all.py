"""Run every benchmark in bench/ and merge their figures into bench/results.json.

A benchmark is any bench/*.py except this file, bench/dynamic_origin.py (a server that
read_path.py starts) and modules whose name starts with "_" (helpers). Each one runs as
`python bench/NAME.py` from the repository root, with the root on PYTHONPATH, and must end by
printing one JSON object of named figures as its last line of standard output.

Each script runs under a time limit: its own module-level `TIME_LIMIT_S` when it sets one, else
DEFAULT_TIME_LIMIT_S, and never more than what is left of TOTAL_BUDGET_S. Scripts run one at a
time in name order, except bench/cost.py, which runs last because it reads the other
scripts' figures from results.json. results.json is rewritten after every script. Run with
benchmark names, only those run, and the other scripts' records are kept from the last
results.json. The exit status is 1 when any script failed, timed out or was skipped for lack
of time.
"""

import argparse
import ast
import json
import os
import platform
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
RESULTS = BENCH_DIR / "results.json"
LOG_DIR = REPO_ROOT / "var" / "bench"

NOT_BENCHMARKS = {"run_all", "dynamic_origin"}
RUN_LAST = ("cost",)
DEFAULT_TIME_LIMIT_S = 300
# `make bench` must finish within 20 minutes on the 2-core development machine.
TOTAL_BUDGET_S = 20 * 60


def benchmark_scripts(selected: list[str] | None = None) -> list[Path]:
    """Return the benchmark scripts in run order, only the `selected` names when given."""
    names = sorted(
        path
        for path in BENCH_DIR.glob("*.py")
        if path.stem not in NOT_BENCHMARKS and not path.stem.startswith("_")
    )
    if selected:
        unknown = set(selected) - {path.stem for path in names}
        if unknown:
            raise SystemExit(
                f"error: no benchmark named {', '.join(sorted(unknown))} in {BENCH_DIR}"
            )
        names = [path for path in names if path.stem in selected]
    return sorted(names, key=lambda path: (path.stem in RUN_LAST, path.stem))


def declared_time_limit(script: Path) -> int:
    """Read the script's module-level TIME_LIMIT_S without importing it; else the default."""
    tree = ast.parse(script.read_text(encoding="utf-8"))
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == "TIME_LIMIT_S"
                for target in node.targets
            )
            and isinstance(node.value, ast.Constant)
            and isinstance(node.value.value, int)
        ):
            return node.value.value
    return DEFAULT_TIME_LIMIT_S


def machine_info() -> dict[str, Any]:
    """Describe the machine the figures are measured on."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory_kb = 0
    meminfo = Path("/proc/meminfo")
    if meminfo.exists():
        for line in meminfo.read_text(encoding="utf-8").splitlines():
            if line.startswith("MemTotal:"):
                memory_kb = int(line.split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "memory_gb": round(memory_kb / 1024 / 1024, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        # Other work on a shared machine slows the benchmarks; the load average shows it.
        "load_average_at_start": [round(value, 2) for value in os.getloadavg()],
    }


def last_json_line(output: str) -> dict[str, Any] | None:
    """Return the last line of `output` that parses as a JSON object, if any."""
    for line in reversed(output.strip().splitlines()):
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            parsed = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(parsed, dict):
            return parsed
    return None


def run_script(script: Path, time_limit_s: float) -> dict[str, Any]:
    """Run one benchmark under its time limit; returns its status, duration and figures."""
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"{script.stem}.log"
    load_average = [round(value, 2) for value in os.getloadavg()]
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    started = time.monotonic()
    with log_path.open("w", encoding="utf-8") as log:
        # A session of its own, so a timeout can stop the script and every server it started.
        process = subprocess.Popen(
            [sys.executable, str(script.relative_to(REPO_ROOT))],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            start_new_session=True,
        )
        try:
            stdout, _ = process.communicate(timeout=time_limit_s)
            status = "ok" if process.returncode == 0 else "failed"
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                stdout, _ = process.communicate(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                stdout, _ = process.communicate()
            status = "timed out"
        log.write("\n--- standard output ---\n" + (stdout or ""))

    figures = last_json_line(stdout or "")
    if status == "ok" and figures is None:
        status = "failed: no JSON line"
    return {
        "status": status,
        "exit_code": process.returncode,
        "duration_s": round(time.monotonic() - started, 1),
        "time_limit_s": round(time_limit_s),
        "load_average_at_start": load_average,
        "log": str(log_path.relative_to(REPO_ROOT)),
        "figures": figures or {},
    }


def previous_records() -> dict[str, dict[str, Any]]:
    """Load the per-script records of the last results.json, so a partial run updates it."""
    if not RESULTS.exists():
        return {}
    try:
        records: dict[str, dict[str, Any]] = json.loads(RESULTS.read_text(encoding="utf-8"))[
            "scripts"
        ]
    except (json.JSONDecodeError, KeyError):
        return {}
    return records


def write_results(machine: dict[str, Any], scripts: dict[str, dict[str, Any]]) -> None:
    """Write results.json: machine, merged figures and each script's own record."""
    merged: dict[str, Any] = {}
    for record in scripts.values():
        merged.update(record["figures"])
    document = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine,
        "figures": merged,
        "scripts": scripts,
    }
    RESULTS.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks; write bench/results.json.")
    parser.add_argument(
        "names", nargs="*", help="Benchmarks to run (default: all), e.g. read_path."
    )
    arguments = parser.parse_args()

    machine = machine_info()
    scripts = previous_records() if arguments.names else {}
    deadline = time.monotonic() + TOTAL_BUDGET_S
    selected = benchmark_scripts(arguments.names)
    for script in selected:
        remaining = deadline - time.monotonic()
        if remaining < 10:
            scripts[script.stem] = {"status": "skipped: total time budget used", "figures": {}}
            continue
        limit = min(declared_time_limit(script), remaining)
        print(f"running {script.stem} (limit {limit:.0f} s)", file=sys.stderr, flush=True)
        record = run_script(script, limit)
        scripts[script.stem] = record
        print(f"  {record['status']} in {record['duration_s']} s", file=sys.stderr, flush=True)
        write_results(machine, scripts)

    write_results(machine, scripts)
    failed = [script.stem for script in selected if scripts[script.stem]["status"] != "ok"]
    if failed:
        print(f"benchmarks not ok: {', '.join(failed)}", file=sys.stderr)
        return 1
    print(f"wrote {RESULTS.relative_to(REPO_ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
