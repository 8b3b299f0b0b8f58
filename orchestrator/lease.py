"""One driver per sweep: a lease in the results location, ``<sweep_id>/_lease`` (local, NFS and S3 alike).

A driver (`sweep launch`, `sweep resume`) takes the lease before it writes anything, renews it every
``TTL_S / 3`` seconds from a thread, and deletes it when it ends. A second driver finds a live lease and
exits with one line naming the first. A driver killed (SIGKILL, a lost machine) stops renewing: once
``TTL_S`` has passed the lease has expired, `sweep ls` / `sweep status` read the sweep ``stale``
(``analysis.state``), and the next `sweep resume` takes it over.

Taking the lease: write ours, wait a moment, read it back; only the writer whose lease is read back goes on
(on S3 the last PUT wins, and every contender reads the same winner).
"""
from __future__ import annotations

import contextlib
import json
import os
import secrets
import socket
import threading
import time

import pyarrow.fs as pafs

from analysis.state import lease_expired, read_lease
from layout.files import write_atomic
from layout.location import open_sweep
from layout.paths import lease_file

from .spec import UserError

TTL_S = float(os.environ.get("SWEEP_LEASE_TTL_S", "60"))  # a lease not renewed for this long has expired
SETTLE_S = 0.5  # between writing our lease and reading it back


class LeaseHeld(UserError):
    """Another live driver holds the sweep's lease."""


class Lease:
    def __init__(self, results: str, sweep_id: str, ttl_s: float = TTL_S):
        self.fs, self.sweep_dir = open_sweep(results, sweep_id)
        self.sweep_id, self.ttl_s = sweep_id, ttl_s
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def path(self) -> str:
        return lease_file(self.sweep_dir)

    def _write(self) -> None:
        body = dict(owner=self.owner, host=socket.gethostname(), pid=os.getpid(), renewed_at=time.time(),
                    ttl_s=self.ttl_s)
        write_atomic(self.fs, self.path, json.dumps(body).encode())

    def _refuse_if_held(self) -> None:
        other = read_lease(self.fs, self.sweep_dir)
        if other and other.get("owner") != self.owner and not lease_expired(other):
            age = time.time() - float(other["renewed_at"])
            raise LeaseHeld(f"sweep {self.sweep_id} is driven by another driver (pid {other.get('pid')} on "
                            f"{other.get('host')}, lease renewed {age:.0f} s ago); wait for it to end, or "
                            f"`sweep stop {self.sweep_id}`")

    def acquire(self) -> None:
        """Take the lease, or raise LeaseHeld naming the live driver that has it."""
        self._refuse_if_held()
        self._write()
        time.sleep(SETTLE_S)
        self._refuse_if_held()  # another driver wrote after us: it won
        self._thread = threading.Thread(target=self._renew, name="sweep-lease", daemon=True)
        self._thread.start()

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_s / 3):
            try:
                self._write()
            except OSError:  # a full or unreachable location: the driver says so; the lease may lapse
                pass

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        with contextlib.suppress(OSError):
            mine = read_lease(self.fs, self.sweep_dir)
            if mine and mine.get("owner") == self.owner:
                self.fs.delete_file(self.path)


@contextlib.contextmanager
def driver_lease(results: str, sweep_id: str):
    """Hold ``sweep_id``'s lease for the block (raises LeaseHeld before it runs when another driver holds it)."""
    lease = Lease(results, sweep_id)
    lease.acquire()
    try:
        yield lease
    finally:
        lease.release()


def lease_exists(results: str, sweep_id: str) -> bool:
    fs, sweep_dir = open_sweep(results, sweep_id)
    return fs.get_file_info(lease_file(sweep_dir)).type != pafs.FileType.NotFound
