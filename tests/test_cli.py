"""Every contract command exists with --help; unfinished ones say so plainly."""

from __future__ import annotations

import pytest

from hpcneuro.cli import build_parser, main
from conftest import run_cli

COMMANDS = {
    "run": ["--np", "RUNDIR"],
    "simulate": ["--resume", "--retry-failed", "mpiexec"],
    "status": ["RESULTS.h5"],
    "oinfo": ["--columns", "--min-order", "--max-order", "--target", "--estimator",
              "--bias-correct", "--units", "--bootstrap", "--permutations", "--gradient",
              "--drop-nan", "--top", "--scheduler"],
    "analyze": ["--variables", "--all-models", "--target", "--scheduler"],
    "report": ["index.html"],
    "submit": ["sbatch", "--nodes", "--ntasks-per-node", "--time", "--partition", "--account",
               "--qos", "--dry-run", "slurm.yaml"],
    "genes": ["COUNTS", "--metadata", "--cell-id", "--group-by", "--exclude-label", "--genes",
              "--min-detection", "--top-variable", "--normalize", "--estimator",
              "--bias-correct", "--bootstrap", "--max-order", "h5ad", "patchseq"],
    "reproduce": ["--scale", "--np", "--data", "--set", "findings.json", "FINDINGS.md"],
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_explains_each_command(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in COMMANDS[command]:
        assert word in text, f"{command} --help does not mention {word}"


def test_top_level_help_lists_every_command():
    text = build_parser().format_help()
    for command in COMMANDS:
        assert command in text


def test_python_dash_m_entry_point():
    proc = run_cli("--version")
    assert proc.returncode == 0 and proc.stdout.startswith("hpcneuro ")


def test_genes_without_counts_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["genes"])
    assert exit_info.value.code == 2
    assert "COUNTS" in capsys.readouterr().err


def test_status_of_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["status", str(tmp_path / "none.h5")]) == 2
    assert "no such results file" in capsys.readouterr().err


def test_oinfo_on_real_patch_seq_ephys_with_statistics(tmp_path):
    """The M1 patch-seq electrophysiology table: NaN rows dropped on request, p-values,
    bootstrap intervals and gradients written."""
    import h5py
    import numpy as np

    from conftest import SHARED_DATA

    table = SHARED_DATA / "patchseq_m1_phys_temp" / "m1_patchseq_phys_temp_ephys_features.csv"
    columns = ("Rheobase (pA),Input resistance (MOhm),AP width (ms),Sag ratio,"
               "Spike frequency adaptation")
    out = tmp_path / "oinfo.h5"
    refused = run_cli("oinfo", table, "-o", out, "--columns", columns, "--scheduler", "none")
    assert refused.returncode == 2 and "NaN" in refused.stderr and not out.exists()
    proc = run_cli("oinfo", table, "-o", out, "--columns", columns, "--drop-nan",
                   "--permutations", 50, "--bootstrap", 20, "--gradient", "--max-order", 4,
                   "--scheduler", "none")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out, "r") as f:
        assert int(f.attrs["n_samples"]) < 185  # incomplete rows dropped
        assert f["order_4/multiplets"].shape == (5, 4)
        p = f["order_3/pvalue"][:]
        assert np.all((p > 0) & (p <= 1))
        assert np.all(f["order_3/ci_low"][:] <= f["order_3/oinfo"][:])
        assert f["order_3/gradient"].shape == (10, 3)
