COMMENT
NaP: persistent (slowly inactivating) sodium current, m^3 h.

Source: Magistretti J, Alonso A (1999) Biophysical properties and slow voltage-dependent
inactivation of a sustained sodium current in entorhinal cortex layer-II principal
neurons. J Gen Physiol 114:491-509; formulation as used in cortical models
(Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  m_inf = 1/(1+exp(-(v+52.6)/4.6))               h_inf = 1/(1+exp((v+48.8)/10))
  tau_m = 6/(alpha_m+beta_m), with the NaT rates alpha_m = 0.182 (v+38)/(1-exp(-(v+38)/6)),
          beta_m = 0.124 (-(v+38))/(1-exp((v+38)/6))
  tau_h = 1/(alpha_h+beta_h), alpha_h = -2.88e-6 (v+17)/(1-exp((v+17)/4.63)),
          beta_h = 6.94e-6 (v+64.4)/(1-exp(-(v+64.4)/2.63))   (1/ms; tau_h 2.2-6.5 s at T_ref)

Temperature: T_ref = 21 degC, qt = q10^((celsius - 21)/10) with q10 = 2.3 divides the
time constants. Removable singularities at v = -38, -17, -64.4 mV use the limit.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ina mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX NaP
    USEION na READ ena WRITE ina
    RANGE gbar, g, qt, ina, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 5e-05 (S/cm2)
    q10 = 2.3 (1)
    T_ref = 21 (degC)
}

ASSIGNED {
    v (mV)
    ena (mV)
    celsius (degC)
    ina (mA/cm2)
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
    g = gbar*m*m*m*h
    ina = g*(v - ena)
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
    mInf = 1/(1 + exp(-(vm + 52.6)/4.6))
    a = 0.182*efun(-(vm + 38), 6)
    b = 0.124*efun(vm + 38, 6)
    mTau = 6/((a + b)*qt)
    hInf = 1/(1 + exp((vm + 48.8)/10))
    a = 2.88e-6*efun(vm + 17, 4.63)
    b = 6.94e-6*efun(-(vm + 64.4), 2.63)
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
