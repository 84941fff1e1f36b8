COMMENT
NaT: fast transient sodium current, m^3 h.

Source: Colbert CM, Pan E (2002) Ion channel properties underlying axonal action
potential initiation in pyramidal neurons. Nat Neurosci 5:533-538; rate functions in
the form used for cortical pyramidal cells (Hay et al. 2011, PLoS Comput Biol
7:e1002107).

  alpha_m = 0.182 (v+38)/(1-exp(-(v+38)/6))    beta_m = 0.124 (-(v+38))/(1-exp((v+38)/6))
  alpha_h = 0.015 (v+66)/(exp((v+66)/6)-1)     beta_h = 0.015 (v+66)/(1-exp(-(v+66)/6))
  (rates in 1/ms, v in mV) giving m_inf with V1/2 = -40.3 mV, k = 6 mV and h_inf with
  V1/2 = -66 mV, k = 6 mV.

Temperature: rates measured at T_ref = 21 degC; time constants are divided by
qt = q10^((celsius - 21)/10) with q10 = 2.3 (qt = 2.95 at 34 degC).
The removable singularities at v = -38 and v = -66 mV use the analytic limit.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ina mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX NaT
    USEION na READ ena WRITE ina
    RANGE gbar, g, qt, ina, vshift, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.2 (S/cm2)
    vshift = 0 (mV)     : shifts both gates along the voltage axis (positive = depolarised)
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
    LOCAL a, b, x
    UNITSOFF
    x = vm - vshift
    a = 0.182*efun(-(x + 38), 6)
    b = 0.124*efun(x + 38, 6)
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)
    a = 0.015*efun(x + 66, 6)
    b = 0.015*efun(-(x + 66), 6)
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
