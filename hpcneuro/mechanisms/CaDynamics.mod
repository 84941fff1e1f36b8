COMMENT
CaDynamics: intracellular free calcium in a submembrane shell with first-order removal.

  dcai/dt = -gamma * ica / (2 F depth) - (cai - minCai)/decay

gamma is the fraction of incoming Ca that stays free (the rest is buffered fast),
depth the thickness of the shell under the membrane in which Ca is diluted, decay the
time constant of removal (pumps, slow buffers) towards the resting level minCai.

Source: the single-shell, first-order decay model used for cortical pyramidal neurons
(e.g. Destexhe A, Contreras D, Sejnowski TJ, Steriade M (1994) J Neurophysiol 72:803-818;
parameters as free fit parameters in Hay et al. 2011, PLoS Comput Biol 7:e1002107,
where somatic fits gave gamma ~5e-4 and decay ~460 ms).

Temperature: none (decay is a fitted phenomenological constant at the model's
temperature); q10 is not applied.

Units: cai and minCai mM, ica mA/cm2, decay ms, depth um, gamma dimensionless,
FARADAY C/mol; 1 mA/cm2 / (C/mol * um) = 1e4 mM/ms (the factor 1e4 below).
ENDCOMMENT

NEURON {
    SUFFIX CaDynamics
    USEION ca READ ica WRITE cai
    RANGE decay, gamma, depth, minCai
}

UNITS {
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
    (um) = (micron)
    FARADAY = (faraday) (coulomb)
}

PARAMETER {
    gamma = 0.002 (1)
    decay = 200 (ms)
    depth = 0.1 (um)
    minCai = 1e-4 (mM)
}

ASSIGNED {
    ica (mA/cm2)
}

STATE { cai (mM) }

INITIAL {
    cai = minCai
}

BREAKPOINT {
    SOLVE states METHOD cnexp
}

DERIVATIVE states {
    UNITSOFF
    cai' = -10000*ica*gamma/(2*FARADAY*depth) - (cai - minCai)/decay
    UNITSON
}
