#!/bin/bash
# hpcneuro campaign chain: submit the simulation, then the analysis to start when the
# simulation has finished every sample. Rendered by `hpcneuro submit` (which runs it);
# run it again by hand to resubmit the same campaign: the simulation resumes.
set -euo pipefail
JOBDIR="{{jobdir}}"
mkdir -p "{{logdir}}"
simulate=$(sbatch --parsable "$JOBDIR/simulate.sbatch")
echo "submitted ${simulate} $(date +%s)" > "$JOBDIR/simulate.state"
echo "job simulate ${simulate%%;*}"
analyze=$(sbatch --parsable --dependency="afterok:${simulate%%;*}" "$JOBDIR/analyze.sbatch")
echo "${analyze%%;*}" > "$JOBDIR/analyze.jobid"
echo "submitted ${analyze%%;*} $(date +%s)" > "$JOBDIR/analyze.state"
echo "job analyze ${analyze%%;*}"
