"""A batch's S3 and SQS requests, run side by side on one thread pool that lives as long as the container.

Each request spends most of its time waiting for S3 or SQS (25 ms or more for a PUT), so a batch that fans out to
many objects is as slow as its PUTs *in sequence* divided by how many run at once. The pool starts at the first
batch that needs it and is kept, so no batch pays for starting threads; a batch with a single request runs it on
the caller's thread and never touches the pool.

How many run at once follows the function's memory (``parallel_requests``). Measured with botocore against a local
HTTP server answering each PUT after 25 ms (docs/benchmarks.md, "Fan-out"): the process grew by 1.4 MiB with 8
requests in flight and 6.0 MiB with 256, about 20 KiB per added request (thread, connection, buffers); TLS adds its
buffers on top. ``parallel_requests`` allows one request per 4 MiB of function memory, between 16 and 256: at most
256 x 64 KiB = 16 MiB in flight at 1,024 MiB, 2 MiB at 128 MiB.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait

MIN_PARALLEL_REQUESTS = 16
MAX_PARALLEL_REQUESTS = 256
MEMORY_MIB_PER_REQUEST = 4
# What the stack deploys by default (infra/config.py), for a process that does not say.
DEFAULT_MEMORY_MIB = 1024


def parallel_requests(memory_mib: int = DEFAULT_MEMORY_MIB) -> int:
    """How many requests of one batch may be in flight at once in a function with ``memory_mib`` of memory."""
    return max(MIN_PARALLEL_REQUESTS, min(MAX_PARALLEL_REQUESTS, memory_mib // MEMORY_MIB_PER_REQUEST))


class RequestPool:
    """Runs calls on at most ``max_workers`` threads, started on first use and kept for later batches."""

    def __init__(self, max_workers: int) -> None:
        self.max_workers = max_workers
        self._executor: ThreadPoolExecutor | None = None

    def submit[T](self, call: Callable[[], T]) -> Future[T]:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self.max_workers, thread_name_prefix="archiver-request")
        return self._executor.submit(call)

    def run_all[T](self, calls: Sequence[Callable[[], T]]) -> list[T]:
        """Every call's result, in order; one call runs here. Raises the first failure, in the calls' order, once
        every call has finished (none is left running into the next batch)."""
        if len(calls) <= 1:
            return [call() for call in calls]
        return results([self.submit(call) for call in calls])


def results[T](futures: Sequence[Future[T]]) -> list[T]:
    """Wait for every future; their results in order, or the first failure in order."""
    wait(futures)
    return [future.result() for future in futures]
