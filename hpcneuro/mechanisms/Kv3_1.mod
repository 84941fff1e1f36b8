COMMENT
Kv3_1: fast, high-threshold delayed rectifier (Kv3.1), first order, g = gbar m.

Source: Rettig J, Wunder F, Stocker M, Lichtinghagen R, Mastiaux F, Beckh S, Kues W,
Pedarzani P, Schroter KH, Ruppersberg JP, Veh R, Pongs O (1992) Characterization of a
Shaw-related potassium channel family in rat brain. EMBO J 11:2473-2486; formulation as
used in cortical models (Hay et al. 2011, PLoS Comput Biol 7:e1002107).

  m_inf = 1/(1+exp(-(v-18.7)/9.7))
  tau_m = 4/(1+exp(-(v+46.56)/44.14))   ms

Temperature: these time constants are the ones used unchanged at 34 degC in cortical
models (already sped up 5x from the room-temperature expression 20/(1+exp(...)));
T_ref = 34 degC, and for other temperatures tau is divided by
qt = q10^((celsius - 34)/10), q10 = 2.3 (qt = 1 at 34 degC).

qt is computed in INITIAL (h.finitialize), so set celsius before initialising.

Units: gbar S/cm2, ik mA/cm2, tau ms, v mV.
ENDCOMMENT

NEURON {
    SUFFIX Kv3_1
    USEION k READ ek WRITE ik
    RANGE gbar, g, qt, ik, vshift, q10, T_ref
    RANGE mInf, mTau
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
}

PARAMETER {
    gbar = 0.02 (S/cm2)
    vshift = 0 (mV)
    q10 = 2.3 (1)
    T_ref = 34 (degC)
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
    LOCAL x
    UNITSOFF
    x = vm - vshift
    mInf = 1/(1 + exp(-(x - 18.7)/9.7))
    mTau = 4/(1 + exp(-(x + 46.56)/44.14))/qt
    UNITSON
}
