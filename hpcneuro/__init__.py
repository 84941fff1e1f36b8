"""hpcneuro: distributed simulation campaigns of biophysical neuron models.

Data flows one way: config -> sampling -> model/protocols (simulation) ->
features -> store -> oinfo (analysis) -> report.
"""

__version__ = "0.1.0"

import os as _os

# NEURON warns about a missing display at import; campaigns never open windows.
_os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
