COMMENT
SK: small-conductance calcium-activated potassium current (SK2/KCa2), g = gbar z.

Source: Kohler M, Hirschberg B, Bond CT, Kinzie JM, Marrion NV, Maylie J, Adelman JP
(1996) Small-conductance, calcium-activated potassium channels from mammalian brain.
Science 273:1709-1714; formulation as used in cortical models (Hay et al. 2011).

  z_inf = 1/(1 + (Kd/cai)^n), Kd = 0.43 uM (4.3e-4 mM), Hill coefficient n = 4.8
  tau_z = 1 ms (gating limited by Ca binding; voltage independent)

Temperature: no temperature correction (the source gives a steady-state Ca dependence
only and tau_z is a fixed small value); q10 is not applied, T_ref not applicable.
cai below 1e-9 mM is treated as 1e-9 mM to avoid division by zero.

Units: gbar S/cm2, ik mA/cm2, cai mM, Kd mM, tau ms.
ENDCOMMENT

NEURON {
    SUFFIX SK
    USEION k READ ek WRITE ik
    USEION ca READ cai
    RANGE gbar, g, ik, Kd, hill, zTau, zInf
}

UNITS {
    (S) = (siemens)
    (mV) = (millivolt)
    (mA) = (milliamp)
    (mM) = (milli/liter)
}

PARAMETER {
    gbar = 0.001 (S/cm2)
    Kd = 0.00043 (mM)
    hill = 4.8 (1)
    zTau = 1 (ms)
}

ASSIGNED {
    v (mV)
    ek (mV)
    cai (mM)
    ik (mA/cm2)
    g (S/cm2)
    zInf (1)
}

STATE { z }

BREAKPOINT {
    SOLVE states METHOD cnexp
    g = gbar*z
    ik = g*(v - ek)
}

DERIVATIVE states {
    rates(cai)
    z' = (zInf - z)/zTau
}

INITIAL {
    rates(cai)
    z = zInf
}

PROCEDURE rates(ca (mM)) {
    LOCAL c
    c = ca
    if (c < 1e-9) {
        c = 1e-9
    }
    zInf = 1/(1 + (Kd/c)^hill)
}
