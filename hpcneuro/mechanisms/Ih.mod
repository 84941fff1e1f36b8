COMMENT
Ih: hyperpolarisation-activated cation current (HCN), g = gbar m, mixed Na/K current
with its own reversal potential ehcn (NONSPECIFIC_CURRENT ihcn).

Source: Kole MHP, Hallermann S, Stuart GJ (2006) Single Ih channels in pyramidal neuron
dendrites: properties, distribution, and impact on action potential output.
J Neurosci 26:1677-1687 (Hodgkin-Huxley fit to activation time constants and the
activation curve of layer 5 pyramidal neurons).

  alpha = 6.43e-3 (v+154.9)/(exp((v+154.9)/11.9)-1)   beta = 0.193 exp(v/33.1)   (1/ms)
  m_inf = alpha/(alpha+beta)   (half-activation at -110.3 mV with these rates)
  tau_m = 1/(alpha+beta)       (peak ~78 ms near -100 mV at T_ref)
The removable singularity at v = -154.9 mV uses the limit.

Temperature: the fit was made to recordings at 34 degC: T_ref = 34 degC; tau divided by
qt = q10^((celsius - 34)/10) with q10 = 2.3 (qt = 1 at 34 degC).

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ihcn mA/cm2, ehcn mV (default -45 mV), tau ms.
ENDCOMMENT

NEURON {
    SUFFIX Ih
    NONSPECIFIC_CURRENT ihcn
    RANGE gbar, g, qt, ihcn, ehcn, q10, T_ref
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 6e-05 (S/cm2)
    ehcn = -45 (mV)
    q10 = 2.3 (1)
    T_ref = 34 (degC)
}

ASSIGNED {
    v (mV)
    celsius (degC)
    ihcn (mA/cm2)
    g (S/cm2)
    qt (1)   : temperature factor, set in INITIAL from celsius
    mInf (1)
    mTau (ms)
}

STATE { m }

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*m
    ihcn = g*(v - ehcn)
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
    a = 6.43e-3*efun(vm + 154.9, 11.9)
    b = 0.193*exp(vm/33.1)
    mInf = a/(a + b)
    mTau = 1/((a + b)*qt)
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
