"""Set-up of each worker process of a LocalCluster that hpcneuro starts: a Dask preload
(``dask_setup`` runs in the worker before it registers; see engine.open_client).

The cluster belongs to the hpcneuro process and closes only when that process ends
(done, failed or Ctrl-C). A worker whose heartbeat is in flight at that moment logs the
closed connection as a traceback; it says nothing about the job, so it is dropped. Every
other worker log record is kept.
"""
from __future__ import annotations

import logging
from typing import Any

#: distributed.worker's message for a heartbeat that met a closed scheduler
HEARTBEAT_FAILED = "Failed to communicate with scheduler during heartbeat."


class _DropHeartbeatAtShutdown(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != HEARTBEAT_FAILED


def dask_setup(worker: Any) -> None:
    logging.getLogger("distributed.worker").addFilter(_DropHeartbeatAtShutdown())
