"""The report of a reproduce folder (what ``hpcneuro reproduce -o DIR`` writes).

``hpcneuro report DIR`` on such a folder (it holds findings.json) writes
``DIR/report/index.html``, one page with:

- the summary lines and the FINDINGS table (findings.json, read by
  :func:`hpcneuro.reproduce.read_findings`; :func:`hpcneuro.findings.summary`);
- the ensembles side by side: each ensemble's parameter-only mean O per order with its
  interval, the independent control drawn as the band
  (:func:`hpcneuro.oinfo.figures.plot_ensembles`), and the comparison page of those
  OINFO.h5 files (:func:`hpcneuro.oinfo.figures.build_ensembles_report`, in
  ``report/ensembles/``);
- the targeted feature x order heatmap of ``population/targeted/``;
- per-component views of the mixture ensemble (``subclusters``): models, valid models
  and the parameter distributions of each component (RESULTS.h5 ``component``);
- the genes figures of ``genes/genes.h5``;
- a link to each ensemble's own run report (``ENSEMBLE/report/index.html``, built here).
"""
from __future__ import annotations

import html
import logging
from pathlib import Path

import numpy as np

from hpcneuro.report import STYLE, _table, build, plot_distributions
from hpcneuro.store import DONE, ResultsStore

log = logging.getLogger("hpcneuro.report")

#: the ensemble drawn as the band on the side-by-side figure, when the folder has it
CONTROL = "control"


def _ci(pair) -> str:
    from hpcneuro.findings import fmt

    return f"[{fmt(pair[0])}, {fmt(pair[1])}]"


def findings_table(doc: dict) -> str:
    """One row per finding, evidence and order: the numbers of findings.json."""
    from hpcneuro.findings import fmt

    rows = []
    for f in doc["findings"]:
        for e in f["evidence"]:
            head = [f"{f['id']}. {f['title']}: {f['verdict'].upper()}", e["name"]]
            if e["kind"] == "comparison":
                for o in e["orders"]:
                    rows.append(head + [o["order"], f"{fmt(o['mean_a'])} {_ci(o['mean_a_ci'])}",
                                        f"{fmt(o['mean_b'])} {_ci(o['mean_b_ci'])}",
                                        f"{fmt(o['diff'])} {_ci(o['diff_ci'])}", o["verdict"]])
            elif e["kind"] == "genes":
                for o in e["orders"]:
                    rows.append(head + [o["order"], f"{fmt(o['mean'])} {_ci(o['mean_ci'])}",
                                        f"null {fmt(o['null_mean'])} {_ci(o['null_range'])}",
                                        "", o["verdict"]])
            elif e["kind"] == "subset":
                rows.append(head + ["", f"k90 = {fmt(e['k90'])} of {fmt(e['n_genes'])} genes",
                                    f"random {fmt(e['random_p95_at_k90'])} (95th pct.)",
                                    f"accuracy {fmt(e['accuracy_at_k90'])}", e["verdict"]])
            else:
                rows.append(head + ["", e.get("reason", ""), "", "", e["verdict"]])
    pct = f"{100 * doc.get('level', 0.95):g}%"
    return _table(["finding", "evidence", "order", f"mean O of A [{pct}]",
                   f"control B [{pct}]", f"A - B [{pct}]", "verdict"], rows)


def ensembles_section(folder: Path, doc: dict, out: Path) -> list[str]:
    """The ensembles' parameter-only analyses side by side (and finding 1's targeted
    analysis of the population), the control as the band."""
    from hpcneuro.oinfo.figures import build_ensembles_report, plot_ensembles
    from hpcneuro.oinfo.result import OInfoResult

    names = [e for e in doc.get("ensembles", {}) if (folder / e / "oinfo.h5").is_file()]
    if not names:
        return []
    names.sort(key=lambda e: e != CONTROL)  # the control first: the others against it
    paths = {e: folder / e / "oinfo.h5" for e in names}
    target = doc.get("settings", {}).get("findings", {}).get("target")
    if target and "population" in paths:  # finding 1's targeted analysis beside them
        from hpcneuro.analyze import feature_file

        t = feature_file(folder / "population" / "targeted", target)
        if t.is_file():
            paths[f"population + {target}"] = t
    results = {e: OInfoResult.read(p) for e, p in paths.items()}
    control = CONTROL if CONTROL in results else None
    plot_ensembles(results, out / "ensembles.png", control=control)
    build_ensembles_report(list(paths.values()), out / "ensembles")
    band = (f" Grey band: the independent control's {100 * doc.get('level', 0.95):g}% "
            "interval of the mean O per order, its mean dashed." if control else "")
    return ["<h2>Ensembles side by side</h2>"
            "<p>Parameter-only O-information of each ensemble's valid models: mean O over "
            "every multiplet of each order with its bootstrap interval." + band
            + ' <a href="ensembles/index.html">Each against the '
            + ("control" if control else names[0]) + " (differences with intervals)</a>.</p>",
            '<img src="ensembles.png" alt="mean O per order, one line per ensemble">']


def components_section(results: Path, out: Path) -> list[str]:
    """Per-component views of a mixture ensemble's RESULTS.h5 (none for other methods)."""
    with ResultsStore.read(results) as f:
        cfg = f.config()
        if cfg["sampling"]["method"] != "mixture":
            return []
        comp, status, valid = f.column("component"), f.status(), f.valid_models()
        params, pnames = f.column("params"), f.names("params")
    comps = cfg["sampling"]["components"]
    done = status == DONE
    rows = []
    for c, spec in enumerate(comps):
        mine = comp == c
        n_done, n_valid = int((mine & done).sum()), int((mine & valid).sum())
        ranges = ", ".join(f"{r['parameter']} [{r['low']:g}, {r['high']:g}]"
                           for r in spec.get("ranges", []))
        rows.append([c, spec.get("weight"), int(mine.sum()), n_done, n_valid,
                     f"{100 * n_valid / n_done:.1f}" if n_done else "-", ranges or "-"])
    changed = sorted({r["parameter"] for s in comps for r in s.get("ranges", [])},
                     key=pnames.index) or pnames
    cols = [pnames.index(p) for p in changed]
    sections = ["<h2>Subclusters: the mixture's components</h2>",
                f"<p>{html.escape(str(results))}: each sample's component is recorded in "
                "RESULTS.h5. Redundancy here comes from mixing the components; the "
                "histograms show the valid models of each component (blue) among all of "
                "its finished models (grey), for the parameters whose ranges differ.</p>",
                _table(["component", "weight", "samples", "finished", "valid", "% valid",
                        "ranges"], rows)]
    for c in range(len(comps)):
        rows_c = done & (comp == c)
        if not rows_c.any():
            continue
        plot_distributions(params[rows_c][:, cols], changed, valid[rows_c],
                           f"component {c}", out / f"component{c}.png")
        sections.append(f'<img src="component{c}.png" alt="parameters of component {c}">')
    return sections


def build_reproduce(folder: Path) -> Path:
    """Write ``folder/report/index.html`` (module docstring) and each ensemble's run
    report; return the page's path."""
    from hpcneuro.findings import summary
    from hpcneuro.oinfo.figures import targeted_section
    from hpcneuro.outputs import write_text
    from hpcneuro.reproduce import read_findings

    doc = read_findings(folder)
    out = folder / "report"
    out.mkdir(parents=True, exist_ok=True)
    links = []
    for name, e in doc.get("ensembles", {}).items():
        if (folder / name / "results.h5").is_file():
            build(folder / name)
            links.append([f'<a href="../{html.escape(name)}/report/index.html">{name}</a>',
                          e["n_samples"], e["n_finished"], e["n_valid"],
                          " ".join(e["overrides"]) or "-"])
    sections = [f"<h1>hpcneuro reproduce: {html.escape(str(folder))}</h1>",
                f"<p><code>{html.escape(str(doc.get('command')))}</code>, scale "
                f"{html.escape(str(doc.get('scale')))}, hpcneuro "
                f"{html.escape(str(doc.get('hpcneuro_version')))}, {doc.get('seconds')} s. "
                "Verdicts are computed from the numbers by the rules of "
                "hpcneuro/findings.py (FINDINGS.md states them).</p>",
                "<h2>Summary</h2><ul>"
                + "".join(f"<li>{html.escape(s)}</li>" for s in summary(doc)) + "</ul>",
                "<h2>Findings</h2>", findings_table(doc),
                "<h2>Ensembles</h2>",
                _links_table(links)]
    sections += ensembles_section(folder, doc, out)
    if (folder / "population" / "targeted").is_dir():
        sections += targeted_section(folder / "population" / "targeted", out)
    if (folder / "subclusters" / "results.h5").is_file():
        sections += components_section(folder / "subclusters" / "results.h5", out)
    if (folder / "genes" / "genes.h5").is_file():
        from hpcneuro.genes.figures import genes_figures

        sections += ["<h2>Genes</h2>", genes_figures(folder / "genes" / "genes.h5", out)]
    page = out / "index.html"
    write_text(page, "<!doctype html><html><head><meta charset='utf-8'><title>hpcneuro "
                     f"reproduce</title><style>{STYLE}</style></head><body>"
                     + "\n".join(sections) + "</body></html>")
    log.info("report written to %s", page)
    return page


def _links_table(rows: list[list]) -> str:
    """The ensembles table; the first cell of each row is a link (already escaped)."""
    head = "".join(f"<th>{h}</th>" for h in ("ensemble (its run report)", "models",
                                              "finished", "valid", "overrides"))
    body = "".join("<tr><td>" + r[0] + "</td>" + "".join(
        f"<td>{html.escape(str(c))}</td>" for c in r[1:]) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"
