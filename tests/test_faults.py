"""Nothing lost, ever: each bad input and fault of issue 11 under the real components
(mpiexec, tmpfs filesystems, a LocalCluster whose workers the test kills)."""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, mount_tmpfs, run_cli, small_config, unmount, wait_for_progress


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def one_line_error(proc: subprocess.CompletedProcess, status: int, command: str,
                   *needles: str) -> str:
    """The command failed with ``status`` and exactly one line naming the problem."""
    assert proc.returncode == status, (proc.returncode, proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr, \
        proc.stderr[-2000:]
    lines = [l for l in proc.stderr.splitlines() if f"hpcneuro {command}: error:" in l]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def write_yaml(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A finished small campaign: its config, results and a CSV table."""
    tmp = tmp_path_factory.mktemp("faults")
    config = write_yaml(tmp / "campaign.yaml", small_config())
    results = tmp / "results.h5"
    proc = run_cli("simulate", config, "-o", results)
    assert proc.returncode == 0, proc.stderr
    table = tmp / "table.csv"
    x = np.random.default_rng(1).normal(size=(300, 5))
    np.savetxt(table, x, delimiter=",", header="a,b,c,d,e", comments="")
    return config, results, table


# --- 1. an output equal to an input -------------------------------------------------

def test_output_that_is_an_input_is_refused_and_the_input_kept(campaign, tmp_path):
    config, results, table = campaign
    before = {p: digest(p) for p in (config, results, table)}
    link = tmp_path / "link.csv"
    link.symlink_to(table)
    hard = tmp_path / "hard.h5"
    os.link(results, hard)
    cases = [("analyze", [results, "-o", results]),
             ("oinfo", [table, "-o", table]),
             ("oinfo", [f"{results}:/params", "-o", results]),
             ("oinfo", [table, "-o", link, "--overwrite"]),
             ("analyze", [results, "-o", hard, "--overwrite"]),
             ("simulate", [config, "-o", config, "--overwrite"])]
    for command, args in cases:
        one_line_error(run_cli(command, *args), 2, command, "is the input")
    assert before == {p: digest(p) for p in before}


def test_existing_file_of_another_kind_needs_overwrite(campaign, tmp_path):
    _, _, table = campaign
    notes = tmp_path / "notes.h5"
    notes.write_text("precious notes")
    one_line_error(run_cli("oinfo", table, "-o", notes, "--scheduler", "none"), 2, "oinfo",
                   "--overwrite")
    assert notes.read_text() == "precious notes"
    proc = run_cli("oinfo", table, "-o", notes, "--scheduler", "none", "--overwrite")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(notes) as f:
        assert list(f["variables"].asstr()[()]) == list("abcde")


# --- 2. OINFO.h5 written whole or not at all ------------------------------------------

def test_full_disk_while_writing_oinfo_keeps_the_earlier_result(campaign, small_disk):
    _, _, table = campaign
    out = small_disk / "oinfo.h5"
    proc = run_cli("oinfo", table, "-o", out, "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    earlier = digest(out)
    # 24 columns, every multiplet of orders 3..6 stored: several MB, more than the disk
    wide = small_disk.parent / "wide.npy"
    np.save(wide, np.random.default_rng(2).normal(size=(200, 24)))
    proc = run_cli("oinfo", wide, "-o", out, "--max-order", "6", "--scheduler", "none")
    one_line_error(proc, 3, "oinfo", "no space left", str(out))
    assert digest(out) == earlier
    assert sorted(p.name for p in small_disk.iterdir()) == ["oinfo.h5"]


def test_report_on_a_damaged_oinfo_file_is_one_line(campaign, tmp_path):
    config, results, _ = campaign
    rundir = tmp_path / "run"
    rundir.mkdir()
    (rundir / "results.h5").write_bytes(results.read_bytes())
    proc = run_cli("analyze", rundir / "results.h5", "-o", rundir / "oinfo.h5",
                   "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    data = (rundir / "oinfo.h5").read_bytes()
    (rundir / "oinfo.h5").write_bytes(data[: len(data) // 3])  # as a killed writer left it
    one_line_error(run_cli("report", rundir), 2, "report", "oinfo.h5")


# --- 3. one writer per campaign ---------------------------------------------------------

def _start_simulate(config: Path, output: Path, ranks: int = 2) -> subprocess.Popen:
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "hpcneuro", "simulate",
           str(config), "-o", str(output)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


@pytest.mark.requires_mpi
def test_a_second_writer_is_refused_naming_the_holder(tmp_path):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 3000
    config = write_yaml(tmp_path / "big.yaml", cfg)
    output = tmp_path / "results.h5"
    first = _start_simulate(config, output)
    try:
        wait_for_progress(output, timeout=120)
        for extra in ([], ["--overwrite"]):
            proc = run_cli("simulate", config, "-o", output, *extra, np=2)
            one_line_error(proc, 2, "simulate", "being written by another run", "pid")
        _, err = first.communicate(timeout=300)
        assert first.returncode == 0, err
    finally:
        if first.poll() is None:
            os.killpg(first.pid, signal.SIGKILL)
    with h5py.File(output) as f:
        assert np.all(f["status"][:] == 1)  # the first run's results all landed
    assert not (tmp_path / "results.h5.lock").exists()


# --- 4. full disks ------------------------------------------------------------------------

@pytest.mark.requires_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_a_store_larger_than_the_disk_is_refused_up_front(tmp_path, small_disk, ranks):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 20_000
    config = write_yaml(tmp_path / "c.yaml", cfg)
    proc = run_cli("simulate", config, "-o", small_disk / "r.h5", np=ranks, timeout=120)
    one_line_error(proc, 3, "simulate", "needs about", "KB free")
    assert list(small_disk.iterdir()) == []


CREATE_ON_FULL_DISK = """
import pathlib, sys
from mpi4py import MPI
from hpcneuro import config
from hpcneuro.campaign import _open_store
from hpcneuro.outputs import DiskFull
cfg = config.load(sys.argv[1])
outcome = pathlib.Path(sys.argv[3]) / f"rank{MPI.COMM_WORLD.rank}.txt"
try:
    _open_store(sys.argv[2], cfg, "create", MPI.COMM_WORLD)
    outcome.write_text("created")
except DiskFull as exc:  # each rank records what it raised (stderr lines interleave)
    outcome.write_text(f"DiskFull: {exc}")
"""


@pytest.mark.requires_mpi
@pytest.mark.parametrize("ranks", [1, 2])
def test_a_create_that_fills_the_disk_ends_every_rank(tmp_path, small_disk, ranks):
    """The estimate is bypassed (the disk filled after it, say): creation fails on a
    full disk; no rank is left waiting and the partial file is removed."""
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 20_000
    config = write_yaml(tmp_path / "c.yaml", cfg)
    script = tmp_path / "create.py"
    script.write_text(CREATE_ON_FULL_DISK)
    outcomes = tmp_path / "outcomes"
    outcomes.mkdir()
    cmd = [sys.executable, str(script), str(config), str(small_disk / "r.h5"), str(outcomes)]
    if ranks > 1:
        cmd = ["mpiexec", "-n", str(ranks)] + cmd
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]  # no crash, no rank left waiting
    # every rank learns it (rank 0 creates the file alone and shares the outcome)
    for rank in range(ranks):
        text = (outcomes / f"rank{rank}.txt").read_text()
        assert text.startswith("DiskFull: cannot write") and "no space left" in text, text
    assert "Segmentation" not in proc.stderr
    assert list(small_disk.iterdir()) == []


# --- 5 and 9. bad input: one line, exit 2, nothing written ----------------------------------

def _bad_configs(tmp: Path) -> dict[str, Path]:
    out = {}
    latin = tmp / "latin.yaml"
    latin.write_bytes(yaml.safe_dump(small_config()).replace("demo", "d\xe9mo").encode("latin-1"))
    out["not UTF-8"] = latin
    huge = small_config()
    huge["sampling"]["n_samples"] = 10 ** 12
    out["1e12 samples"] = write_yaml(tmp / "huge.yaml", huge)
    grid = small_config()
    grid["sampling"] = {"method": "grid", "points_per_axis": 1000}
    out["a grid of 1000 points per axis"] = write_yaml(tmp / "grid.yaml", grid)
    seed = small_config(seed=2 ** 64)
    out["seed 2**64"] = write_yaml(tmp / "seed.yaml", seed)
    return out


def test_bad_configs_are_one_line_errors_and_write_nothing(tmp_path):
    expected = {"not UTF-8": "not UTF-8", "1e12 samples": "sampling.n_samples",
                "a grid of 1000 points per axis": "sampling.points_per_axis",
                "seed 2**64": "seed: must be in 0 .. 2**64 - 1"}
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    for name, path in _bad_configs(tmp_path).items():
        one_line_error(run_cli("simulate", path, "-o", out_dir / "r.h5"), 2, "simulate",
                       expected[name])
    assert list(out_dir.iterdir()) == []


def test_bad_simulate_outputs(campaign, tmp_path):
    config, results, _ = campaign
    one_line_error(run_cli("simulate", config, "-o", tmp_path / "missing" / "r.h5"), 2,
                   "simulate", "does not exist; create it")
    ro = mount_tmpfs(tmp_path / "ro", "size=4m")
    try:
        (ro / "r.h5").write_bytes(results.read_bytes())
        with h5py.File(ro / "r.h5", "r+") as f:  # make it resumable: one pending sample
            status = f["status"][:]
            status[-1] = 0
            f["status"][:] = status
        subprocess.run(["mount", "-o", "remount,ro", str(ro)], check=True)
        one_line_error(run_cli("simulate", config, "-o", ro / "new.h5"), 2, "simulate",
                       "not writable")
        one_line_error(run_cli("simulate", config, "-o", ro / "r.h5"), 2, "simulate",
                       "not writable")
    finally:
        unmount(ro)


def test_bad_tables_and_options(tmp_path, campaign):
    _, _, table = campaign
    header = tmp_path / "header.csv"
    header.write_text("a,b,c\n")
    dup = tmp_path / "dup.csv"
    dup.write_text("a,a,b,c\n" + "\n".join(",".join(map(str, r)) for r in
                                          np.random.default_rng(0).normal(size=(20, 4))))
    one_d = tmp_path / "one.h5"
    with h5py.File(one_d, "w") as f:
        f["d"] = np.arange(10.0)
    big = tmp_path / "big.csv.gz"
    with gzip.open(big, "wt") as f:
        f.write("a,b,c\n" + "\n".join(f"{i},{i * 2},{i % 7}" for i in range(50_000)))
    corrupt = tmp_path / "corrupt.csv.gz"
    corrupt.write_bytes(big.read_bytes()[:20_000])
    out = tmp_path / "o.h5"
    cases = [([header], "has no rows"), ([dup], "appear more than once"),
             ([f"{one_d}:/d"], "need a 2-D"), ([corrupt], "not a complete gzip file"),
             ([table, "--n-workers", "-1"], "n_workers must be >= 1"),
             ([table, "--n-workers", "0"], "n_workers must be >= 1")]
    for args, needle in cases:
        one_line_error(run_cli("oinfo", *args, "-o", out, "--scheduler", "none"), 2,
                       "oinfo", needle)
    # output problems are found before any computation
    for target, needle in ((tmp_path, "is a directory"),
                           (tmp_path / "no" / "o.h5", "does not exist")):
        one_line_error(run_cli("oinfo", table, "-o", target), 2, "oinfo", needle)
    assert not out.exists()


def test_table_sampler_names_a_non_numeric_column(tmp_path):
    from hpcneuro import config as configuration

    cfg = small_config()
    names = configuration.parameter_names(configuration.validate(cfg, ROOT / "configs"))
    rows = [",".join(names)] + [",".join(["0.1"] * (len(names) - 1) + ["abc"])] * 5
    (tmp_path / "params.csv").write_text("\n".join(rows) + "\n")
    cfg["sampling"] = {"method": "table", "table": "params.csv"}
    config = write_yaml(tmp_path / "tab.yaml", cfg)
    one_line_error(run_cli("simulate", config, "-o", tmp_path / "r.h5"), 2, "simulate",
                   f"column {names[-1]!r}", "is not numeric")


@pytest.mark.requires_mpi
def test_errors_are_printed_once_under_mpi(tmp_path):
    bad = write_yaml(tmp_path / "bad.yaml", {"name": "x"})
    proc = run_cli("simulate", bad, "-o", tmp_path / "r.h5", np=2)
    one_line_error(proc, 2, "simulate", "model")


def test_status_into_a_closed_pipe_ends_quietly(campaign):
    _, results, _ = campaign
    proc = subprocess.run(f"{sys.executable} -m hpcneuro status {results} | head -1",
                          shell=True, capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.stdout.startswith("campaign")
    assert "BrokenPipe" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


# --- 6. impossible O-information jobs -------------------------------------------------------

def test_an_impossible_oinfo_job_is_refused_at_once_with_its_size(tmp_path):
    wide = tmp_path / "wide.npy"
    np.save(wide, np.random.default_rng(0).normal(size=(100, 10_000)))
    started = time.time()
    line = one_line_error(run_cli("oinfo", wide, "-o", tmp_path / "o.h5"), 2, "oinfo",
                          "8.33e+17 multiplets", "--max-multiplets", "choose a search")
    assert time.time() - started < 60, line
    assert not (tmp_path / "o.h5").exists()


def test_every_job_logs_its_size_and_time_estimate(campaign, tmp_path):
    _, _, table = campaign
    proc = run_cli("oinfo", table, "-o", tmp_path / "o.h5", "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    assert "16 multiplets to compute, about" in proc.stderr  # C(5,3) + C(5,4) + C(5,5)


def test_a_plan_larger_than_memory_is_refused_with_its_size(tmp_path):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 2 ** 31  # the largest campaign, 16 B of plan per sample
    config = write_yaml(tmp_path / "c.yaml", cfg)
    started = time.time()
    one_line_error(run_cli("simulate", config, "-o", tmp_path / "r.h5"), 2, "simulate",
                   "of memory on this node", "GB")
    assert time.time() - started < 30  # refused before the plan is allocated
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml"]


def test_ctrl_c_under_a_local_cluster_prints_no_worker_tracebacks(tmp_path):
    table = tmp_path / "w.npy"
    np.save(table, np.random.default_rng(0).normal(size=(500, 30)))
    proc = subprocess.Popen(
        [sys.executable, "-m", "hpcneuro", "oinfo", str(table), "-o", str(tmp_path / "o.h5"),
         "--max-order", "18", "--scheduler", "local"], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True, start_new_session=True,
        env=dict(os.environ, PYTHONPATH=str(ROOT)),
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stderr), daemon=True)
    reader.start()
    try:
        deadline = time.time() + 120
        # until the cluster is up (a Ctrl-C while it starts is ignored, as documented)
        while time.time() < deadline and not any("cluster of 2 workers up" in ln
                                                   for ln in lines):
            assert proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        time.sleep(1)  # its first tasks running
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole process group
        proc.wait(timeout=120)
        reader.join(timeout=30)
        err = "".join(lines)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err[-3000:]
    assert "hpcneuro oinfo: interrupted" in err
    assert not (tmp_path / "o.h5").exists()


# --- 7. mechanisms compile before any output ------------------------------------------------

def test_a_mod_file_that_does_not_compile_writes_nothing(tmp_path):
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "broken.mod").write_text(
        "NEURON { SUFFIX broken NONSPECIFIC_CURRENT i RANGE g }\n"
        "PARAMETER { g = 1e-4 (S/cm2) }\nASSIGNED { v (mV) i (mA/cm2) }\n"
        "BREAKPOINT { i = g*(v - nothing( }\n")
    cfg = small_config()
    cfg["model"]["mod_dirs"] = [str(mods)]
    cfg["model"]["mechanisms"].append({"name": "broken"})
    config = write_yaml(tmp_path / "c.yaml", cfg)
    proc = run_cli("simulate", config, "-o", tmp_path / "r.h5")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "did not compile" in proc.stderr and "broken.mod" in proc.stderr
    assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.yaml", "mods"]


# --- 8. Dask workers lost ---------------------------------------------------------------------

def test_dask_losing_every_worker_twice_still_gives_the_exact_result(caplog):
    from distributed import Client, LocalCluster

    from hpcneuro.oinfo import compute_oinfo

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 28)) @ rng.normal(size=(28, 28)) * 0.3 + rng.normal(size=(400, 28))
    names = [f"v{i}" for i in range(28)]
    kw = dict(max_order=13, top=20)
    reference = compute_oinfo(x, names, scheduler="none", n_workers=2, **kw)
    with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        client.wait_for_workers(2)
        killed: set[int] = set()

        def fresh_pids(timeout: float = 60.0) -> set[int]:
            """The worker processes now alive that were not killed yet."""
            deadline = time.time() + timeout
            while time.time() < deadline:
                try:
                    pids = set(client.run(os.getpid, on_error="ignore").values()) - killed
                except Exception:  # noqa: BLE001 - a worker died while asked
                    pids = set()
                if pids:
                    return pids
                time.sleep(0.1)
            return set()

        def kill_all_workers_twice():
            for _ in range(2):
                time.sleep(0.8)
                for pid in fresh_pids():
                    os.kill(pid, signal.SIGKILL)
                    killed.add(pid)

        killer = threading.Thread(target=kill_all_workers_twice)
        with caplog.at_level("WARNING", logger="hpcneuro.oinfo.engine"):
            killer.start()
            result = compute_oinfo(x, names, client=client, **kw)
            killer.join()
    assert len(killed) >= 3  # both workers, then their replacements
    assert sum("a Dask worker was lost" in r.message for r in caplog.records) >= 2
    for k, ref in reference.orders.items():
        got = result.orders[k]
        assert (got.n_multiplets, got.n_synergistic) == (ref.n_multiplets, ref.n_synergistic)
        np.testing.assert_array_equal(got.multiplets, ref.multiplets)
        np.testing.assert_array_equal(got.oinfo, ref.oinfo)


# --- 10. stopping 'run' stops its simulation -----------------------------------------------

@pytest.mark.requires_mpi
def test_sigterm_to_run_stops_and_waits_for_its_ranks(tmp_path):
    cfg = small_config()
    cfg["sampling"]["n_samples"] = 20_000
    config = write_yaml(tmp_path / "c.yaml", cfg)
    rundir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "hpcneuro", "run", str(config), "--np", "2",
                             "-o", str(rundir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    try:
        wait_for_progress(rundir / "results.h5", timeout=120)
        proc.send_signal(signal.SIGTERM)  # to 'run' alone, as timeout(1) or Slurm would
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 75, err[-2000:]
    left = subprocess.run(["pgrep", "-f", f"simulate {config}"], capture_output=True, text=True)
    assert left.stdout.strip() == "", "simulation ranks still running after run exited"
    with h5py.File(rundir / "results.h5") as f:
        status = f["status"][:]
    assert 0 < np.sum(status == 1) < status.size  # stopped part-way, blocks saved
    # nothing holds the campaign any more: a new simulate may resume it
    assert not (rundir / "results.h5.lock").exists()
