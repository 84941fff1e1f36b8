"""hpcneuro: distributed simulation campaigns of biophysical neuron models.

Data flows one way: config -> sampling -> model/protocols (simulation) ->
features -> store -> oinfo (analysis) -> report.

Importing hpcneuro changes nothing in the environment: NEURON's settings are made where
NEURON is imported (:func:`hpcneuro.nrn.import_neuron`).
"""

__version__ = "0.1.0"
