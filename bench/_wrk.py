"""wrk, the HTTP load generator, driven over a list of URL paths for a bounded time.

wrk comes from Debian's package (`apt-get install -y wrk`); nothing here installs it. A
generated Lua script sends the paths round robin, each wrk thread starting at a different
offset, and prints one JSON summary line that this module parses.
"""

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

_SUMMARY_PREFIX = "WRK_SUMMARY "

_SCRIPT = """\
local paths = {paths}
local threads = {{}}
local counter = 0

function setup(thread)
    thread:set("offset", #threads * 7919)
    table.insert(threads, thread)
end

function init(args)
    counter = offset or 0
end

function request()
    counter = counter + 1
    return wrk.format("GET", paths[(counter % #paths) + 1])
end

function done(summary, latency, requests)
    local errors = summary.errors
    io.write(string.format(
        '{prefix}{{"requests":%d,"duration_us":%d,"bytes":%d,"connect_errors":%d,' ..
        '"read_errors":%d,"write_errors":%d,"status_errors":%d,"timeouts":%d,' ..
        '"latency_mean_us":%.1f,"latency_p50_us":%d,"latency_p99_us":%d}}\\n',
        summary.requests, summary.duration, summary.bytes, errors.connect, errors.read,
        errors.write, errors.status, errors.timeout, latency.mean,
        latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(frozen=True, slots=True)
class WrkResult:
    """The figures of one wrk run."""

    requests: int
    duration_s: float
    bytes: int
    errors: dict[str, int]
    latency_mean_ms: float
    latency_p50_ms: float
    latency_p99_ms: float

    @property
    def requests_per_s(self) -> float:
        return self.requests / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())


def wrk_binary() -> str:
    """Path of the wrk binary; raises RuntimeError with the install command when missing."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk was not found. Install it with: apt-get install -y wrk")
    return found


def _lua_string(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def run_wrk(
    base_url: str,
    paths: list[str],
    work_dir: Path,
    *,
    duration_s: int,
    threads: int = 2,
    connections: int = 64,
    timeout_s: int = 10,
) -> WrkResult:
    """Load `base_url` with GET requests over `paths` for `duration_s` seconds."""
    if not paths:
        raise ValueError("wrk needs at least one path to request")
    script = work_dir / "paths.lua"
    lua_paths = "{" + ", ".join(_lua_string(path) for path in paths) + "}"
    script.write_text(_SCRIPT.format(paths=lua_paths, prefix=_SUMMARY_PREFIX), encoding="utf-8")

    command = [
        wrk_binary(),
        f"--threads={threads}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        f"--timeout={timeout_s}s",
        f"--script={script}",
        base_url,
    ]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=duration_s + 60, check=False
    )
    if completed.returncode != 0:
        raise RuntimeError(f"wrk failed with exit code {completed.returncode}: {completed.stderr}")
    return _parse_summary(completed.stdout)


def _parse_summary(output: str) -> WrkResult:
    for line in output.splitlines():
        if line.startswith(_SUMMARY_PREFIX):
            data = json.loads(line[len(_SUMMARY_PREFIX) :])
            break
    else:
        raise RuntimeError(f"wrk printed no summary line:\n{output}")

    error_names = ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts")
    return WrkResult(
        requests=int(data["requests"]),
        duration_s=data["duration_us"] / 1e6,
        bytes=int(data["bytes"]),
        errors={name: int(data[name]) for name in error_names},
        latency_mean_ms=data["latency_mean_us"] / 1000,
        latency_p50_ms=data["latency_p50_us"] / 1000,
        latency_p99_ms=data["latency_p99_us"] / 1000,
    )
