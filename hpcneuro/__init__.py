"""hpcneuro: distributed simulation campaigns of biophysical neuron models.

Data flows one way: config -> sampling -> model/protocols (simulation) ->
features -> store -> oinfo (analysis) -> report.
"""

__version__ = "0.1.0"
