"""Catalog generation: one monotonic counter per instance that cache entries are tagged with.

Every change to the catalog (a price refresh, an operator write) bumps a counter
in DynamoDB. Within an instance the workers share the newest generation they
know through an mmap'd file, so a lookup costs an 8-byte read: a cache entry
built at an older generation is a miss. One worker per instance (whichever
holds the file lock) polls DynamoDB and publishes what it reads; a worker that
makes a write publishes the counter its bump returned at once.

A refresh writes for a while before it bumps, so a reload can find newer data
than the generation announces. Beside the generation the file holds one
counter per key slot (a hash of the cache key): a worker whose load finds
data different from what it held (or that held nothing) steps that key's
counter before serving it, and every other worker's copy of the key turns into
a miss. Counters only ever grow, so no worker serves an older answer after a
newer one was served from the same instance.
"""

from __future__ import annotations

import fcntl
import logging
import mmap
import os
import struct
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

_SLOT = struct.Struct("<q")
# Key slots (512 KB of file): a collision only costs an extra reload.
KEY_SLOTS = 65536
FILE_NAME = "inventory-cache-generation"
# How often the polling worker reads the stored generation: a refresh made by
# any instance reaches every worker of this one within this (README: within 1 s).
GENERATION_POLL_SECONDS = 0.5


class _Publish:
    def advance(self, value: int) -> int:
        """Publish `value` if it is newer than the current generation; return the current one."""
        return self._update(0, lambda current: max(current, value))

    def step(self) -> int:
        """Start a new generation in this instance only (the store could not be bumped)."""
        return self._update(0, lambda current: current + 1)

    def step_key(self, key_hash: int) -> int:
        """Announce changed data for one key; return its new counter."""
        return self._update(1 + key_hash % KEY_SLOTS, lambda current: current + 1)


class LocalGeneration(_Publish):
    """The generation of one process (tests, the CLI, a single-process server)."""

    def __init__(self, value: int = 0):
        self._values = [value] + [0] * KEY_SLOTS
        self._lock = threading.Lock()

    def current(self) -> int:
        return self._values[0]

    def key(self, key_hash: int) -> int:
        return self._values[1 + key_hash % KEY_SLOTS]

    def _update(self, slot: int, change) -> int:
        with self._lock:
            self._values[slot] = value = change(self._values[slot])
            return value


class SharedGeneration(_Publish):
    """The generation shared by the worker processes of one instance through an mmap'd file."""

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            size = _SLOT.size * (1 + KEY_SLOTS)
            if os.fstat(fd).st_size < size:
                os.ftruncate(fd, size)
            self._map = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        self._lock = threading.Lock()

    def current(self) -> int:
        return _SLOT.unpack_from(self._map)[0]

    def key(self, key_hash: int) -> int:
        return _SLOT.unpack_from(self._map, _SLOT.size * (1 + key_hash % KEY_SLOTS))[0]

    def _update(self, slot: int, change) -> int:
        # flock orders writers across processes; readers need no lock, an aligned
        # 8-byte store is never seen half-written.
        offset = _SLOT.size * slot
        with self._lock, open(self.path, "rb") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            value = change(_SLOT.unpack_from(self._map, offset)[0])
            _SLOT.pack_into(self._map, offset, value)
            return value


class GenerationPoller:
    """Read the stored generation every `interval` seconds and publish it; one poller per instance.

    Every worker starts one; only the holder of an exclusive lock on `lock_path`
    polls, the others wait for the lock (taken over when its holder exits).
    """

    def __init__(
        self, generation, read: Callable[[], int], interval: float, lock_path: str | None = None
    ):
        self.generation = generation
        self.read = read
        self.interval = interval
        self.lock_path = lock_path
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="generation-poller", daemon=True)

    def start(self) -> GenerationPoller:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def poll_once(self) -> None:
        try:
            self.generation.advance(self.read())
        except Exception as exc:  # the store is down: caches fall back to their ttl
            log.warning("could not read the catalog generation: %s", exc)

    def _run(self) -> None:
        lock = open(self.lock_path, "ab") if self.lock_path else None  # noqa: SIM115 (held for life)
        try:
            while lock is not None and not self._stop.is_set():
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    self._stop.wait(self.interval)
            while not self._stop.is_set():
                self.poll_once()
                self._stop.wait(self.interval)
        finally:
            if lock is not None:
                lock.close()


def shared_or_local(directory: str | None):
    """The instance's shared generation when workers share `directory`, else a process-local one."""
    if directory and os.path.isdir(directory):
        return SharedGeneration(os.path.join(directory, FILE_NAME))
    return LocalGeneration()
