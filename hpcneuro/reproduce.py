"""``hpcneuro reproduce``: the paper's three findings end to end, from one command.

Runs, into one folder DIR (README "hpcneuro reproduce"):

1. four ensembles of configs/paper/ (population: MCMC valid population; control:
   independent uniform; modules: coregulated modules; subclusters: a two-cluster
   mixture), each ``hpcneuro simulate`` under ``mpiexec -n NP`` as ``hpcneuro run`` does
   (signals forwarded; a rerun resumes every simulation) into ``DIR/ENSEMBLE/results.h5``;
2. the parameter-only analysis of each ensemble's valid models (``DIR/ENSEMBLE/oinfo.h5``,
   so each ensemble folder is a run folder ``hpcneuro report`` reads) and the targeted
   analysis of every feature of the population (``DIR/population/targeted/FEATURE.h5``),
   all with a bootstrap and bias correction (comparable across sample sizes);
3. ``hpcneuro genes`` on the patch-seq data (``DIR/genes/genes.h5``);
4. findings.json and FINDINGS.md (hpcneuro/findings.py decides the verdicts), written
   atomically through hpcneuro/outputs.py, SUMMARY.txt, and the folder's report
   (DIR/report/index.html, hpcneuro/report_reproduce.py).

The sizes of each scale (paper, small, demo, tiny) are configs/paper/scales.yaml. A scale
may run fewer ensembles (``ensembles:``) and skip the genes analysis (``genes: false``):
``--scale demo`` (``make demo``) runs the population, the control and the modules only;
findings without their inputs are left out. Every run also writes SUMMARY.txt (one line
per result, :func:`hpcneuro.findings.summary`) and prints it last.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import numpy as np

from hpcneuro.errors import UserError

log = logging.getLogger("hpcneuro.reproduce")

ROOT = Path(__file__).resolve().parents[1]
PAPER = ROOT / "configs" / "paper"
ENSEMBLES = ("population", "control", "modules", "subclusters")
SCALES = ("small", "paper", "demo", "tiny")
#: the few lines of what the run found (findings.summary), also printed at the end
SUMMARY = "SUMMARY.txt"
FINDINGS_FILE = "findings.json"
DATA_FILES = {"counts": "m1_patchseq_phys_temp_exon_counts.csv.gz",
              "metadata": "m1_patchseq_phys_temp_meta_data.csv"}


def default_data() -> Path | None:
    """shared/data/patchseq_m1_phys_temp beside the repository, if it exists."""
    p = ROOT.parent / "shared" / "data" / "patchseq_m1_phys_temp"
    return p if p.is_dir() else None


def data_files(data: str | None) -> dict[str, Path]:
    """The patch-seq files of --data (or the default folder); one-line errors."""
    folder = Path(data) if data else default_data()
    if folder is None:
        raise UserError("no patch-seq data: shared/data/patchseq_m1_phys_temp is not beside "
                        "the repository; give its folder with --data PATH")
    out = {k: folder / v for k, v in DATA_FILES.items()}
    for k, p in out.items():
        if not p.is_file():
            raise UserError(f"--data {folder}: {p.name} not found there (the folder of the "
                            "patch-seq M1 data set: exon counts and metadata)")
    return out


def load_scales(path: Path = PAPER / "scales.yaml") -> dict[str, Any]:
    import yaml

    with open(path) as fh:
        return yaml.safe_load(fh)


def split_overrides(items: list[str]) -> dict[str, list[str]]:
    """{ensemble: [KEY=VALUE...]} from "ENSEMBLE:KEY=VALUE" (one) and "KEY=VALUE" (all).

    Overrides for all come first, then those of one ensemble, each in the given order.
    """
    common, own = [], {e: [] for e in ENSEMBLES}
    for item in items:
        head, eq, _ = item.partition("=")
        if not eq:
            raise UserError(f"--set {item!r}: expected KEY=VALUE or ENSEMBLE:KEY=VALUE")
        name, colon, rest = item.partition(":")
        if colon and "." not in name and "[" not in name and "=" not in name:
            if name not in own:
                raise UserError(f"--set {item!r}: no ensemble {name!r}; ensembles: "
                                f"{', '.join(ENSEMBLES)}")
            own[name].append(rest)
        else:
            common.append(item)
    return {e: common + own[e] for e in ENSEMBLES}


def plan(scale: str, extra: list[str]) -> tuple[dict[str, list[str]], dict[str, Any]]:
    """Each ensemble's overrides (scale's, then --set) and the scale's settings.

    Every ensemble's config is loaded with its overrides here, before anything runs, so
    a bad override is the usual one-line key-path error.
    """
    from hpcneuro import config

    scales = load_scales()
    if scale not in scales or scale == "findings":
        raise UserError(f"--scale {scale!r}: one of {', '.join(SCALES)}")
    s = scales[scale]
    run = list(s.get("ensembles") or ENSEMBLES)
    if not run or set(run) - set(ENSEMBLES):
        raise UserError(f"configs/paper/scales.yaml, {scale}.ensembles: some of "
                        f"{', '.join(ENSEMBLES)}")
    base = split_overrides(list(s.get("overrides") or []))
    mine = split_overrides(list(extra))
    per = {e: base[e] + mine[e] for e in run}
    for e in run:
        try:
            config.load(PAPER / f"{e}.yaml", per[e])
        except UserError as exc:
            raise UserError(f"ensemble {e}: {exc}") from None
    return per, dict(s, ensembles=run, findings=scales.get("findings", {}))


def simulate(name: str, rundir: Path, overrides: list[str], np_: int) -> int:
    """``hpcneuro simulate`` of one ensemble as ``hpcneuro run`` does it; its exit status."""
    from hpcneuro.cli import simulate_in_subprocess

    rundir.mkdir(parents=True, exist_ok=True)
    return simulate_in_subprocess(PAPER / f"{name}.yaml", rundir / "results.h5", np_,
                                  overrides, label=f"ensemble {name}")


def engine_kwargs(settings: dict[str, Any]) -> dict[str, Any]:
    a = settings.get("analysis", {})
    return dict(min_order=int(a.get("min_order", 3)), max_order=int(a.get("max_order", 5)),
                bootstrap=int(a.get("bootstrap", 200)), bias_correct=True, units="nats",
                scheduler="none", seed=0, top=20)


def analyse(out: Path, settings: dict[str, Any], command: str) -> dict[str, Any]:
    """Every analysis; {key: OInfoResult or the one-line reason it could not run}."""
    from hpcneuro.analyze import ALL_FEATURES, analyze

    kw = engine_kwargs(settings)
    done: dict[str, Any] = {}
    for e in settings["ensembles"]:
        try:
            done[e] = analyze(str(out / e / "results.h5"), str(out / e / "oinfo.h5"),
                              "params", True, command=command, **kw)
        except UserError as exc:
            log.warning("ensemble %s: parameter-only analysis not possible: %s", e, exc)
            done[e] = str(exc)
    if "population" not in done:
        return done
    try:
        done["targeted"] = analyze(str(out / "population" / "results.h5"),
                                   str(out / "population" / "targeted"), "params", True,
                                   target=ALL_FEATURES, command=command, **kw)
    except UserError as exc:
        log.warning("population: targeted analysis not possible: %s", exc)
        done["targeted"] = {}
    return done


def genes(out: Path, files: dict[str, Path], settings: dict[str, Any], command: str):
    from hpcneuro.genes.pipeline import GenesOptions, run_genes

    g = dict(settings.get("genes", {}))
    folder = out / "genes"
    folder.mkdir(parents=True, exist_ok=True)
    oinfo = dict(min_order=3, max_order=int(g.pop("max_order", 5)), bias_correct=True,
                 units="nats", scheduler="none", seed=0)
    opt = GenesOptions(counts=str(files["counts"]), output=str(folder / "genes.h5"),
                       metadata=str(files["metadata"]), cell_id="Cell",
                       group_by="RNA family", exclude_labels=("low quality",),
                       bootstrap=int(g.pop("bootstrap", 100)),
                       shuffles=int(g.pop("shuffles", 100)), oinfo=oinfo, command=command,
                       **{k: g[k] for k in ("top_variable", "subset_max_k", "subset_random",
                                            "cv") if k in g})
    return run_genes(opt)


# --- gathering the numbers -----------------------------------------------------------------

def _rel(path: Path, out: Path) -> str:
    try:
        return str(path.relative_to(out))
    except ValueError:
        return str(path)


def _unavailable(name: str, reason: str, claimed: str) -> dict[str, Any]:
    from hpcneuro.findings import UNDECIDED

    return {"name": name, "kind": "unavailable", "claimed": claimed, "reason": reason,
            "orders": [], "verdict": UNDECIDED}


def _comparison(name, a, b, a_path, b_path, a_label, b_label, claimed, level):
    from hpcneuro.findings import comparison_evidence
    from hpcneuro.oinfo.stats import compare

    for what, r in ((a_label, a), (b_label, b)):
        if isinstance(r, str) or r is None:
            return _unavailable(name, f"{what}: {r or 'no analysis'}", claimed)
    return comparison_evidence(name, compare(a, b, level), claimed, a_path, b_path,
                               a_label, b_label)


def gather(out: Path, done: dict[str, Any], genes_res, settings: dict[str, Any],
           level: float = 0.95) -> list[dict[str, Any]]:
    """The findings (hpcneuro.findings) whose inputs the scale ran, from the analyses."""
    from hpcneuro import findings as F
    from hpcneuro.analyze import feature_file

    run = settings["ensembles"]
    target = settings["findings"].get("target", "step_300.mean_frequency")
    small_k = int(settings["findings"].get("small_k", 5))
    targeted = done.get("targeted") or {}
    t_res = targeted.get(target, f"feature {target} was not analysed (too few valid models "
                                 "with a defined value)")
    f1 = f2 = f3 = None
    if "population" in run:
        f1 = F.finding(
            1, "Synergy in diverse, decorrelated ensembles",
            "In the decorrelated valid population, multiplets of one feature and the "
            "conductances are synergy-dominated (O < 0), beyond the parameters alone.",
            [_comparison(f"targeted {target}, MCMC population", t_res, done["population"],
                         _rel(feature_file(out / "population" / "targeted", target), out),
                         "population/oinfo.h5", f"population, parameters + {target}",
                         "population, parameters only", F.BELOW, level)])
    two = [e for e in ("modules", "subclusters") if e in run]
    if two:
        f2 = F.finding(
            2, "Redundancy under coregulation and subclusters",
            "Coregulated modules and subclusters of conductances make the valid models' "
            "parameter multiplets redundancy-dominated (O > 0), beyond an independent "
            "ensemble.",
            [_comparison(f"{e} vs independent control", done[e],
                         done.get("control", "the scale runs no control ensemble"),
                         f"{e}/oinfo.h5", "control/oinfo.h5", f"{e} (valid models)",
                         "independent control (valid models)", F.ABOVE, level)
             for e in two])
    ev3 = []
    if genes_res is not None:
        st = genes_res.stats_table() if not genes_res.stats else genes_res.stats
        pooled = [{k: st[k][i] for k in st} for i in range(len(st["group"]))
                  if str(st["group"][i]) == "all cells"]
        ev3.append(F.genes_evidence("ion-channel genes, all cells pooled", pooled,
                                    "genes/genes.h5"))
        s = genes_res.subset
        if s is not None:
            get = (lambda k: s[k]) if isinstance(s, dict) else (lambda k: getattr(s, k))
            rnd = np.asarray(get("random"), dtype=float)
            ev3.append(F.subset_evidence(
                "gene subset separating the RNA families", int(get("k90")),
                len(get("genes")), float(get("all_mean")), float(get("chance")),
                list(np.asarray(get("forward_mean"), dtype=float)),
                list(np.percentile(rnd, 95, axis=1)) if rnd.size else [], small_k,
                "genes/genes.h5"))
        else:
            ev3.append(_unavailable("gene subset", "no subset analysis", F.ABOVE))
        f3 = F.finding(
            3, "Gene expression is redundancy-dominated; a small gene subset captures it",
            "Ion-channel gene expression is redundancy-dominated (O > 0, beyond a "
            "shuffled-genes null), and a few channel genes separate the neuronal subtypes "
            "nearly as well as all of them.", ev3)
    return [f for f in (f1, f2, f3) if f is not None]


def ensemble_rows(out: Path, per: dict[str, list[str]]) -> dict[str, Any]:
    from hpcneuro.store import read_summary

    rows = {}
    for e in per:
        s = read_summary(str(out / e / "results.h5"))
        rows[e] = {"config": _rel(PAPER / f"{e}.yaml", ROOT), "results": f"{e}/results.h5",
                   "overrides": per[e], "n_samples": int(s["n_samples"]),
                   "n_finished": int(s["counts"].get(1, 0)), "n_valid": int(s["n_valid"])}
    return rows


def reproduce(output: str, scale: str = "small", np_: int = 1, data: str | None = None,
              overrides: list[str] | None = None, command: str = "hpcneuro reproduce") -> int:
    """The whole pipeline (module docstring); returns the exit status."""
    import hpcneuro
    from hpcneuro import findings as F
    from hpcneuro.outputs import check_output, write_text

    t0 = time.time()
    per, settings = plan(scale, list(overrides or []))
    files = data_files(data) if settings.get("genes") is not False else None
    out = Path(output)
    if out.exists() and not out.is_dir():
        raise UserError(f"-o {out}: exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    for name in (FINDINGS_FILE, "FINDINGS.md", SUMMARY):
        check_output(out / name, kind=name, overwrite=True)
    for e in per:
        rc = simulate(e, out / e, per[e], np_)
        if rc != 0:
            return rc
    done = analyse(out, settings, command)
    genes_res = genes(out, files, settings, command) if files is not None else None
    doc = {"kind": "hpcneuro findings", "format_version": 1, "scale": scale,
           "command": command, "hpcneuro_version": hpcneuro.__version__, "units": "nats",
           "level": 0.95, "bias_correct": True, "settings": settings,
           "data": {k: str(v) for k, v in (files or {}).items()},
           "ensembles": ensemble_rows(out, per),
           "findings": gather(out, done, genes_res, settings),
           "targeted": {f: [{"order": k, "mean": float(r.orders[k].mean),
                             "mean_ci": list(r.orders[k].stats.mean_ci or
                                             (float("nan"),) * 2),
                             "frac_synergistic": float(r.orders[k].frac_synergistic)}
                            for k in sorted(r.orders)]
                        for f, r in (done.get("targeted") or {}).items()}}
    doc["seconds"] = round(time.time() - t0, 1)
    text = json.dumps(_finite(doc), indent=1, default=_json, allow_nan=False) + "\n"
    write_text(out / FINDINGS_FILE, text)
    doc = json.loads(text)  # FINDINGS.md quotes findings.json itself
    write_text(out / "FINDINGS.md", F.markdown(doc) + "\n")
    lines = F.summary(doc)
    write_text(out / SUMMARY, "\n".join(lines) + "\n")
    from hpcneuro.report_reproduce import build_reproduce

    page = build_reproduce(out)
    print(f"wrote {out / FINDINGS_FILE}, {out / 'FINDINGS.md'}, {out / SUMMARY} and {page} "
          f"in {time.time() - t0:.0f} s")
    print("\n".join(lines))
    return 0


def is_reproduce_folder(folder: Path) -> bool:
    """Whether ``folder`` holds what ``hpcneuro reproduce -o folder`` writes."""
    return (Path(folder) / FINDINGS_FILE).is_file()


def read_findings(folder: Path) -> dict[str, Any]:
    """The findings.json document of a reproduce folder (this module writes it)."""
    path = Path(folder) / FINDINGS_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: not a readable findings.json ({exc})") from None
    if not isinstance(doc, dict) or doc.get("kind") != "hpcneuro findings":
        raise UserError(f"{path}: not a findings.json of hpcneuro reproduce")
    return doc


def _finite(x: Any) -> Any:
    """NaN (no interval) as JSON null."""
    if isinstance(x, dict):
        return {k: _finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_finite(v) for v in x]
    if isinstance(x, (float, np.floating)) and not np.isfinite(x):
        return None
    if isinstance(x, np.generic):
        return _finite(x.item())
    return x


def _json(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)
