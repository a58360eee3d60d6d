"""The generation the workers of one instance share: monotonic, one poller per instance."""

from __future__ import annotations

import multiprocessing
import time

from inventory.generation import (
    GenerationPoller,
    LocalGeneration,
    SharedGeneration,
    shared_or_local,
)


def _advance_in_child(path: str, value: int) -> None:
    SharedGeneration(path).advance(value)


def test_a_value_published_by_another_process_is_read_at_once(tmp_path):
    # GIVEN two processes mapping the same file (two workers of one instance)
    path = str(tmp_path / "generation")
    mine = SharedGeneration(path)
    assert mine.current() == 0
    # WHEN the other one publishes
    child = multiprocessing.get_context("fork").Process(target=_advance_in_child, args=(path, 7))
    child.start()
    child.join(10)
    # THEN this one reads it without polling anything
    assert child.exitcode == 0 and mine.current() == 7


def test_a_generation_never_goes_back(tmp_path):
    for generation in (LocalGeneration(), SharedGeneration(str(tmp_path / "g"))):
        assert generation.advance(5) == 5
        assert generation.advance(3) == 5
        assert generation.current() == 5


def test_shared_only_with_a_directory_the_workers_share(tmp_path):
    assert isinstance(shared_or_local(str(tmp_path)), SharedGeneration)
    assert isinstance(shared_or_local(None), LocalGeneration)


def test_one_poller_per_instance_reads_the_store(tmp_path):
    # GIVEN two workers' pollers on one lock file
    generation = SharedGeneration(str(tmp_path / "g"))
    reads = {"a": 0, "b": 0}

    def reader(name):
        def read():
            reads[name] += 1
            return reads["a"] + reads["b"]
        return read

    lock = str(tmp_path / "g.poller")
    first = GenerationPoller(generation, reader("a"), 0.05, lock).start()
    time.sleep(0.1)
    second = GenerationPoller(generation, reader("b"), 0.05, lock).start()
    time.sleep(0.3)
    # THEN only the lock holder polls, and what it reads is published
    assert reads["a"] >= 3 and reads["b"] == 0
    assert generation.current() >= 3
    # WHEN the holder goes away, the other takes over
    first.stop()
    time.sleep(0.3)
    second.stop()
    assert reads["b"] >= 1


def test_a_failing_store_keeps_the_last_generation():
    generation = LocalGeneration(4)

    def down():
        raise OSError("unreachable")

    GenerationPoller(generation, down, 1).poll_once()
    assert generation.current() == 4
