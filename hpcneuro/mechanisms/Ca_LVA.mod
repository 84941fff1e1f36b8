COMMENT
Ca_LVA: low-voltage-activated (T-type) calcium current, m^2 h, ohmic on eca.

Sources: Avery RB, Johnston D (1996) Multiple channel types contribute to the low-voltage-
activated calcium current in hippocampal CA3 pyramidal neurons. J Neurosci 16:5567-5582;
Randall AD, Tsien RW (1997) Contrasting biophysical and pharmacological properties of
T-type and R-type calcium channels. Neuropharmacology 36:879-893; formulation as used in
cortical models (Hay et al. 2011, PLoS Comput Biol 7:e1002107, including its -10 mV shift).

  m_inf = 1/(1+exp(-(v+40)/6))      tau_m = 5 + 20/(1+exp((v+35)/5))    ms
  h_inf = 1/(1+exp((v+90)/6.4))     tau_h = 20 + 50/(1+exp((v+40)/7))   ms

Temperature: T_ref = 21 degC; time constants divided by qt = q10^((celsius - 21)/10),
q10 = 2.3. `vshift` (mV, default 0, positive = depolarised) moves both gates.

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ica mA/cm2, time constants ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX Ca_LVA
    USEION ca READ eca WRITE ica
    RANGE gbar, g, qt, ica, vshift, q10, T_ref
    RANGE mInf, mTau, hInf, hTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.001 (S/cm2)
    vshift = 0 (mV)
    q10 = 2.3 (1)
    T_ref = 21 (degC)
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
    LOCAL x
    UNITSOFF
    x = vm - vshift
    mInf = 1/(1 + exp(-(x + 40)/6))
    mTau = (5 + 20/(1 + exp((x + 35)/5)))/qt
    hInf = 1/(1 + exp((x + 90)/6.4))
    hTau = (20 + 50/(1 + exp((x + 40)/7)))/qt
    UNITSON
}
