"""A minimal headless Chromium driver for page tests, using only the standard library.

It speaks the Chrome DevTools Protocol over `--remote-debugging-pipe`: the browser reads
commands from file descriptor 3 and writes replies to descriptor 4, each message being JSON
followed by a NUL byte. A pipe opens no TCP port and needs no WebSocket library or npm package,
and the tests can still click, evaluate JavaScript and take screenshots like a person would.
`decode_png` reads the screenshots back into pixels, so no imaging library is needed either.
"""

import base64
import contextlib
import fcntl
import json
import os
import select
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from dataclasses import dataclass
from typing import Any

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)
# File descriptors that --remote-debugging-pipe reads from and writes to.
_BROWSER_READS_FD = 3
_BROWSER_WRITES_FD = 4
# The child's pipe ends are first copied to descriptors from this number up, so that moving
# them to 3 and 4 cannot overwrite one with the other.
_HIGH_FD = 10


class ChromiumError(Exception):
    """The browser failed, timed out or returned a protocol error."""


def chromium_executable() -> str | None:
    """Return the path of Debian's chromium launcher, or None when it is not installed."""
    return shutil.which("chromium")


class Chromium:
    """One headless browser with one page, driven over the DevTools pipe."""

    def __init__(self, width: int = 1280, height: int = 860, timeout_s: float = 30.0) -> None:
        executable = chromium_executable()
        if executable is None:
            raise ChromiumError("chromium is not installed: apt-get install -y chromium")
        self.timeout_s = timeout_s
        self._profile = tempfile.TemporaryDirectory(prefix="stockfeed-chromium-")
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict[str, Any]] = []
        self._process, self._to_browser, self._from_browser = _launch(
            executable, self._profile.name
        )
        self._session = self._open_page(width, height)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the browser and remove its profile directory."""
        # The browser may already be gone, and then the pipe is closed.
        with contextlib.suppress(OSError):
            self._write({"id": self._new_id(), "method": "Browser.close"})
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=10)
        os.close(self._to_browser)
        os.close(self._from_browser)
        self._profile.cleanup()

    def call(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Send a command to the page and return its result."""
        return self._command(method, params or {}, self._session)

    def navigate(self, url: str) -> None:
        self.call("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page, await a returned promise, and return its value."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise ChromiumError(f"script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout_s: float | None = None) -> Any:
        """Evaluate an expression every 100 ms until it is truthy; return its value.

        A script error counts as "not yet", because the page may still be loading; the last
        error is part of the timeout message.
        """
        deadline = time.monotonic() + (timeout_s or self.timeout_s)
        last_error: ChromiumError | None = None
        while time.monotonic() < deadline:
            try:
                value = self.evaluate(expression)
            except ChromiumError as error:
                last_error = error
                value = None
            if value:
                return value
            time.sleep(0.1)
        raise ChromiumError(f"timed out waiting for {expression!r} (last error: {last_error})")

    def click(self, selector: str) -> None:
        """Click the centre of the first element matching a CSS selector with the mouse."""
        box = self.evaluate(
            f"(() => {{ const r = document.querySelector({json.dumps(selector)})"
            ".getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        for event_type in ("mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                {"type": event_type, "x": box[0], "y": box[1], "button": "left", "clickCount": 1},
            )

    def type_text(self, selector: str, text: str) -> None:
        """Replace the text of an input: click it, select its content and type over it."""
        self.click(selector)
        self.evaluate(f"document.querySelector({json.dumps(selector)}).select()")
        self.call("Input.insertText", {"text": text})

    def screenshot(self) -> bytes:
        """Return a PNG of the viewport."""
        data = self.call("Page.captureScreenshot", {"format": "png"})["data"]
        return base64.b64decode(data)

    def _open_page(self, width: int, height: int) -> str:
        target = self._command("Target.createTarget", {"url": "about:blank"}, None)
        attached = self._command(
            "Target.attachToTarget", {"targetId": target["targetId"], "flatten": True}, None
        )
        session: str = attached["sessionId"]
        self._command("Page.enable", {}, session)
        self._command(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            session,
        )
        return session

    def _new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def _command(self, method: str, params: dict[str, Any], session: str | None) -> dict[str, Any]:
        message: dict[str, Any] = {"id": self._new_id(), "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self._write(message)
        deadline = time.monotonic() + self.timeout_s
        while True:
            reply = self._read(deadline)
            if reply.get("id") != message["id"]:
                self.events.append(reply)
                continue
            if "error" in reply:
                raise ChromiumError(f"{method} failed: {reply['error']}")
            result: dict[str, Any] = reply.get("result", {})
            return result

    def _write(self, message: dict[str, Any]) -> None:
        os.write(self._to_browser, json.dumps(message).encode("utf-8") + b"\0")

    def _read(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ChromiumError("timed out waiting for the browser to reply")
            readable, _, _ = select.select([self._from_browser], [], [], remaining)
            if not readable:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise ChromiumError(f"browser exited with code {self._process.poll()}")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        return message


def _launch(executable: str, profile: str) -> tuple[subprocess.Popen[bytes], int, int]:
    """Start the browser with its pipe ends on descriptors 3 and 4 of the child."""
    browser_reads, to_browser = os.pipe()
    from_browser, browser_writes = os.pipe()

    child_read = fcntl.fcntl(browser_reads, fcntl.F_DUPFD, _HIGH_FD)
    child_write = fcntl.fcntl(browser_writes, fcntl.F_DUPFD, _HIGH_FD)
    os.close(browser_reads)
    os.close(browser_writes)

    # bash (not dash, which supports only descriptors 0 to 9) moves the pipe ends to 3 and 4
    # and then becomes the launcher, so no Python code runs between fork and exec.
    redirect = (
        f'exec "$0" "$@" {_BROWSER_READS_FD}<&{child_read} {_BROWSER_WRITES_FD}>&{child_write} '
        f"{child_read}<&- {child_write}>&-"
    )
    try:
        process = subprocess.Popen(
            [
                "/bin/bash",
                "-c",
                redirect,
                executable,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
            ],
            pass_fds=(child_read, child_write),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    finally:
        os.close(child_read)
        os.close(child_write)
    return process, to_browser, from_browser


@dataclass(frozen=True, slots=True)
class Image:
    """Decoded RGBA pixels, row by row."""

    width: int
    height: int
    rgba: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int, int]:
        offset = (y * self.width + x) * 4
        red, green, blue, alpha = self.rgba[offset : offset + 4]
        return red, green, blue, alpha

    def count_near(
        self,
        colour: tuple[int, int, int],
        tolerance: int = 12,
        box: tuple[int, int, int, int] | None = None,
    ) -> int:
        """Count pixels within `tolerance` per channel of a colour, inside (x0, y0, x1, y1)."""
        x0, y0, x1, y1 = box or (0, 0, self.width, self.height)
        count = 0
        for y in range(y0, y1):
            row = self.rgba[(y * self.width + x0) * 4 : (y * self.width + x1) * 4]
            for offset in range(0, len(row), 4):
                if (
                    abs(row[offset] - colour[0]) <= tolerance
                    and abs(row[offset + 1] - colour[1]) <= tolerance
                    and abs(row[offset + 2] - colour[2]) <= tolerance
                ):
                    count += 1
        return count


def decode_png(data: bytes) -> Image:
    """Decode an 8-bit, non-interlaced RGB or RGBA PNG, which is what Chromium writes."""
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file")
    position = 8
    header = b""
    compressed = bytearray()
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind = data[position + 4 : position + 8]
        body = data[position + 8 : position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            header = body
        elif kind == b"IDAT":
            compressed += body
    width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", header)
    if depth != 8 or colour_type not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: depth {depth}, colour type {colour_type}")
    channels = 4 if colour_type == 6 else 3
    rows = _unfilter(zlib.decompress(bytes(compressed)), width * channels, height, channels)
    if channels == 4:
        return Image(width, height, bytes(rows))
    rgba = bytearray()
    for offset in range(0, len(rows), 3):
        rgba += rows[offset : offset + 3] + b"\xff"
    return Image(width, height, bytes(rgba))


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> bytearray:
    """Undo the per-row PNG filters (None, Sub, Up, Average, Paeth)."""
    output = bytearray(stride * height)
    previous = bytearray(stride)
    position = 0
    for y in range(height):
        filter_type = raw[position]
        row = bytearray(raw[position + 1 : position + 1 + stride])
        position += 1 + stride
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up = previous[i]
            upper_left = previous[i - bpp] if i >= bpp else 0
            if filter_type == 1:
                row[i] = (row[i] + left) & 0xFF
            elif filter_type == 2:
                row[i] = (row[i] + up) & 0xFF
            elif filter_type == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif filter_type == 4:
                row[i] = (row[i] + _paeth(left, up, upper_left)) & 0xFF
        output[y * stride : (y + 1) * stride] = row
        previous = row
    return output


def _paeth(left: int, up: int, upper_left: int) -> int:
    estimate = left + up - upper_left
    distance_left = abs(estimate - left)
    distance_up = abs(estimate - up)
    distance_upper_left = abs(estimate - upper_left)
    if distance_left <= distance_up and distance_left <= distance_upper_left:
        return left
    if distance_up <= distance_upper_left:
        return up
    return upper_left
