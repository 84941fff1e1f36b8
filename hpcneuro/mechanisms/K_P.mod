COMMENT
K_P: persistent (slowly inactivating) potassium current, m^2 h.

Source: Korngreen A, Sakmann B (2000) Voltage-gated K+ channels in layer 5 neocortical
pyramidal neurones from young rats: subtypes and gradients. J Physiol 525:621-639
(nucleated-patch fits of the slowly inactivating K current); formulation as used in
cortical models (Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  m_inf = 1/(1+exp(-(v+11)/12))       h_inf = 1/(1+exp((v+64)/11))
  tau_m = 1.25 + 175.03 exp(0.026 v)   for v < -50 mV,
          1.25 + 13 exp(-0.026 v)      otherwise                         (ms)
  tau_h = 360 + (1010 + 24 (v+65)) exp(-((v+85)/48)^2)                   (ms)
  (the two tau_m branches meet, to 1e-5, at v = -50 mV)

Temperature: T_ref = 21 degC; time constants divided by qt = q10^((celsius - 21)/10),
q10 = 2.3.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ik mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX K_P
    USEION k READ ek WRITE ik
    RANGE gbar, g, qt, ik, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.003 (S/cm2)
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
    g = gbar*m*m*h
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
    UNITSOFF
    mInf = 1/(1 + exp(-(vm + 11)/12))
    if (vm < -50) {
        mTau = (1.25 + 175.03*exp(0.026*vm))/qt
    } else {
        mTau = (1.25 + 13*exp(-0.026*vm))/qt
    }
    hInf = 1/(1 + exp((vm + 64)/11))
    hTau = (360 + (1010 + 24*(vm + 65))*exp(-(vm + 85)*(vm + 85)/2304))/qt
    UNITSON
}
