"""Command line: ``hpcneuro COMMAND ...`` (also ``python -m hpcneuro``).

Each command validates its input first and exits with status 2 and a one-line
message naming the problem when the input is wrong, before any output is touched.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from hpcneuro.errors import EXIT_INTERRUPTED, EnvironmentProblem, UserError

log = logging.getLogger("hpcneuro")

EPILOG = """\
typical use:
  hpcneuro run configs/demo.yaml --np 2          simulate, analyse and report in one go
  mpiexec -n 64 hpcneuro simulate campaign.yaml -o results.h5
  hpcneuro status results.h5
  hpcneuro analyze results.h5 -o oinfo.h5 --max-order 5
  hpcneuro oinfo table.csv -o oinfo.h5 --columns a,b,c,d
  hpcneuro reproduce -o runs/reproduce --np 2    the paper's three findings: FINDINGS.md

Run 'hpcneuro COMMAND --help' for the options of each command.
"""


def _setup_logging(rank: int = 0, verbose: bool = False) -> None:
    """hpcneuro's own log lines on stderr (rank 0 only at INFO); libraries stay quiet."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s [hpcneuro{'' if rank == 0 else f' rank {rank}'}] %(message)s",
        datefmt="%H:%M:%S"))
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG if verbose else logging.INFO if rank == 0 else logging.WARNING)
    logging.basicConfig(level=logging.WARNING)


# --- simulate -----------------------------------------------------------------------

def cmd_simulate(args: argparse.Namespace) -> int:

    from hpcneuro import config as configuration
    from hpcneuro.campaign import mpi_world, simulate

    comm = mpi_world()
    _setup_logging(comm.rank, args.verbose)
    cfg = configuration.load(args.config, args.set)
    summary = simulate(cfg, str(args.output), resume=args.resume,
                       retry_failed=args.retry_failed, overwrite=args.overwrite, comm=comm,
                       inputs=[args.config])
    return EXIT_INTERRUPTED if summary["interrupted"] else 0


def _add_simulate(sub) -> None:
    p = sub.add_parser(
        "simulate", help="run a simulation campaign into one HDF5 file (MPI-parallel)",
        description="Simulate every sample of a campaign in NEURON, extract its eFEL features "
                    "and write them to RESULTS.h5. Run alone or under 'mpiexec -n N': ranks "
                    "claim blocks of samples dynamically and write one shared file through "
                    "MPI-IO. Rerunning the same command resumes a stopped campaign.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  mpiexec -n 2 hpcneuro simulate configs/demo.yaml -o results.h5")
    p.add_argument("config", help="campaign configuration (YAML)")
    p.add_argument("-o", "--output", required=True, help="results file to write (HDF5)")
    p.add_argument("--resume", action="store_true",
                   help="continue an existing results file (run only pending samples); "
                        "refused if the configuration changed")
    p.add_argument("--retry-failed", action="store_true",
                   help="when resuming, also rerun samples that failed")
    p.add_argument("--overwrite", action="store_true",
                   help="discard an existing results file and start over")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    _add_set_option(p)
    p.set_defaults(func=cmd_simulate)


def _add_set_option(p) -> None:
    """--set KEY=VALUE, repeatable (config.apply_overrides)."""
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config entry, e.g. --set sampling.n_samples=2000 or "
                        "--set parameters[0].high=0.3 (VALUE is YAML; repeatable; "
                        "validated like the file, and part of the campaign's identity: "
                        "resume with the same --set)")


# --- status -------------------------------------------------------------------------

def format_status(summary: dict) -> str:
    """The text of 'hpcneuro status' for a :func:`hpcneuro.store.read_summary` dict."""
    from hpcneuro.store import DONE, PENDING, STATUS_NAMES

    n = summary["n_samples"]
    lines = [f"campaign {summary['name']!r}: {n} samples"]
    for code, name in STATUS_NAMES.items():
        count = summary["counts"][code]
        lines.append(f"  {name:<26} {count:>10}  ({100 * count / n:5.1f}%)")
    done = summary["counts"][DONE]
    share = f"  ({100 * summary['n_valid'] / done:5.1f}% of done)" if done else ""
    lines.append(f"  {'valid models':<26} {summary['n_valid']:>10}{share}")
    rate, eta = summary["rate"], summary["eta_seconds"]
    lines.append(f"  throughput: {rate:.1f} samples/s" if rate == rate else
                 "  throughput: not enough finished samples yet")
    if summary["last_write"] == summary["last_write"]:
        ago = time.time() - summary["last_write"]
        lines.append(f"  last write: {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(summary['last_write']))}"
                     f" ({ago:.0f} s ago)")
    if summary["counts"][PENDING] == 0:
        lines.append("  complete")
    elif eta == eta:
        lines.append(f"  ETA: {time.strftime('%H:%M:%S', time.gmtime(eta))} at that rate")
    return "\n".join(lines)


def _print_mcmc_status(results) -> None:
    """MCMC campaigns: chains done, steps, acceptance, R-hat (hpcneuro.mcmc.diagnostics)."""
    from hpcneuro.mcmc import diagnostics

    mcmc = diagnostics.read(results)
    if mcmc is not None:
        print("\n".join(diagnostics.status_lines(mcmc)))


def cmd_status(args: argparse.Namespace) -> int:
    from hpcneuro.slurm import job_report
    from hpcneuro.store import PENDING, read_summary

    summary = read_summary(args.results)
    print(format_status(summary))
    _print_mcmc_status(args.results)
    jobs = job_report(Path(args.results))
    if jobs:
        print("slurm jobs:")
        print("\n".join(jobs))
    if args.check:
        return 0 if summary["counts"][PENDING] == 0 else 1
    return 0


def _add_status(sub) -> None:
    p = sub.add_parser("status", help="samples done, failed, pending; throughput; ETA",
                       description="Read a results file (running or stopped campaign) and "
                                   "print how many samples are done, failed and pending, "
                                   "the throughput and the time left; for a campaign started "
                                   "with 'hpcneuro submit', also its Slurm jobs and logs.")
    p.add_argument("results", help="RESULTS.h5")
    p.add_argument("--check", action="store_true",
                   help="exit status 0 if no sample is pending, 1 otherwise (for scripts)")
    p.set_defaults(func=cmd_status)


# --- oinfo and analyze -----------------------------------------------------------------

def _add_oinfo_options(p, kind: str = "OINFO.h5") -> None:
    """The engine options of oinfo, analyze and genes (whose output is ``kind``);
    defaults from AnalysisOptions."""
    from hpcneuro.analysis import DEFAULTS as D, ESTIMATORS, UNITS

    p.add_argument("-o", "--output", required=True,
                   help=f"{kind} to write (an existing {kind} is replaced when the new one "
                        "is complete; any other existing file needs --overwrite)")
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace an existing file at -o even if it is not a {kind}")
    p.add_argument("--min-order", type=int, default=D.min_order,
                   help=f"smallest multiplet size (default {D.min_order})")
    p.add_argument("--max-order", type=int, default=D.max_order,
                   help="largest multiplet size (default min(N, 5))")
    p.add_argument("--target", default=D.target,
                   help="only multiplets containing this column (e.g. one feature plus "
                        "parameters)")
    p.add_argument("--estimator", choices=ESTIMATORS, default=D.estimator,
                   help="gc: Gaussian copula (default, rank-based); gauss: plain Gaussian")
    p.add_argument("--bias-correct", action="store_true",
                   help="subtract the Gaussian small-sample entropy bias")
    p.add_argument("--units", choices=UNITS, default=D.units)
    p.add_argument("--bootstrap", type=int, default=D.bootstrap, metavar="B",
                   help="bootstrap resamples for confidence intervals (default 0: none)")
    p.add_argument("--permutations", type=int, default=D.permutations, metavar="P",
                   help="permutation test AGAINST INDEPENDENCE (every column shuffled "
                        "independently): p-values and Benjamini-Hochberg q-values for the "
                        "kept multiplets (default 0); not a test of higher-order structure, "
                        "see README 'Statistics'")
    p.add_argument("--gradient", action="store_true",
                   help="gradient O-information O(X) - O(X without i) of each member of the "
                        "kept multiplets")
    p.add_argument("--drop-nan", action="store_true",
                   help="drop rows with NaN or infinite values (default: refuse them)")
    p.add_argument("--top", type=int, default=D.top, metavar="K",
                   help="most synergistic and most redundant multiplets kept per order "
                        f"(default {D.top})")
    p.add_argument("--scheduler", default=D.scheduler,
                   help="none (in-process), local (Dask LocalCluster, default), slurm "
                        "(dask-jobqueue SLURMCluster) or a scheduler address tcp://HOST:PORT")
    p.add_argument("--n-workers", type=int, default=D.n_workers,
                   help="single-threaded workers: threads in-process, LocalCluster "
                        "processes, or Dask workers over Slurm jobs (default: cores)")
    p.add_argument("--seed", type=int, default=D.seed,
                   help="seed for bootstrap resampling, permutations and searches")
    p.add_argument("--max-multiplets", type=int, default=D.max_multiplets, metavar="M",
                   help="refuse jobs with more multiplets than this (default 1e11, about an "
                        "hour on 2 cores); the count and a time estimate are logged first")
    _add_search_options(p, D)


def _add_search_options(p, D) -> None:
    """--search and its parameters (issue 14); defaults from AnalysisOptions."""
    from hpcneuro.analysis import OBJECTIVES, SEARCHES

    g = p.add_argument_group("search past exhaustive reach")
    g.add_argument("--search", choices=SEARCHES, default=D.search,
                   help="exhaustive: every multiplet (default; refused above "
                        "--max-multiplets, 1e11); greedy, annealing or beam: "
                        "the --top best found by a search (not exhaustive)")
    g.add_argument("--objective", choices=OBJECTIVES, default=D.objective,
                   help="search for the most synergistic, most redundant or both (both)")
    g.add_argument("--restarts", type=int, default=D.restarts,
                   help="greedy: chains per sign (10); annealing: chains per order and "
                        "sign (4)")
    g.add_argument("--beam-width", type=int, default=D.beam_width,
                   help="beam: multiplets kept per order and sign (100)")
    g.add_argument("--anneal-steps", type=int, default=D.anneal_steps,
                   help="annealing: proposals per chain (20000)")


def _oinfo_kwargs(args: argparse.Namespace) -> dict:
    """compute_oinfo keywords from the command line."""
    from hpcneuro.analysis import AnalysisOptions

    return dict(AnalysisOptions.from_cli(args).engine_kwargs(), progress=sys.stderr.isatty())


def cmd_oinfo(args: argparse.Namespace) -> int:
    from hpcneuro.oinfo import compute_oinfo
    from hpcneuro.tables import read_table, table_file

    _setup_logging()
    kwargs = _oinfo_kwargs(args)  # option errors first
    check_oinfo_output(args.output, [table_file(args.table)], args.overwrite)
    columns = [c.strip() for c in args.columns.split(",")] if args.columns else None
    from hpcneuro.oinfo.result import provenance

    data, names = read_table(args.table, columns)
    result = compute_oinfo(data, names, **kwargs)
    result.provenance = provenance(source=args.table, selection="table", columns=names,
                                   command=_command_line(), rows_used=int(data.shape[0]))
    result.write(args.output)
    print(result.summary_text())
    print(f"wrote {args.output}")
    return 0


def _add_oinfo(sub) -> None:
    p = sub.add_parser(
        "oinfo", help="O-information of every multiplet of a table's columns",
        description="O-information (synergy < 0 < redundancy) of every multiplet of columns, "
                    "orders min..max, for any table: CSV/TSV (optionally .gz, header row = "
                    "names), .npy, or FILE.h5:/path/to/2d-dataset. Rows are samples.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  hpcneuro oinfo expression.csv.gz -o oinfo.h5 --max-order 4 "
               "--columns Scn1a,Kcnc1,Hcn1,Cacna1g")
    p.add_argument("table", help="CSV/TSV[.gz], .npy or FILE.h5:/dataset")
    p.add_argument("--columns", default=None, help="comma-separated column names to use")
    _add_oinfo_options(p)
    p.set_defaults(func=cmd_oinfo)


def check_oinfo_output(output: str, inputs: list[str], overwrite: bool = False) -> None:
    """Refuse, before any work, an OINFO.h5 path that is an input, a folder, in a missing
    or read-only folder, or an existing file of another kind (without --overwrite)."""
    from hpcneuro.oinfo.result import OInfoResult
    from hpcneuro.outputs import check_output

    check_output(output, inputs=inputs, is_own_kind=OInfoResult.is_oinfo_file,
                 kind="OINFO.h5", overwrite=overwrite)


def run_analysis(results: str, output: str, variables: str, valid_only: bool,
                 overwrite: bool = False, features=None, columns=None, command=None,
                 **kwargs) -> "object":
    """hpcneuro analyze (see hpcneuro/analyze.py): one OInfoResult, or {feature: result}
    with target all-features."""
    from hpcneuro.analyze import analyze

    return analyze(results, output, variables, valid_only, features=features,
                   columns=columns, overwrite=overwrite, command=command, **kwargs)


def _print_analysis(result, output: str) -> None:
    if isinstance(result, dict):  # --target all-features: one result per feature
        from hpcneuro.analyze import feature_file

        for feature, res in result.items():
            print(res.summary_text())
            print(f"wrote {feature_file(output, feature)}\n")
        print(f"wrote {len(result)} OINFO.h5 files into {output}/")
    else:
        print(result.summary_text())
        print(f"wrote {output}")


def cmd_analyze(args: argparse.Namespace) -> int:
    from hpcneuro.analysis import AnalysisOptions

    _setup_logging()
    opts = AnalysisOptions.from_cli(args)
    result = run_analysis(args.results, args.output, opts.variables, opts.valid_only,
                          overwrite=args.overwrite, features=opts.features,
                          columns=opts.columns, command=_command_line(),
                          **_oinfo_kwargs(args))
    _print_analysis(result, args.output)
    return 0


def _command_line() -> str:
    """This command as typed, for the provenance of its outputs."""
    import shlex

    return shlex.join(["hpcneuro"] + sys.argv[1:])


def _add_analyze(sub) -> None:
    from hpcneuro.analysis import DEFAULTS, VARIABLES

    p = sub.add_parser(
        "analyze", help="O-information over a simulation results file",
        description="The O-information engine of 'hpcneuro oinfo' on a results file: over "
                    "the parameters, the features or both, of valid models by default. "
                    "Models with an undefined (NaN) value in an analysed column are "
                    "dropped, with counts per column logged and stored.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  hpcneuro analyze results.h5 -o oinfo.h5\n"
               "  hpcneuro analyze results.h5 -o freq.h5 --target step_200.mean_frequency\n"
               "  hpcneuro analyze results.h5 -o targeted/ --target all-features "
               "--bootstrap 200")
    p.add_argument("results", help="RESULTS.h5 from 'hpcneuro simulate'")
    p.add_argument("--variables", choices=VARIABLES, default=DEFAULTS.variables,
                   help=f"which columns to analyse (default {DEFAULTS.variables})")
    p.add_argument("--all-models", action="store_true",
                   help="use every finished model, not only the valid ones")
    p.add_argument("--features", default=None, metavar="A,B,..",
                   help="analyse every parameter plus these features")
    p.add_argument("--columns", default=None, metavar="A,B,..",
                   help="analyse exactly these parameter/feature columns")
    _add_oinfo_options(p)
    p._option_string_actions["--target"].help = (
        "only multiplets containing this column; a feature F analyses the parameters "
        "plus F only (the method's targeted analysis); 'all-features' runs every feature "
        "in turn and -o is then a folder of FEATURE.h5 files")
    p.set_defaults(func=cmd_analyze)


# --- compare ----------------------------------------------------------------------------

def format_comparison(rows: list[dict], a: str, b: str, units: str, level: float) -> str:
    """The table of 'hpcneuro compare' for stats.compare rows."""
    pct = f"{100 * level:g}%"
    lines = [f"A = {a}", f"B = {b}",
             f"per-order mean O ({units}) and fraction synergistic, A - B with {pct} "
             "bootstrap intervals of the difference",
             f"{'order':>5} {'mean A':>10} {'mean B':>10} {'A - B':>10} {'interval':>24} "
             f"{'':>3} {'%syn A':>7} {'%syn B':>7} {'A - B':>7} {'interval':>17}"]
    for r in rows:
        lo, hi = r["diff_ci"]
        flo, fhi = r["frac_syn_diff_ci"]
        mark = " * " if r["excludes_zero"] else "   "
        lines.append(f"{r['order']:>5} {r['mean_a']:>10.4g} {r['mean_b']:>10.4g} "
                     f"{r['diff']:>10.4g} {f'[{lo:.4g}, {hi:.4g}]':>24} {mark}"
                     f"{100 * r['frac_syn_a']:>7.1f} {100 * r['frac_syn_b']:>7.1f} "
                     f"{100 * r['frac_syn_diff']:>7.1f} "
                     f"{f'[{100 * flo:.1f}, {100 * fhi:.1f}]':>17}")
    lines.append("* the interval of the difference of means excludes 0")
    if any(r["n_boot"] == 0 for r in rows):
        lines.append("intervals are NaN: both files need --bootstrap")
    return "\n".join(lines)


def cmd_compare(args: argparse.Namespace) -> int:
    import json

    from hpcneuro.oinfo.result import OInfoResult
    from hpcneuro.oinfo.stats import compare

    _setup_logging()
    a, b = OInfoResult.read(args.a), OInfoResult.read(args.b)
    rows = compare(a, b, args.level)
    level = args.level if args.level is not None else float(a.attrs.get("ci_level", 0.95))
    if a.attrs.get("n_samples") != b.attrs.get("n_samples") and not a.attrs.get("bias_correct"):
        log.warning("the analyses have different numbers of samples (%s vs %s) and no bias "
                    "correction: the plug-in bias differs between them; rerun both with "
                    "--bias-correct", a.attrs.get("n_samples"), b.attrs.get("n_samples"))
    print(format_comparison(rows, args.a, args.b, a.attrs.get("units", "nats"), level))
    if args.json:
        from hpcneuro.outputs import write_text

        write_text(Path(args.json), json.dumps(
            {"a": args.a, "b": args.b, "level": level, "units": a.attrs.get("units"),
             "orders": rows}, indent=1, default=float) + "\n")
        print(f"wrote {args.json}")
    return 0


def _add_compare(sub) -> None:
    p = sub.add_parser(
        "compare", help="difference of per-order mean O between two analyses, with intervals",
        description="Compare two OINFO.h5 files (e.g. a coregulated ensemble against an "
                    "independent control): per order, mean O of each, A - B with a "
                    "bootstrap interval (from the per-order bootstrap distributions both "
                    "files store when written with --bootstrap), and the same for the "
                    "fraction of synergistic multiplets. Estimator, units and bias "
                    "correction must match.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example:\n  hpcneuro compare modules/oinfo.h5 control/oinfo.h5 --json diff.json")
    p.add_argument("a", metavar="A.h5", help="OINFO.h5 (with --bootstrap)")
    p.add_argument("b", metavar="B.h5", help="OINFO.h5 to subtract (with --bootstrap)")
    p.add_argument("--level", type=float, default=None,
                   help="interval level (default: A's ci_level, 0.95)")
    p.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    p.set_defaults(func=cmd_compare)


# --- run and report ---------------------------------------------------------------------

def _mpiexec() -> str:
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if not found:
        raise EnvironmentProblem("mpiexec not found on PATH: install an MPI (scripts/install.sh) "
                                 "or use --np 1")
    return found


#: signals 'run' passes on to its simulation (SIGHUP: the terminal went away)
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP)


def run_forwarding_signals(cmd: list[str]) -> tuple[int, int | None]:
    """Run ``cmd`` and pass SIGTERM/SIGUSR1/SIGHUP on to it, then wait until it exits.

    The child (mpiexec, which forwards to every rank) finishes its block and exits 75,
    so stopping 'run' never leaves a simulation writing behind it. Ctrl-C reaches the
    child through the terminal's process group; this process just keeps waiting.
    Returns (the child's exit status, the signal received or None).
    """
    child = subprocess.Popen(cmd)
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        child.send_signal(signal.SIGTERM if signum == signal.SIGHUP else signum)

    previous = {sig: signal.signal(sig, forward) for sig in FORWARDED_SIGNALS}
    try:
        while True:
            try:
                returncode = child.wait()
                break
            except KeyboardInterrupt:
                received.append(signal.SIGINT)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return returncode, (received[0] if received else None)


def simulate_in_subprocess(config: str | Path, results: str | Path, n_ranks: int,
                           overrides: list[str], overwrite: bool = False,
                           label: str = "simulation") -> int:
    """``hpcneuro simulate`` of ``config`` into ``results`` on ``n_ranks`` MPI ranks, with
    signals passed on; its exit status (75 when a signal stopped it: rerun to resume).
    What ``run`` and ``reproduce`` both do."""
    cmd = [sys.executable, "-m", "hpcneuro", "simulate", str(config), "-o", str(results)]
    if overwrite:
        cmd.append("--overwrite")
    for item in overrides:
        cmd += ["--set", item]
    if n_ranks > 1:
        cmd = [_mpiexec(), "-n", str(n_ranks)] + cmd
    log.info("%s: %s", label, " ".join(cmd))
    returncode, stopped_by = run_forwarding_signals(cmd)
    if stopped_by is not None:
        log.info("stopped by signal %d: the simulation saved its blocks; rerun the same "
                 "command to resume", stopped_by)
        return EXIT_INTERRUPTED if returncode in (0, EXIT_INTERRUPTED) else returncode
    if returncode != 0:
        log.error("%s failed (exit status %d); rerun the same command to resume", label,
                  returncode)
    return returncode


def cmd_run(args: argparse.Namespace) -> int:
    from hpcneuro import config as configuration
    from hpcneuro import report
    from hpcneuro.analysis import AnalysisOptions
    from hpcneuro.store import read_summary

    _setup_logging()
    cfg = configuration.load(args.config, args.set)  # fail fast, before any process
    # starts
    rundir = Path(args.output or Path("runs") / cfg["name"])
    rundir.mkdir(parents=True, exist_ok=True)
    results, oinfo_file = rundir / "results.h5", rundir / "oinfo.h5"
    started = time.time()
    returncode = simulate_in_subprocess(args.config, results, args.np, args.set,
                                        overwrite=args.overwrite)
    if returncode != 0:
        return returncode
    print(format_status(read_summary(str(results))))
    _print_mcmc_status(results)
    analysis = AnalysisOptions.from_config(cfg["analysis"])
    result = run_analysis(str(results), str(oinfo_file), analysis.variables,
                          analysis.valid_only, features=analysis.features,
                          columns=analysis.columns, command=_command_line(),
                          **analysis.engine_kwargs(), progress=sys.stderr.isatty())
    _print_analysis(result, str(oinfo_file))
    page = report.build(rundir)
    print(f"run finished in {time.time() - started:.0f} s: {results}, {oinfo_file}, {page}")
    return 0


def _add_config_and_rundir(p) -> None:
    """The positional config and -o RUNDIR shared by run and submit."""
    p.add_argument("config", help="campaign configuration (YAML)")
    p.add_argument("-o", "--output", default=None, metavar="RUNDIR",
                   help="run folder (default runs/NAME)")


def _add_run(sub) -> None:
    p = sub.add_parser("run", help="simulate, analyse and report in one go",
                       description="Simulate a campaign (under mpiexec with --np N), compute "
                                   "O-information as the config's analysis section says, and "
                                   "write a report. Outputs go to RUNDIR: results.h5, oinfo.h5, "
                                   "report/index.html. Rerunning resumes the simulation.")
    _add_config_and_rundir(p)
    p.add_argument("--np", type=int, default=1, help="MPI ranks for the simulation (default 1)")
    p.add_argument("--overwrite", action="store_true", help="start the simulation over")
    _add_set_option(p)
    p.set_defaults(func=cmd_run)


def cmd_reproduce(args: argparse.Namespace) -> int:
    from hpcneuro.reproduce import reproduce

    _setup_logging()
    return reproduce(args.output, args.scale, args.np, args.data, args.set,
                     command=_command_line())


def _add_reproduce(sub) -> None:
    p = sub.add_parser(
        "reproduce", help="the paper's three findings end to end: findings.json, FINDINGS.md",
        description="Simulate the ensembles of configs/paper/ (MCMC valid population, "
                    "independent control, coregulated modules, subclusters), analyse them "
                    "(parameter-only and targeted, with bootstrap intervals), run the genes "
                    "analysis on the patch-seq data, and write DIR/findings.json and "
                    "DIR/FINDINGS.md with each finding's statistic, interval, control and "
                    "the verdict computed from them. Rerunning on DIR resumes.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  hpcneuro reproduce -o runs/reproduce --np 2\n"
               "  hpcneuro reproduce -o runs/paper --scale paper --np 64 "
               "--set population:sampling.n_chains=512")
    p.add_argument("-o", "--output", default="runs/reproduce", metavar="DIR",
                   help="folder of the ensembles, analyses and findings (default "
                        "runs/reproduce)")
    p.add_argument("--scale", choices=("small", "paper", "demo", "tiny"), default="small",
                   help="sizes from configs/paper/scales.yaml: small (< 30 min on 2 cores, "
                        "default), paper (full size), demo (make demo: population, control "
                        "and modules only, no genes, < 3 min), tiny (the test suite's)")
    p.add_argument("--np", type=int, default=1, help="MPI ranks for the simulations")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="folder of the patch-seq M1 data (default: "
                        "shared/data/patchseq_m1_phys_temp beside the repository)")
    p.add_argument("--set", action="append", default=[], metavar="[ENSEMBLE:]KEY=VALUE",
                   help="override a config entry of every ensemble, or of one with "
                        "ENSEMBLE: (population, control, modules, subclusters); repeatable")
    p.set_defaults(func=cmd_reproduce)


def cmd_report(args: argparse.Namespace) -> int:
    from hpcneuro import report

    _setup_logging()
    print(report.build_any([Path(p) for p in args.paths],
                           Path(args.output) if args.output else None,
                           Path(args.control) if args.control else None))
    return 0


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="figures and an HTML page for a run folder, a GENES.h5, "
                                      "an OINFO.h5 or several OINFO.h5 side by side",
                       description="Plot a run folder's results.h5 (and oinfo.h5, genes.h5, "
                                   "control_oinfo.h5, targeted/ if present) into "
                                   "RUNDIR/report/: PNG figures and index.html. Given a "
                                   "GENES.h5 or an OINFO.h5 file instead, write its report "
                                   "into NAME-report/ next to it. Given several OINFO.h5 "
                                   "files (or a folder of them), one page comparing them "
                                   "against the first: ensembles-report/ next to the first "
                                   "file (FOLDER/report/ for a folder). Given a reproduce "
                                   "folder (findings.json in it), one page of its findings, "
                                   "ensembles and genes: DIR/report/.",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="examples:\n  hpcneuro report runs/demo/modules\n"
                              "  hpcneuro report runs/reproduce\n"
                              "  hpcneuro report modules/oinfo.h5 --control control/oinfo.h5\n"
                              "  hpcneuro report control/oinfo.h5 modules/oinfo.h5 "
                              "-o compare-report")
    p.add_argument("paths", nargs="+", metavar="RUNDIR|GENES.h5|OINFO.h5",
                   help="folder holding results.h5 (and oinfo.h5, genes.h5), a GENES.h5, an "
                        "OINFO.h5, several OINFO.h5 or a folder of them")
    p.add_argument("-o", "--output", metavar="DIR", default=None,
                   help="report folder (not for a run folder, whose report is RUNDIR/report)")
    p.add_argument("--control", metavar="OINFO.h5", default=None,
                   help="control analysis drawn as a band on the mean-O figure (default for "
                        "a run folder: RUNDIR/control_oinfo.h5 if present)")
    p.set_defaults(func=cmd_report)


# --- Slurm --------------------------------------------------------------------------------

def cmd_submit(args: argparse.Namespace) -> int:
    from hpcneuro import config as configuration
    from hpcneuro import slurm

    cfg = configuration.load(args.config)
    opts = slurm.resolve_options(vars(args))
    rundir = Path(args.output or Path("runs") / cfg["name"])
    out = slurm.submit(cfg, Path(args.config), rundir, opts, dry_run=args.dry_run)
    if args.dry_run:
        for name, text in out["scripts"].items():
            print(f"# ---- {rundir / 'jobs' / name} ----\n{text}")
        print("# dry run: nothing written, nothing submitted")
        return 0
    jobs = out["jobs"]
    print(f"submitted simulation job {jobs.get('simulate')} and analysis job "
          f"{jobs.get('analyze')} (starts after the simulation completes)")
    print(f"  results: {rundir / 'results.h5'}, {rundir / 'oinfo.h5'}, "
          f"{rundir / 'report' / 'index.html'}")
    print(f"  logs:    {rundir / 'logs'}/simulate-{jobs.get('simulate')}.out, "
          f"analyze-{jobs.get('analyze')}.out")
    print(f"  follow:  hpcneuro status {rundir / 'results.h5'}")
    return 0


def _add_submit(sub) -> None:
    p = sub.add_parser(
        "submit", help="render the Slurm job scripts and submit the campaign",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Render jobs/simulate.sbatch, jobs/analyze.sbatch and jobs/campaign.sh "
                    "with your options into RUNDIR/jobs/, then submit the simulation and the "
                    "analysis (afterok) with sbatch. The simulation job asks Slurm for a "
                    "warning signal before walltime, lets the ranks finish their block, and "
                    "requeues (or resubmits) itself until every sample is done. Options not "
                    "given come from the cluster defaults file "
                    "(~/.config/hpcneuro/slurm.yaml or $HPCNEURO_SUBMIT_DEFAULTS; same "
                    "names with underscores, e.g. 'partition: compute').",
        epilog="examples:\n"
               "  hpcneuro submit configs/demo.yaml --ntasks-per-node 2 --time 00:10:00\n"
               "  hpcneuro submit campaign.yaml --nodes 8 --ntasks-per-node 64 "
               "--time 24:00:00 --partition compute --account neuro --dry-run")
    _add_config_and_rundir(p)
    p.add_argument("--nodes", type=int, help="simulation nodes (default 1)")
    p.add_argument("--ntasks-per-node", type=int, help="MPI ranks per node (default 2)")
    p.add_argument("--time", help="simulation walltime per job run, e.g. 02:00:00 "
                                  "(default 01:00:00)")
    p.add_argument("--partition", help="Slurm partition")
    p.add_argument("--account", help="Slurm account")
    p.add_argument("--qos", help="Slurm quality of service")
    p.add_argument("--warning", type=int, metavar="SECONDS",
                   help="signal the simulation this long before walltime (default 120)")
    p.add_argument("--launcher", choices=("mpiexec", "srun"),
                   help="how ranks start inside the allocation (default mpiexec)")
    p.add_argument("--analysis-time", help="analysis walltime (default 01:00:00)")
    p.add_argument("--analysis-cpus", type=int, help="cores of the analysis job (default 2)")
    p.add_argument("--dask-scheduler", choices=("local", "slurm"),
                   help="analysis workers inside its allocation (local, default) or as "
                        "more Slurm jobs (slurm: dask-jobqueue; defaults in hpcneuro/oinfo/slurm-dask.yaml, also at configs/slurm-dask.yaml)")
    p.add_argument("--extra", action="append", metavar="OPTION",
                   help="another #SBATCH option for both jobs, e.g. --extra=--mem=8G "
                        "(repeatable)")
    p.add_argument("--dry-run", action="store_true",
                   help="print the rendered scripts; write and submit nothing")
    p.set_defaults(func=cmd_submit)


GENES_EXAMPLE = """\
example (the patch-seq data of Scala et al. 2021, mouse M1):
  D=../shared/data/patchseq_m1_phys_temp
  hpcneuro genes $D/m1_patchseq_phys_temp_exon_counts.csv.gz -o genes.h5 \\
      --metadata $D/m1_patchseq_phys_temp_meta_data.csv --cell-id Cell \\
      --group-by "RNA family" --exclude-label "low quality" --report genes-report

  reads genes x cells counts (orientation detected from the metadata ids and logged),
  drops the 8 low-quality cells, CPM + log1p, keeps the curated pore-forming channel
  genes detected in >= 10% of cells, analyses the 20 most variable (orders 3..5): pooled
  and per RNA family (groups under --min-group-size skipped with a note), each with a
  bootstrap interval of the per-order mean O and the shuffled-genes null; then the small
  gene subset separating the families. Prints the tables; GENES.h5 holds everything.
"""


def cmd_genes(args: argparse.Namespace) -> int:
    from hpcneuro.genes.pipeline import GenesOptions, run_genes, summary_text

    _setup_logging()
    kw = _oinfo_kwargs(args)
    kw.pop("nan_policy", None)
    if args.drop_nan:
        raise UserError("--drop-nan does not apply to gene expression: counts must be finite")
    opt = GenesOptions(
        counts=args.counts, output=args.output, metadata=args.metadata, cell_id=args.cell_id,
        group_by=args.group_by,
        groups=[g.strip() for g in args.groups.split(",")] if args.groups else None,
        exclude_labels=args.exclude_label or (), genes=args.genes,
        include_auxiliary=args.include_auxiliary,
        orientation={"auto": "auto", "rows": "genes-rows",
                     "columns": "genes-columns"}[args.genes_as],
        layer=args.layer, min_detection=args.min_detection, min_genes=args.min_genes,
        top_variable=args.top_variable or None, normalize=args.normalize,
        min_group_size=args.min_group_size, ties=args.ties, bootstrap=kw.pop("bootstrap"),
        shuffles=args.shuffles, subset=not args.no_subset, subset_max_k=args.subset_max_k,
        subset_random=args.subset_random, cv=args.cv, report=args.report,
        overwrite=args.overwrite, seed=args.seed, oinfo=kw,
        command=" ".join(sys.argv))
    res = run_genes(opt)
    for n in res.notes:
        print(f"note: {n}")
    print(summary_text(res))
    if res.subset is not None:
        print(res.subset.table())
    print(f"wrote {args.output}" + (f" and {args.report}/index.html" if args.report else ""))
    return 0


def _add_genes(sub) -> None:
    p = sub.add_parser(
        "genes", help="O-information of ion-channel gene expression, per cell type, and the "
                      "small gene subset",
        description="Gene-expression analysis of single-cell data (e.g. patch-seq): "
                    "O-information of ion-channel genes pooled and per group, with "
                    "bootstrap intervals and a shuffled-genes null, and the small gene "
                    "subset that separates the groups. COUNTS is a count table (CSV/TSV, "
                    "optionally .gz; genes as rows or columns) with --metadata, or an "
                    "AnnData .h5ad file (labels from obs). Writes GENES.h5.",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=GENES_EXAMPLE)
    p.add_argument("counts", metavar="COUNTS", help="count table (CSV/TSV[.gz]) or .h5ad")
    p.add_argument("--metadata", metavar="META",
                   help="cell metadata table (any delimiter, sniffed), one row per cell")
    p.add_argument("--cell-id", metavar="COLUMN",
                   help="metadata column holding the cell ids (default: the column "
                        "matching the most count ids)")
    p.add_argument("--genes-as", choices=("auto", "rows", "columns"), default="auto",
                   help="genes are the rows or the columns of COUNTS (auto: detected from "
                        "the metadata ids or the channel symbols, and logged)")
    p.add_argument("--layer", help=".h5ad: use this layer instead of X")
    p.add_argument("--group-by", metavar="COLUMN",
                   help='metadata column of the groups, e.g. "RNA family"')
    p.add_argument("--groups", metavar="A,B,..",
                   help="analyse only these groups (default: every group large enough)")
    p.add_argument("--exclude-label", action="append", metavar="LABEL",
                   help='drop cells with this --group-by label, e.g. "low quality" '
                        "(repeatable)")
    p.add_argument("--min-genes", type=int, default=0, metavar="N",
                   help="drop cells with fewer than N detected genes (default 0)")
    p.add_argument("--genes", default="ion-channels", metavar="ion-channels|FILE|A,B,..",
                   help="the curated ion-channel list (default), a file of symbols, or a "
                        "comma-separated list")
    p.add_argument("--include-auxiliary", action="store_true",
                   help="add the auxiliary channel subunits (Nav/Kv/BK beta, KCNE, Cav "
                        "alpha2delta/beta/gamma) to the curated list")
    p.add_argument("--min-detection", type=float, default=0.1, metavar="F",
                   help="keep genes detected in at least this fraction of cells (0.1)")
    p.add_argument("--top-variable", type=int, default=20, metavar="K",
                   help="analyse the K most variable of the kept genes (20; 0: all)")
    p.add_argument("--normalize", choices=("cpm-log1p", "none"), default="cpm-log1p",
                   help="cpm-log1p (counts per million of each cell, then log1p), or none "
                        "for already-normalised data")
    p.add_argument("--ties", choices=("average", "random"), default="average",
                   help="copula ranks of tied values (zeros): average ranks (default) or "
                        "broken at random")
    p.add_argument("--min-group-size", type=int, default=20, metavar="N",
                   help="groups with fewer cells are skipped with a note (20; groups need "
                        "more cells than genes anyway)")
    p.add_argument("--shuffles", type=int, default=100, metavar="S",
                   help="shuffled-genes null: S independent shuffles of every gene (100)")
    p.add_argument("--no-subset", action="store_true", help="skip the gene subset analysis")
    p.add_argument("--subset-max-k", type=int, default=10, metavar="K",
                   help="forward selection up to K genes (10)")
    p.add_argument("--subset-random", type=int, default=20, metavar="R",
                   help="random gene subsets per k for the comparison (20)")
    p.add_argument("--cv", type=int, default=5, metavar="F",
                   help="cross-validation folds (stratified) of the gene subset (5)")
    p.add_argument("--report", metavar="DIR", help="also write figures and DIR/index.html")
    _add_oinfo_options(p, kind="GENES.h5")
    p.set_defaults(func=cmd_genes, bootstrap=100, scheduler="none")
    p._option_string_actions["-o"].help = "GENES.h5 to write"
    p._option_string_actions["--bootstrap"].help = (
        "cell resamples for the interval of each order's mean O (default 100)")
    p._option_string_actions["--scheduler"].help = (
        "none (in-process threads, default: these problems are small), local, slurm or "
        "tcp://HOST:PORT, as for hpcneuro oinfo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hpcneuro",
        description="Distributed simulation campaigns of biophysical neuron models "
                    "(NEURON + eFEL on MPI) and O-information analysis of how ion channels "
                    "combine (Dask).",
        formatter_class=argparse.RawDescriptionHelpFormatter, epilog=EPILOG)
    parser.add_argument("--version", action="version",
                        version=f"hpcneuro {__import__('hpcneuro').__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_run, _add_simulate, _add_status, _add_analyze, _add_oinfo, _add_compare,
                _add_report, _add_submit, _add_genes, _add_reproduce):
        add(sub)
    return parser


#: commands whose process skips the interpreter's teardown once they are done (see _exit_now)
FAST_EXIT_COMMANDS = ("oinfo",)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    status = _run(args)
    if argv is None and args.command in FAST_EXIT_COMMANDS:
        _exit_now(status)
    return status


def _exit_now(status: int) -> None:
    """End the process at once when nothing is left running: ``hpcneuro oinfo`` spent
    ~0.2 s CPU (0.3-0.5 s wall) after its work was done tearing down the interpreter
    (numba's and scipy's modules), a third of a small job's start-up (issue 14). Only
    for the process's own command line (main(None)), only when this thread is the last
    one and no child process is left, after the outputs were closed (outputs.py) and
    stdout, stderr and logging flushed; otherwise the usual exit."""
    import threading

    if threading.active_count() > 1:
        return
    mp = sys.modules.get("multiprocessing")
    if mp is not None and mp.active_children():
        return
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(int(status or 0))


def _run(args) -> int:
    try:
        return args.func(args)
    except (UserError, EnvironmentProblem) as exc:
        # an error every rank raises alike (bad input: all ranks validate the same; or one
        # the campaign shared with every rank) is printed once, by rank 0
        collective = getattr(exc, "collective", isinstance(exc, UserError))
        if not collective or _launcher_rank() == 0:
            print(f"hpcneuro {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        print(f"hpcneuro {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away ('hpcneuro status f.h5 | head -3'): not an error of ours
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _launcher_rank() -> int:
    """This process's MPI rank as the launcher set it (0 outside MPI), without MPI."""
    for var in ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID"):
        if os.environ.get(var, "").isdigit():
            return int(os.environ[var])
    return 0
