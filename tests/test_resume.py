"""Interruptions under real mpiexec: SIGTERM/SIGUSR1 stop cleanly, SIGKILL at any moment
loses only blocks in flight, and a resumed campaign equals an uninterrupted one."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

from conftest import ROOT, run_cli, small_config, wait_for_progress
from hpcneuro.lock import CampaignLock

DATASETS = ("params", "features", "status", "valid")


N_SAMPLES = 1500  # CoreNEURON simulates these in ~8 s on 2 ranks


@pytest.fixture(scope="module")
def campaign(tmp_path_factory):
    """A campaign of ~8 s on 2 ranks, and its uninterrupted result (serial run)."""
    tmp = tmp_path_factory.mktemp("resume")
    cfg = small_config()
    cfg["sampling"]["n_samples"] = N_SAMPLES
    cfg["simulation"]["batch_size"] = 10
    path = tmp / "campaign.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    reference = tmp / "reference.h5"
    proc = run_cli("simulate", path, "-o", reference)
    assert proc.returncode == 0, proc.stderr
    return path, reference


def start(config, output, ranks=2):
    cmd = ["mpiexec", "-n", str(ranks), sys.executable, "-m", "hpcneuro", "simulate",
           str(config), "-o", str(output)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True, env=dict(os.environ, PYTHONPATH=str(ROOT)))


def assert_same_results(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for key in DATASETS:
            np.testing.assert_array_equal(fa[key][:], fb[key][:], err_msg=key)


def rank_pids(output) -> list[int]:
    """The Python rank processes simulating into ``output`` (mpiexec's argv[0] differs)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv[0] == sys.executable.encode() and str(output).encode() in argv:
            pids.append(int(entry))
    return pids


def kill_campaign(proc, output, timeout: float = 60.0) -> None:
    """SIGKILL mpiexec and its ranks, and wait until the ranks have exited: proc.wait()
    waits for mpiexec only, and a rank that the kernel has not reaped yet still holds
    the campaign lock (a rerun would rightly be refused as a second writer)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    while rank_pids(output):
        assert time.monotonic() < deadline, f"ranks still alive: {rank_pids(output)}"
        time.sleep(0.05)


@pytest.mark.parametrize("how", ["SIGTERM to mpiexec", "SIGTERM to every rank",
                                 "SIGUSR1 to every rank"])
def test_warning_signal_stops_cleanly_and_a_rerun_completes(campaign, tmp_path, how):
    config, reference = campaign
    output = tmp_path / "results.h5"
    proc = start(config, output)
    wait_for_progress(output, minimum=20)
    if how == "SIGTERM to mpiexec":  # what a batch script forwards to mpiexec
        proc.send_signal(signal.SIGTERM)
    else:  # what Slurm (srun, --signal=SIG@T) sends to the tasks of a job step
        pids = rank_pids(output)
        assert len(pids) == 2
        for pid in pids:
            os.kill(pid, getattr(signal, how.split()[0]))
    _, err = proc.communicate(timeout=120)
    assert err.count("stopped by a signal") == 1, err  # rank 0 reports for everyone
    assert "rerun the same command to resume" in err
    if how != "SIGTERM to mpiexec":  # hydra does not always pass on its ranks' status
        assert proc.returncode == 75, err
    with h5py.File(output, "r") as f:
        status = f["status"][:]
    assert 0 < (status == 1).sum() < status.size  # stopped part-way, work kept
    proc = run_cli("simulate", config, "-o", output, np=2)  # the same command resumes
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr
    assert_same_results(output, reference)


def test_sigkill_at_random_moments_loses_nothing_finished(campaign, tmp_path):
    config, reference = campaign
    output = tmp_path / "results.h5"
    rng = np.random.default_rng(2)
    done_before = 0
    for attempt in range(4):
        proc = start(config, output)
        if attempt == 0:
            time.sleep(rng.uniform(0.5, 2.5))  # any moment, also during creation
        else:
            wait_for_progress(output, minimum=done_before + 1)
            time.sleep(rng.uniform(0.0, 1.5))
        kill_campaign(proc, output)
        if not output.exists():  # killed before the file was complete: nothing to keep
            # at most the file under construction, under its temporary name, and the
            # campaign lock's file, whose lock died with its holder
            assert {p.name for p in tmp_path.iterdir()} <= {"results.h5.creating",
                                                             "results.h5.lock"}
            CampaignLock(output).acquire().release()  # not held: never a stale lock
            continue
        with h5py.File(output, "r") as f:  # always readable
            status = f["status"][:]
            params = f["params"][:]
        done = status != 0
        assert done.sum() >= done_before  # finished samples are never lost
        with h5py.File(reference, "r") as ref:  # and what is marked done is complete
            np.testing.assert_array_equal(params[done], ref["params"][:][done])
        done_before = int(done.sum())
        if done_before == N_SAMPLES:  # finished before the kill: nothing left to interrupt
            break
    assert 0 < done_before  # at least one kill landed after samples were written
    proc = run_cli("simulate", config, "-o", output, np=2)
    assert proc.returncode == 0, proc.stderr
    assert_same_results(output, reference)


def test_resume_on_a_different_number_of_ranks_and_retry_failed(campaign, tmp_path):
    config, reference = campaign
    output = tmp_path / "results.h5"
    proc = start(config, output, ranks=2)
    wait_for_progress(output, minimum=30)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    proc = run_cli("simulate", config, "-o", output, "--resume")  # one rank now
    assert proc.returncode == 0, proc.stderr
    assert_same_results(output, reference)
    # --retry-failed reruns failed samples (mark some failed by hand) and restores them
    with h5py.File(output, "r+") as f:
        f["status"][5:8] = 2
    proc = run_cli("simulate", config, "-o", output, "--retry-failed", np=2)
    assert proc.returncode == 0, proc.stderr
    assert "3 pending" in proc.stderr
    assert_same_results(output, reference)


def test_a_sample_that_raises_is_marked_failed_with_its_reason():
    from hpcneuro import config as configuration
    from hpcneuro import protocols
    from hpcneuro.simulation import evaluate_block
    from hpcneuro.model import CellBatch
    from hpcneuro.sampling import Sampler
    from hpcneuro.store import DONE, SIM_FAILED

    class FussyBatch(CellBatch):
        """Raises inside the simulation for one poisoned parameter value."""

        def set_parameters(self, values):
            if np.any(values[:, 0] == 0.123):
                raise RuntimeError("NEURON: mechanism blew up")
            super().set_parameters(values)

    cfg = configuration.validate(small_config(), ROOT / "configs")
    batch = FussyBatch(cfg["model"], 4, cfg["parameters"])
    params = Sampler(cfg).sample(np.arange(4))
    params[2, 0] = 0.123
    result = evaluate_block(batch, protocols.from_config(cfg), cfg, params)
    assert list(result.status) == [DONE, DONE, SIM_FAILED, DONE]
    assert result.errors[2] == "simulation error: NEURON: mechanism blew up"
    assert np.isfinite(result.features[[0, 1, 3], 3]).all()


def test_status_of_a_stopped_campaign(campaign, tmp_path):
    config, _ = campaign
    output = tmp_path / "results.h5"
    proc = start(config, output)
    wait_for_progress(output, minimum=40)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=120)
    out = run_cli("status", output).stdout
    assert f"{N_SAMPLES} samples" in out and "pending" in out and "ETA" in out
    assert "samples/s" in out and "last write" in out


# --- MCMC: every chain continues from its last written step ----------------------------

MCMC_DATASETS = DATASETS + ("chain", "step", "accepted", "cost")
MCMC_CHAINS, MCMC_STEPS = 40, 40  # 1600 proposals, blocks of 10 chains: ~8 s on 2 ranks


@pytest.fixture(scope="module")
def mcmc_campaign(tmp_path_factory):
    """An MCMC campaign of ~8 s on 2 ranks, and its uninterrupted result (serial run)."""
    tmp = tmp_path_factory.mktemp("resume_mcmc")
    cfg = small_config()
    cfg["sampling"] = {"method": "mcmc", "n_chains": MCMC_CHAINS, "n_steps": MCMC_STEPS,
                       "proposal_std": 0.3, "burn_in": 5, "threshold": 3.0}
    cfg["validity"] = [{"feature": "step_300.mean_frequency", "mean": 60.0, "std": 15.0},
                       {"feature": "step_300.AP_amplitude", "low": 60.0}]
    cfg["simulation"]["batch_size"] = 10
    path = tmp / "mcmc.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    reference = tmp / "reference.h5"
    proc = run_cli("simulate", path, "-o", reference)
    assert proc.returncode == 0, proc.stderr
    return path, reference


def assert_same_chains(a, b):
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        for key in MCMC_DATASETS:
            np.testing.assert_array_equal(fa[key][:], fb[key][:], err_msg=key)


def written_prefixes(output) -> np.ndarray:
    """Steps written per chain; asserts that each chain's written steps are a prefix."""
    with h5py.File(output, "r") as f:
        status = f["status"][:].reshape(MCMC_STEPS, MCMC_CHAINS)
    written = status != 0
    n = written.sum(axis=0)
    assert np.all(written == (np.arange(MCMC_STEPS)[:, None] < n[None, :]))
    return n


def test_mcmc_sigterm_then_resume_continues_every_chain(mcmc_campaign, tmp_path):
    config, reference = mcmc_campaign
    output = tmp_path / "results.h5"
    proc = start(config, output)
    wait_for_progress(output, minimum=200)
    for pid in rank_pids(output):
        os.kill(pid, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err
    assert err.count("stopped by a signal") == 1, err
    n = written_prefixes(output)
    assert 0 < n.sum() < MCMC_CHAINS * MCMC_STEPS and np.any((n > 0) & (n < MCMC_STEPS))
    out = run_cli("status", output).stdout  # a stopped campaign: chains part-way
    assert (f"MCMC: {MCMC_CHAINS} chains x {MCMC_STEPS} steps; chains done "
            f"{int((n == MCMC_STEPS).sum())}, failed 0; steps written {n.sum()} of "
            f"{MCMC_CHAINS * MCMC_STEPS}") in out, out
    assert "acceptance:" in out
    proc = run_cli("simulate", config, "-o", output, np=2)
    assert proc.returncode == 0, proc.stderr
    assert "resuming" in proc.stderr
    assert_same_chains(output, reference)


def test_mcmc_sigkill_at_random_moments_then_resume_on_one_rank(mcmc_campaign, tmp_path):
    config, reference = mcmc_campaign
    output = tmp_path / "results.h5"
    rng = np.random.default_rng(5)
    done_before, interrupted = 0, 0
    for attempt in range(3):
        proc = start(config, output)
        wait_for_progress(output, minimum=done_before + 1)
        time.sleep(rng.uniform(0.0, 1.5))
        kill_campaign(proc, output)
        n = written_prefixes(output)  # always readable, chains written step by step
        assert n.sum() >= done_before
        with h5py.File(output, "r") as f, h5py.File(reference, "r") as ref:
            done = f["status"][:] != 0  # what is written equals the uninterrupted run
            for key in MCMC_DATASETS:
                np.testing.assert_array_equal(f[key][:][done], ref[key][:][done], err_msg=key)
        interrupted += int(np.any((n > 0) & (n < MCMC_STEPS)))
        done_before = int(n.sum())
        if done_before == MCMC_CHAINS * MCMC_STEPS:
            break
    assert interrupted  # at least one kill landed with chains part-way
    proc = run_cli("simulate", config, "-o", output)  # one rank now
    assert proc.returncode == 0, proc.stderr
    assert_same_chains(output, reference)
