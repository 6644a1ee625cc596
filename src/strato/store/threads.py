"""The two background threads of the store: one writes history while the caller encodes
online values, one reads offline batches ahead of materialization."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pyarrow as pa

_writers: dict[int, ThreadPoolExecutor] = {}


def history_writer() -> ThreadPoolExecutor:
    """One background thread per process (a pool made before fork() has no thread in the child)."""
    pid = os.getpid()
    writer = _writers.get(pid)
    if writer is None:
        writer = _writers[pid] = ThreadPoolExecutor(max_workers=1, thread_name_prefix="strato-history")
    return writer


def prefetched(reader: pa.RecordBatchReader, depth: int = 2) -> Iterator[pa.RecordBatch]:
    """The reader's batches, read ahead by a thread while the caller works on the current one.

    The offline engine computes the next batch (without the GIL) while this thread encodes
    and writes the previous one online. An error in the reader is raised here, in order;
    leaving the loop early stops the thread.
    """
    ready: queue.Queue[tuple[pa.RecordBatch | None, BaseException | None]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for batch in reader:
                while not stop.is_set():
                    try:
                        ready.put((batch, None), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: tuple[pa.RecordBatch | None, BaseException | None] = (None, None)
        except BaseException as exc:  # handed to the consumer, raised there
            item = (None, exc)
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="strato-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            batch, error = ready.get()
            if error is not None:
                raise error
            if batch is None:
                return
            yield batch
    finally:
        stop.set()
        thread.join()
