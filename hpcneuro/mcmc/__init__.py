"""Valid-model populations by Markov chain Monte Carlo (``sampling.method: mcmc``).

One module per concern, as emcee's ``moves/``:

* :mod:`~hpcneuro.mcmc.options` -- the ``sampling`` keys of the method, validated;
* :mod:`~hpcneuro.mcmc.cost` -- the cost of a model (z-scores of the validity rules);
* :mod:`~hpcneuro.mcmc.metropolis` -- the pure Metropolis step (propose, accept), every
  draw from the counter-based hash of (seed, chain, step);
* :mod:`~hpcneuro.mcmc.chains` -- the campaign part: blocks of chains claimed from the
  allocator's counter, advanced in lockstep with one batched NEURON run per step;
* :mod:`~hpcneuro.mcmc.diagnostics` -- acceptance, split R-hat, ESS, cost traces (ArviZ);
* :mod:`~hpcneuro.mcmc.figures` -- the report's MCMC figures.

Layout in RESULTS.h5: row ``step * n_chains + chain`` holds the proposal chain ``chain``
evaluated at step ``step`` (step 0: its start point), so the rows of one step of a block
of chains are contiguous.
"""

from hpcneuro.mcmc.options import is_mcmc, row_index  # noqa: F401
