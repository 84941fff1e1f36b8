"""NEURON, imported in one place, with the environment it reads at import set first.

Every hpcneuro module that needs NEURON gets it from :func:`import_neuron`, so importing
hpcneuro itself changes nothing in the environment.
"""

from __future__ import annotations

import os
import types


def import_neuron() -> types.ModuleType:
    """The ``neuron`` module, imported with the settings every hpcneuro process needs.

    * ``NEURON_MODULE_OPTIONS=-nogui`` unless set: campaigns never open windows, and
      NEURON warns about a missing display otherwise.
    * ``NEURON_INIT_MPI=0``: ranks simulate independently, so NEURON must not join MPI
      even when mpi4py has already started it, or CoreNEURON runs would become
      collectives across ranks (see :mod:`hpcneuro.model`).

    Both take effect only if NEURON was not imported before (then this is a plain
    lookup); they are set again anyway so that child processes inherit them.
    """
    os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
    os.environ["NEURON_INIT_MPI"] = "0"
    import neuron

    return neuron
