"""Headless Chromium (Debian's ``chromium``) driven over the DevTools protocol on a pipe, for tests that load a
page and ask the browser itself what it rendered. No extra packages: ``--remote-debugging-pipe`` makes the
browser read NUL-terminated JSON commands on fd 3 and answer on fd 4.

Networking is off twice over: every host name resolves to nothing (``--host-resolver-rules``), and the page's
target is put offline (``Network.emulateNetworkConditions``). Every request the page makes is recorded.

    with Chromium(tmp_path / "profile") as b:
        b.open("file:///.../report.html")
        b.evaluate("document.images.length")
"""
from __future__ import annotations

import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import time

EXE = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def find() -> str:
    """The Chromium executable; a clear failure (not a skip) when it is missing: ``make test`` installs it."""
    exe = EXE if os.path.exists(EXE) else shutil.which("chromium")
    assert exe, f"Chromium not found at {EXE}: run `make test` (it installs Debian's chromium) or " \
                f"`apt-get install chromium`, or set CHROMIUM=/path/to/chromium"
    return exe


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's two ends moved to descriptors >= 10, clear of the 3 and 4 the browser is given."""
    out = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return out


class Chromium:
    def __init__(self, profile: os.PathLike, width: int = 1280, height: int = 1000, timeout: float = 60):
        self.timeout, self._id, self._buf, self.requests = timeout, 0, b"", []
        cmd_r, cmd_w = _high(os.pipe())  # we write commands; the browser reads them as fd 3
        res_r, res_w = _high(os.pipe())  # the browser writes answers as fd 4; we read them
        args = [find(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--mute-audio",
                "--no-first-run", "--disable-extensions", "--disable-background-networking", "--disable-sync",
                "--host-resolver-rules=MAP * ~NOTFOUND", f"--user-data-dir={profile}",
                f"--window-size={width},{height}", "--remote-debugging-pipe", "about:blank"]
        # fds 3 and 4 in the child, set up by bash (dash takes no fd above 9; no preexec_fn: the tests have threads)
        shell = ["bash", "-c", f'exec "$@" 3<&{cmd_r} 4>&{res_w}', "bash"]
        self.proc = subprocess.Popen(shell + args, pass_fds=(cmd_r, res_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        os.close(cmd_r)
        os.close(res_w)
        self._w, self._r = cmd_w, res_r
        self.session = None
        try:
            target = self.send("Target.createTarget", url="about:blank")["targetId"]
            self.session = self.send("Target.attachToTarget", targetId=target, flatten=True,
                                     session=False)["sessionId"]
            for method in ("Page.enable", "Network.enable", "Runtime.enable"):
                self.send(method)
            self.send("Network.emulateNetworkConditions", offline=True, latency=0, downloadThroughput=-1,
                      uploadThroughput=-1)
        except BaseException:
            self.close()
            raise

    def send(self, method: str, session: bool = True, **params) -> dict:
        """Run one DevTools command (on the page's session once attached); its result, or AssertionError."""
        self._id += 1
        msg = {"id": self._id, "method": method, "params": params}
        if session and self.session:
            msg["sessionId"] = self.session
        os.write(self._w, json.dumps(msg).encode() + b"\0")
        reply = self._until(lambda m: m.get("id") == self._id)
        assert "error" not in reply, (method, reply["error"])
        return reply.get("result", {})

    def _until(self, done) -> dict:
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buf:
                raw, self._buf = self._buf.split(b"\0", 1)
                m = json.loads(raw)
                if m.get("method") == "Network.requestWillBeSent":
                    self.requests.append(m["params"]["request"]["url"][:200])  # data: URLs are long
                if done(m):
                    return m
            left = deadline - time.monotonic()
            assert left > 0 and self.proc.poll() is None, "Chromium stopped answering"
            if select.select([self._r], [], [], left)[0]:
                chunk = os.read(self._r, 1 << 20)
                assert chunk, "Chromium closed its DevTools pipe"
                self._buf += chunk

    def open(self, url: str) -> None:
        """Navigate and wait for the load event (every image of the page loaded or failed)."""
        self.send("Page.navigate", url=url)
        self._until(lambda m: m.get("method") == "Page.loadEventFired")

    def evaluate(self, expression: str):
        """The value of a JavaScript expression in the page (promises awaited)."""
        r = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in r, r["exceptionDetails"]
        return r["result"].get("value")

    def screenshot(self, path: os.PathLike) -> bytes:
        """The whole page (not just the window) as a PNG, written to ``path``."""
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"])
        with open(path, "wb") as f:
            f.write(data)
        return data

    def close(self) -> None:
        try:
            os.write(self._w, json.dumps({"id": self._id + 1, "method": "Browser.close"}).encode() + b"\0")
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        finally:
            os.close(self._w)
            os.close(self._r)

    def __enter__(self) -> "Chromium":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
