"""The ``continuity`` experiment: delta(eps) estimates, Lemma 2, dominant strategies, Lemma 4.

One quick run (``ContinuityConfig.quick()``: 3 seeds, gamma = 0.5, S = 9 = Lemma 2's k + 2, so
every family shares ONE compiled program) feeds most tests; compilation dominates its time.
Every expected number is derived beside its assertion.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail.experiments import continuity, families, results, runner

TOL = continuity.COMPARE_TOL  # shifts are occupancy-weighted L1 distances <= 2, in float32

COLUMNS = [
    "family",
    "num_players",
    "tau",
    "seed",
    "kind",
    "player",
    "eps",
    "delta_random",
    "delta_adversarial",
    "delta_rare_state",
    "delta",
    "expert_shift",
    "expert_nash_gap",
    "expert_converged",
    "concentrability",
    "dominance_margin",
    "set_tol",
    "reward_bound",
    "expert_gap_tol",
    "noise_level",
    "bc_entropy",
    "bc_l2",
    "eps_bc",
    "nash_gap",
    "br_shift",
    "delta_paper",
    "delta_held_out",
    "lemma4_safe",
    "lemma4_paper",
    "lemma4_held_out",
    "lemma4_paper_held_out",
    "converged",
]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("continuity")
    config = continuity.ContinuityConfig.quick()
    info = runner.run(continuity.EXPERIMENT, config, out, progress=False)
    return config, results.read_table(out / "results.csv"), out, info


def _lemma2_constants(config):
    """docs/theory.md §4 at the quick parameters: k, d_E(s_exp) = gamma^(k+1), eps_BC = 2 d_E."""
    gamma = config.discount
    k = jm.games.lemma2_chain_length(config.lemma2_epsilon, gamma)
    return gamma, k, 2 * gamma ** (k + 1)


def test_files_columns_and_rows(quick_run):
    config, table, out, info = quick_run
    assert list(table) == COLUMNS
    # Settings: general (n = 2, tau = 0.3), general_nash (n = 2, the homotopy's Nash expert,
    # tau = 0), zero_sum (tau = 0.3), dominant and lemma2 (tau = 0).
    assert [tuple(s.values()) for s in continuity.settings(config)] == [
        ("general", 2, 0.3),
        ("general_nash", 2, 0.0),
        ("zero_sum", 2, 0.3),
        ("dominant", 2, 0.0),
        ("lemma2", 2, 0.0),
    ]
    # Per seed: n E = 2 * 5 delta rows, K = 4 perturbed, L = 2 learned; Lemma 2 adds its
    # hand-made learner. 3 seeds: 3 * (4 * 16 + 17) = 243 rows.
    assert continuity.rows_per_seed(config, "general", 2) == 2 * 5 + 4 + 2 == 16
    assert continuity.rows_per_seed(config, "lemma2", 2) == 17
    assert len(table["seed"]) == info["rows"] == 3 * (4 * 16 + 17) == 243
    kinds, counts = np.unique(table["kind"], return_counts=True)
    assert dict(zip(kinds, counts)) == {
        "delta": 5 * 3 * 10,
        "perturbed": 5 * 3 * 4,
        "learned": 5 * 3 * 2,
        "hand_made": 3,
    }
    assert bool(np.all(table["converged"]))
    # The QRE and exact experts converge; the Nash family's flag is the homotopy's certificate.
    exact = table["family"] != "general_nash"
    assert bool(np.all(table["expert_converged"][exact]))
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# continuity")
    for phrase in ("Lemma 2", "Dominant-strategy", "Lemma 4 (safe form", "## Delta estimates"):
        assert phrase in summary
    assert len(info["figures"]) == 3
    for path in info["figures"]:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    names = {p.name for p in out.glob("*.png")}
    assert names == {"delta_vs_eps.png", "delta_vs_tau.png", "nash_gap_vs_lemma4.png"}


def test_quick_config_shares_one_program():
    config = continuity.ContinuityConfig.quick()
    # Lemma 2 at (eps, gamma) = (0.05, 0.5): k = ceil(log(0.025 * 0.5) / log 0.5) = ceil(6.32)
    # = 7, so its game has k + 2 = 9 states, the quick random families' S: one program.
    assert continuity.lemma2_num_states(config) == 9 == config.num_states
    shared = ("general", "general_nash", "zero_sum", "dominant", "lemma2")
    for family in shared:
        assert continuity.program_families(config, family, 2) == shared
    # The defaults: the paper's gamma = 0.9, k = ceil(log(0.025 * 0.1) / log 0.9) = ceil(56.87)
    # = 57 (docs/theory.md §4), 59 states: Lemma 2 gets its own program, n = 3 another.
    default = continuity.ContinuityConfig()
    assert continuity.lemma2_num_states(default) == 59
    assert continuity.program_families(default, "lemma2", 2) == ("lemma2",)
    assert continuity.program_families(default, "zero_sum", 2) == (
        "general",
        "general_nash",
        "zero_sum",
        "dominant",
    )
    # nash_players = (2,): the homotopy is compiled into the two-player program only.
    assert continuity.program_families(default, "general", 3) == ("general",)
    assert continuity.program_families(default.replace(nash_players=(3,)), "general", 3) == (
        "general",
        "general_nash",
    )


def test_lemma2_delta_is_two_at_the_learners_bc_error(quick_run):
    config, table, _, _ = quick_run
    gamma, k, eps_bc = _lemma2_constants(config)
    assert k == 7 and eps_bc == pytest.approx(2 * 0.5**8)  # 0.0078125
    hand = results.select(table, family="lemma2", kind="hand_made")
    np.testing.assert_allclose(hand["eps_bc"], eps_bc, rtol=1e-5)
    # NashGap(learner) = (gamma - gamma^(k+1)) / (1 - gamma) = (0.5 - 0.5^8) / 0.5 = 0.9922.
    np.testing.assert_allclose(
        hand["nash_gap"], (gamma - gamma ** (k + 1)) / (1 - gamma), rtol=1e-4
    )
    # Player 0 with budget eps may move player 1's mass m <= eps / (2 d_E(s_exp)) = eps / eps_BC
    # to action 0 at s_exp, where player 0 then earns m - (1 - m): for eps >= eps_BC (m = 1)
    # player 0 goes straight to s_exp (action 1 at s0, distance 2; every other state ties, the
    # farthest tie at distance 2): delta = 2 everywhere, the paper's Lemma 2.
    mover = results.select(table, family="lemma2", kind="delta", player=0)
    reach = mover["eps"] >= eps_bc
    assert reach.sum() == 3 * 2  # eps = 0.05 and 0.5 of the grid, 3 seeds
    np.testing.assert_allclose(mover["delta_adversarial"][reach], 2.0, atol=TOL)
    np.testing.assert_allclose(mover["delta"][reach], 2.0, atol=TOL)
    # Below eps_BC / 2 (eps = 0, 0.002: m <= 0.256 < 1/2) player 0 still delays the -1 at
    # s_exp: its shift stays the one against the expert, 2 (1 - d_E(s0)) = 2 gamma = 1.
    low = mover["eps"] < eps_bc / 2
    assert low.sum() == 3 * 2
    np.testing.assert_allclose(mover["delta_adversarial"][low], 2 * gamma, atol=TOL)
    np.testing.assert_allclose(mover["expert_shift"], 2 * gamma, atol=TOL)
    # Player 1's reward at s_exp depends on its own action only, and it is indifferent
    # elsewhere: its shift is 2 (1 - d_E(s_exp)) = 2 (1 - gamma^(k+1)) whatever player 0 does.
    other = results.select(table, family="lemma2", kind="delta", player=1)
    np.testing.assert_allclose(other["delta_adversarial"], 2 * (1 - gamma ** (k + 1)), atol=TOL)
    # Lemma 4 on the hand-made learner with delta(eps_BC) = 2: (3 eps_BC + 2) / (1 - gamma)^2
    # = (3 * 0.0078125 + 2) / 0.25 = 8.09 >= 0.992.
    np.testing.assert_allclose(hand["delta"], 2.0, atol=TOL)
    np.testing.assert_allclose(hand["lemma4_safe"], (3 * eps_bc + 2) / 0.25, rtol=1e-5)


def test_adversarial_and_random_estimates(quick_run):
    _, table, _, _ = quick_run
    deltas = results.select(table, kind="delta")
    assert not np.any(np.isnan(deltas["delta_random"]))  # the expert anchors the envelope
    assert not np.any(np.isnan(deltas["delta_adversarial"]))
    # Both are shifts attained by admissible deviations: in [expert_shift, 2] (the expert,
    # at cost 0, is a candidate of both; the rare-state part is one of the adversarial's).
    for name in ("delta_random", "delta_adversarial"):
        assert np.all(deltas[name] >= deltas["expert_shift"] - TOL)
        assert np.all(deltas[name] <= 2 + TOL)
    assert np.all(deltas["delta_adversarial"] >= deltas["delta_rare_state"] - TOL)
    # At eps = 0 only the expert fits both searches (mu0 is uniform for the random families
    # and Lemma 2's expert visits every state, so no state is free): both = expert_shift.
    zero = deltas["eps"] == 0
    np.testing.assert_allclose(deltas["delta_random"][zero], deltas["expert_shift"][zero], atol=TOL)
    np.testing.assert_allclose(
        deltas["delta_adversarial"][zero], deltas["expert_shift"][zero], atol=TOL
    )
    # adversarial >= random is not a theorem (two different families of deviations, both
    # lower estimates): the perturbations move every state at once, the attacks one state at a
    # time plus budget-fitted random mixtures, and either may find more. Where the attack
    # reaches the largest possible shift it must win: Lemma 2 (2, or player 1's constant
    # shift) and strict dominance (0 everywhere). Elsewhere it wins on most points (all of
    # this run's; 7997 of 8000 in a default run); `delta` takes the larger of the two.
    wins = deltas["delta_adversarial"] >= deltas["delta_random"] - TOL
    strict = deltas["dominance_margin"] > 2 * deltas["set_tol"]  # NaN (False) off "dominant"
    assert np.all(wins[(deltas["family"] == "lemma2") | strict])
    assert wins.mean() >= 0.9
    np.testing.assert_array_equal(
        deltas["delta"], np.maximum(deltas["delta_random"], deltas["delta_adversarial"])
    )
    # The grid and the budgets: every player's E budgets per seed, monotone (delta is
    # non-decreasing in eps, and so is the envelope by construction).
    for key in {(f, s, p) for f, s, p in zip(deltas["family"], deltas["seed"], deltas["player"])}:
        sel = results.select(deltas, family=key[0], seed=key[1], player=key[2])
        assert sel["eps"].tolist() == sorted(sel["eps"].tolist())
        assert np.all(np.diff(sel["delta_random"]) >= 0)


def test_max_over_players(quick_run):
    _, table, _, _ = quick_run
    game_level = continuity.max_over_players(table)
    assert len(game_level["kind"]) == 5 * 3 * 5  # settings x seeds x budgets
    sel = results.select(game_level, family="lemma2", seed=0, eps=0.0)
    # Lemma 2 at eps = 0: max(player 0's 2 gamma = 1, player 1's 2 (1 - 0.5^8) = 1.992).
    assert float(sel["delta"][0]) == pytest.approx(2 * (1 - 0.5**8), abs=TOL)


def test_dominant_strategy_delta_is_zero(quick_run):
    config, table, _, _ = quick_run
    dom = results.select(table, family="dominant")
    # Q_i(s, a) - Q_i(s, a') = u_i(s, a) - u_i(s, a') against anything (transitions ignore
    # actions, w_i ignores a_i): with a margin above the BR-set tolerance the dominant action
    # is every player's unique best response, so every shift, hence delta, is exactly 0.
    strict = dom["dominance_margin"] > 2 * dom["set_tol"]
    assert strict.any(), "no strictly dominant game among the quick seeds"
    for name in ("delta_random", "delta_adversarial", "expert_shift", "br_shift"):
        values = dom[name][strict]
        assert np.all(values[~np.isnan(values)] == 0.0), name
    assert np.all(np.abs(dom["expert_nash_gap"]) < 1e-4)  # dominant: an exact equilibrium
    # Nobody steers (action-independent transitions): every occupancy ratio is 1.
    np.testing.assert_allclose(dom["concentrability"], 1.0, atol=1e-4)
    # With delta = 0, Lemma 4 is Lemma 3: (2n - 1) eps_BC / (1 - gamma)^2.
    pol = results.select(dom, kind="perturbed")
    pol = {k: v[pol["dominance_margin"] > 2 * pol["set_tol"]] for k, v in pol.items()}
    lemma3 = np.asarray(
        jm.theory.lemma3_bound(pol["eps_bc"], 2, config.discount, reward_bound=pol["reward_bound"])
    )
    np.testing.assert_allclose(pol["lemma4_safe"], lemma3, rtol=1e-5)


def test_lemma4_columns_and_validity(quick_run):
    config, table, _, _ = quick_run
    policies = {k: v[np.isin(table["kind"], continuity.POLICY_KINDS)] for k, v in table.items()}
    n, gamma = policies["num_players"], config.discount
    assert np.all(policies["player"] == -1)
    # n = 2: the safe argument (n - 1) eps_BC is eps_BC, so the two forms coincide.
    np.testing.assert_allclose(policies["eps"], (n - 1) * policies["eps_bc"], rtol=1e-6)
    np.testing.assert_array_equal(policies["delta_paper"], policies["delta"])
    np.testing.assert_array_equal(policies["lemma4_paper"], policies["lemma4_safe"])
    r_max = policies["reward_bound"]  # every bound scales with max |R|
    expected = r_max * ((2 * n - 1) * policies["eps_bc"] + policies["delta"]) / (1 - gamma) ** 2
    np.testing.assert_allclose(policies["lemma4_safe"], expected, rtol=1e-5)
    held = (
        r_max * ((2 * n - 1) * policies["eps_bc"] + policies["delta_held_out"]) / (1 - gamma) ** 2
    )
    np.testing.assert_allclose(policies["lemma4_held_out"], held, rtol=1e-5)
    # The held-out delta leaves the row's own policy out of the random envelope, so it is at
    # most the in-sample one and at least the adversarial estimate (which never sees the row).
    assert np.all(policies["delta_held_out"] <= policies["delta"] + 1e-7)
    assert np.all(policies["delta_held_out"] >= policies["delta_adversarial"] - 1e-7)
    learned = policies["kind"] != "perturbed"  # not in the random envelope: no difference
    np.testing.assert_array_equal(policies["delta_held_out"][learned], policies["delta"][learned])
    # Lemma 4 with an estimated (lower) delta: holding means the estimate was large enough.
    slack = continuity.violation_tolerance(gamma)
    assert np.all(policies["nash_gap"] <= policies["lemma4_safe"] + slack)
    # Perturbation level 0 is the expert itself: eps_BC = 0 and its own NashGap.
    zero = policies["noise_level"] == 0
    np.testing.assert_array_equal(policies["eps_bc"][zero], 0.0)
    np.testing.assert_allclose(
        policies["nash_gap"][zero], policies["expert_nash_gap"][zero], atol=1e-5
    )
    learned = results.select(policies, kind="learned")
    pairs = set(zip(learned["bc_entropy"], learned["bc_l2"]))
    assert sorted(pairs) == sorted(zip(config.bc_entropy, config.bc_l2))


def test_same_seed_same_numbers(quick_run):
    config, table, _, _ = quick_run
    setting = {"family": "general", "num_players": 2, "tau": 0.3}
    seeds = np.array([2, 0, 1])  # another chunk (same size: the compiled program is reused)
    columns = continuity.run_chunk(config, setting, runner.seed_keys(config.base_seed, seeds))
    for row, seed in enumerate(seeds):
        sel = results.select(table, family="general", seed=int(seed))
        for name in ("delta_random", "delta_adversarial", "eps_bc", "nash_gap", "lemma4_safe"):
            np.testing.assert_array_equal(
                np.asarray(columns[name][row], np.float32), sel[name].astype(np.float32), name
            )


def test_rotation_and_joint_deviation():
    # A 3-player game with distinct entries: relabelling (1, 2, 0) makes player 1 player 0.
    rng = np.random.default_rng(0)
    S, A = 2, 2
    transition = rng.dirichlet(np.ones(S), size=(S, A, A, A))
    reward = rng.uniform(-1, 1, size=(3, S, A, A, A))
    game = jm.MarkovGame(transition=transition, reward=reward, initial=np.ones(S) / S, discount=0.9)
    policy = tuple(jnp.asarray(rng.dirichlet(np.ones(A), size=S), jnp.float32) for _ in range(3))
    rotated, rpolicy = families.rotate_players(game, policy, 1)
    # new player j is old player (1 + j) mod 3: R'[0][s, b0, b1, b2] = R[1][s, b2, b0, b1].
    np.testing.assert_allclose(rotated.reward[0], np.transpose(reward[1], (0, 2, 3, 1)), rtol=1e-6)
    np.testing.assert_allclose(
        rotated.transition, np.transpose(transition, (0, 2, 3, 1, 4)), rtol=1e-6
    )
    assert rpolicy[0] is policy[1] and rpolicy[2] is policy[0]
    # Unequal action counts cannot share a shape once rotated: refused, naming them.
    uneven = jm.MarkovGame(
        transition=np.ones((S, 2, 3, S)) / S,
        reward=np.zeros((2, S, 2, 3)),
        initial=[1, 0],
        discount=0.9,
    )
    with pytest.raises(ValueError, match=r"equal action counts, got \(2, 3\)"):
        families.rotate_players(uneven, policy[:2], 1)
    # The others' joint deviation against a brute-force product distribution.
    expert = tuple(jnp.asarray(rng.dirichlet(np.ones(A), size=S), jnp.float32) for _ in range(3))
    d = jnp.asarray([0.3, 0.7], jnp.float32)
    errors = jnp.zeros(3)
    dev = np.asarray(continuity._others_deviation(policy, expert, d, errors))
    for i in range(3):
        j, k = [m for m in range(3) if m != i]
        joint = np.einsum("sa,sb->sab", policy[j], policy[k])
        joint_e = np.einsum("sa,sb->sab", expert[j], expert[k])
        want = np.abs(joint - joint_e).reshape(S, -1).sum(-1) @ np.asarray(d)
        assert dev[i] == pytest.approx(want, rel=1e-5)
        # The product-distance lemma: at most the sum of the two players' own distances.
        own = [np.abs(np.asarray(policy[m]) - np.asarray(expert[m])).sum(-1) @ d for m in (j, k)]
        assert dev[i] <= sum(own) + 1e-6


def test_config_checks():
    config_type = continuity.ContinuityConfig
    with pytest.raises(ValueError, match=r"families\[0\]: expected one of \[.*\], got 'tag'"):
        config_type.from_dict({"families": ["tag"]})
    with pytest.raises(ValueError, match="temperatures"):
        config_type.from_dict({"temperatures": [0.0]})
    with pytest.raises(ValueError, match="bc_entropy, bc_l2"):
        config_type.from_dict({"bc_entropy": [0.0, 0.1], "bc_l2": [0.0]})
    with pytest.raises(ValueError, match="noise_levels"):
        config_type.from_dict({"noise_levels": [1.5]})
    with pytest.raises(ValueError, match="general_players"):
        config_type.from_dict({"general_players": [1]})
    with pytest.raises(ValueError, match=r"nash_players\[0\]: expected an int >= 2, got 1"):
        config_type.from_dict({"nash_players": [1]})
    with pytest.raises(ValueError, match="nash_gap_tol: expected a number > 0 or null"):
        config_type.from_dict({"nash_gap_tol": -1e-3})
    assert config_type().discount == 0.9 and config_type.quick().discount == 0.5
    assert continuity.summary_epsilons(config_type.quick()) == [0.002, 0.05, 0.5]
    assert math.isclose(continuity.violation_tolerance(0.5), 2e-4)


def _break(table, **columns):
    out = {k: np.array(v, copy=True) for k, v in table.items()}
    for name, fn in columns.items():
        out[name] = fn(out)
    return out


def test_findings_kinds(quick_run):
    config, table, _, _ = quick_run
    found = continuity.findings(config, table)
    assert [(f.evidence, f.in_sample) for f in found] == [
        (True, False),  # Lemma 4 held out, live rows
        (False, False),  # held out, bound above the ceiling
        (True, False),  # paper form, n > 2 (untested in the quick run: n = 2 only)
        (False, False),  # dominant-strategy rows
        (False, True),  # in-sample rows
        (True, False),  # Lemma 2 bracket
        (True, False),  # strictly dominant delta = 0
        (True, False),  # Lemma 4 held out, certified Nash experts
        (True, False),  # the count of certified Nash experts
    ]
    classes = continuity.lemma4_row_classes(config, table)
    # Every policy row is the expert, a dominant-strategy row, or held out (live or vacuous).
    assert found[0].checked + found[1].checked == int(classes["held_out"].sum())
    assert found[0].checked > 0 and found[2].checked == 0
    # Policy rows that are the expert: the 5 families x 3 seeds, at noise level 0.
    assert int(classes["expert"].sum()) == 5 * 3


def test_lemma4_finding_fails_with_a_too_small_delta(quick_run):
    """A genuine failure: delta replaced by 0 (Lemma 3's bound) on games without dominance."""
    config, table, _, _ = quick_run
    gamma = config.discount
    bad = _break(
        table,
        lemma4_held_out=lambda t: (
            np.asarray(jm.theory.lemma4_bound(t["eps_bc"], 0.0, t["num_players"], gamma))
            * t["reward_bound"]
        ),
    )
    found = continuity.findings(config, bad)
    assert found[0].violations > 0 and found[0].status == "failed"
    summary = continuity.summarize(config, bad, "")
    assert "FAILED on" in summary and "delta estimate is too low" in summary


def test_findings_fail_on_violating_rows(quick_run):
    config, table, _, _ = quick_run
    policy = np.isin(table["kind"], continuity.POLICY_KINDS)
    # The paper's form on n > 2: rows relabelled n = 3 with a bound of 0.
    bad = _break(
        table,
        num_players=lambda t: np.where(t["family"] == "general", 3, t["num_players"]),
        lemma4_paper_held_out=lambda t: np.where(policy, 0.0, np.nan),
    )
    found = continuity.findings(config, bad)
    assert found[2].checked > 0 and found[2].violations > 0
    # Lemma 2: a search that missed the attack reports the expert's own shift 2 gamma = 1.
    lemma2 = (table["family"] == "lemma2") & (table["kind"] == "delta")
    bad = _break(table, delta_adversarial=lambda t: np.where(lemma2, 1.0, t["delta_adversarial"]))
    assert continuity.findings(config, bad)[5].status == "failed"
    # Strict dominance with a nonzero delta estimate.
    dom = table["family"] == "dominant"
    bad = _break(table, delta=lambda t: np.where(dom, 0.5, t["delta"]))
    assert continuity.findings(config, bad)[6].status == "failed"


def test_nash_experts_are_certified_and_lemma4_holds(quick_run):
    config, table, _, _ = quick_run
    nash = results.select(table, family="general_nash")
    # The solver's default tolerance (jaxmail.tolerances.nash_gap_zero_tol) in float32 at gamma =
    # 0.5: 1000 eps max(1, r_max) / (1 - gamma), eps = 2^-23, r_max <= 1 (rewards U[-1, 1]):
    # 1000 * 2^-23 / 0.5 = 2.384e-4. NaN for every other family.
    np.testing.assert_allclose(nash["expert_gap_tol"], 1000 * 2.0**-23 / 0.5, rtol=1e-6)
    assert np.all(np.isnan(table["expert_gap_tol"][table["family"] != "general_nash"]))
    cert = continuity.certification(table, "general_nash")
    assert cert.seeds.tolist() == [0, 1, 2]
    # Tiny games (S = 9, branching 2, A = 2, n = 2, gamma = 0.5): most are certified; at least
    # one here, each within gap_tol (+ float32 rounding of values of size 1/(1-gamma) = 2: 1e-6).
    assert cert.certified.sum() >= 1
    assert np.all(cert.nash_gap[cert.certified] <= cert.gap_tol[cert.certified] + 1e-6)
    found = continuity.findings(config, table)
    lemma4, count = found[7], found[8]
    assert lemma4.claim.startswith("Lemma 4 (safe form), held out, for certified general-sum Nash")
    assert (count.checked, count.violations) == (3, 3 - int(cert.certified.sum()))
    # Lemma 4's rows: the certified games' non-expert policy rows (K - 1 = 3 perturbed and
    # L = 2 learned per seed) whose held-out bound is below the ceiling 2/(1-gamma) = 4.
    classes = continuity.lemma4_row_classes(config, table)
    pol = classes["rows"]
    kept = np.isin(pol["seed"], cert.seeds[cert.certified]) & (pol["family"] == "general_nash")
    assert int(np.sum(classes["nash"] & kept)) == 5 * int(cert.certified.sum())
    assert lemma4.checked == int(np.sum(classes["nash_live"] & kept))
    assert lemma4.status in ("held", "untested") and lemma4.violations == 0
    summary = continuity.summarize(config, table, "")
    assert f"{int(cert.certified.sum())} of 3 Nash experts certified" in summary
    assert "certified, not assumed" in summary
    # The finding can fail: a bound of 0 on every row makes every certified row live, and the
    # perturbed and learned policies of a Nash expert are not all equilibria (the noise level
    # 0.5 mixes half uniform noise into the expert), so some NashGap exceeds the allowance
    # 1e-4/(1-gamma) + the expert's certified NashGap (<= 2.4e-4 + 2e-4).
    bad = _break(table, lemma4_held_out=lambda t: np.zeros_like(t["lemma4_held_out"]))
    again = continuity.findings(config, bad)[7]
    assert again.checked == 5 * int(cert.certified.sum())
    assert again.status == "failed" and again.violations > 0


def test_uncertified_nash_expert_is_excluded_and_counted(quick_run):
    config, table, _, _ = quick_run
    # End temperature 1e3 max|R| (an array leaf: the same compiled program): the path stops at
    # lambda max|R| = 1e-3, where the QRE is within ~1e-3 of the uniform policy, whose NashGap
    # in these random games is far above gap_tol = 2.4e-4. No expert is certified.
    setting = {"family": "general_nash", "num_players": 2, "tau": 0.0}
    seeds = np.arange(config.seeds)
    stop = config.replace(nash_end_temperature=1e3)
    columns = continuity.run_chunk(stop, setting, runner.seed_keys(config.base_seed, seeds))
    assert not np.any(columns["expert_converged"])
    assert np.all(columns["expert_nash_gap"] > columns["expert_gap_tol"])
    broken = {k: np.array(v, copy=True) for k, v in table.items()}
    for row, seed in enumerate(seeds):
        at = (table["family"] == "general_nash") & (table["seed"] == seed)
        for name in ("expert_converged", "expert_nash_gap"):
            broken[name][at] = columns[name][row, 0]
    found = continuity.findings(config, broken)
    lemma4, count = found[7], found[8]
    assert (count.checked, count.violations, count.status) == (3, 3, "failed")
    assert lemma4.checked == 0 and "3 uncertified experts are left out" in lemma4.why
    # The other findings never see those rows: the expert rows are the other 4 families'.
    kept = continuity.certified_rows(broken, "general_nash")
    classes = continuity.lemma4_row_classes(config, kept)
    assert int(classes["expert"].sum()) == 4 * 3
    summary = continuity.summarize(config, broken, "")
    assert "0 of 3 Nash experts certified" in summary and "the 3 uncertified ones" in summary
    assert "| general_nash |" not in summary  # no table row


def test_findings_without_lemma2_or_dominant_rows(quick_run):
    # A run of some families only (--set families=general_nash,zero_sum): the Lemma 2 and
    # dominance brackets have no row and are untested (an empty row set once crashed here).
    config, table, _, _ = quick_run
    keep = np.isin(table["family"], ["general_nash", "zero_sum"])
    subset = {k: v[keep] for k, v in table.items()}
    found = continuity.findings(config.replace(families=("general_nash", "zero_sum")), subset)
    assert [found[5].status, found[6].status] == ["untested", "untested"]
    assert found[8].checked == 3  # the Nash experts are still counted
