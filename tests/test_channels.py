"""Channel library: each shipped mechanism checked in the real NEURON against a known
property of its published kinetics (activation midpoints, inactivation, time constants,
current direction, Ca handling, temperature scaling).

Voltages that are compared in one test are simulated as independent single-compartment
cells in one NEURON run (one SEClamp each), which keeps the whole file fast.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from hpcneuro.mechanisms import load_mechanisms

CELSIUS = 34.0
CHANNELS = ["NaT", "NaP", "Kv3_1", "K_P", "K_T", "Im", "Ih", "Ca_HVA", "Ca_LVA", "SK"]
MECHANISMS = CHANNELS + ["CaDynamics"]


_KEEP: list = []  # point processes must outlive the run; dropped after each test


@pytest.fixture(autouse=True)
def _release_point_processes():
    yield
    _KEEP.clear()


@pytest.fixture(scope="module")
def h():
    load_mechanisms()
    from neuron import h as _h

    _h.load_file("stdrun.hoc")
    return _h


def make_soma(h, mechs=(), diam=50.0, g_pas=None, e_pas=-70.0, **params):
    """One-compartment soma (L = diam um) with ``mechs`` inserted; ``params`` are
    segment attributes such as ``gbar_NaT=0.1``."""
    sec = h.Section()
    sec.L = sec.diam = diam
    sec.nseg = 1
    sec.cm = 1.0
    if g_pas is not None:
        sec.insert("pas")
        sec.g_pas = g_pas
        sec.e_pas = e_pas
    for m in mechs:
        sec.insert(m)
    seg = sec(0.5)
    for name, value in params.items():
        setattr(seg, name, value)
    return sec


def clamp(h, sec, levels):
    """SEClamp with up to three (duration ms, mV) levels."""
    vc = h.SEClamp(sec(0.5))
    vc.rs = 0.001
    for i, (dur, amp) in enumerate(levels, start=1):
        setattr(vc, f"dur{i}", dur)
        setattr(vc, f"amp{i}", amp)
    _KEEP.append(vc)
    return vc


def run(h, tstop, dt=0.025, v_init=-70.0, celsius=CELSIUS):
    h.celsius = celsius
    h.dt = dt
    h.cvode_active(0)
    h.finitialize(v_init)
    h.continuerun(tstop)


def record(h, ref):
    vec = h.Vector()
    vec.record(ref)
    return vec


def crossing(x, y, level=0.5):
    """Linear interpolation of the first x where increasing/decreasing y crosses level."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    s = np.sign(y - level)
    idx = np.nonzero(s[:-1] != s[1:])[0]
    assert idx.size, f"no crossing of {level} in {y}"
    i = idx[0]
    return x[i] + (level - y[i]) * (x[i + 1] - x[i]) / (y[i + 1] - y[i])


def steady_gate(h, mech, gate, voltages, t_hold, v_init, **params):
    """Value of a gating STATE after holding each voltage for t_hold ms (integrated
    kinetics, not the mechanism's own inf function)."""
    cells = []
    for v in voltages:
        sec = make_soma(h, [mech], **params)
        cells.append((sec, clamp(h, sec, [(t_hold + 10, v)])))
    run(h, t_hold, v_init=v_init)
    return np.array([getattr(getattr(sec(0.5), mech), gate) for sec, _ in cells])


def spike_times(t, v, threshold=-20.0):
    t, v = np.asarray(t), np.asarray(v)
    up = np.nonzero((v[:-1] < threshold) & (v[1:] >= threshold))[0]
    return t[up]


def test_every_mechanism_loads_with_gbar(h):
    sec = make_soma(h, MECHANISMS)
    seg = sec(0.5)
    for name in CHANNELS:
        assert getattr(seg, f"gbar_{name}") > 0, name
    for p in ("decay", "gamma", "depth", "minCai"):
        assert getattr(seg, f"{p}_CaDynamics") > 0
    assert seg.ehcn_Ih == -45.0


@pytest.mark.parametrize("mech, gate, vhalf, t_hold, v_init, tol", [
    # Colbert & Pan 2002 rates: m_inf Boltzmann with V1/2 = -38 + 6 ln(0.124/0.182)
    ("NaT", "m", -40.3, 20, -70, 1.0),
    ("NaT", "h", -66.0, 60, -70, 1.0),          # inactivation V1/2 -66 mV
    ("NaP", "m", -52.6, 40, -70, 1.0),          # Magistretti & Alonso 1999
    ("Kv3_1", "m", 18.7, 40, -70, 1.0),         # Rettig et al. 1992
    ("K_T", "m", -47.0, 20, -70, 1.0),          # Korngreen & Sakmann 2000, A-type
    ("K_T", "h", -66.0, 150, -70, 1.0),
    ("K_P", "m", -11.0, 400, -70, 1.0),         # Korngreen & Sakmann 2000, slow K
    ("Im", "m", -35.0, 600, -70, 1.0),          # Adams et al. 1982
    ("Ih", "m", -110.3, 900, -80, 1.5),         # Kole et al. 2006 rate fits
    ("Ca_LVA", "m", -40.0, 100, -70, 1.0),      # Avery & Johnston 1996 (shifted)
    ("Ca_LVA", "h", -90.0, 600, -70, 1.0),
])
def test_steady_state_midpoints(h, mech, gate, vhalf, t_hold, v_init, tol):
    span = 40 if (mech, gate) == ("K_T", "m") else 20  # K_T activation slope is 29 mV
    voltages = np.arange(vhalf - span, vhalf + span + 0.1, 2.0)
    g = steady_gate(h, mech, gate, voltages, t_hold, v_init)
    # activation gates rise with voltage, inactivation (and Ih) gates fall
    rising = gate == "m" and mech != "Ih"
    assert np.all(np.diff(g) > 0) if rising else np.all(np.diff(g) < 0)
    assert g[0] < 0.25 and g[-1] > 0.75 if rising else g[0] > 0.75 and g[-1] < 0.25
    assert crossing(voltages, g) == pytest.approx(vhalf, abs=tol)


def test_rates_finite_at_removable_singularities(h):
    # v values where a rate is 0/0 in its textbook form; the limit must be used
    cases = [("NaT", -38.0), ("NaT", -66.0), ("NaP", -38.0), ("NaP", -17.0),
             ("NaP", -64.4), ("Ih", -154.9), ("Ca_HVA", -27.0)]
    for mech, v0 in cases:
        sec = make_soma(h, [mech])
        values = []
        for v in (v0 - 1e-4, v0, v0 + 1e-4):
            h.celsius = CELSIUS
            h.finitialize(v)
            mobj = getattr(sec(0.5), mech)
            values.append([mobj.mInf, mobj.mTau]
                          + ([mobj.hInf, mobj.hTau] if hasattr(mobj, "hInf") else []))
        values = np.array(values)
        assert np.all(np.isfinite(values)), (mech, v0, values)
        np.testing.assert_allclose(values[1], values[0], rtol=1e-3, err_msg=f"{mech} {v0}")
        np.testing.assert_allclose(values[1], values[2], rtol=1e-3, err_msg=f"{mech} {v0}")


def test_nat_kv3_1_fire_repetitively(h):
    sec = make_soma(h, ["NaT", "Kv3_1"], g_pas=5e-5, e_pas=-75,
                    gbar_NaT=0.3, gbar_Kv3_1=0.3)
    sec.ena, sec.ek = 50.0, -85.0
    stim = h.IClamp(sec(0.5))
    stim.delay, stim.dur, stim.amp = 100.0, 500.0, 0.3
    t, v = record(h, h._ref_t), record(h, sec(0.5)._ref_v)
    run(h, 700, v_init=-75)
    t, v = np.array(t), np.array(v)
    spikes = spike_times(t, v)
    assert np.all(spikes > 100) and np.all(spikes < 610)
    assert len(spikes) >= 5, "NaT + Kv3_1 must fire repetitively under a suprathreshold step"
    assert v.max() > 20, "overshooting action potentials"
    assert spikes[-1] > 500, "firing must be sustained through the step"
    # without NaT the same step gives no spike at all
    sec2 = make_soma(h, ["Kv3_1"], g_pas=5e-5, e_pas=-75, gbar_Kv3_1=0.3)
    stim2 = h.IClamp(sec2(0.5))
    stim2.delay, stim2.dur, stim2.amp = 100.0, 500.0, 0.3
    v2 = record(h, sec2(0.5)._ref_v)
    run(h, 300, v_init=-75)
    assert max(v2) < -20


def test_ih_sag(h):
    def response(gbar):
        sec = make_soma(h, ["Ih"], g_pas=5e-5, e_pas=-70, gbar_Ih=gbar)
        stim = h.IClamp(sec(0.5))
        stim.delay, stim.dur, stim.amp = 200.0, 1000.0, -0.1
        v = record(h, sec(0.5)._ref_v)
        return sec, stim, v
    with_ih, without_ih = response(1e-3), response(0.0)
    t = record(h, h._ref_t)
    run(h, 1250, v_init=-70)
    t = np.array(t)
    during = (t > 200) & (t <= 1200)
    for (_, _, v), expect_sag in ((with_ih, True), (without_ih, False)):
        v = np.array(v)
        base = v[(t > 150) & (t < 200)].mean()
        vmin = v[during].min()
        vss = v[(t > 1100) & (t <= 1200)].mean()
        sag = (vss - vmin) / (base - vmin)
        if expect_sag:
            assert sag > 0.1, f"sag ratio {sag:.3f} with Ih"
            assert vmin < vss - 2
        else:
            assert abs(sag) < 0.01, f"sag ratio {sag:.3f} without Ih"
    # Ih (ehcn = -45 mV) depolarises the resting potential
    at_rest = (t > 150) & (t < 200)
    assert np.array(with_ih[2])[at_rest].mean() > np.array(without_ih[2])[at_rest].mean() + 0.2


def test_k_t_inactivates_and_k_p_persists(h):
    kt = make_soma(h, ["K_T"], gbar_K_T=0.01)
    kp = make_soma(h, ["K_P"], gbar_K_P=0.01)
    vcs = [clamp(h, s, [(50, -90), (300, 0)]) for s in (kt, kp)]
    t = record(h, h._ref_t)
    i_t, i_p = record(h, kt(0.5)._ref_ik), record(h, kp(0.5)._ref_ik)
    run(h, 350, v_init=-90)
    t, i_t, i_p = np.array(t), np.array(i_t), np.array(i_p)
    step = t > 50
    for i in (i_t, i_p):
        assert i[step].max() > 0, "outward K current at 0 mV"
        assert abs(i[(t > 40) & (t < 50)]).max() < 0.02 * i[step].max()
    peak_t = t[step][np.argmax(i_t[step])] - 50
    assert peak_t < 5, "A-type current peaks within a few ms"
    # fast inactivation: tau_h(0 mV) = 8 ms / qt (2.7 ms at 34 degC)
    assert i_t[t > 80][0] < 0.05 * i_t[step].max()
    # the slowly inactivating K_P is still mostly on 50 ms into the step
    assert i_p[np.searchsorted(t, 100)] > 0.6 * i_p[step].max()
    # but K_P inactivates over hundreds of ms (tau_h(0 mV) ~ 140 ms at 34 degC)
    assert i_p[-1] < 0.3 * i_p[step].max()


def activation_tau(t, i, t0):
    """Time from t0 to 1 - 1/e of the final change of a monotonic relaxation."""
    sel = t >= t0
    t, i = t[sel] - t0, i[sel]
    frac = (i - i[0]) / (i[-1] - i[0])
    return crossing(t, frac, 1 - math.exp(-1))


def im_tau(h, celsius):
    sec = make_soma(h, ["Im"], gbar_Im=1e-3)
    clamp(h, sec, [(50, -70), (400, -20)])
    t, g = record(h, h._ref_t), record(h, sec(0.5)._ref_g_Im)
    run(h, 450, v_init=-70, celsius=celsius)
    return activation_tau(np.array(t), np.array(g), 50.0)


def test_im_slow_activation(h):
    # Adams et al. 1982: tau(-20 mV) = 1/(3.3e-3 (e^1.5 + e^-1.5)) = 64 ms at 21 degC,
    # 21.8 ms at 34 degC (q10 2.3)
    tau = im_tau(h, CELSIUS)
    assert tau == pytest.approx(64.4 / 2.3 ** 1.3, rel=0.05)
    assert 10 < tau < 60


def test_temperature_scaling(h):
    # time constants scale by q10 = 2.3 per 10 degC; kinetics faster when warmer
    t24, t34 = im_tau(h, 24.0), im_tau(h, 34.0)
    assert t34 < t24
    assert t24 / t34 == pytest.approx(2.3, rel=0.05)
    # NaT: gate time constant at fixed voltage follows the same factor
    sec = make_soma(h, ["NaT"])
    taus = []
    for c in (24.0, 34.0):
        h.celsius = c
        h.finitialize(-50)
        taus.append(sec(0.5).NaT.hTau)
    assert taus[0] / taus[1] == pytest.approx(2.3, rel=1e-6)


def test_nap_persistent_inward_current(h):
    nap = make_soma(h, ["NaP"], gbar_NaP=1e-3)
    nat = make_soma(h, ["NaT"], gbar_NaT=1e-3)
    for s in (nap, nat):
        s.ena = 50.0
        clamp(h, s, [(50, -90), (250, -45)])
    t = record(h, h._ref_t)
    i_p, i_t = record(h, nap(0.5)._ref_ina), record(h, nat(0.5)._ref_ina)
    run(h, 300, v_init=-90)
    t, i_p, i_t = np.array(t), np.array(i_p), np.array(i_t)
    late = (t > 250) & (t < 300)
    step = t > 50
    assert i_p[late].max() < 0, "NaP gives sustained inward current at -45 mV"
    assert i_p[late].mean() < 0.5 * i_p[step].min(), "inactivation is slow (seconds)"
    # the transient Na current at the same voltage has inactivated to a small window
    # current (m_inf^3 h_inf at -45 mV is ~6 % of its peak there)
    assert i_t[step].min() < 0
    assert abs(i_t[late].mean()) < 0.1 * abs(i_t[step].min())


def test_ca_hva_inward_on_depolarisation(h):
    sec = make_soma(h, ["Ca_HVA"], gbar_Ca_HVA=1e-3)
    clamp(h, sec, [(50, -70), (100, 0), (50, -70)])
    t, ica = record(h, h._ref_t), record(h, sec(0.5)._ref_ica)
    run(h, 200, v_init=-70)
    t, ica = np.array(t), np.array(ica)
    rest = ica[(t > 40) & (t < 50)]
    step = ica[(t > 50) & (t < 150)]
    assert step.min() < -1e-3, "inward Ca current at 0 mV"
    assert abs(rest).max() < 0.01 * abs(step.min()), "closed at -70 mV"
    # HVA: little current from a threshold step at -50 mV
    sec2 = make_soma(h, ["Ca_HVA"], gbar_Ca_HVA=1e-3)
    clamp(h, sec2, [(50, -70), (100, -50)])
    ica2 = record(h, sec2(0.5)._ref_ica)
    run(h, 150, v_init=-70)
    assert min(ica2) > 0.05 * step.min()


def test_ca_lva_needs_hyperpolarised_holding_and_inactivates(h):
    cells = []
    for hold in (-90.0, -50.0):
        sec = make_soma(h, ["Ca_LVA"], gbar_Ca_LVA=1e-3)
        clamp(h, sec, [(300, hold), (300, -40)])
        cells.append((sec, record(h, sec(0.5)._ref_ica)))
    t = record(h, h._ref_t)
    run(h, 600, v_init=-70)
    t = np.array(t)
    step = t > 300
    i_hyp, i_dep = (np.array(i) for _, i in cells)
    peak = i_hyp[step].min()
    assert peak < -1e-4, "inward T-type current from -90 mV"
    assert i_dep[step].min() > 0.1 * peak, "mostly inactivated from -50 mV holding"
    assert i_hyp[-1] > 0.1 * peak, "inactivates during a 300 ms step"


def test_ca_dynamics_influx_and_decay(h):
    decay, gamma, depth = 50.0, 0.05, 0.1
    sec = make_soma(h, ["Ca_HVA", "CaDynamics"], gbar_Ca_HVA=1e-3,
                    decay_CaDynamics=1e9, gamma_CaDynamics=gamma, depth_CaDynamics=depth)
    clamp(h, sec, [(20, -70), (20, 0), (10, -70)])
    t, ica, cai = (record(h, r) for r in (h._ref_t, sec(0.5)._ref_ica, sec(0.5)._ref_cai))
    run(h, 50, v_init=-70)
    t, ica, cai = np.array(t), np.array(ica), np.array(cai)
    minCai = sec(0.5).minCai_CaDynamics
    assert cai[0] == pytest.approx(minCai)
    assert cai[-1] > 10 * minCai, "cai rises with Ca influx"
    # with no removal, the rise is the integral of the influx: gamma*ica/(2 F depth)
    expected = np.trapezoid(-ica, t) * 1e4 * gamma / (2 * 96485.3 * depth)
    assert cai[-1] - minCai == pytest.approx(expected, rel=0.02)

    # decay back to minCai with time constant `decay`
    sec2 = make_soma(h, ["Ca_HVA", "CaDynamics"], gbar_Ca_HVA=1e-3,
                     decay_CaDynamics=decay, gamma_CaDynamics=gamma)
    clamp(h, sec2, [(20, -70), (20, 0), (600, -70)])
    t, cai = record(h, h._ref_t), record(h, sec2(0.5)._ref_cai)
    run(h, 640, v_init=-70)
    t, cai = np.array(t), np.array(cai)
    excess = cai - minCai
    i1, i2 = np.searchsorted(t, 60.0), np.searchsorted(t, 160.0)
    assert excess[i1] > 5 * minCai
    tau = (t[i2] - t[i1]) / math.log(excess[i1] / excess[i2])
    assert tau == pytest.approx(decay, rel=0.05)
    assert cai[-1] == pytest.approx(minCai, rel=0.01)


def test_sk_current_grows_with_cai(h):
    levels = [5e-5, 2e-4, 4.3e-4, 1e-3, 5e-3]  # mM
    currents, z = [], []
    for ca in levels:
        sec = make_soma(h, ["SK"], gbar_SK=1e-3)
        sec.ek = -85.0
        sec(0.5).cai = ca  # no mechanism writes cai here: it stays a fixed parameter
        clamp(h, sec, [(20, -40)])
        run(h, 10, v_init=-40)
        assert sec(0.5).cai == ca
        currents.append(sec(0.5).ik_SK)
        z.append(sec(0.5).SK.z)
    assert np.all(np.diff(currents) > 0), currents
    assert currents[0] < 0.01 * currents[-1]
    assert z[2] == pytest.approx(0.5, abs=0.01)  # Kd = 0.43 uM (Kohler et al. 1996)
    assert z[-1] > 0.99


def test_ca_feeds_sk_through_ca_dynamics(h):
    sec = make_soma(h, ["Ca_HVA", "CaDynamics", "SK"], gbar_Ca_HVA=1e-3, gbar_SK=1e-3,
                    gamma_CaDynamics=0.05, decay_CaDynamics=80.0)
    sec.ek = -85.0
    clamp(h, sec, [(20, -60), (30, 0), (20, -60)])
    i_sk = record(h, sec(0.5)._ref_ik_SK)
    t = record(h, h._ref_t)
    run(h, 70, v_init=-60)
    t, i_sk = np.array(t), np.array(i_sk)
    before = i_sk[(t > 10) & (t < 20)].max()
    after = i_sk[(t > 51) & (t < 55)].max()  # tail at -60 mV after the Ca influx
    assert after > 20 * max(before, 1e-9)


def test_all_channels_together_stay_finite(h):
    # the defaults of the .mod files, strong drive in a small soma
    sec = make_soma(h, MECHANISMS, g_pas=5e-5, e_pas=-75)
    sec.ena, sec.ek = 50.0, -85.0
    stim = h.IClamp(sec(0.5))
    stim.delay, stim.dur, stim.amp = 50.0, 300.0, 0.5
    v = record(h, sec(0.5)._ref_v)
    run(h, 400, v_init=-75)
    v = np.array(v)
    assert np.all(np.isfinite(v))
    assert -120 < v.min() and v.max() < 80


def test_cortical_regular_spiking_soma(h):
    """All channels together in a 69 um soma (Rin ~100 MOhm, tau_m ~12 ms) with the
    centre of the suggested cortical parameter box: regular spiking with adaptation,
    AP shape in the range of mouse M1 IT pyramidal cells (Scala et al. 2021, 34 degC)."""
    params = dict(gbar_NaT=0.2, gbar_Kv3_1=0.02, gbar_NaP=5e-5, gbar_K_P=3e-3,
                  gbar_K_T=2e-3, gbar_Im=5e-4, gbar_Ih=6e-5, gbar_Ca_HVA=3e-4,
                  gbar_Ca_LVA=1e-3, gbar_SK=1e-3, gamma_CaDynamics=2e-3,
                  decay_CaDynamics=200.0)
    sec = make_soma(h, MECHANISMS, diam=69.0, g_pas=3e-5, e_pas=-62, **params)
    sec.ena, sec.ek = 50.0, -85.0
    stim = h.IClamp(sec(0.5))
    stim.delay, stim.dur, stim.amp = 200.0, 1000.0, 0.3
    _KEEP.append(stim)
    t, v = record(h, h._ref_t), record(h, sec(0.5)._ref_v)
    run(h, 1300, v_init=-70)
    t, v = np.array(t), np.array(v)
    rest = v[(t > 150) & (t < 200)].mean()
    assert -75 < rest < -62
    spikes = spike_times(t, v)
    assert 8 <= len(spikes) <= 40, len(spikes)
    isi = np.diff(spikes)
    assert isi[-1] > 1.5 * isi[0], "spike-frequency adaptation"
    assert np.std(isi[-4:]) < 0.1 * np.mean(isi[-4:]), "regular firing at steady state"
    # AP half-width of the last spike (threshold-to-peak half height) 0.5-1.2 ms
    i0 = np.searchsorted(t, spikes[-1] - 3)
    seg_t, seg_v = t[i0:i0 + int(10 / 0.025)], v[i0:i0 + int(10 / 0.025)]
    dv = np.gradient(seg_v, seg_t)
    thr = seg_v[np.nonzero(dv > 20)[0][0]]
    peak = seg_v.max()
    assert 65 < peak - thr < 100, "AP amplitude from threshold"
    above = seg_t[seg_v > (thr + peak) / 2]
    assert 0.5 < above[-1] - above[0] < 1.2
