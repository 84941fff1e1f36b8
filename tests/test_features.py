"""eFEL feature extraction: the direct path equals eFEL's public API; NaN where undefined."""

import numpy as np
import pytest

from hpcneuro import config as configuration
from hpcneuro import features as feat
from hpcneuro.simulation import make_batch
from hpcneuro.protocols import Protocol
from conftest import ROOT, small_config

# per-spike, per-trace, C++ and Python-implemented features, and one needing the
# stimulus amplitude
NAMES = ["Spikecount", "mean_frequency", "AP_amplitude", "AP_duration_half_width",
         "time_to_first_spike", "voltage_base", "ISIs", "adaptation_index2",
         "steady_state_voltage_stimend", "ohmic_input_resistance_vb_ssse", "depol_block"]


@pytest.fixture(scope="module")
def traces():
    """HH somata under steps from hyperpolarising to strongly depolarising."""
    cfg = configuration.validate(small_config(), ROOT / "configs")
    amplitudes = np.array([-0.1, 0.0, 0.02, 0.1, 0.3, 1.0, 3.0])
    batch = make_batch(cfg, len(amplitudes))
    t, v = batch.run(len(amplitudes), 600.0, cfg["simulation"], delay=100.0, duration=400.0,
                     amplitudes=amplitudes)
    protocol = Protocol(name="s", type="step", tstop=600.0, delay=100.0, duration=400.0,
                        amplitude=0.0)
    return t, v, protocol, amplitudes


def test_direct_path_equals_efel_public_api(traces, monkeypatch):
    t, v, protocol, amplitudes = traces
    direct, direct_failed = feat.extract(t, v, protocol, NAMES, stimulus=amplitudes)
    monkeypatch.setattr(feat, "_efel_direct", lambda efel: None)
    public, public_failed = feat.extract(t, v, protocol, NAMES, stimulus=amplitudes)
    np.testing.assert_array_equal(direct, public)  # NaN in the same places, values equal
    np.testing.assert_array_equal(direct_failed, public_failed)
    count = direct[:, NAMES.index("Spikecount")]
    assert count[0] == 0 and count[-2] > count[3] > 0  # silent ... fast firing
    assert np.isnan(direct[0, NAMES.index("mean_frequency")])  # no spikes: undefined
    assert np.isfinite(direct[0, NAMES.index("ohmic_input_resistance_vb_ssse")])


def test_direct_path_keeps_settings_and_survives_bad_traces(traces):
    """A trace of NaN gives NaN and leaves the traces after it untouched; eFEL settings
    a user changes are honoured."""
    import efel

    t, v, protocol, _ = traces
    bad = v[:3].copy()
    bad[1] = np.nan
    efel.set_setting("Threshold", 60.0)  # above every HH peak
    try:
        values, failed = feat.extract(t, bad, protocol, ["Spikecount", "voltage_base"])
        high, _ = feat.extract(t, v[5:6], protocol, ["Spikecount"])
    finally:
        efel.reset()
    low, _ = feat.extract(t, v[5:6], protocol, ["Spikecount"])
    alone, _ = feat.extract(t, v[[0, 2]], protocol, ["Spikecount", "voltage_base"])
    assert np.isnan(values[1, 1])
    np.testing.assert_array_equal(values[[0, 2]], alone)
    assert not failed[0] and not failed[2]
    assert high[0, 0] == 0 < low[0, 0]


def test_validity_rule_mean_std_and_ranges_known_answers():
    """features.is_valid: mean +- n_std * std is the accepted band, edges included; low /
    high ranges, one-sided ranges; NaN never passes; every rule must hold."""
    names = ["s.mean_frequency", "s.voltage_base"]
    # mean 10, std 2, n_std 1.5 -> [7, 13]; voltage_base in [-80, -60]
    rules = [{"feature": "s.mean_frequency", "mean": 10.0, "std": 2.0, "n_std": 1.5,
              "low": None, "high": None},
             {"feature": "s.voltage_base", "mean": None, "std": None, "n_std": 3.0,
              "low": -80.0, "high": -60.0}]
    x = np.array([[10.0, -70.0],     # centre, inside: valid
                  [7.0, -70.0],      # lower edge of the band: valid
                  [13.0, -60.0],     # upper edges of both: valid
                  [6.99, -70.0],     # just below the band: invalid
                  [13.01, -70.0],    # just above: invalid
                  [10.0, -80.5],     # below low: invalid
                  [10.0, -59.0],     # above high: invalid
                  [np.nan, -70.0],   # NaN feature: invalid
                  [10.0, np.nan]])   # NaN in the other rule: invalid
    expected = [True, True, True, False, False, False, False, False, False]
    assert feat.is_valid(x, names, rules).tolist() == expected
    # one-sided range: only low given
    low_only = [{"feature": "s.mean_frequency", "mean": None, "std": None, "n_std": 3.0,
                 "low": 5.0, "high": None}]
    assert feat.is_valid(np.array([[4.9, 0.0], [5.0, 0.0], [1e9, 0.0], [np.nan, 0.0]]),
                         names, low_only).tolist() == [False, True, True, False]
    # the default n_std of 3: mean 0, std 1 -> [-3, 3]
    band = [{"feature": "s.voltage_base", "mean": 0.0, "std": 1.0, "n_std": 3.0,
             "low": None, "high": None}]
    assert feat.is_valid(np.array([[0.0, -3.0], [0.0, 3.0], [0.0, 3.5]]), names,
                         band).tolist() == [True, True, False]
    # no rules: every model is valid, NaN or not
    assert feat.is_valid(np.full((2, 2), np.nan), names, []).tolist() == [True, True]
