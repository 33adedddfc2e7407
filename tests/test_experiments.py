"""The built-in experiments: their numbers, against the paper and against themselves.

The quick configurations are the ones ``jaxmail reproduce --quick`` uses (tests/test_cli.py), so
in a full session the compilations are shared; alone, this file compiles them once. The tests
that read a quick run (or learn) are marked slow; the quick suite keeps the closed forms, the
tolerances, the configuration checks and one end-to-end float64 run of one game.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail.experiments import counterexamples as cx_exp
from jaxmail.experiments import dse_bound, results, runner


@pytest.fixture(scope="module")
def dse_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("dse")
    config = dse_bound.DSEBoundConfig.quick()
    runner.run(dse_bound.EXPERIMENT, config, out, progress=False)
    return config, results.read_table(out / "results.csv")


@pytest.fixture(scope="module")
def counterexample_table(tmp_path_factory):
    out = tmp_path_factory.mktemp("cx")
    config = cx_exp.CounterexamplesConfig.quick()
    runner.run(cx_exp.EXPERIMENT, config, out, progress=False)
    return config, results.read_table(out / "results.csv")


# ----------------------------------------------------------------------------------------------
# counterexamples


def test_paper_and_derived_values_at_the_papers_parameters():
    """The paper's claims and the constructions' closed forms at gamma = 0.9, eps = 0.05."""
    v = cx_exp.derived_values("lemma1", 0.9, 0.05)
    assert v["derived_learner_nash_gap"] == pytest.approx((5 / 3) / 0.1)  # 16.667
    assert v["derived_eps_mu"] == 0.0 and math.isnan(v["derived_eps_bc"])
    t2 = cx_exp.derived_values("theorem2", 0.9, 0.05)
    assert t2["derived_learner_nash_gap"] == pytest.approx(9)
    assert t2["derived_expert_nash_gap"] == 0.9
    exact = cx_exp.derived_values("theorem2_exact", 0.9, 0.05)
    assert exact["derived_learner_nash_gap"] == pytest.approx(0.81 / 0.1)
    v = cx_exp.derived_values("lemma2", 0.9, 0.05)
    # k = ceil(log(0.025 * 0.1) / log 0.9) = ceil(56.87) = 57
    assert v["derived_chain_length"] == 57
    assert v["derived_eps_bc"] == pytest.approx(2 * 0.9**58)  # 0.00444
    assert v["derived_learner_nash_gap"] == pytest.approx(8.978, abs=5e-4)
    assert v["derived_br_shift_0"] == 2
    # The paper's statements: matched occupancies, eps_BC <= eps, BR shift 2. Nothing else.
    assert cx_exp.paper_values("lemma1", 0.9, 0.05)["paper_eps_mu"] == 0.0
    assert cx_exp.paper_values("theorem2", 0.9, 0.05)["paper_eps_rho"] == 0.0
    p2 = cx_exp.paper_values("lemma2", 0.9, 0.05)
    assert p2["paper_max_eps_bc"] == 0.05 and p2["paper_br_shift_0"] == 2.0
    assert math.isnan(cx_exp.paper_values("lemma1", 0.9, 0.05)["paper_br_shift_0"])
    assert set(cx_exp.FORMULAS) >= {
        (g, c.removeprefix("derived_"))
        for g in cx_exp.GAMES
        for c, x in cx_exp.derived_values(g, 0.9, 0.05).items()
        if not math.isnan(x) and c not in ("derived_eps_mu", "derived_eps_rho")
    }


@pytest.mark.slow
def test_counterexamples_agree_with_the_closed_forms(counterexample_table):
    config, table = counterexample_table
    hand = results.select(table, learner=cx_exp.PAPER_LEARNER)
    assert len(hand["game"]) == len(cx_exp.GAMES) * len(config.discounts)
    assert bool(np.all(table["converged"]))
    found = cx_exp.findings(config, table)
    assert [f.status for f in found[:3]] == ["held"] * 3, found
    assert found[2].checked == 16  # every derived number of the four games at gamma = 0.9
    lemma2 = results.select(table, game="lemma2")
    assert lemma2["chain_length"][0] == 57 and lemma2["num_states"][0] == 59
    assert lemma2["eps_bc"][0] <= config.lemma2_epsilon


def _broken(table, game, column, value):
    """A copy of ``table`` whose hand-made ``game`` row has ``column`` set to ``value``."""
    table = {k: v.copy() for k, v in table.items()}
    row = (table["game"] == game) & (table["learner"] == cx_exp.PAPER_LEARNER)
    table[column][row] = value
    return table


@pytest.mark.slow
def test_counterexample_findings_fail_on_wrong_numbers(counterexample_table):
    config, table = counterexample_table
    # A NashGap off by 1e-3 (relative 6e-5 of 16.667) is outside the float32 value tolerance
    # 4 eps (1.9/0.1) / 0.1 = 9e-5: the closed-form agreement fails.
    bad = _broken(table, "lemma1", "learner_nash_gap", 16.667 + 1e-3)
    assert cx_exp.findings(config, bad)[2].status == "failed"
    # eps_BC = 0 instead of 2 gamma^58 = 0.00444: an absolute tolerance of 1e-4/(1-gamma) would
    # let it pass at gamma = 0.99; the normalised tolerance (9e-6 at 0.9) does not.
    bad = _broken(table, "lemma2", "eps_bc", 0.0)
    assert cx_exp.findings(config, bad)[2].violations == 1
    bad = _broken(table, "lemma2", "eps_bc", 0.06)  # above Lemma 2's eps = 0.05
    assert cx_exp.findings(config, bad)[1].status == "failed"
    bad = _broken(table, "theorem2", "eps_rho", 1e-3)  # the paper's eps_rho = 0
    assert cx_exp.findings(config, bad)[0].status == "failed"
    # A learned imitator that matched AND found the expert (NashGap 0) breaks the claim that
    # matching left it exploitable.
    learned = {k: v.copy() for k, v in table.items()}
    rows = learned["learner"] == "state-matching"
    assert rows.any()
    learned["eps_mu"][rows] = 0.0
    learned["learner_nash_gap"][rows] = 0.0
    found = cx_exp.findings(config, learned)
    assert any(f.status == "failed" and "exploitable" in f.claim for f in found), found


def test_counterexample_tolerances_follow_the_dtype():
    tol32 = cx_exp.tolerances(0.99, float(np.finfo(np.float32).eps))
    tol64 = cx_exp.tolerances(0.99, float(np.finfo(np.float64).eps))
    # 4 eps (1.99 / 0.01): below Lemma 2's eps_BC = 2 * 0.99^827 = 4.9e-4 at gamma = 0.99.
    assert tol32["normalised"] == pytest.approx(4 * 1.1920929e-7 * 199, rel=1e-6)
    assert tol32["normalised"] < 0.25 * 2 * 0.99**827
    assert tol32["value"] == pytest.approx(tol32["normalised"] / 0.01)
    assert tol64["normalised"] < 1e-12


def test_counterexamples_float64_are_exact(tmp_path):
    config = cx_exp.CounterexamplesConfig(
        games=("lemma1",), discounts=(0.9,), learners=("hand-made",), seeds=1, chunk_size=1
    )
    runner.run(cx_exp.EXPERIMENT, config, tmp_path, progress=False, dtype="float64")
    table = results.read_table(tmp_path / "results.csv")
    np.testing.assert_allclose(
        table["learner_nash_gap"], table["derived_learner_nash_gap"], rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(table["eps_mu"], 0.0, atol=1e-12)  # 1.8e-7 in float32
    assert "16.667" in (tmp_path / "summary.md").read_text()


@pytest.mark.slow
def test_learned_imitators_match_and_stay_exploitable(tmp_path):
    """Measure matching LEARNS the exploitable matches of Lemma 1 and Theorem 2 (gamma = 0.9),
    started near the hand-made imitators (the labelled second row of the experiment)."""
    config = cx_exp.CounterexamplesConfig(
        games=("lemma1", "theorem2"),
        discounts=(0.9,),
        learners=("state-matching-near", "state-action-matching-near"),
        seeds=2,
        chunk_size=2,
        matching_steps=500,
    )
    runner.run(cx_exp.EXPERIMENT, config, tmp_path, progress=False)
    table = results.read_table(tmp_path / "results.csv")
    lemma1 = results.select(table, game="lemma1", learner="state-matching-near")
    # The state occupancy is matched (float32) and the NashGap stays a large fraction of the
    # hand-made (5/3)/(1-gamma) = 16.667: from near the hand-made learner, player 2 keeps
    # playing 1 with probability ~0.8-0.9, and g_2 = (5/3) x (1 - y) / (1 - gamma) with x, y
    # the players' probabilities of action 0 (tests/test_measure_matching.py derives it).
    assert np.all(lemma1["eps_mu"] < 1e-3)
    assert np.all(lemma1["learner_nash_gap"] > 0.5 * (5 / 3) / 0.1), lemma1["learner_nash_gap"]
    theorem2 = results.select(table, game="theorem2", learner="state-action-matching-near")
    # eps_rho ~0, yet player 0 can detour through the unvisited s1: the first step alone earns
    # gamma * pi_2(0|s0) ~ 0.9 (pi_2(0|s0) ~ 1 once the expert's (0, 0) at s0 is matched).
    assert np.all(theorem2["eps_rho"] < 0.02)
    assert np.all(theorem2["learner_nash_gap"] > 0.8), theorem2["learner_nash_gap"]
    summary = (tmp_path / "summary.md").read_text()
    assert "## Learned imitators" in summary and "model-based" in summary


def test_counterexamples_config_checks():
    with pytest.raises(ValueError, match=r"games\[0\]: expected one of \[.*\], got 'lemma9'"):
        cx_exp.CounterexamplesConfig.from_dict({"games": ["lemma9"]})
    with pytest.raises(ValueError, match=r"learners\[0\]: expected one of \[.*\], got 'gail'"):
        cx_exp.CounterexamplesConfig.from_dict({"learners": "gail"})
    with pytest.raises(ValueError, match=r"discounts\[0\]: expected a number in \(0, 1\), got 1.0"):
        cx_exp.CounterexamplesConfig.from_dict({"discounts": [1.0]})


# ----------------------------------------------------------------------------------------------
# dse-bound


@pytest.mark.slow
def test_dse_rows_and_bounds(dse_table):
    config, table = dse_table
    per_seed = sum(dse_bound.rows_per_seed(config, s["family"]) for s in dse_bound.settings(config))
    assert len(table["seed"]) == config.seeds * per_seed
    assert set(table["family"]) == set(dse_bound.FAMILIES)  # --quick runs every family
    assert bool(np.all(table["converged"]))
    n, gamma = table["num_players"], table["discount"]
    # the bound scales with the game's own r_max (at most 1: every family draws |r| <= 1)
    assert np.all((table["reward_bound"] > 0) & (table["reward_bound"] <= 1))
    np.testing.assert_allclose(
        table["bound"],
        (2 * n - 1) * table["reward_bound"] * table["eps_bc"] / (1 - gamma) ** 2,
        rtol=1e-5,
    )
    tol = dse_bound.violation_tolerance(gamma)
    assert np.all(table["nash_gap"] <= table["bound"] + tol)
    assert np.all(np.abs(table["expert_nash_gap"]) < tol)
    assert np.all(np.abs(table["dominance_violation"]) < tol)
    assert np.all(table["nash_gap"] >= -tol) and np.all(table["eps_bc"] > 0)
    # action-independent games: NashGap/bound <= c (1 - gamma)/(2n - 1) (module docstring)
    ind = results.select(table, family="independent")
    ceiling = dse_bound.independent_ceiling(ind["num_players"], ind["discount"], config.own_weight)
    assert np.all(ind["tightness"] <= ceiling * (1 + 1e-4) + 1e-6)
    # single-controller games: NashGap/bound <= 1/(2n - 1) (jaxmail.games.dominant)
    ctl = table["family"] != "independent"
    assert np.all(table["normalised_gap"][ctl] <= 1 + 1e-4)


@pytest.mark.slow
def test_dse_search_reaches_the_target(dse_table):
    """The issue's target: at n = 2, gamma = 0.9, a certified dominant expert and a near-expert
    policy with NashGap/bound >= 0.1 (the family allows up to 1/3)."""
    config, table = dse_table
    sel = results.select(table, family="adversarial", learner="search", num_players=2, discount=0.9)
    assert len(sel["seed"]) == config.seeds * len(config.radii)
    assert np.nanmax(sel["tightness"]) >= 0.1
    assert np.all(sel["eps_bc"] < sel["radius"])  # near the expert: eps_BC < radius
    # the search's own objective (best responses fixed to the dominant expert) is the certified
    # ratio (exact best responses), to float32 rounding of values of size 1/(1-gamma)
    np.testing.assert_allclose(sel["objective"], sel["tightness"], rtol=1e-3, atol=1e-4)


@pytest.mark.slow
def test_dse_more_data_less_error(dse_table):
    config, table = dse_table
    sizes = config.dataset_sizes
    for family in ("independent", "controlled"):
        for seed in range(config.seeds):
            sel = results.select(table, num_players=2, seed=seed, family=family)
            assert sel["num_trajectories"].tolist() == list(sizes)
            assert np.all(np.diff(sel["num_samples"]) > 0)  # nested datasets (truncate)
        medians = [
            np.median(
                results.select(table, family=family, learner="bc", num_trajectories=s)["eps_bc"]
            )
            for s in sizes
        ]
        assert np.all(np.diff(medians) < 0)


@pytest.mark.slow
def test_dse_seed_is_independent_of_its_chunk(dse_table):
    config, table = dse_table
    seeds = np.array([7, 3, 11, 0, 5, 1, 2, 4])  # another chunk of chunk_size = 8 seeds
    for family in ("controlled", "adversarial"):
        setting = {"num_players": 2, "family": family, "discount": config.discounts[0]}
        columns = dse_bound.run_chunk(config, setting, runner.seed_keys(config.base_seed, seeds))
        for row, seed in enumerate(seeds):
            sel = results.select(table, num_players=2, family=family, seed=int(seed))
            for name in ("eps_bc", "nash_gap", "bound"):
                np.testing.assert_array_equal(columns[name][row], sel[name])


@pytest.mark.slow
def test_dse_findings_follow_the_counts(dse_table):
    config, table = dse_table
    found = dse_bound.findings(config, table)
    assert all(f.held for f in found), [f.verdict() for f in found]
    by_claim = {f.claim: f for f in found}
    identity = [f for f in found if not f.evidence]
    assert len(identity) == 1 and "action-independent" in identity[0].claim
    assert "c(1-gamma)/(2n-1)" in identity[0].why
    search = [f for f in found if "searched near-expert" in f.claim]
    assert len(search) == 1 and search[0].evidence and search[0].margin >= 0.1
    assert len(by_claim) == len(found)


def test_dse_config_checks():
    with pytest.raises(ValueError, match="dataset_sizes"):
        dse_bound.DSEBoundConfig.from_dict({"dataset_sizes": [0, 4]})
    with pytest.raises(ValueError, match="unknown configuration key"):
        dse_bound.DSEBoundConfig.from_dict({"player": [2]})
    with pytest.raises(ValueError, match="families"):
        dse_bound.DSEBoundConfig.from_dict({"families": ["bogus"]})
    with pytest.raises(ValueError, match="radii"):
        dse_bound.DSEBoundConfig.from_dict({"radii": [0.0]})
    assert set(dse_bound.DSEBoundConfig.quick().families) == set(dse_bound.FAMILIES)
    assert dse_bound.DSEBoundConfig().players == (2, 3)
    bound = jm.theory.lemma3_bound(np.float64(0.01), 2, 0.9)
    assert float(bound) == pytest.approx(3 * 0.01 / 0.1**2)
