"""The other hot kernels against their floors and their peers: speed table.

One row per kernel and size (``S`` states, ``n`` players, ``A`` actions each), on a batch of
``batch`` random games (``tests/reference.py``: Dirichlet(1) transition rows, rewards in
[-1, 1], discount ``--discount``), every kernel batched with ``jax.jit(jax.vmap(...))``. Every
time is the minimum over ``--repeats`` runs of the compiled batch, divided by the batch (CPU
time of this process with ``--clock cpu``, the default on a CPU; wall time with
``--clock wall``, the default on a GPU, where CPU time does not see the device's work), and
all times of a row are measured in the same run on the same batch. Compilation is timed apart
(``compile s``, wall clock, the kernel's program(s) only).

Kernels and the unit a row times:

* ``solve_mdp``: one whole ``jm.solve_mdp`` (policy iteration) per MDP, ``[S, A, S]`` MDPs.
* ``soft_nash_vi``: ONE outer iteration of ``jm.equilibria.soft_nash_vi`` (two-player
  zero-sum games, temperature 0.1) with ``--inner-steps`` steps of its per-state matrix-game
  solver (``inner_tol = 0``, ``inner_max_iters = --inner-steps``).
* ``logit_qre``: ONE iteration of ``jm.equilibria.logit_qre`` (temperature 1.0, its default
  ``method="extragradient"``: two exact evaluations per iteration).
* ``gradient BC``: ONE gradient step of ``jm.imitation.gradient_behavior_cloning``
  (optax adam on the logits), on a dataset of 100 geometric-length demonstrations (cap 50) of
  a random policy per game.
* ``measure matching``: ONE step of ``jm.imitation.measure_matching`` (joint state-action
  measure, KL, default adam), towards a random expert policy's exact measure.

One iteration (step) is timed as a difference: the kernel is compiled with a cap of ``k1``
and of ``k2`` iterations, the tolerance set to 0 so that the cap is reached, and
``(t(k2) - t(k1)) / (k2 - k1)`` is the time of one iteration; what runs once per call (the
start, the certificates of the equilibrium solvers, counting the data) cancels.

Floors, each timed alone on the same batch, written with JAX primitives (``lax.linalg.lu``,
``lax.linalg.triangular_solve``, one ``einsum`` or matrix product), so that they do not move
with the library's version. "A read of P" is one contraction that touches every entry of the
transition tensor once.

* ``solve_mdp``: one exact policy evaluation and improvement: one LU factorisation of the
  ``S x S`` matrix ``(I - gamma P_sigma)^T``, one pair of triangular solves, one read of ``P``
  (``Q = r + gamma P V``). Policy iteration needs at least one such evaluation (even from an
  optimal start); ``x floor`` is therefore about the evaluations' worth that it spends.
* ``soft_nash_vi``: one read of ``P``, ``Q = R_0 + gamma P V`` (``tensordot`` of the
  ``[S, A, A, S]`` tensor with the value vector). The inner matrix-game steps (``O(S A^2)``
  each, ``S`` times less than a read of ``P``) are not in the floor.
* ``logit_qre``: two exact evaluations, each one LU factorisation, one pair of triangular
  solves with ``n`` right-hand sides (every player's values), and two reads of ``P`` (the
  joint ``P_pi`` from the joint policy, and every player's joint-action ``Q`` from ``P V``).
* ``gradient BC``: one logit update: the closed-form gradient of the cross entropy,
  ``(c(s) / C) (softmax(theta(s)) - y(s))`` for every player, and one ``optax.adam(0.1)``
  update, in a ``lax.scan`` timed by the same difference as the kernel (the pass over the
  data, counting, is done once per fit by the library and cancels in the difference).
* ``measure matching``: one occupancy solve and its adjoint: one LU factorisation, one
  forward and one transposed pair of triangular solves, and two reads of ``P`` (``P_pi``, and
  the adjoint contraction ``P u`` of the gradient).

Peers, where one exists:

* ``NumPy``: for ``solve_mdp``, ``tests/reference.py::nash_gap_policy_iteration`` on the MDP
  as a one-player game (exact policy iteration with ``np.linalg.solve``; it also evaluates the
  start policy once more than ``solve_mdp`` does), game by game, on ``--numpy-games`` MDPs.
  ``x NumPy`` is NumPy's time over jaxmail's (above 1: jaxmail faster).
* ``jaxdp``: for ``solve_mdp``, ``jaxdp.PolicyIteration`` (PyPI ``jaxdp``, optional; ``-``
  when it is not installed) iterated in a ``lax.while_loop`` from the same start (greedy on the
  rewards) until the policy stops changing, batched the same way. ``x jaxdp`` is jaxdp's time
  over jaxmail's.

Every solve_mdp row checks the values against both peers (a warning line says if they
disagree by more than ``1e-8 / (1 - gamma)`` in float64, ``1e-3 / (1 - gamma)`` in float32).

Usage::

    python benchmarks/kernels.py                   # the default grid (about 3 CPU minutes)
    python benchmarks/kernels.py --quick           # S = 16 only, fewer repeats
    python benchmarks/kernels.py --kernels solve_mdp --mdp-states 16 64 256 --batch 64
"""

from __future__ import annotations

import argparse
import os
import sys
import time

_ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "tests")]

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
import reference as ref  # noqa: E402
from jax import lax  # noqa: E402
from nash_gap import floor_factor, floor_solve  # noqa: E402  (the floor's LAPACK calls)

import jaxmail as jm  # noqa: E402  (before any JAX computation: the XLA guard)

try:  # the peer; optional
    import chex
    import jaxdp

    # jaxdp checks values with chex, which cannot run inside jit/vmap: traced as a user would.
    chex.disable_asserts()
except ImportError:  # pragma: no cover - depends on the environment
    jaxdp = None

KERNELS = ("solve_mdp", "soft_nash_vi", "logit_qre", "bc", "matching")
CLOCKS = {"cpu": time.process_time, "wall": time.perf_counter}


# ----------------------------------------------------------------------------------------------
# Timing
# ----------------------------------------------------------------------------------------------


class Timer:
    """Compiles and times jitted functions with one clock (``process_time`` or ``perf_counter``)."""

    def __init__(self, clock: str, repeats: int):
        self.clock = CLOCKS[clock]
        self.repeats = repeats

    def compile(self, fn, args):
        """``(compiled, compile s)``: ``jax.jit(fn).lower(*args).compile()``, wall clock."""
        t = time.perf_counter()
        compiled = jax.jit(fn).lower(*args).compile()
        return compiled, time.perf_counter() - t

    def best(self, compiled, args):
        """Minimum over the repeats of one call of ``compiled`` (after a warm-up call)."""
        jax.block_until_ready(compiled(*args))
        best = np.inf
        for _ in range(self.repeats):
            t = self.clock()
            jax.block_until_ready(compiled(*args))
            best = min(best, self.clock() - t)
        return best

    def time(self, fn, args):
        """``(seconds per call, compile s, output)``."""
        compiled, compile_s = self.compile(fn, args)
        return self.best(compiled, args), compile_s, compiled(*args)

    def per_iteration(self, make, args, k1, k2):
        """``(seconds per iteration, compile s of both)`` of ``make(k)`` by the difference."""
        c1, s1 = self.compile(make(k1), args)
        c2, s2 = self.compile(make(k2), args)
        # Interleave the repeats so that a change of load hits both.
        jax.block_until_ready(c1(*args))
        jax.block_until_ready(c2(*args))
        t1 = t2 = np.inf
        for _ in range(self.repeats):
            t = self.clock()
            jax.block_until_ready(c1(*args))
            t1 = min(t1, self.clock() - t)
            t = self.clock()
            jax.block_until_ready(c2(*args))
            t2 = min(t2, self.clock() - t)
        return (t2 - t1) / (k2 - k1), s1 + s2


# ----------------------------------------------------------------------------------------------
# Floor primitives (library-independent)
# ----------------------------------------------------------------------------------------------


def _solve_adjoint(lu, b):
    """``(I - gamma m)^-T b`` from :func:`floor_factor` (the adjoint solve)."""
    lu, permutation = lu
    x = b[permutation][:, None]
    x = lax.linalg.triangular_solve(lu, x, left_side=True, lower=True, unit_diagonal=True)
    x = lax.linalg.triangular_solve(lu, x, left_side=True, lower=False)
    return x[:, 0]


def _flat(P):
    """``[S, A_1..A_n, S] -> [S, prod A, S]``."""
    return P.reshape(P.shape[0], -1, P.shape[-1])


def _read_joint(P, joint):
    """One read of ``P``: ``P_pi[s, t] = sum_a P[s, a, t] pi(a|s)`` (``joint [S, prod A]``)."""
    return jnp.einsum("sat,sa->st", _flat(P), joint)


def _read_values(P, v):
    """One read of ``P``: ``(P v)[s, a, :]`` for ``v [S]`` or ``[S, k]``."""
    return _flat(P) @ v


def _looped(op, dtype):
    """``fn(k, *xs)``: ``op`` run ``k`` (traced) times per game in a loop, batched over games.

    Each run gets its inputs nudged by the loop carry ``c`` (``op(c, *xs)``; ``c`` grows by
    ``tiny * sum(output)``, far below rounding), so the compiler can neither hoist the work out
    of the loop nor merge runs; the nudge costs one pass over the output (``S`` or ``S x S``
    entries per game, not a read of ``P``).
    """
    tiny = 1e-300 if jnp.dtype(dtype) == jnp.float64 else 1e-30

    def one(k, *xs):
        def body(_, c):
            return c + tiny * jnp.sum(op(c, *xs))

        return lax.fori_loop(0, k, body, jnp.zeros((), dtype))

    def fn(k, *xs):
        return jax.vmap(one, in_axes=(None,) + (0,) * len(xs))(k, *xs)

    return fn


def _floor_iteration(timer, op, dtype, xs, target):
    """Seconds of one run of ``op`` over the batch, by ``(t(k1 + d) - t(k1)) / d``.

    One program (the loop count is an argument); ``d`` is chosen so that the difference is
    about ``target`` seconds, from a first estimate with ``d = 16``.
    """
    fn = _looped(op, dtype)
    args = (jnp.asarray(1, jnp.int32), *xs)
    compiled, _ = timer.compile(fn, args)

    def diff(d):
        short, long = (jnp.asarray(1, jnp.int32), *xs), (jnp.asarray(1 + d, jnp.int32), *xs)
        jax.block_until_ready(compiled(*long))
        t1 = t2 = np.inf
        for _ in range(timer.repeats):
            t = timer.clock()
            jax.block_until_ready(compiled(*short))
            t1 = min(t1, timer.clock() - t)
            t = timer.clock()
            jax.block_until_ready(compiled(*long))
            t2 = min(t2, timer.clock() - t)
        return (t2 - t1) / d

    estimate = diff(16)
    d = int(np.clip(target / max(estimate, 1e-9), 16, 100_000))
    return diff(d)


def _floor_parts(
    timer, P, gamma, args, *, lu=0, solves=0, adjoints=0, rhs=1, joint_reads=0, value_reads=0
):
    """Seconds per batch of each part of a floor, each timed alone on the batch ``P``.

    Every part runs in a loop (:func:`_floor_iteration`), so that it pays no per-call
    dispatch that the kernels' iterations, also timed inside their loops, do not pay.

    Args:
      P: ``[B, S, A_1..A_n, S]``.
      lu, solves, adjoints, joint_reads, value_reads: how many of each part the floor holds.
      rhs: right-hand sides per solve and columns of the value read.

    Returns:
      ``dict(part -> seconds per batch)`` (parts with count 0 are left out).
    """
    b, s = P.shape[0], P.shape[1]
    dtype = P.dtype
    joint_actions = int(np.prod(P.shape[2:-1]))
    m = P.reshape(b, s, joint_actions, s)[:, :, 0, :]  # [B, S, S], a stochastic matrix per game
    vec = jnp.ones((b, s, rhs) if rhs > 1 else (b, s), dtype)

    def per_iteration(op, *xs):
        return _floor_iteration(timer, op, dtype, xs, args.floor_seconds)

    parts = {}
    if lu:
        parts["LU"] = lu * per_iteration(lambda c, m: floor_factor(m, gamma * (1.0 - c))[0], m)
    lus = jax.jit(jax.vmap(lambda x: floor_factor(x, gamma)))(m)
    if solves:
        parts["solves"] = solves * per_iteration(
            lambda c, lu, perm, x: floor_solve((lu, perm), x + c), *lus, vec
        )
    if adjoints:
        parts["adjoint"] = adjoints * per_iteration(
            lambda c, lu, perm, x: _solve_adjoint((lu, perm), x + c),
            *lus,
            vec[..., 0] if rhs > 1 else vec,
        )
    reads = 0.0
    if joint_reads:
        joint = jnp.full((b, s, joint_actions), 1.0 / joint_actions, dtype)
        reads += joint_reads * per_iteration(lambda c, P, x: _read_joint(P, x + c), P, joint)
    if value_reads:
        reads += value_reads * per_iteration(lambda c, P, x: _read_values(P, x + c), P, vec)
    if joint_reads or value_reads:
        parts["reads"] = reads
    return parts


# ----------------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------------


def _games(seed, batch, num_states, actions, discount, dtype, *, zero_sum=False):
    """``(numpy games, batched MarkovGame, batched random policies)``."""
    rng = np.random.default_rng(seed)
    games, policies = [], []
    for _ in range(batch):
        P, R, mu0 = ref.random_game(rng, num_states, actions, discount)
        if zero_sum:
            R = np.stack([R[0], -R[0]])
        games.append((P, R, mu0))
        policies.append(ref.random_policy(rng, num_states, actions))

    def stack(xs):
        return jnp.asarray(np.stack(xs).astype(dtype))

    game = jm.game.MarkovGame.tree_unflatten(
        None,
        (
            stack([g[0] for g in games]),
            stack([g[1] for g in games]),
            stack([g[2] for g in games]),
            jnp.full((batch,), discount, dtype),
        ),
    )
    pis = tuple(stack([p[i] for p in policies]) for i in range(len(actions)))
    return games, game, pis


# ----------------------------------------------------------------------------------------------
# Rows
# ----------------------------------------------------------------------------------------------


def _jaxdp_policy_iteration(P, r, gamma, max_iters=1000):
    """``jaxdp.PolicyIteration`` from the greedy policy of ``r`` until the policy is stable."""
    num_states, num_actions = r.shape
    mdp = jaxdp.MDP(
        transition=jnp.transpose(P, (1, 2, 0)),  # [A, next, current]: column-stochastic
        reward=jnp.broadcast_to(r.T[:, :, None], (num_actions, num_states, num_states)),
        initial=jnp.full((num_states,), 1.0 / num_states, P.dtype),
        terminal=jnp.zeros((num_states,), P.dtype),
    )
    solver = jaxdp.PolicyIteration(gamma=gamma)
    start = jax.nn.one_hot(jnp.argmax(r, axis=1), num_actions, dtype=P.dtype).T  # [A, S]
    state = solver.init(mdp, start)

    def cond(carry):
        _, changed, k = carry
        return changed & (k < max_iters)

    def body(carry):
        state, _, k = carry
        new = solver.update(mdp, state)
        return new, jnp.any(new.policy != state.policy), k + 1

    state, _, k = lax.while_loop(cond, body, (state, jnp.asarray(True), jnp.asarray(0)))
    return state.v_val, k


def row_solve_mdp(timer, num_states, a, dtype, args):
    """Batched ``jm.solve_mdp`` against its floor, the NumPy reference and jaxdp."""
    b, gamma = args.batch, args.discount
    rng = np.random.default_rng(1)
    P_np = rng.dirichlet(np.ones(num_states), size=(b, num_states, a))
    r_np = rng.uniform(-1.0, 1.0, size=(b, num_states, a))
    P, r = jnp.asarray(P_np.astype(dtype)), jnp.asarray(r_np.astype(dtype))

    def solve(P, r):
        return jax.vmap(lambda p, x: jm.solve_mdp(p, x, gamma))(P, r)

    t, compile_s, sol = timer.time(solve, (P, r))
    parts = _floor_parts(timer, P, gamma, args, lu=1, solves=1, value_reads=1)
    values = np.asarray(sol.values, dtype=np.float64)
    tol = (1e-8 if dtype == "float64" else 1e-3) / (1.0 - gamma)
    notes = [f"PI steps {np.mean(sol.iterations):.2f}/{int(np.max(sol.iterations))}"]

    k = min(args.numpy_games, b)
    mu0 = np.full(num_states, 1.0 / num_states)
    starts = [np.eye(a)[np.argmax(r_np[j], axis=1)] for j in range(k)]  # greedy on r
    t0 = time.process_time()
    gains = [
        ref.nash_gap_policy_iteration(P_np[j], r_np[j][None], mu0, gamma, (starts[j],))["gains"]
        for j in range(k)
    ]
    t_numpy = (time.process_time() - t0) / k
    worst = 0.0
    for j in range(k):  # mu0 V* = mu0 V^start + gain
        v_start = ref.values(P_np[j], r_np[j][None], gamma, (starts[j],))[0]
        v_opt = float(mu0 @ v_start) + float(gains[j][0])
        worst = max(worst, abs(v_opt - float(mu0 @ values[j])))
    if worst > tol:
        print(f"# warning: solve_mdp S={num_states}: |mean V - NumPy| = {worst:.3g} > {tol:.3g}")

    t_peer, peer_compile = None, None
    if jaxdp is not None:

        def peer(P, r):
            return jax.vmap(lambda p, x: _jaxdp_policy_iteration(p, x, gamma))(P, r)

        t_peer, peer_compile, (v_peer, k_peer) = timer.time(peer, (P, r))
        diff = float(np.max(np.abs(np.asarray(v_peer) - values)))
        if diff > tol:
            print(f"# warning: solve_mdp S={num_states}: max |V - jaxdp| = {diff:.3g} > {tol:.3g}")
        notes.append(f"jaxdp PI steps {np.mean(k_peer):.2f}, compile {peer_compile:.1f} s")
    return dict(
        kernel="solve_mdp", S=num_states, n=1, A=a, batch=b, unit="solve", t=t, parts=parts,
        numpy=t_numpy * b, jaxdp=t_peer, compile=compile_s, notes="; ".join(notes),
    )  # fmt: skip


def row_soft_nash_vi(timer, num_states, a, dtype, args):
    """One outer iteration of ``soft_nash_vi`` against one read of ``P``."""
    b, gamma = args.batch, args.discount
    _, game, _ = _games(2, b, num_states, (a, a), gamma, dtype, zero_sum=True)

    def make(k):
        def fn(game):
            return jax.vmap(
                lambda g: jm.equilibria.soft_nash_vi(
                    g, temperature=0.1, tol=0.0, inner_tol=0.0, max_iters=k,
                    inner_max_iters=args.inner_steps,
                ).residual
            )(game)  # fmt: skip

        return fn

    t, compile_s = timer.per_iteration(make, (game,), args.k1, args.k2)
    parts = _floor_parts(timer, game.transition, gamma, args, value_reads=1)
    return dict(
        kernel="soft_nash_vi", S=num_states, n=2, A=a, batch=b, unit="iteration", t=t,
        parts=parts, compile=compile_s, notes=f"{args.inner_steps} inner step(s)",
    )  # fmt: skip


def row_logit_qre(timer, num_states, n, a, dtype, args):
    """One extragradient iteration of ``logit_qre`` against two exact evaluations."""
    b, gamma = args.batch, args.discount
    _, game, _ = _games(3, b, num_states, (a,) * n, gamma, dtype)

    def make(k):
        def fn(game):
            return jax.vmap(
                lambda g: jm.equilibria.logit_qre(g, temperature=1.0, tol=0.0, max_iters=k).residual
            )(game)

        return fn

    t, compile_s = timer.per_iteration(make, (game,), args.k1, args.k2)
    parts = _floor_parts(
        timer, game.transition, gamma, args, lu=2, solves=2, rhs=n, joint_reads=2, value_reads=2
    )
    return dict(
        kernel="logit_qre", S=num_states, n=n, A=a, batch=b, unit="iteration", t=t,
        parts=parts, compile=compile_s, notes="extragradient: 2 evaluations",
    )  # fmt: skip


def _bc_floor_step(visits, labels, total, optimizer):
    """One closed-form cross-entropy gradient and one adam update of every player's logits."""

    def step(carry, _):
        theta, state = carry
        grads = tuple(
            (v / total)[:, None] * (jax.nn.softmax(t, axis=-1) - y)
            for t, v, y in zip(theta, visits, labels)
        )
        updates, state = optimizer.update(grads, state, theta)
        return (optax.apply_updates(theta, updates), state), None

    return step


def row_bc(timer, num_states, n, a, dtype, args):
    """One gradient-BC step against one closed-form logit update."""
    b, gamma = args.batch, args.discount
    _, game, pis = _games(4, b, num_states, (a,) * n, gamma, dtype)
    keys = jax.random.split(jax.random.key(4), b)
    sample = jax.jit(
        jax.vmap(
            lambda key, g, p: jm.data.sample_demonstrations(
                key, g, p, num_trajectories=100, horizon=50, lengths="geometric"
            )
        )
    )
    data = sample(keys, game, pis)

    def make(k):
        def fn(game, data):
            return jax.vmap(lambda g, d: jm.imitation.gradient_behavior_cloning(g, d, steps=k))(
                game, data
            )

        return fn

    t, compile_s = timer.per_iteration(make, (game, data), args.k1, args.k2)

    counts = jax.jit(jax.vmap(lambda g, d: jm.data.action_counts(g, d)))(game, data)
    visits = tuple(jnp.sum(c, axis=-1) for c in counts)
    labels = tuple(c / jnp.maximum(v, 1.0)[..., None] for c, v in zip(counts, visits))
    total = jnp.sum(visits[0], axis=-1)
    optimizer = jm.imitation.DEFAULT_OPTIMIZER

    def floor(k):
        def fn(visits, labels, total):
            def one(visits, labels, total):
                theta = tuple(jnp.zeros_like(y) for y in labels)
                step = _bc_floor_step(visits, labels, total, optimizer)
                (theta, _), _ = lax.scan(step, (theta, optimizer.init(theta)), None, length=k)
                return theta

            return jax.vmap(one)(visits, labels, total)

        return fn

    t_floor, _ = timer.per_iteration(floor, (visits, labels, total), args.k1, args.k2)
    return dict(
        kernel="gradient BC", S=num_states, n=n, A=a, batch=b, unit="step", t=t,
        parts={"update": t_floor}, compile=compile_s, notes="100 demos/game",
    )  # fmt: skip


def row_matching(timer, num_states, n, a, dtype, args):
    """One measure-matching step against one occupancy solve and its adjoint."""
    b, gamma = args.batch, args.discount
    _, game, pis = _games(5, b, num_states, (a,) * n, gamma, dtype)

    def make(k):
        def fn(game, pis):
            return jax.vmap(
                lambda g, p: jm.imitation.measure_matching(g, p, steps=k)
            )(game, pis)  # fmt: skip

        return fn

    t, compile_s = timer.per_iteration(make, (game, pis), args.k1, args.k2)
    parts = _floor_parts(
        timer,
        game.transition,
        gamma,
        args,
        lu=1,
        solves=1,
        adjoints=1,
        joint_reads=1,
        value_reads=1,
    )
    return dict(
        kernel="measure matching", S=num_states, n=n, A=a, batch=b, unit="step", t=t,
        parts=parts, compile=compile_s, notes="state_action KL, expert target",
    )  # fmt: skip


# ----------------------------------------------------------------------------------------------
# Table
# ----------------------------------------------------------------------------------------------

HEADER = (
    "| kernel | S | n | A | batch | unit | ms/game | floor ms/game (parts) | x floor "
    "| NumPy ms/game | x NumPy | jaxdp ms/game | x jaxdp | compile s | notes |"
)


def _format(row) -> str:
    per = 1e3 / row["batch"]
    floor = sum(row["parts"].values())
    split = " + ".join(f"{k} {v * per:.4f}" for k, v in row["parts"].items())

    def peer(name):
        if row.get(name) is None:
            return "-", "-"
        return f"{row[name] * per:.4f}", f"{row[name] / row['t']:.1f}"

    numpy_ms, x_numpy = peer("numpy")
    jaxdp_ms, x_jaxdp = peer("jaxdp")
    ratio = row["t"] / floor if floor > 0 else float("nan")
    return (
        f"| {row['kernel']} | {row['S']} | {row['n']} | {row['A']} | {row['batch']} | "
        f"{row['unit']} | {row['t'] * per:.4f} | {floor * per:.4f} ({split}) | {ratio:.2f} | "
        f"{numpy_ms} | {x_numpy} | {jaxdp_ms} | {x_jaxdp} | {row['compile']:.1f} | "
        f"{row['notes']} |"
    )


def _sizes(values, name):
    """``"S:n:A"`` strings to integer triples."""
    out = []
    for v in values:
        parts = v.split(":")
        if len(parts) != 3 or not all(p.isdigit() and int(p) > 0 for p in parts):
            raise SystemExit(f"{name}: expected S:n:A with positive integers, got {v!r}")
        out.append(tuple(int(p) for p in parts))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", default=",".join(KERNELS), help=f"subset of {KERNELS}")
    parser.add_argument("--mdp-states", type=int, nargs="+", default=[16, 64])
    parser.add_argument("--mdp-actions", type=int, default=4)
    parser.add_argument("--vi-sizes", nargs="+", default=["16:2:4", "64:2:4"], help="S:n:A")
    parser.add_argument("--qre-sizes", nargs="+", default=["16:2:4", "64:3:2"], help="S:n:A")
    parser.add_argument("--bc-sizes", nargs="+", default=["64:2:4"], help="S:n:A")
    parser.add_argument("--mm-sizes", nargs="+", default=["16:2:4", "64:2:4"], help="S:n:A")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--numpy-games", type=int, default=8)
    parser.add_argument("--discount", type=float, default=0.95)
    parser.add_argument("--inner-steps", type=int, default=1, help="soft_nash_vi inner steps")
    parser.add_argument("--k1", type=int, default=5, help="iterations of the short program")
    parser.add_argument("--k2", type=int, default=45, help="iterations of the long program")
    parser.add_argument(
        "--floor-seconds", type=float, default=0.03, help="timed work per floor part and call"
    )
    parser.add_argument("--clock", choices=["cpu", "wall"], help="default: cpu on CPU, else wall")
    parser.add_argument("--quick", action="store_true", help="S = 16 rows only, 2 repeats")
    args = parser.parse_args(argv)
    kernels = [k.strip() for k in args.kernels.split(",") if k.strip()]
    unknown = sorted(set(kernels) - set(KERNELS))
    if unknown:
        raise SystemExit(f"--kernels: unknown {unknown}; expected a subset of {KERNELS}")
    if not 0 < args.k1 < args.k2:
        raise SystemExit(f"--k1, --k2: expected 0 < k1 < k2, got {args.k1}, {args.k2}")
    vi, qre = _sizes(args.vi_sizes, "--vi-sizes"), _sizes(args.qre_sizes, "--qre-sizes")
    bc, mm = _sizes(args.bc_sizes, "--bc-sizes"), _sizes(args.mm_sizes, "--mm-sizes")
    for _, n, _ in vi:
        if n != 2:
            raise SystemExit(f"--vi-sizes: soft_nash_vi is two-player, got n = {n}")
    mdp_states = args.mdp_states
    if args.quick:
        mdp_states = [16]
        vi, qre, bc, mm = (
            list(dict.fromkeys((16, n, a) for _, n, a in x)) for x in (vi, qre, bc, mm)
        )
        args.repeats = min(args.repeats, 2)
        args.numpy_games = min(args.numpy_games, 4)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    backend = jax.default_backend()
    clock = args.clock or ("cpu" if backend == "cpu" else "wall")
    timer = Timer(clock, args.repeats)
    device = jax.devices()[0]
    print(
        f"# jax {jax.__version__}, device {device.device_kind} ({backend}), {os.cpu_count()} "
        f"CPUs, jaxdp {getattr(jaxdp, '__version__', 'not installed')}"
    )
    print(
        f"# {args.dtype}, discount {args.discount}, {clock} time per game (min of "
        f"{args.repeats}), iterations timed as (t(k={args.k2}) - t(k={args.k1})) / "
        f"{args.k2 - args.k1}; load average {os.getloadavg()}"
    )
    print(HEADER)
    print("|---" * 15 + "|")
    dtype = args.dtype
    jobs = []
    if "solve_mdp" in kernels:
        jobs += [(row_solve_mdp, (s, args.mdp_actions)) for s in mdp_states]
    if "soft_nash_vi" in kernels:
        jobs += [(row_soft_nash_vi, (s, a)) for s, _, a in vi]
    if "logit_qre" in kernels:
        jobs += [(row_logit_qre, size) for size in qre]
    if "bc" in kernels:
        jobs += [(row_bc, size) for size in bc]
    if "matching" in kernels:
        jobs += [(row_matching, size) for size in mm]
    for fn, size in jobs:
        row = fn(timer, *size, dtype, args)
        if row["t"] <= 0 or min(row["parts"].values()) <= 0:
            print(
                f"# warning: {row['kernel']} S={row['S']}: a time difference is not above the "
                "noise (<= 0); raise --k2, --batch or --floor-seconds",
                flush=True,
            )
        print(_format(row), flush=True)
    print(f"# load average at the end {os.getloadavg()}")


if __name__ == "__main__":
    main()
