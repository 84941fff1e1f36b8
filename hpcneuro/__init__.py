"""hpcneuro: distributed simulation campaigns of biophysical neuron models.

Data flows one way: config -> sampling -> model/protocols (simulation) ->
features -> store -> oinfo (analysis) -> report.
"""

__version__ = "0.1.0"

import os as _os

# NEURON warns about a missing display at import; campaigns never open windows.
_os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")

# Ranks simulate independently: NEURON must not join MPI even when mpi4py has already
# started it, or CoreNEURON runs would become collectives across ranks (see model.py).
_os.environ["NEURON_INIT_MPI"] = "0"
