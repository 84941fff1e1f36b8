"""Where the O-information engine runs: in-process, LocalCluster, Slurm, or an address.

``open_client(scheduler)`` is a context manager yielding a ``distributed.Client``
(or None for "none"); clusters it starts are closed on exit, existing
schedulers are only disconnected from.
"""
from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path
from typing import Any, Iterator

from .errors import UserError

log = logging.getLogger(__name__)

#: default SLURMCluster settings, overridden by the user's dask config (jobqueue.slurm)
SLURM_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "slurm-dask.yaml"


def _slurm_kwargs(path: Path | None, overrides: dict[str, Any]) -> dict[str, Any]:
    """SLURMCluster keywords: configs/slurm-dask.yaml, then the caller's overrides.

    Keys not given here fall back to dask's own config (``jobqueue.slurm`` in
    ~/.config/dask/*.yaml or DASK_JOBQUEUE__SLURM__* environment variables).
    """
    import yaml

    kw: dict[str, Any] = {}
    if path is not None and path.exists():
        doc = yaml.safe_load(path.read_text()) or {}
        kw.update((doc.get("jobqueue", {}) or {}).get("slurm", {}) or {})
    kw.update(overrides)
    return kw


def slurm_jobs(n_workers: int | None, kw: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """(number of SLURMCluster jobs, their keywords) that start exactly ``n_workers``
    single-threaded Dask workers (None: one job as configured).

    A job runs ``processes`` workers on ``cores`` cores, so scaling to ``n_workers``
    *jobs* started ``processes`` times the workers asked for. Each job here runs the
    largest divisor of ``n_workers`` not above ``processes`` workers, with cores and
    memory cut in proportion.
    """
    processes = int(kw.get("processes") or 1)
    if n_workers is None or n_workers < 1:
        return 1, kw
    per_job = max(d for d in range(1, min(processes, n_workers) + 1) if n_workers % d == 0)
    if per_job == processes:
        return n_workers // per_job, kw
    from dask.utils import parse_bytes

    kw = dict(kw, processes=per_job)
    if kw.get("cores"):
        kw["cores"] = max(per_job, int(kw["cores"]) * per_job // processes)
    if kw.get("memory"):
        kw["memory"] = f"{parse_bytes(kw['memory']) * per_job // processes}B"  # exact
    return n_workers // per_job, kw


@contextlib.contextmanager
def open_client(scheduler: str = "none", n_workers: int | None = None,
                **kw: Any) -> Iterator[Any]:
    """Yield a Dask client for `scheduler` (None for "none").

    "none": run in-process. "local": LocalCluster of processes with one thread
    each, n_workers defaulting to the number of cores. "slurm": SLURMCluster
    from configs/slurm-dask.yaml (or HPCNEURO_SLURM_DASK) and the user's dask
    config, as jobs that run n_workers single-threaded workers in all (default:
    one job; see :func:`slurm_jobs`). Anything else: the address of a running
    scheduler, e.g. tcp://host:8786. Extra keywords go to the
    cluster constructor; "slurm" also takes wait_timeout (seconds to wait for
    the first worker, default: no limit).
    """
    if scheduler in (None, "none"):
        yield None
        return
    from distributed import Client

    if scheduler == "local":
        from distributed import LocalCluster

        n = n_workers or os.cpu_count() or 1
        # any free port: several clusters (or users) on one node must not clash on 8787
        kw.setdefault("dashboard_address", ":0")
        with LocalCluster(n_workers=n, threads_per_worker=1, processes=True, **kw) as cl, \
                Client(cl) as client:
            yield client
        return
    if scheduler == "slurm":
        try:
            from dask_jobqueue import SLURMCluster
        except ImportError as exc:  # pragma: no cover - dependency listed in setup.cfg
            raise UserError("scheduler 'slurm' needs dask-jobqueue: pip install dask-jobqueue") from exc
        path = Path(os.environ.get("HPCNEURO_SLURM_DASK", SLURM_CONFIG))
        # None: wait as long as the queue takes; jobs are cancelled on exit
        wait_timeout = kw.pop("wait_timeout", None)
        jobs, job_kw = slurm_jobs(n_workers, _slurm_kwargs(path, kw))
        with SLURMCluster(**job_kw) as cl:
            cl.scale(jobs=jobs)
            with Client(cl) as client:
                try:
                    client.wait_for_workers(1, timeout=wait_timeout)
                except TimeoutError as exc:
                    raise UserError(f"no Slurm job of Dask workers started within {wait_timeout} s "
                                    "(see squeue): lower cores/memory in configs/slurm-dask.yaml "
                                    "or wait longer") from exc
                yield client
        return
    if "://" not in scheduler and ":" not in scheduler:
        raise UserError(f"unknown scheduler {scheduler!r}: use none, local, slurm or a "
                        "scheduler address like tcp://host:8786")
    try:
        client = Client(scheduler, timeout=kw.get("timeout", "20s"))
    except (OSError, TimeoutError) as exc:
        raise UserError(f"cannot reach the Dask scheduler at {scheduler}: {exc}; start it "
                        "with `dask scheduler` or use --scheduler local") from exc
    with client:
        yield client
