COMMENT
Ca_HVA: high-voltage-activated calcium current (L-type-like), m^2 h, ohmic on eca.

Source: Reuveni I, Friedman A, Amitai Y, Gutnick MJ (1993) Stepwise repolarization from
Ca2+ plateaus in neocortical pyramidal cells: evidence for nonhomogeneous distribution
of HVA Ca2+ channels in dendrites. J Neurosci 13:4609-4621; formulation as used in
cortical models (Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  alpha_m = 0.055 (-27-v)/(exp((-27-v)/3.8)-1)   beta_m = 0.94 exp((-75-v)/17)
  alpha_h = 4.57e-4 exp((-13-v)/50)              beta_h = 0.0065/(exp((-v-15)/28)+1)
  (1/ms; m_inf half-activation -33 mV (-29 mV for m^2), h_inf half-inactivation
  -58.5 mV, slow inactivation with tau_h 190-440 ms between -60 and +20 mV at T_ref)
The removable singularity at v = -27 mV uses the limit.

Temperature: these rates carry no temperature correction in the source and are used as
they are at 34 degC in cortical models, so T_ref = 34 degC; for other temperatures the
time constants are divided by qt = q10^((celsius - 34)/10), q10 = 2.3.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ica mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX Ca_HVA
    USEION ca READ eca WRITE ica
    RANGE gbar, g, qt, ica, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.0003 (S/cm2)
    q10 = 2.3 (1)
    T_ref = 34 (degC)
}

ASSIGNED {
    v (mV)
    eca (mV)
    celsius (degC)
    ica (mA/cm2)
    g (S/cm2)
    qt (1)   : temperature factor, set in INITIAL from celsius
    mInf (1)
    mTau (ms)
    hInf (1)
    hTau (ms)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m*m*h
    ica = g*(v - eca)
}

DERIVATIVE states {
    rates(v)
    m' = (mInf - m)/mTau
    h' = (hInf - h)/hTau
}

INITIAL {
    qt = q10^((celsius - T_ref)/10)
    rates(v)
    m = mInf
    h = hInf
}

PROCEDURE rates(vm (mV)) {
    LOCAL a, b
    UNITSOFF
    a = 0.055*efun(-(vm + 27), 3.8)
    b = 0.94*exp(-(vm + 75)/17)
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)
    a = 4.57e-4*exp(-(vm + 13)/50)
    b = 0.0065/(exp(-(vm + 15)/28) + 1)
    hInf = a/(a + b)
    hTau = 1/((a + b)*qt)
    UNITSON
}

FUNCTION efun(x, k) {
    : x/(exp(x/k) - 1), with its limit k*(1 - x/(2k)) near x = 0
    if (fabs(x/k) < 1e-6) {
        efun = k*(1 - x/(2*k))
    } else {
        efun = x/(exp(x/k) - 1)
    }
}
