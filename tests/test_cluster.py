"""open_client: in-process, LocalCluster, scheduler address, SLURMCluster config."""
from __future__ import annotations

import pytest

from conftest import slurm_env  # noqa: F401 - fixture

from pathlib import Path

from hpcneuro.errors import UserError
from hpcneuro.oinfo import engine
from hpcneuro.oinfo.engine import SLURM_DEFAULTS, load_slurm_defaults, open_client


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
    """The packaged slurm-dask.yaml, merged into dask's defaults, drives SLURMCluster."""
    import dask
    from dask_jobqueue import SLURMCluster

    assert SLURM_DEFAULTS.is_file() and SLURM_DEFAULTS.parent == Path(engine.__file__).parent
    load_slurm_defaults()
    kw = dask.config.get("jobqueue.slurm")
    assert kw["cores"] == kw["processes"] == 2
    with SLURMCluster(walltime="00:10:00", scheduler_options={"dashboard_address": ":0"}) as cl:
        script = cl.job_script()
    assert "#SBATCH" in script and "00:10:00" in script and "--nworkers 2" in script


SETTINGS_RUN = """
import json
import dask
from hpcneuro.oinfo.engine import load_slurm_defaults, slurm_user_settings
load_slurm_defaults()
load_slurm_defaults()  # once is enough; twice changes nothing
print(json.dumps({"config": dask.config.get("jobqueue.slurm"), "user": slurm_user_settings()}))
"""


def test_slurm_defaults_yield_to_the_users_dask_config_and_file(tmp_path):
    """Packaged defaults < ~/.config/dask and DASK_* < HPCNEURO_SLURM_DASK (a fresh process:
    dask reads its config files and environment at import, before the defaults merge)."""
    import json
    import os
    import subprocess
    import sys

    import yaml

    root = Path(__file__).resolve().parents[1]
    user_dir = tmp_path / "dask"
    user_dir.mkdir()
    (user_dir / "jobqueue.yaml").write_text(yaml.safe_dump(
        {"jobqueue": {"slurm": {"walltime": "02:00:00"}}}))
    mine = tmp_path / "mine.yaml"
    mine.write_text(yaml.safe_dump({"jobqueue": {"slurm": {"queue": "debug",
                                                           "job-extra-directives": ["-A x"]}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DASK_")}
    env.update(PYTHONPATH=str(root), DASK_CONFIG=str(user_dir),
               DASK_JOBQUEUE__SLURM__MEMORY="3GB", HPCNEURO_SLURM_DASK=str(mine))
    out = subprocess.run([sys.executable, "-c", SETTINGS_RUN], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    cfg = got["config"]
    assert cfg["cores"] == 2 and cfg["processes"] == 2        # packaged defaults
    assert cfg["walltime"] == "02:00:00"                      # user's dask config file
    assert cfg["memory"] == "3GB"                             # DASK_* variable
    assert got["user"] == {"queue": "debug", "job_extra_directives": ["-A x"]}
    env["HPCNEURO_SLURM_DASK"] = str(tmp_path / "missing.yaml")
    out = subprocess.run([sys.executable, "-c", SETTINGS_RUN], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode != 0 and "HPCNEURO_SLURM_DASK" in out.stderr


SLURM_RUN = """
import sys
import numpy as np
from hpcneuro.oinfo import open_client
from hpcneuro.oinfo import compute_oinfo, tiny
tiny.TINY_JOB_MULTIPLETS = -1  # the kernel on a Slurm worker: a tiny job never uses a cluster
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
