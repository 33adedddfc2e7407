"""Lemma 3 where it can be tight: jaxmail.games.dominant, jaxmail.tightness and the findings of
``dse-bound``, each shown able to fail."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail import tightness
from jaxmail.equilibria import dominance_violation
from jaxmail.experiments import dse_bound
from jaxmail.experiments.results import violation_tolerance
from jaxmail.games import dominant

GAMMA = 0.9


def _absorbing_game(m: float):
    """Two players; only player 0 moves the state. State G (0): action 0 stays, reward +1;
    action 1 goes to B, reward -1. State B (1): absorbing, reward -1. Player 1's reward is 0.
    mu0 = G. Expert: action 0 everywhere (dominant: player 0 faces an MDP whose optimal policy
    stays in G; player 1 is indifferent). Learner: player 0 plays action 1 at G with
    probability m."""
    p = np.zeros((2, 2, 2, 2))
    p[0, 0, :, 0] = 1.0
    p[0, 1, :, 1] = 1.0
    p[1, :, :, 1] = 1.0
    r = np.zeros((2, 2, 2, 2))
    r[0, 0, 0, :] = 1.0
    r[0, 0, 1, :] = -1.0
    r[0, 1, :, :] = -1.0
    game = jm.MarkovGame(transition=p, reward=r, initial=np.array([1.0, 0.0]), discount=GAMMA)
    expert = tuple(jnp.asarray(np.eye(2)[[0, 0]], game.dtype) for _ in range(2))
    learner = (jnp.asarray([[1 - m, m], [1.0, 0.0]], game.dtype), expert[1])
    return game, expert, learner


def test_lemma3_check_on_a_game_with_a_closed_form():
    m = 0.01
    game, expert, learner = _absorbing_game(m)
    check = tightness.lemma3_check(game, expert, learner)
    # eps_BC = d^E(G) ||pi_0(G) - e_0||_1 = 1 * 2m (the expert never leaves G).
    assert float(check.bc_error) == pytest.approx(2 * m, rel=1e-5)
    # V^pi(G) = (1-m) (1 + gamma V^pi(G)) + m (-1 - gamma/(1-gamma)), so
    # V^pi(G) = ((1-m) - m/(1-gamma)) / (1 - gamma + gamma m); V^E(G) = 1/(1-gamma).
    v_pi = ((1 - m) - m / (1 - GAMMA)) / (1 - GAMMA + GAMMA * m)
    gap = 1 / (1 - GAMMA) - v_pi  # 1.83486...; player 1 gains nothing
    assert float(check.nash_gap) == pytest.approx(gap, rel=1e-4)
    bound = 3 * 1.0 * 2 * m / (1 - GAMMA) ** 2  # (2n - 1) r_max eps_BC / (1-gamma)^2 = 6
    assert float(check.reward_bound) == 1.0
    assert float(check.bound) == pytest.approx(bound, rel=1e-5)
    assert float(check.tightness) == pytest.approx(gap / bound, rel=1e-4)  # 0.3058
    # the family's own bound r_max eps_BC/(1-gamma)^2 = 2 is nearly reached (first order: 1)
    assert float(dominant.family_bound(check.bc_error, GAMMA)) == pytest.approx(2.0, rel=1e-5)
    assert 0.9 < gap / 2.0 <= 1.0
    # the expert is dominant (exact over deterministic opponents; the controller is player 0)
    violation = dominance_violation(game, expert, method="exact")
    assert np.all(np.abs(np.asarray(violation)) < violation_tolerance(GAMMA))


def test_lemma3_check_fails_on_a_non_dominant_expert():
    """The same check on the Lemma 2 game (action-dependent transitions, an expert that is an
    equilibrium but not dominant): the inequality is violated, by far."""
    cx = jm.games.lemma2_game(0.05, GAMMA)
    check = tightness.lemma3_check(cx.game, cx.expert, cx.learner)
    # eps_BC = 2 mu_E(s_exp) = 0.00444, NashGap = 8.978 (jaxmail.games.lemma2_game), bound =
    # 3 * 0.00444 / 0.01 = 1.33: the ratio is about 6.7.
    assert float(check.bc_error) == pytest.approx(0.00444, rel=1e-2)
    assert float(check.nash_gap) == pytest.approx(8.978, rel=1e-3)
    assert float(check.tightness) > 6
    # its expert is not dominant: some opponent makes player 0 regret action 0 (sampled lower
    # bound on the violation, from 16 random opponents)
    violation = dominance_violation(
        cx.game, cx.expert, method="sampled", key=jax.random.key(0), num_samples=16
    )
    assert float(jnp.max(violation)) > 1.0
    # ... and the experiment's findings count it as a violation
    table = _table([("controlled", "bc", check, float(jnp.max(violation)), 0.0)])
    found = {f.claim: f for f in dse_bound.findings(_CONFIG, table)}
    lemma3 = next(f for c, f in found.items() if "random single-controller" in c)
    assert lemma3.status == "failed" and lemma3.violations == 1 and lemma3.margin > 6
    dominance = next(f for c, f in found.items() if "dominant" in c and "single-controller" in c)
    assert dominance.status == "failed"


# ----------------------------------------------------------------------------------------------
# findings() on hand-made tables: every evidence finding can fail.

_CONFIG = dse_bound.DSEBoundConfig(families=dse_bound.FAMILIES)


def _table(rows):
    """A results table from ``(family, learner, check, dominance, expert_gap)`` rows at n = 2,
    gamma = 0.9 (the columns ``findings`` reads)."""
    cols = {
        k: []
        for k in (
            "num_players",
            "family",
            "discount",
            "learner",
            "eps_bc",
            "nash_gap",
            "reward_bound",
            "bound",
            "dominance_violation",
            "expert_nash_gap",
            "new_game",
        )
    }
    for family, learner, check, dominance, expert_gap in rows:
        for k, v in (
            ("num_players", 2),
            ("family", family),
            ("discount", GAMMA),
            ("learner", learner),
            ("eps_bc", float(check.bc_error)),
            ("nash_gap", float(check.nash_gap)),
            ("reward_bound", float(check.reward_bound)),
            ("bound", float(check.bound)),
            ("dominance_violation", dominance),
            ("expert_nash_gap", expert_gap),
            ("new_game", True),
        ):
            cols[k].append(v)
    return {
        k: np.asarray(v, dtype=object if k in ("family", "learner") else None)
        for k, v in cols.items()
    }


class _Row:
    def __init__(self, eps, gap, r_max=1.0):
        self.bc_error, self.nash_gap, self.reward_bound = eps, gap, r_max
        self.bound = 3 * r_max * eps / (1 - GAMMA) ** 2


def test_findings_hold_on_good_rows():
    rows = [
        (f, lr, _Row(0.01, 0.5), 0.0, 0.0)  # ratio 0.5 / 3 = 0.167; family bound 1: ratio 0.5
        for f, lr in (
            ("independent", "bc"),
            ("controlled", "bc"),
            ("adversarial", "search"),
            ("adversarial", "bc"),
        )
    ]
    found = dse_bound.findings(_CONFIG, _table(rows))
    assert len(found) == 8 and all(f.held for f in found)
    assert [f.evidence for f in found].count(False) == 1  # the action-independent Lemma 3 check
    lemma3 = [f for f in found if "Lemma 3 bound" in f.claim]
    # margin = NashGap / (bound + rounding allowance): 0.5 / (3 + 1e-4 / (1 - gamma)).
    allowance = 1e-4 / (1 - GAMMA)
    assert all(f.margin == pytest.approx(0.5 / (3 + allowance)) for f in lemma3)


@pytest.mark.parametrize(
    "family, learner", [("controlled", "bc"), ("adversarial", "search"), ("adversarial", "bc")]
)
def test_each_lemma3_finding_can_fail(family, learner):
    good = _Row(0.01, 0.5)
    bad = _Row(0.01, 4.0)  # NashGap 4 > bound 3: breaks Lemma 3 and the family bound (1)
    rows = [(f, lr, good, 0.0, 0.0) for f, lr in (("controlled", "bc"), ("adversarial", "search"))]
    rows.append((family, learner, bad, 0.0, 0.0))
    found = dse_bound.findings(_CONFIG, _table(rows))
    failed = [f for f in found if f.status == "failed"]
    assert len(failed) == 2 and all(f.violations == 1 for f in failed)
    assert any("family's bound" in f.claim for f in failed)
    assert any(f.claim.startswith("NashGap <= Lemma 3") for f in failed)
    assert all("FAILED on 1 of" in f.verdict() for f in failed)


def test_family_bound_finding_can_fail_alone():
    # 1 < NashGap/family bound: ratio 2 (> 1) while Lemma 3's ratio is 2/3 (< 1)
    rows = [("controlled", "bc", _Row(0.01, 2.0), 0.0, 0.0)]
    found = dse_bound.findings(_CONFIG, _table(rows))
    failed = [f.claim for f in found if f.status == "failed"]
    assert len(failed) == 1 and "family's bound" in failed[0]


@pytest.mark.parametrize("column", ["dominance", "expert_gap"])
def test_certificate_findings_can_fail(column):
    tol = float(violation_tolerance(GAMMA))
    bad = {"dominance": (2 * tol, 0.0), "expert_gap": (0.0, 2 * tol)}[column]
    rows = [
        ("controlled", "bc", _Row(0.01, 0.5), *bad),
        ("independent", "bc", _Row(0.01, 0.01), *bad),
    ]
    found = dse_bound.findings(_CONFIG, _table(rows))
    failed = [f for f in found if f.status == "failed"]
    if column == "dominance":
        assert len(failed) == 2 and all("dominant: dominance" in f.claim for f in failed)
    else:
        assert len(failed) == 1 and "expert's NashGap" in failed[0].claim
        assert failed[0].violations == 2


# ----------------------------------------------------------------------------------------------
# jaxmail.games.dominant


@pytest.mark.slow
def test_controlled_game_is_in_the_family_and_its_expert_is_dominant():
    key = jax.random.key(3)
    params = dominant.random_controlled_params(key, num_states=3, num_actions=(2, 3), scale=2.0)
    dse = dominant.controlled_game(params, discount=GAMMA, own_weight=0.5)
    game = dse.game
    assert game.transition.shape == (3, 2, 3, 3) and game.reward.shape == (2, 3, 2, 3)
    assert bool(dse.converged)
    # only the controller (player 0) moves the state; its reward ignores player 1
    p = np.asarray(game.transition)
    np.testing.assert_array_equal(p, np.broadcast_to(p[:, :, :1], p.shape))
    r0 = np.asarray(game.reward[0])
    np.testing.assert_array_equal(r0, np.broadcast_to(r0[:, :, :1], r0.shape))
    assert float(jnp.max(jnp.abs(game.reward))) < 1.0
    violation = dominance_violation(game, dse.expert, method="exact")
    assert np.all(np.abs(np.asarray(violation)) < violation_tolerance(GAMMA))


def test_controlled_game_bad_params():
    params = dominant.random_controlled_params(jax.random.key(0), num_states=3, num_actions=(2, 2))
    with pytest.raises(ValueError, match=r"params.transition: expected \[S, A_c, S\]"):
        dominant.controlled_game(params._replace(transition=params.transition[:, :1]), discount=0.9)
    with pytest.raises(ValueError, match=r"params.own\[1\]"):
        dominant.controlled_game(
            params._replace(own=(params.own[0], params.own[1][:2])), discount=0.9
        )
    with pytest.raises(ValueError, match="discount: must lie in"):
        dominant.controlled_game(params, discount=1.0)
    with pytest.raises(ValueError, match="controller: 2 is out of range"):
        dominant.controlled_game(params, discount=0.9, controller=2)


def test_near_expert_policy_stays_within_the_radius():
    expert = (jnp.eye(3)[jnp.array([0, 2])],)
    w = (jnp.array([5.0, -5.0]),)
    z = (jnp.array([[0.0, 3.0, 0.0], [9.0, 0.0, 0.0]]),)
    (pi,) = tightness.near_expert_policy(expert, w, z, radius=0.2)
    np.testing.assert_allclose(np.sum(pi, axis=-1), 1.0, rtol=1e-6)
    distance = np.sum(np.abs(np.asarray(pi - expert[0])), axis=-1)
    assert np.all(distance < 0.2) and distance[0] > 0.15  # sigmoid(5) ~ 0.993 of the radius
    with pytest.raises(ValueError, match="one array per player"):
        tightness.near_expert_policy(expert, w + w, z, radius=0.2)
