"""``hpcneuro analyze``: O-information of a results file, whole or targeted.

The method's targeted analysis (Reva et al. 2025) looks at multiplets of ONE feature
plus the parameters. This module chooses the analysed columns, reads exactly those
through the store's reader (:meth:`hpcneuro.store.ResultsFile.select`: rows with an
undefined value are dropped for these columns only, and counted), runs the engine and
writes OINFO.h5 with its provenance (:func:`hpcneuro.oinfo.result.provenance`).

Column choice (:func:`analysis_columns`), first match wins:

- ``columns`` (``--columns A,B``): exactly these parameter/feature names;
- ``features`` (``--features A,B``): every parameter plus these features;
- ``target`` a feature (``--target F``): every parameter plus F (not every feature:
  ``--variables features`` keeps the features-only analysis, ``--columns`` any set);
- otherwise ``variables``: params, features or both.

``target: all-features`` (:data:`ALL_FEATURES`) runs the targeted analysis once per
feature of the file: ``-o`` is then a FOLDER holding one standard OINFO.h5 per feature,
``FEATURE.h5`` (the feature name with ``/`` replaced by ``_``; its ``target``
attribute names it), each readable by ``OInfoResult.read``, the report and
``hpcneuro compare``. A feature that leaves no usable rows is skipped with a warning.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger("hpcneuro.analyze")

#: the --target value that runs the targeted analysis of every feature in turn
ALL_FEATURES = "all-features"


def analysis_columns(params: list[str], features: list[str], variables: str = "params",
                     target: str | None = None, chosen_features: list[str] | None = None,
                     columns: list[str] | None = None) -> list[str] | None:
    """The analysed columns by the rules of the module docstring; None: ``variables``."""
    from hpcneuro.errors import UserError

    if columns:
        if target is not None and target not in columns:
            raise UserError(f"--target {target!r} is not among --columns "
                            f"({', '.join(columns)})")
        return list(columns)
    if chosen_features:
        unknown = [f for f in chosen_features if f not in features]
        if unknown:
            raise UserError(f"--features: {unknown[0]!r} is not a feature of this campaign; "
                            f"features: {', '.join(features) or 'none'}")
        chosen = list(chosen_features)
        if target is not None and target in features and target not in chosen:
            chosen = [target] + chosen
        return list(params) + chosen
    if target is not None and target in features and variables != "features":
        return list(params) + [target]
    return None


def feature_file(folder: str | os.PathLike, feature: str) -> Path:
    """The OINFO.h5 of one feature in an all-features folder."""
    return Path(folder) / (feature.replace("/", "_").replace(os.sep, "_") + ".h5")


def analyze(results: str, output: str, variables: str = "params", valid_only: bool = True,
            features: list[str] | None = None, columns: list[str] | None = None,
            target: str | None = None, overwrite: bool = False, command: str | None = None,
            **engine: Any):
    """One analysis of ``results`` written to ``output``; returns the OInfoResult.

    ``engine``: keywords of :func:`hpcneuro.oinfo.compute_oinfo` (but ``target``).
    With ``target == ALL_FEATURES`` see :func:`analyze_all_features` (returns a dict).
    """
    from hpcneuro.cli import check_oinfo_output
    from hpcneuro.store import ResultsFile

    if target == ALL_FEATURES:
        return analyze_all_features(results, output, valid_only=valid_only,
                                    overwrite=overwrite, command=command, **engine)
    check_oinfo_output(output, [results], overwrite)
    with ResultsFile(results) as f:
        cols = analysis_columns(f.names("params"), f.names("features"), variables, target,
                                features, columns)
        sel = f.select(variables, valid_only, True, cols)
    return _compute_and_write(results, output, sel, cols, variables, target, command, engine)


def _compute_and_write(results, output, sel, cols, variables, target, command, engine):
    from hpcneuro.oinfo import compute_oinfo
    from hpcneuro.oinfo.result import provenance

    what = (f"{len(sel.names)} columns" if cols is not None else
            f"{len(sel.names)} {variables}")
    log.info("O-information over %s%s of %d %s (%d dropped for undefined values)", what,
             f" with target {target}" if target else "", sel.data.shape[0],
             "valid models" if sel.valid_only else "finished models", sel.n_dropped)
    result = compute_oinfo(sel.data, sel.names, target=target, **engine)
    result.provenance = provenance(
        source=results, selection="valid" if sel.valid_only else "all", columns=sel.names,
        command=command, rows_used=int(sel.data.shape[0]), rows_dropped=int(sel.n_dropped),
        rows_dropped_by_column=sel.dropped_by_column)
    result.write(output)
    return result


def analyze_all_features(results: str, output: str, valid_only: bool = True,
                         overwrite: bool = False, command: str | None = None,
                         **engine: Any) -> dict[str, Any]:
    """The targeted analysis of every feature in turn: ``output/FEATURE.h5`` each.

    Returns {feature: OInfoResult} of the features analysed (in the file's order).
    """
    from hpcneuro.cli import check_oinfo_output
    from hpcneuro.errors import UserError
    from hpcneuro.store import ResultsFile

    folder = Path(output)
    if folder.exists() and not folder.is_dir():
        raise UserError(f"-o {output}: --target {ALL_FEATURES} writes one OINFO.h5 per "
                        "feature into a folder, and this is a file")
    with ResultsFile(results) as f:
        params, feats = f.names("params"), f.names("features")
        if not feats:
            raise UserError(f"{results} has no features: --target {ALL_FEATURES} needs some")
        folder.mkdir(parents=True, exist_ok=True)
        for feat in feats:  # every output checked before any work
            check_oinfo_output(str(feature_file(folder, feat)), [results], overwrite)
        selections = {}
        for feat in feats:
            try:
                selections[feat] = f.select("params", valid_only, True, params + [feat])
            except UserError as exc:
                log.warning("skipping feature %s: %s", feat, exc)
    out = {}
    for i, (feat, sel) in enumerate(selections.items()):
        log.info("feature %d of %d: %s", i + 1, len(selections), feat)
        try:
            out[feat] = _compute_and_write(results, str(feature_file(folder, feat)), sel,
                                           params + [feat], "params", feat, command, engine)
        except UserError as exc:  # e.g. fewer rows than variables for this feature
            log.warning("skipping feature %s: %s", feat, exc)
    if not out:
        raise UserError(f"no feature of {results} could be analysed (see the warnings)")
    return out
