"""Property tests (hypothesis): random bad input gets a clear error, valid input a right answer.

Each test draws ONE defect (or none) into otherwise valid input and checks:

* a defect raises ``ValueError`` or ``TypeError`` whose message starts with the name of the
  argument that carries it (``transition:``, ``policy[1]:``, ``states:``, the file's path);
* no defect gives the right result: the game's leaves are the input cast to float32, or the
  kernels agree with ``tests/reference.py`` (NumPy float64 loops) within the float64 bounds of
  ``helpers.value_atol``.

Examples are derandomized (the same on every run): 40 per property under ``--runslow``, 10 in
the quick suite. Shapes are tiny and few (the numerical test
uses one fixed shape), so each kernel compiles once and the file stays within ~30 s on an idle
2-core machine.
"""

import os
import tempfile

import helpers as h
import jax
import numpy as np
import pytest
import reference as ref
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import jaxmail as jm
from jaxmail import data as jd

FIELDS = ("transition", "reward", "initial", "discount")
# 40 examples per property in the full suite (``pytest --runslow``, which loads the
# "jaxmail-slow" profile of tests/conftest.py before this module is imported), 10 in the quick one.
FULL = settings.get_current_profile_name() == "jaxmail-slow"
SETTINGS = settings(
    max_examples=40 if FULL else 10,
    deadline=None,
    derandomize=True,  # the same examples on every run: no unseeded randomness in the suite
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


def _error(call):
    """Runs ``call``; returns ``None`` or the ``ValueError``/``TypeError`` it raised (any other
    exception fails the test: it would be a raw, unhelpful error)."""
    try:
        call()
    except (ValueError, TypeError) as e:
        return e
    return None


# ---------------------------------------------------------------------------------------------
# Strategies.
# ---------------------------------------------------------------------------------------------


@st.composite
def shapes(draw):
    """``(S, (A_1, ..., A_n))`` with ``S`` in 1..3, ``n`` in 1..3, ``A_i`` in 1..3."""
    n = draw(st.integers(1, 3))
    return draw(st.integers(1, 3)), tuple(draw(st.lists(st.integers(1, 3), min_size=n, max_size=n)))


def _rows(draw, shape):
    """Random distributions along the last axis of ``shape`` (entries may be exactly 0)."""
    size = int(np.prod(shape))
    raw = draw(st.lists(st.sampled_from([0.0, 0.25, 0.5, 1.0, 3.0]), min_size=size, max_size=size))
    x = np.asarray(raw, np.float64).reshape(shape) + 1e-3
    return x / x.sum(axis=-1, keepdims=True)


@st.composite
def valid_games(draw, S=None, acts=None):
    if S is None:
        S, acts = draw(shapes())
    n = len(acts)
    P = _rows(draw, (S, *acts, S))
    size = n * S * int(np.prod(acts))
    R = np.asarray(
        draw(st.lists(st.floats(-1, 1, width=32), min_size=size, max_size=size))
    ).reshape((n, S, *acts))
    mu0 = _rows(draw, (S,))
    gamma = draw(st.sampled_from([0.0, 0.3, 0.9, 0.95]))
    return dict(transition=P, reward=R, initial=mu0, discount=gamma)


def _grow(x, axis):
    return np.concatenate([x, np.take(x, [0], axis=axis)], axis=axis)


@st.composite
def defects(draw, fields):
    """``(field, description, new value)``: one field of ``fields`` made invalid."""
    field = draw(st.sampled_from(FIELDS))
    x = np.asarray(fields[field], np.float64)
    kind = draw(st.sampled_from(["shape", "dtype", "value"]))
    if kind == "dtype":
        dtype = draw(st.sampled_from([np.complex64, np.str_, object, "datetime64[s]"]))
        if dtype is object:
            return field, "object", np.full(x.shape, None, dtype=object)
        return field, f"dtype {np.dtype(dtype)}", x.astype(dtype)
    if kind == "shape":
        if x.ndim == 0:
            return field, "a vector discount", np.full(draw(st.integers(0, 3)), float(x))
        axis = draw(st.integers(0, x.ndim - 1))
        if x.ndim > 1 and draw(st.booleans()):
            return field, f"axis {axis} dropped", x.sum(axis=axis)
        return field, f"axis {axis} grown", _grow(x, axis)
    # Values.
    if field == "discount":
        bad = draw(st.sampled_from([-0.1, 1.0, 1.5, np.nan, np.inf, -np.inf]))
        return field, f"discount {bad}", bad
    index = tuple(draw(st.integers(0, k - 1)) for k in x.shape)
    if field == "reward":
        x[index] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        return field, f"reward {x[index]} at {index}", x
    how = draw(st.sampled_from(["scale", "negative", "nan"]))
    if how == "nan":
        x[index] = np.nan
    elif how == "negative":
        x[index] = -draw(st.floats(0.01, 1.0))
    else:  # the row of ``index`` scaled away from sum 1, far beyond 1e-4
        x[index[:-1]] *= draw(st.floats(0.0, 0.98) | st.floats(1.02, 3.0))
    return field, f"{field} {how} at {index}", x


# ---------------------------------------------------------------------------------------------
# Games.
# ---------------------------------------------------------------------------------------------


@SETTINGS
@given(data=st.data())
def test_a_game_is_built_exactly_when_its_input_is_valid(data):
    fields = data.draw(valid_games(), label="game")
    if data.draw(st.booleans(), label="defective"):
        field, what, value = data.draw(defects(fields), label="defect")
        fields[field] = value
        error = _error(lambda: jm.MarkovGame(**fields))
        assert error is not None, f"accepted a game with {what}"
        # The transition defines the action axes: when one of them changes, the reward is the
        # field that no longer fits ("reward: shape ... disagrees with transition shape ...").
        named = ("transition", "reward") if field == "transition" and "axis" in what else (field,)
        assert str(error).startswith(tuple(f"{f}: " for f in named)), (what, str(error))
    else:
        game = jm.MarkovGame(**fields)
        for f in FIELDS:
            np.testing.assert_array_equal(getattr(game, f), np.asarray(fields[f], np.float32))
        assert game.batch_shape == ()


@SETTINGS
@given(data=st.data())
def test_constructors_refuse_objects_that_are_not_games(data):
    thing = data.draw(st.sampled_from([None, 3, "game", np.ones(3), {"transition": 1}]))
    policy = (np.ones((1, 1)),)
    for call, message in (
        (lambda: jm.check_policy(thing, policy), "game: expected a jaxmail.MarkovGame"),
        (lambda: jm.nash_gap(thing, policy), "game: expected a jaxmail.MarkovGame"),
        (lambda: jm.evaluate(thing, policy), "game: expected a jaxmail.MarkovGame"),
    ):
        error = _error(call)
        assert isinstance(error, TypeError) and str(error).startswith(message), error


# ---------------------------------------------------------------------------------------------
# Policies.
# ---------------------------------------------------------------------------------------------

S_POLICY, ACTS_POLICY = 2, (2, 3)


@pytest.fixture(scope="module")
def policy_game():
    P, R, mu0, _ = h.instance(0, S_POLICY, ACTS_POLICY)
    return h.make_game(P, R, mu0, 0.9)


@st.composite
def policies(draw):
    return tuple(_rows(draw, (S_POLICY, a)) for a in ACTS_POLICY)


@SETTINGS
@given(data=st.data())
def test_a_policy_is_accepted_exactly_when_valid(policy_game, data):
    policy = list(data.draw(policies(), label="policy"))
    kind = data.draw(st.sampled_from(["none", "count", "array", "shape", "dtype", "value"]))
    i = data.draw(st.integers(0, len(policy) - 1), label="player")
    name = "policy"
    if kind == "count":
        policy = policy[:1] if data.draw(st.booleans()) else policy + [policy[0]]
    elif kind == "array":
        policy = np.ones((S_POLICY, 2)) / 2
    elif kind == "shape":
        policy[i], name = _grow(policy[i], data.draw(st.integers(0, 1))), f"policy[{i}]"
    elif kind == "dtype":
        policy[i], name = (
            policy[i].astype(data.draw(st.sampled_from([complex, str]))),
            f"policy[{i}]",
        )
    elif kind == "value":
        s = data.draw(st.integers(0, S_POLICY - 1))
        policy[i] = policy[i].copy()
        how = data.draw(st.sampled_from(["scale", "negative", "nan", "inf"]))
        if how == "scale":
            policy[i][s] *= data.draw(st.floats(0.0, 0.98) | st.floats(1.02, 3.0))
        else:
            policy[i][s, 0] = {"negative": -0.5, "nan": np.nan, "inf": np.inf}[how]
        name = f"policy[{i}]"
    if isinstance(policy, list):
        policy = tuple(policy)
    error = _error(lambda: jm.check_policy(policy_game, policy))
    if kind == "none":
        assert error is None, error
        out = jm.check_policy(policy_game, policy)
        for p, q in zip(out, policy, strict=True):
            np.testing.assert_array_equal(p, np.asarray(q, np.float32))
    else:
        assert error is not None, f"accepted a policy with a {kind} defect"
        assert str(error).startswith(f"{name}"), (kind, str(error))
        # The kernels refuse it with the same message, before compiling anything.
        assert str(_error(lambda: jm.nash_gap(policy_game, policy))) == str(error)


# ---------------------------------------------------------------------------------------------
# Datasets.
# ---------------------------------------------------------------------------------------------

S_DATA, ACTS_DATA = 3, (2, 3)
INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint32, np.uint64]
INT_VALUES = st.sampled_from([0, 1, 2, 3, 5, -1, -(2**31), 2**31 - 1, 2**31 + 1, 2**40, -(2**40)])


def _fits(value, dtype):
    info = np.iinfo(dtype)
    return info.min <= value <= info.max


@SETTINGS
@given(data=st.data())
def test_a_dataset_is_accepted_exactly_when_valid(policy_game, data):
    """The defects a dataset can carry, and the argument each must be reported under.

    Constructor: ``weights`` finite and non-negative; masked-in ``states``/``actions``
    non-negative; every entry of ``states``/``actions`` fits int32 (the cast would wrap it);
    some step masked in with a positive weight (``dataset is empty``). ``check_dataset``: masked-in
    states and actions in range of the game (``data: state ...``, ``data: action ...``).
    """
    N, T, n = 2, 3, len(ACTS_DATA)
    game = jm.MarkovGame(
        transition=np.full((S_DATA, *ACTS_DATA, S_DATA), 1 / S_DATA),
        reward=np.zeros((n, S_DATA, *ACTS_DATA)),
        initial=np.full(S_DATA, 1 / S_DATA),
        discount=0.9,
    )
    states = np.asarray(
        data.draw(st.lists(st.integers(0, S_DATA - 1), min_size=N * T, max_size=N * T))
    )
    actions = np.stack(
        [
            np.asarray(data.draw(st.lists(st.integers(0, a - 1), min_size=N * T, max_size=N * T)))
            for a in ACTS_DATA
        ],
        axis=-1,
    )
    states, actions = states.reshape(N, T), actions.reshape(N, T, n)
    mask = np.asarray(data.draw(st.lists(st.booleans(), min_size=N * T, max_size=N * T))).reshape(
        N, T
    )
    weights = np.ones((N, T))
    wrong = set()  # the message prefixes a defect may legitimately be reported under
    kind = data.draw(st.sampled_from(["none", "states", "actions", "weights"]))
    if kind in ("states", "actions"):
        dtype = data.draw(st.sampled_from(INT_DTYPES))
        value = data.draw(INT_VALUES.filter(lambda v: _fits(v, dtype)))
        target = states if kind == "states" else actions
        where = tuple(data.draw(st.integers(0, k - 1)) for k in target.shape)
        target = target.astype(dtype)
        target[where] = value
        masked_in = bool(mask[where[:2]])
        limit = S_DATA if kind == "states" else ACTS_DATA[where[2]]
        if not -(2**31) <= value < 2**31:
            wrong.add(kind)  # wraps under the cast, masked in or not
        elif value < 0 and masked_in:
            wrong.add(kind)
        elif value >= limit and masked_in:
            wrong.add(f"data: {kind[:-1]}")
        if kind == "states":
            states = target
        else:
            actions = target
    elif kind == "weights":
        where = tuple(data.draw(st.integers(0, k - 1)) for k in weights.shape)
        weights[where] = data.draw(st.sampled_from([-1.0, -1e-9, np.nan, np.inf, 0.0, 2.0]))
        if not np.isfinite(weights[where]) or weights[where] < 0:
            wrong.add("weights")
    if not np.any(mask & (weights > 0)):
        wrong.add("dataset is empty")

    def build_and_check():
        return jd.check_dataset(
            game, jd.Dataset(states=states, actions=actions, mask=mask, weights=weights)
        )

    error = _error(build_and_check)
    if not wrong:
        assert error is None, error
        out = build_and_check()
        np.testing.assert_array_equal(out.states, states)
        np.testing.assert_array_equal(out.actions, actions)
    else:
        assert error is not None, f"accepted a dataset with {wrong}"
        assert any(str(error).startswith(p) for p in wrong), (wrong, str(error))


# ---------------------------------------------------------------------------------------------
# Files.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def saved(policy_game):
    with tempfile.TemporaryDirectory() as folder:
        game_path = os.path.join(folder, "game.npz")
        jm.save_game(game_path, policy_game)
        data = jd.Dataset(
            states=np.zeros((2, 3), np.int32),
            actions=np.zeros((2, 3, 2), np.int32),
            mask=np.ones((2, 3), bool),
            weights=np.ones((2, 3)),
        )
        data_path = os.path.join(folder, "data.npz")
        jd.save_dataset(data_path, data)
        with open(game_path, "rb") as f, open(data_path, "rb") as g:
            yield {"game": (f.read(), policy_game), "dataset": (g.read(), data)}


@SETTINGS
@given(data=st.data())
def test_a_damaged_file_loads_right_or_raises_naming_it(saved, data, tmp_path_factory):
    kind = data.draw(st.sampled_from(["game", "dataset"]))
    content, original = saved[kind]
    how = data.draw(st.sampled_from(["truncate", "flip", "garbage", "prefix"]))
    if how == "truncate":
        content = content[: data.draw(st.integers(0, len(content) - 1))]
    elif how == "flip":
        at = data.draw(st.integers(0, len(content) - 1))
        byte = data.draw(st.integers(0, 255).filter(lambda b: b != content[at]))
        content = content[:at] + bytes([byte]) + content[at + 1 :]
    elif how == "garbage":
        content = data.draw(st.binary(max_size=64))
    else:
        content = data.draw(st.binary(min_size=1, max_size=8)) + content
    path = tmp_path_factory.mktemp("files") / f"{kind}.npz"
    path.write_bytes(content)
    load = jm.load_game if kind == "game" else jd.load_dataset
    try:
        loaded = load(path)
    except (ValueError, TypeError) as e:
        assert str(e).startswith(f"{path}: "), (how, str(e))
        assert "pickle" not in str(e) or "pickled object array" in str(e), str(e)
        return
    # Loaded: then it is the original (zip metadata such as timestamps can change harmlessly;
    # every member is CRC-checked), or a valid object in its own right.
    for a, b in zip(jax.tree_util.tree_leaves(loaded), jax.tree_util.tree_leaves(original)):
        assert a.shape == b.shape and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------------------------------------
# Results against the NumPy oracle (float64, one fixed shape: one compile per kernel).
# ---------------------------------------------------------------------------------------------


@settings(SETTINGS, max_examples=25 if FULL else 10)
@given(data=st.data())
def test_nash_gap_and_evaluate_match_the_oracle(data):
    S, acts = 2, (2, 2)  # one shape: one compilation of each kernel
    fields = data.draw(valid_games(S, acts), label="game")
    P, R, mu0, gamma = (fields[f] for f in FIELDS)
    policy = tuple(_rows(data.draw, (S, a)) for a in acts)
    with jax.enable_x64(True):
        game = jm.MarkovGame(**fields)
        gap = jm.nash_gap(game, policy)
        ev = jm.evaluate(game, policy)
        eps = float(np.finfo(np.float64).eps)
        # helpers.value_atol for an exact solve; best-response values also carry policy
        # iteration's certified tol / (1 - gamma) with tol = 4 eps / (1 - gamma)^2.
        atol = 2 * h.value_atol(np.float64, gamma) + 4 * eps / (1 - gamma) ** 3
        want = ref.nash_gap(P, R, mu0, gamma, policy)
        assert bool(np.all(gap.converged)) and bool(ev.converged)
        np.testing.assert_allclose(gap.gains, want["gains"], rtol=0, atol=atol)
        np.testing.assert_allclose(gap.nash_gap, want["nash_gap"], rtol=0, atol=atol)
        assert float(gap.nash_gap) >= -atol
        np.testing.assert_allclose(ev.values, ref.values(P, R, gamma, policy), rtol=0, atol=atol)
        np.testing.assert_allclose(
            ev.occupancy, ref.state_occupancy(P, mu0, gamma, policy), rtol=0, atol=1e-9
        )


@SETTINGS
@given(data=st.data())
def test_kernels_on_a_batch_say_vmap(data):
    B = data.draw(st.integers(2, 5), label="batch size")
    game = h.make_game(*h.instance(1, S_POLICY, ACTS_POLICY)[:3], 0.9)
    batch = jax.tree_util.tree_map(lambda x: np.stack([x] * B), game)
    policy = jm.uniform_policy(game)
    call = data.draw(st.sampled_from([jm.nash_gap, jm.evaluate, jm.values, jm.check_policy]))
    error = _error(lambda: call(batch, policy))
    assert isinstance(error, ValueError), error
    assert f"a batch of {B} games" in str(error) and "jax.vmap" in str(error), str(error)
