"""Running many cells: a local process pool, or Ray tasks on a cluster.

Both backends run the same function, :func:`.cell.run_cell`, once per cell, and yield each
:class:`.cell.Outcome` as it completes (in completion order: the results table puts rows in
the sweep's order). ``workers=1`` runs the cells one after another in this process.

- Process pool: :class:`concurrent.futures.ProcessPoolExecutor` with the ``spawn`` start
  method (a clean interpreter per worker: no inherited state, the same on every platform);
  each worker writes the log of its cell into ``keep_logs`` or a temporary directory it
  removes.
- Ray (``pip install 'clearsim[ray]'``): one task per cell; ``ray.init(address=...)``, or a
  local Ray of ``workers`` CPUs when no address is given. A task's log stays on its worker
  (a temporary directory, removed) unless ``keep_logs`` is given: then the task returns the
  log's bytes and the driver writes them there. The workers must see the sweep's scenario
  and command files at the same paths (a shared file system, or a single machine); a cell
  checks the digest of what it reads against its key, so a different file is an error, never
  a silently different run.

A cell that fails stops the sweep: the error is raised here once the pool is shut down
(cells not started yet are cancelled).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any

import attrs

from clearsim.events.errors import ClearsimError
from clearsim.replay.sweep.cell import Outcome, run_cell
from clearsim.replay.sweep.results import MissingExtra
from clearsim.replay.sweep.spec import Cell

__all__ = ["Backend", "default_workers", "run_cells"]


@attrs.frozen
class Backend:
    """Where cells run: ``workers`` processes (or local Ray CPUs); ``ray`` to use Ray, at
    ``ray_address`` (None: a local Ray); ``keep_logs``: a directory for every run's log."""

    workers: int = 1
    ray: bool = False
    ray_address: str | None = None
    keep_logs: Path | None = None


def default_workers() -> int:
    """The CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def run_cells(cells: Sequence[Cell], backend: Backend) -> Iterator[Outcome]:
    """Each cell's outcome, as it completes."""
    if not cells:
        return iter(())
    if backend.keep_logs is not None:
        backend.keep_logs.mkdir(parents=True, exist_ok=True)
    if backend.ray:
        return _ray(cells, backend)
    if backend.workers <= 1 or len(cells) == 1:
        return _serial(cells, backend)
    return _processes(cells, backend)


def _log_dir(backend: Backend) -> str | None:
    return None if backend.keep_logs is None else str(backend.keep_logs)


def _serial(cells: Sequence[Cell], backend: Backend) -> Iterator[Outcome]:
    log_dir = _log_dir(backend)
    for c in cells:
        yield run_cell(c, log_dir)


def _processes(cells: Sequence[Cell], backend: Backend) -> Iterator[Outcome]:
    log_dir = _log_dir(backend)
    ctx = multiprocessing.get_context("spawn")
    pool = ProcessPoolExecutor(max_workers=min(backend.workers, len(cells)), mp_context=ctx)
    try:
        pending: set[Future[Outcome]] = {pool.submit(run_cell, c, log_dir) for c in cells}
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for f in done:
                yield f.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _ray(cells: Sequence[Cell], backend: Backend) -> Iterator[Outcome]:
    try:
        import ray
    except ImportError:
        raise MissingExtra("--ray needs Ray: pip install 'clearsim[ray]'") from None
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {
            "include_dashboard": False,
            "log_to_driver": False,
            "logging_level": logging.ERROR,
        }
        if backend.ray_address is None:
            kwargs["num_cpus"] = backend.workers
        else:
            kwargs["address"] = backend.ray_address
        try:
            ray.init(**kwargs)
        except (ConnectionError, RuntimeError, ValueError) as e:
            where = backend.ray_address or "a local Ray"
            raise ClearsimError(f"--ray: cannot start {where}: {e}") from None
    pending: list[Any] = []
    try:
        task: Any = ray.remote(num_cpus=1)(run_cell)
        keep = backend.keep_logs
        pending = [task.remote(c, None, keep is not None) for c in cells]
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            try:
                outcome: Outcome = ray.get(done[0])
            except ray.exceptions.RayTaskError as e:
                if isinstance(e.cause, ClearsimError):
                    raise e.cause from None
                raise
            if keep is not None and outcome.log is not None:
                _write_log(keep / f"{outcome.key}.log", outcome.log)
                outcome = attrs.evolve(outcome, log=None)
            yield outcome
    finally:
        if started:
            ray.shutdown()
        else:  # a cluster we did not start: stop the tasks of a sweep that stopped early
            for ref in pending:
                ray.cancel(ref)


def _write_log(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as e:
        raise ClearsimError(f"{path}: cannot write: {e.strerror or e}") from None
