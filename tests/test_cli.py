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
              "--bias-correct", "--units", "--bootstrap", "--top", "--scheduler"],
    "analyze": ["--variables", "--all-models", "--target", "--scheduler"],
    "report": ["index.html"],
    "submit": ["sbatch", "--nodes", "--ntasks-per-node", "--time", "--partition", "--account",
               "--qos", "--dry-run", "slurm.yaml"],
    "genes": ["expression"],
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


def test_unfinished_genes_command_says_so(capsys):
    assert main(["genes"]) == 4
    assert "not implemented yet" in capsys.readouterr().err


def test_status_of_a_missing_file_is_a_clear_error(tmp_path, capsys):
    assert main(["status", str(tmp_path / "none.h5")]) == 2
    assert "no such results file" in capsys.readouterr().err
