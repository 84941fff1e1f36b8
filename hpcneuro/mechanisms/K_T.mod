COMMENT
K_T: fast transient (A-type) potassium current, m^4 h.

Source: Korngreen A, Sakmann B (2000) Voltage-gated K+ channels in layer 5 neocortical
pyramidal neurones from young rats: subtypes and gradients. J Physiol 525:621-639
(nucleated-patch fits of the fast inactivating K current); formulation as used in
cortical models (Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  m_inf = 1/(1+exp(-(v+47)/29))     tau_m = 0.34 + 0.92 exp(-((v+71)/59)^2)   ms
  h_inf = 1/(1+exp((v+66)/10))      tau_h = 8 + 49 exp(-((v+73)/23)^2)        ms

Temperature: T_ref = 21 degC; time constants divided by qt = q10^((celsius - 21)/10),
q10 = 2.3. `vshift` (mV, default 0, positive = depolarised) moves both gates.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ik mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX K_T
    USEION k READ ek WRITE ik
    RANGE gbar, g, qt, ik, vshift, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.002 (S/cm2)
    vshift = 0 (mV)
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
    hInf (1)
    hTau (ms)
}

STATE { m h }

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m*m*m*m*h
    ik = g*(v - ek)
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
    LOCAL x
    UNITSOFF
    x = vm - vshift
    mInf = 1/(1 + exp(-(x + 47)/29))
    mTau = (0.34 + 0.92*exp(-(x + 71)*(x + 71)/3481))/qt
    hInf = 1/(1 + exp((x + 66)/10))
    hTau = (8 + 49*exp(-(x + 73)*(x + 73)/529))/qt
    UNITSON
}
