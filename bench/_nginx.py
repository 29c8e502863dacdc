"""nginx as a local CloudFront: a caching reverse proxy in front of the tile origin.

The cache is set up the way the distribution behaves: it stores what the origin's
Cache-Control allows (max-age), serves a stale copy while one request refreshes it in the
background (stale-while-revalidate), revalidates with If-None-Match, passes the ETag through and
returns 304 for a matching If-None-Match. nginx comes from Debian's package (`apt-get install
-y nginx`); nothing here installs it.

A benchmark that replays a day faster than real time can run nginx under libfaketime (Debian's
`libfaketime` package), whose clock then runs `clock_speed` times faster. Cache lifetimes, which
nginx reads from that clock, shrink by the same factor without any change to the headers.
"""

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from bench._stack import stop_process
from ops.embedded import die_with_parent, free_port, wait_for_port

_CONFIG = """\
daemon off;
worker_processes {workers};
pid {work_dir}/nginx.pid;
error_log {work_dir}/error.log warn;

events {{
    worker_connections 4096;
}}

http {{
    access_log off;
    client_body_temp_path {work_dir}/client_body;
    proxy_temp_path {work_dir}/proxy_temp;
    fastcgi_temp_path {work_dir}/fastcgi_temp;
    uwsgi_temp_path {work_dir}/uwsgi_temp;
    scgi_temp_path {work_dir}/scgi_temp;

    # With no proxy_cache_valid, only responses whose Cache-Control allows it are stored, for
    # the max-age they give: the origin's headers alone decide, as in CloudFront.
    proxy_cache_path {work_dir}/cache levels=1:2 keys_zone=tiles:16m max_size=1g inactive=1h
                     use_temp_path=off;

    server {{
        listen 127.0.0.1:{port};

        location / {{
            proxy_pass {origin_url};
            proxy_cache tiles;
            # Refresh an expired copy with If-None-Match, so an unchanged tile costs a 304.
            proxy_cache_revalidate on;
            # One request per missing tile reaches the origin; the others wait for it.
            proxy_cache_lock on;
            # stale-while-revalidate: serve the stale copy and refresh it in the background.
            proxy_cache_use_stale updating error timeout http_500 http_502 http_503 http_504;
            proxy_cache_background_update on;
            add_header X-Cache-Status $upstream_cache_status always;
        }}
    }}
}}
"""

_FAKETIME_LIBRARIES = (
    "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
    "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
)


def nginx_binary() -> str:
    """Path of the nginx binary; raises RuntimeError with the install command when missing."""
    found = shutil.which("nginx") or (
        "/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None
    )
    if found is None:
        raise RuntimeError("nginx was not found. Install it with: apt-get install -y nginx")
    return found


def faketime_library() -> str:
    """Path of libfaketime; raises RuntimeError with the install command when missing."""
    candidates = [*_FAKETIME_LIBRARIES, *glob.glob("/usr/lib/*/faketime/libfaketime.so.1")]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    raise RuntimeError("libfaketime was not found. Install it with: apt-get install -y libfaketime")


def _environment(clock_speed: float) -> dict[str, str]:
    environment = dict(os.environ)
    if clock_speed == 1.0:
        return environment
    environment.update(
        {
            "LD_PRELOAD": faketime_library(),
            # "+0" keeps today's date; "x<speed>" makes the wall clock run that much faster.
            "FAKETIME": f"+0 x{clock_speed:g}",
            # nginx's internal timers (connection timeouts) keep real time; cache ages use the
            # wall clock, which is the one sped up.
            "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        }
    )
    return environment


@contextlib.contextmanager
def caching_proxy(origin_url: str, *, clock_speed: float = 1.0, workers: int = 2) -> Iterator[str]:
    """Run nginx caching `origin_url` for the block; yields the proxy's base URL.

    A temporary directory contains the generated configuration, the cache and the logs.
    """
    binary = nginx_binary()
    # nginx started as root runs its workers as "nobody", which must reach the cache, so the
    # directory is world-readable, unlike the private ones tempfile.TemporaryDirectory makes.
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as directory:
        work_dir = Path(directory)
        work_dir.chmod(0o755)
        yield from _serve(binary, origin_url, work_dir, clock_speed, workers)


def _serve(
    binary: str, origin_url: str, work_dir: Path, clock_speed: float, workers: int
) -> Iterator[str]:
    port = free_port()
    config = work_dir / "nginx.conf"
    config.write_text(
        _CONFIG.format(work_dir=work_dir, port=port, origin_url=origin_url, workers=workers),
        encoding="utf-8",
    )

    with (work_dir / "stderr.log").open("ab") as stderr_log:
        process = subprocess.Popen(
            [binary, "-p", str(work_dir), "-c", str(config)],
            stdout=subprocess.DEVNULL,
            stderr=stderr_log,
            env=_environment(clock_speed),
            preexec_fn=die_with_parent,
        )
        try:
            _wait_until_listening(process, port, work_dir)
            yield f"http://127.0.0.1:{port}"
        finally:
            stop_process(process)


def _wait_until_listening(process: subprocess.Popen[bytes], port: int, work_dir: Path) -> None:
    try:
        wait_for_port(port, timeout_s=15, process=process)
    except (RuntimeError, TimeoutError) as error:
        log = work_dir / "error.log"
        detail = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
        raise RuntimeError(f"nginx failed to start: {error}\n{detail}") from error
