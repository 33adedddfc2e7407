"""The ``tag`` experiment (docs/theory.md §5, the paper's Appendix E) at its quick sizes.

One quick run (2 seeds x 2 temperatures x (16 perturbed + 3 BC) policies) is shared by the
module; a second run checks that the same seeds give the same bytes. Importing
``jaxmail.experiments.tag`` registers the experiment. The tests that read the quick run are
marked slow (the run compiles the whole experiment); the quick suite keeps the configuration
checks, and ``jaxmail.games.tag``'s kernels are checked against a loop reference in
tests/test_tag.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail.experiments import base, results, runner
from jaxmail.experiments import tag as tag_exp

COLUMNS = [
    "temperature",
    "seed",
    "learner",
    "noise_level",
    "num_trajectories",
    "eps_bc",
    "eps_bc_estimate",
    "eps_bc_low",
    "eps_bc_high",
    "nash_gap",
    "nash_conv",
    "soft_nash_gap",
    "br_shift",
    "soft_br_shift",
    "delta_envelope",
    "soft_delta_envelope",
    "nash_gap_envelope",
    "soft_delta_upper",
    "reward_bound",
    "soft_reward_bound",
    "lemma4_bound",
    "lemma4_holds",
    "expert_nash_gap",
    "expert_soft_nash_gap",
    "converged",
    "chunk_crc32",  # the runner's per-chunk checksum, always last
]
FIGURES = ("fig5_gap_and_shift.png", "fig6_delta_envelopes.png", "bc_vs_demonstrations.png")


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("tag")
    config = tag_exp.TagConfig.quick()
    runner.run(tag_exp.EXPERIMENT, config, out, progress=False)
    return config, out, results.read_table(out / "results.csv")


def _groups(config, table):
    """The perturbed rows of every (temperature, seed), in the order of the noise levels."""
    for tau in config.temperatures:
        for seed in range(config.seeds):
            yield results.select(table, temperature=tau, seed=seed, learner=tag_exp.PERTURBED)


@pytest.mark.slow
def test_files_columns_and_rows(quick):
    config, out, table = quick
    assert base.get("tag") is tag_exp.EXPERIMENT
    for name in ("config.json", "results.csv", "summary.md", *FIGURES):
        assert (out / name).stat().st_size > 0, name
    header, _ = results.read_rows(out / "results.csv")
    assert header == COLUMNS
    # seeds x temperatures x (num_policies perturbed + one BC policy per dataset size)
    k, m = config.num_policies, len(config.dataset_sizes)
    rows = config.seeds * len(config.temperatures) * (k + m)
    assert rows == 2 * 2 * (16 + 3) == 76
    assert len(table["seed"]) == rows
    assert int(np.sum(table["learner"] == tag_exp.PERTURBED)) == 2 * 2 * 16
    assert bool(np.all(table["converged"]))
    summary = (out / "summary.md").read_text()
    assert "Lemma 4, held out" in summary and "In-sample (not evidence)" in summary
    assert "higher tau, lower delta" in summary
    assert (out / "findings.json").stat().st_size > 0


@pytest.mark.slow
def test_unperturbed_rows_are_the_expert(quick):
    config, _, table = quick
    zero = results.select(table, learner=tag_exp.PERTURBED, noise_level=0.0)
    assert len(zero["seed"]) == config.seeds * len(config.temperatures)
    # eta = 0: (1 - 0) E + 0 u = E exactly in floating point, so every L1 distance is 0.
    assert np.all(zero["eps_bc"] == 0.0) and np.all(zero["eps_bc_estimate"] == 0.0)
    # The same policy as the expert's certificate, evaluated in a batched program instead:
    # float32 values of size max|R| / (1 - gamma) = 1 agree to rounding.
    np.testing.assert_allclose(zero["nash_gap"], zero["expert_nash_gap"], rtol=0, atol=1e-5)
    np.testing.assert_allclose(
        zero["soft_nash_gap"], zero["expert_soft_nash_gap"], rtol=0, atol=1e-5
    )
    # The expert is a regularised equilibrium (soft gap ~1e-5), so its soft best response is
    # itself up to the solver's float32 accuracy (measured 0.0039 at tau = 0.1, 0.0028 at 1).
    assert np.all(zero["soft_br_shift"] < 0.01)
    # ... but not an equilibrium of the unregularised game (the paper's tau = 0.1: gap 0.188).
    assert np.all(zero["expert_nash_gap"] > 0.1)


@pytest.mark.slow
def test_best_responses_match_the_library(quick):
    """The imitation report the experiment measures with (one best-response solve) ==
    jm.nash_gap and jm.best_response_shift on the Tag game (whose best responses tie)."""
    config, _, table = quick
    tau = config.temperatures[0]
    expert = tag_exp.tag_expert(config, tau)
    game = expert.game
    shift = jm.best_response_shift(game, expert.policy, expert.policy)
    zero = results.select(table, temperature=tau, noise_level=0.0)
    np.testing.assert_allclose(zero["br_shift"], float(np.max(shift)), rtol=0, atol=1e-5)
    policy = jm.imitation.perturb_policy(jax.random.key(3), expert.policy, 0.5)
    report = jm.metrics.imitation_report(game, policy, expert=expert.policy)
    reference = jm.nash_gap(game, policy)
    assert bool(report.converged)
    np.testing.assert_allclose(report.nash_gap.nash_gap, reference.nash_gap, rtol=0, atol=1e-5)
    np.testing.assert_allclose(report.nash_gap.nash_conv, reference.nash_conv, rtol=0, atol=1e-5)
    reference = jm.best_response_shift(game, policy, expert.policy)
    np.testing.assert_allclose(report.br_shift, reference, rtol=0, atol=1e-5)


@pytest.mark.slow
def test_bc_error_grows_with_the_noise(quick):
    config, _, table = quick
    for group in _groups(config, table):
        eta, eps = group["noise_level"], group["eps_bc"]
        assert list(eta) == sorted(eta) and len(eta) == config.num_policies
        # ||(1 - eta) E + eta u - E||_1 = eta ||u - E||_1 <= 2 eta at every state.
        assert np.all(eps <= 2 * eta + 1e-6)
        # E[eps] = eta E_{d^E} E_u ||u - E||_1 is linear in eta; the noise draws only scatter it.
        assert np.corrcoef(eta, eps)[0, 1] > 0.9
        half = len(eta) // 2
        assert eps[half:].mean() > eps[:half].mean()
    # The estimate from held-out expert episodes tracks the exact value (both in [0, 2]).
    assert np.all((table["eps_bc_estimate"] >= 0) & (table["eps_bc_estimate"] <= 2))
    assert np.all(table["eps_bc_low"] <= table["eps_bc_high"])
    assert np.max(np.abs(table["eps_bc_estimate"] - table["eps_bc"])) < 0.1


@pytest.mark.slow
def test_envelopes_are_monotone_cumulative_maxima(quick):
    config, _, table = quick
    for tau in config.temperatures:
        for seed in range(config.seeds):
            sel = results.select(table, temperature=tau, seed=seed)  # perturbed and BC
            order = np.argsort(sel["eps_bc"], kind="stable")
            for shift, envelope in (
                ("br_shift", "delta_envelope"),
                ("soft_br_shift", "soft_delta_envelope"),
                ("nash_gap", "nash_gap_envelope"),
            ):
                env = sel[envelope][order]
                assert np.all(np.diff(env) >= 0), (tau, seed, envelope)
                assert np.all(sel[envelope] >= sel[shift])
                # Each value is the max over the seed's policies with no larger eps_BC (two
                # players: Lemma 4 evaluates delta at eps_BC itself).
                expected = tag_exp.pooled_envelope(sel["eps_bc"], sel[shift], sel["eps_bc"])
                np.testing.assert_allclose(sel[envelope], expected, rtol=1e-6)
    sel = results.select(table, temperature=config.temperatures[0], seed=0)
    reference = jm.theory.perturbation_envelope(sel["eps_bc"], sel["br_shift"])
    np.testing.assert_allclose(
        tag_exp.pooled_envelope(sel["eps_bc"], sel["br_shift"], np.asarray(reference.bc_errors)),
        reference.envelope,
        rtol=1e-6,
    )
    assert np.isnan(tag_exp.pooled_envelope([0.1, 0.2], [1.0, 2.0], 0.05)[0])  # none qualifies


@pytest.mark.slow
def test_lemma4_columns_scale_with_the_rewards(quick):
    config, _, table = quick
    # Tag's rewards: the tagger pays 0.1 a step, an off-grid move 0.1 more: r_max = 0.2.
    np.testing.assert_allclose(table["reward_bound"], 0.2, rtol=1e-6)
    # r_soft = r_max + tau max(log 4, log 4) (zero-sum convention, four moves each).
    np.testing.assert_allclose(
        table["soft_reward_bound"], 0.2 + table["temperature"] * np.log(4.0), rtol=1e-5
    )
    # Lemma 4 with n = 2: r_max ((2n - 1) eps_BC + delta(eps_BC)) / (1 - gamma)^2, 1/0.2^2 = 25.
    bound = 0.2 * (3 * table["eps_bc"] + table["delta_envelope"]) / (1 - config.discount) ** 2
    np.testing.assert_allclose(table["lemma4_bound"], bound, rtol=1e-5)
    assert np.all(table["lemma4_holds"])  # in-sample: by construction (findings say so)
    # Why the unregularised pairing cannot test Lemma 4 in Tag: delta(0) (the soft expert's own
    # unregularised BR shift, > 1) exceeds 2 (1 - gamma) = 0.4, so every bound exceeds the
    # trivial ceiling 2 r_max / (1 - gamma) >= NashGap.
    ceiling = 2 * 0.2 / (1 - config.discount)
    assert np.all(table["delta_envelope"] > 2 * (1 - config.discount))
    assert np.all(table["lemma4_bound"] >= ceiling) and np.all(table["nash_gap"] <= ceiling)


@pytest.mark.slow
def test_certified_soft_delta_brackets_the_envelope(quick):
    config, _, table = quick
    upper, lower = table["soft_delta_upper"], table["soft_delta_envelope"]
    assert np.all(upper <= 2.0) and np.all(upper >= table["soft_br_shift"] - 1e-6)
    assert np.all(upper >= lower - 1e-6)  # an upper bound above the in-sample lower estimate
    # At eps_BC = 0 (the expert) the bound is the expert's own soft shift: bracket width 0.
    zero = table["eps_bc"] == 0.0
    np.testing.assert_allclose(upper[zero], table["soft_br_shift"][zero], atol=1e-6)


@pytest.mark.slow
def test_findings_kinds_and_counts(quick):
    config, _, table = quick
    found = tag_exp.findings(config, table)
    assert [(f.evidence, f.in_sample) for f in found] == [
        (True, False),
        (False, False),
        (True, False),
        (False, False),
        (True, False),
        (True, False),
        (False, False),
        (False, True),
    ]
    ho = tag_exp.held_out_rows(config, table)
    # Test rows: the odd seed's 16 + 3 policies per tau, less its expert row (eps_BC = 0).
    assert len(ho["eps_bc"]) == 2 * (16 + 3 - 1) and int(ho["excluded"]) == 2
    assert found[0].checked + found[1].checked == len(ho["eps_bc"])
    assert found[2].checked + found[3].checked == len(ho["eps_bc"])
    # The certified bound on every row but the experts themselves (eps_BC = 0: 2 seeds x 2 tau).
    assert found[4].checked == len(table["seed"]) - 4 and found[4].held
    assert found[-1].checked == len(table["seed"])


def _break(table, **columns):
    out = {k: np.array(v, copy=True) for k, v in table.items()}
    for name, fn in columns.items():
        out[name] = fn(out)
    return out


@pytest.mark.slow
def test_held_out_findings_fail_on_violations(quick):
    config, _, table = quick
    odd = table["seed"] % 2 == 1
    # Violating rows: the estimation seeds' shifts set to 0 (delta estimate 0) and the test
    # rows' gaps at 0.99 of the trivial ceiling 2 r / (1 - gamma) = 10 r. The bound is then
    # r 3 eps_BC / 0.2^2 = 75 r eps_BC: below the ceiling (a live row) and below the gap for
    # eps_BC < 9.9 / 75 = 0.132, which the perturbed rows at eta = 1/15 (eps_BC ~ 0.05) meet.
    bad = _break(
        table,
        br_shift=lambda t: np.where(odd, t["br_shift"], 0.0),
        soft_br_shift=lambda t: np.where(odd, t["soft_br_shift"], 0.0),
        nash_gap=lambda t: np.where(odd, 0.99 * 2 * t["reward_bound"] / 0.2, t["nash_gap"]),
        soft_nash_gap=lambda t: np.where(
            odd, 0.99 * 2 * t["soft_reward_bound"] / 0.2, t["soft_nash_gap"]
        ),
    )
    found = tag_exp.findings(config, bad)
    assert found[0].violations > 0 and found[0].status == "failed"
    assert found[2].violations > 0 and found[2].status == "failed"
    summary = tag_exp.summarize(config, bad, "")
    assert "Lemma 4 FAILED on" in summary and "it FAILED on" in summary


@pytest.mark.slow
def test_held_out_finding_fails_with_a_wrong_reward_bound(quick):
    """A genuine failure: rewards 10x larger than the bound is told (r_max = 0.02), delta 0."""
    config, _, table = quick
    odd = table["seed"] % 2 == 1
    bad = _break(
        table,
        reward_bound=lambda t: t["reward_bound"] / 10,
        br_shift=lambda t: np.where(odd, t["br_shift"], 0.0),
    )
    # bound = 0.02 * 3 eps_BC / 0.04 = 1.5 eps_BC < NashGap (>= 0.188, the expert's) when small.
    found = tag_exp.findings(config, bad)
    assert found[0].checked > 0 and found[0].violations > 0


@pytest.mark.slow
def test_certified_findings_fail_with_a_too_small_delta(quick):
    config, _, table = quick
    # A genuine failure: the certified bound replaced by delta(0) (the expert's own shift, what
    # the bound is at eps_BC = 0) at every eps_BC, too small wherever the BR moves.
    at_zero = {
        t: float(np.min(table["soft_delta_upper"][table["temperature"] == t]))
        for t in config.temperatures
    }
    bad = _break(
        table,
        soft_delta_upper=lambda t: np.array([at_zero[x] for x in t["temperature"]]),
    )
    found = tag_exp.findings(config, bad)
    assert found[4].violations > 0 and found[4].status == "failed"
    # The soft Lemma 4 analogue with the certified delta, on a violating row.
    odd = table["seed"] % 2 == 1
    bad = _break(
        bad,
        soft_nash_gap=lambda t: np.where(
            odd, 0.99 * 2 * t["soft_reward_bound"] / 0.2, t["soft_nash_gap"]
        ),
    )
    found = tag_exp.findings(config, bad)
    assert found[5].checked > 0 and found[5].violations > 0


@pytest.mark.slow
def test_bc_rows(quick):
    config, _, table = quick
    bc = results.select(table, learner=tag_exp.BC)
    assert np.all(np.isnan(bc["noise_level"]))
    sizes = list(config.dataset_sizes)
    assert bc["num_trajectories"].tolist() == sizes * (config.seeds * len(config.temperatures))
    # A cloned policy is a distribution at every state: eps_BC in [0, 2], NashGap >= 0.
    assert np.all((bc["eps_bc"] >= 0) & (bc["eps_bc"] <= 2))
    assert np.all(bc["nash_gap"] >= -1e-5)


@pytest.mark.slow
def test_same_seeds_same_numbers(quick, tmp_path):
    config, out, _ = quick
    runner.run(tag_exp.EXPERIMENT, config, tmp_path, progress=False)
    assert (tmp_path / "results.csv").read_bytes() == (out / "results.csv").read_bytes()


def test_config_checks():
    assert tag_exp.TagConfig().temperatures == (0.05, 0.1, 0.3, 1.0)
    assert tag_exp.TagConfig.quick().num_policies == 16
    with pytest.raises(ValueError, match="temperatures"):
        tag_exp.TagConfig.from_dict({"temperatures": [0.1, 0.0]})
    with pytest.raises(ValueError, match=r"max_noise: expected a number in \[0, 1\], got 1.5"):
        tag_exp.TagConfig.from_dict({"max_noise": 1.5})
    with pytest.raises(ValueError, match="dataset_sizes"):
        tag_exp.TagConfig.from_dict({"dataset_sizes": [0]})
    with pytest.raises(ValueError, match="unknown configuration key"):
        tag_exp.TagConfig.from_dict({"temperature": [0.1]})
    assert tag_exp.settings(tag_exp.TagConfig.quick()) == [
        {"temperature": 0.1},
        {"temperature": 1.0},
    ]
