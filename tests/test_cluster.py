"""open_client: in-process, LocalCluster, scheduler address, SLURMCluster config."""
from __future__ import annotations

import pytest

from conftest import slurm_env  # noqa: F401 - fixture

from hpcneuro.cluster import SLURM_CONFIG, _slurm_kwargs, open_client
from hpcneuro.errors import UserError


def test_none_runs_in_process():
    with open_client("none") as c:
        assert c is None


def test_local_cluster_workers_run_tasks():
    with open_client("local", n_workers=2) as c:
        info = c.scheduler_info()["workers"]
        assert len(info) == 2
        assert all(w["nthreads"] == 1 for w in info.values())
        assert c.submit(sum, [1, 2, 3]).result() == 6


def test_scheduler_address():
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=1, dashboard_address=":0") as cl:
        with open_client(cl.scheduler_address) as c:
            assert c.submit(lambda: 41 + 1).result() == 42


def test_bad_scheduler_names():
    with pytest.raises(UserError, match="unknown scheduler"):
        with open_client("kubernetes"):
            pass
    with pytest.raises(UserError, match="cannot reach"):
        with open_client("tcp://127.0.0.1:1", timeout="2s"):
            pass


def test_slurm_config_file_renders_a_job_script(tmp_path):
    kw = _slurm_kwargs(SLURM_CONFIG, {"walltime": "00:10:00"})
    assert kw["cores"] == kw["processes"] and kw["walltime"] == "00:10:00"
    from dask_jobqueue import SLURMCluster

    with SLURMCluster(**kw, scheduler_options={"dashboard_address": ":0"}) as cl:
        script = cl.job_script()
    assert "#SBATCH" in script and "00:10:00" in script and "--nworkers 2" in script


SLURM_RUN = """
import sys
import numpy as np
from hpcneuro.cluster import open_client
from hpcneuro.oinfo import compute_oinfo
x = np.random.default_rng(0).normal(size=(300, 9)) @ np.random.default_rng(1).normal(size=(9, 9))
names = [f"v{i}" for i in range(9)]
with open_client("slurm", 1, cores=1, processes=1, memory="1GB", wait_timeout=120,
                 log_directory=sys.argv[1]) as c:
    a = compute_oinfo(x, names, max_order=5, client=c)
b = compute_oinfo(x, names, max_order=5)
same = all(np.array_equal(a.orders[k].oinfo, b.orders[k].oinfo) for k in a.orders)
print("workers", a.attrs["n_workers"], "identical", same)
"""


def test_slurm_cluster_runs_the_engine(slurm_env, tmp_path):
    """Dask workers as jobs of the real local one-node Slurm give the in-process result."""
    import subprocess
    import sys
    from pathlib import Path

    env = dict(slurm_env, PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    out = subprocess.run([sys.executable, "-c", SLURM_RUN, str(tmp_path)], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "workers 1 identical True" in out.stdout
