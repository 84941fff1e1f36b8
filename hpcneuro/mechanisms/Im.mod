COMMENT
Im: muscarinic-sensitive, non-inactivating M-type potassium current (Kv7/KCNQ), g = gbar m.

Source: Adams PR, Brown DA, Constanti A (1982) M-currents and other potassium currents
in bullfrog sympathetic neurones. J Physiol 330:537-572; formulation as used in cortical
models (Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  alpha = 3.3e-3 exp( 0.1 (v+35))   beta = 3.3e-3 exp(-0.1 (v+35))   (1/ms)
  m_inf = alpha/(alpha+beta)  (Boltzmann, V1/2 = -35 mV, k = 10 mV)
  tau_m = 1/(alpha+beta)      (152 ms at -35 mV at T_ref, 51 ms at 34 degC)

Temperature: T_ref = 21 degC; tau divided by qt = q10^((celsius - 21)/10), q10 = 2.3.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ik mA/cm2, tau ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX Im
    USEION k READ ek WRITE ik
    RANGE gbar, g, qt, ik, q10, T_ref
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.0005 (S/cm2)
    q10 = 2.3 (1)
    T_ref = 21 (degC)
}

ASSIGNED {
    v (mV)
    ek (mV)
    celsius (degC)
    ik (mA/cm2)
    g (S/cm2)
    qt (1)   : temperature factor, set in INITIAL from celsius
    mInf (1)
    mTau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m
    ik = g*(v - ek)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
}

INITIAL {
    qt = q10^((celsius - T_ref)/10)
    rates(v)
    m = mInf
}

PROCEDURE rates(vm (mV)) {
    LOCAL a, b
    UNITSOFF
    a = 3.3e-3*exp(0.1*(vm + 35))
    b = 3.3e-3*exp(-0.1*(vm + 35))
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)
    UNITSON
}
