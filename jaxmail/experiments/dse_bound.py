"""Experiment ``dse-bound``: Lemma 3 on random dominant-strategy games, with learned BC policies.

Per seed (one compiled program for all seeds of a setting and all dataset sizes):

1. a random game of the PAPER.md §4 dominant-strategy family
   (:func:`jaxmail.games.dominant_strategy_game`: action-independent transitions, separable
   rewards) with ``n`` players, ``S`` states and ``A`` actions each; the expert is its dominant
   strategy;
2. ``N_max = max(dataset_sizes)`` expert demonstrations with Geometric(1-gamma) lengths (capped
   at ``horizon``), :func:`jaxmail.data.sample_demonstrations`, sampled once;
3. for every ``N`` in ``dataset_sizes`` (``jax.vmap`` over the sizes, ``data.truncate(N)``):
   closed-form BC with additive ``smoothing`` (:func:`jaxmail.imitation.behavior_cloning`), its
   ``eps_BC`` (:func:`jaxmail.bc_error`) and its NashGap (:func:`jaxmail.nash_gap`);
4. the Lemma 3 bound ``(2n - 1) eps_BC / (1 - gamma)^2`` and the tightness ``NashGap / bound``.

Columns (one row per seed and ``N``): ``num_trajectories`` (``N``), ``num_samples`` (state-action
pairs in the ``N`` trajectories), ``eps_bc``, ``nash_gap``, ``nash_conv``, ``bound``,
``tightness`` (NaN where the bound is 0), ``expert_nash_gap`` (the dominant expert's own gap,
~0), ``converged``.
"""

from __future__ import annotations

import dataclasses
import math
import os

import jax
import jax.numpy as jnp
import numpy as np

import jaxmail as jm
from jaxmail import _linalg
from jaxmail.experiments import results
from jaxmail.experiments.base import Config, Experiment, Setting, Table, register
from jaxmail.experiments.results import violation_tolerance
from jaxmail.experiments.sharding import map_seeds

PAPER_TIGHTNESS = 0.01  # PAPER.md §4: "NashGap/bound around 0.01" on random instances


@dataclasses.dataclass(frozen=True)
class DSEBoundConfig(Config):
    """Configuration of ``dse-bound``.

    Attributes:
      players: the player counts ``n`` (one setting each, times each discount).
      num_states: ``S``.
      num_actions: ``A``, every player.
      discounts: the discounts ``gamma``.
      dataset_sizes: the numbers ``N`` of expert trajectories BC learns from.
      horizon: cap on a trajectory's (geometric) length.
      smoothing: BC's additive smoothing ``alpha`` (0 is the MLE).
      own_weight: the dominant-strategy generator's share of the reward that depends on the
        player's own action.
    """

    seeds: int = 128
    chunk_size: int = 64
    players: tuple[int, ...] = (2, 3, 4)
    num_states: int = 6
    num_actions: int = 3
    discounts: tuple[float, ...] = (0.8, 0.9)
    dataset_sizes: tuple[int, ...] = (1, 4, 16, 64, 256)
    horizon: int = 100
    smoothing: float = 0.5
    own_weight: float = 0.5

    QUICK = {
        "seeds": 16,
        "chunk_size": 8,
        "players": (2, 3),
        "num_states": 4,
        "num_actions": 2,
        "discounts": (0.9,),
        "dataset_sizes": (1, 8, 64),
        "horizon": 60,
    }

    def __post_init__(self):
        super().__post_init__()
        for name, values in (("players", self.players), ("dataset_sizes", self.dataset_sizes)):
            if not values or min(values) < 1:
                raise ValueError(f"{name}: expected a non-empty list of ints >= 1, got {values}")
        if not self.discounts or not all(0.0 < g < 1.0 for g in self.discounts):
            raise ValueError(f"discounts: every discount must lie in (0, 1), got {self.discounts}")
        for name in ("num_states", "num_actions", "horizon"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.smoothing < 0:
            raise ValueError(f"smoothing: must be >= 0, got {self.smoothing}")
        if not 0.0 <= self.own_weight <= 1.0:
            raise ValueError(f"own_weight: must lie in [0, 1], got {self.own_weight}")


def settings(config: DSEBoundConfig) -> list[Setting]:
    return [
        {"num_players": int(n), "discount": float(g)}
        for n in config.players
        for g in config.discounts
    ]


def _one_seed(
    key,
    discount,
    sizes,
    smoothing,
    own_weight,
    *,
    num_players,
    num_states,
    num_actions,
    num_trajectories,
    horizon,
):
    key_game, key_data = jax.random.split(key)
    dse = jm.games.dominant_strategy_game(
        key_game,
        num_states=num_states,
        num_actions=(num_actions,) * num_players,
        discount=discount,
        own_weight=own_weight,
    )
    game, expert = dse.game, dse.expert
    data = jm.data.sample_demonstrations(
        key_data,
        game,
        expert,
        num_trajectories=num_trajectories,
        horizon=horizon,
        lengths="geometric",
    )
    expert_gap = jm.nash_gap(game, expert)

    def one_size(size):
        subset = data.truncate(size)
        policy = jm.imitation.behavior_cloning(game, subset, smoothing=smoothing)
        policy = tuple(_linalg.after(p, expert_gap.nash_gap) for p in policy)
        eps = jm.bc_error(game, policy, expert)
        gap = jm.nash_gap(game, tuple(_linalg.after(p, eps) for p in policy))
        return {
            "num_samples": subset.num_samples,
            "eps_bc": eps,
            "nash_gap": gap.nash_gap,
            "nash_conv": gap.nash_conv,
            "converged": jnp.all(gap.converged) & jnp.all(expert_gap.converged),
        }

    return expert_gap.nash_gap, jax.vmap(one_size)(sizes)


def run_chunk(config: DSEBoundConfig, setting: Setting, keys: jax.Array) -> dict[str, np.ndarray]:
    n, gamma = setting["num_players"], setting["discount"]
    dtype = jnp.zeros(()).dtype
    sizes = np.asarray(config.dataset_sizes, dtype=np.int32)
    # The largest dataset is sampled once; smaller ones are masks on it (Dataset.truncate).
    expert_gap, per_size = map_seeds(
        _one_seed,
        keys,
        jnp.asarray(gamma, dtype),
        sizes,
        jnp.asarray(config.smoothing, dtype),
        jnp.asarray(config.own_weight, dtype),
        num_players=n,
        num_states=config.num_states,
        num_actions=config.num_actions,
        num_trajectories=int(sizes.max()),
        horizon=config.horizon,
    )
    batch = len(keys)
    out = {"num_trajectories": np.broadcast_to(sizes, (batch, len(sizes)))}
    for name in ("num_samples", "eps_bc", "nash_gap", "nash_conv"):
        out[name] = per_size[name]
    bound = np.asarray(
        jm.theory.lemma3_bound(out["eps_bc"], n, np.asarray(gamma, out["eps_bc"].dtype))
    )
    out["bound"] = bound
    with np.errstate(divide="ignore", invalid="ignore"):
        out["tightness"] = np.where(bound > 0, out["nash_gap"] / bound, np.nan)
    out["expert_nash_gap"] = np.broadcast_to(expert_gap[:, None], out["eps_bc"].shape)
    out["converged"] = per_size["converged"]
    return out


# ----------------------------------------------------------------------------------------------
# Summary and plots.


def _violations(table: Table) -> np.ndarray:
    return table["nash_gap"] > table["bound"] + violation_tolerance(table["discount"])


def _nanmedian(x: np.ndarray) -> float:
    x = np.asarray(x, dtype=float)
    return float(np.nanmedian(x)) if np.any(~np.isnan(x)) else math.nan


def summarize(config: DSEBoundConfig, table: Table, out_dir: str) -> str:
    del out_dir
    rows_total = len(table.get("nash_gap", ()))
    lines = ["# dse-bound: Lemma 3 on random dominant-strategy games, BC from demonstrations", ""]
    if not rows_total:
        return "\n".join(lines + ["No results."]) + "\n"
    violated = _violations(table)
    players = ", ".join(str(n) for n in config.players)
    lines.append(
        f"Lemma 3's bound NashGap <= (2n-1) eps_BC / (1-gamma)^2 held for every BC policy: "
        f"{int(violated.sum())} violations in {rows_total} (seed, N) pairs over n = {players} "
        f"players (tolerance 1e-4/(1-gamma)); it is loose, with median tightness NashGap/bound "
        f"= {results.format_number(_nanmedian(table['tightness']))} (the paper: around "
        f"{PAPER_TIGHTNESS:g}). Largest NashGap of a dominant expert (should be 0): "
        f"{results.format_number(float(np.max(table['expert_nash_gap'])))}."
    )
    lines += [
        "",
        f"Games: S = {config.num_states} states, A = {config.num_actions} actions per player, "
        f"{config.seeds} seeds; BC closed form with smoothing {config.smoothing:g} from N "
        f"geometric-length expert trajectories, N in {list(config.dataset_sizes)}.",
        "",
        "## By player count and discount",
        "",
    ]
    rows = []
    for n in config.players:
        for gamma in config.discounts:
            sel = results.select(table, num_players=n, discount=gamma)
            if not len(sel["nash_gap"]):
                continue
            rows.append(
                (
                    n,
                    f"{gamma:g}",
                    len(sel["nash_gap"]),
                    int(_violations(sel).sum()),
                    float(np.median(sel["eps_bc"])),
                    float(np.median(sel["nash_gap"])),
                    _nanmedian(sel["tightness"]),
                    float(np.nanmax(sel["tightness"]))
                    if np.any(~np.isnan(sel["tightness"]))
                    else math.nan,
                    PAPER_TIGHTNESS,
                )
            )
    lines.append(
        results.markdown_table(
            [
                "n",
                "gamma",
                "rows",
                "violations",
                "median eps_BC",
                "median NashGap",
                "median tightness",
                "max tightness",
                "paper tightness (approx.)",
            ],
            rows,
        )
    )
    lines += ["## By player count and number of demonstrations (medians over seeds)", ""]
    rows = []
    for n in config.players:
        for size in config.dataset_sizes:
            sel = results.select(table, num_players=n, num_trajectories=size)
            if not len(sel["nash_gap"]):
                continue
            rows.append(
                (
                    n,
                    size,
                    float(np.median(sel["eps_bc"])),
                    float(np.median(sel["nash_gap"])),
                    float(np.median(sel["bound"])),
                    _nanmedian(sel["tightness"]),
                )
            )
    lines.append(
        results.markdown_table(
            ["n", "N", "eps_BC", "NashGap", "bound", "tightness"],
            rows,
        )
    )
    if not bool(np.all(table["converged"])):
        lines.append("**Warning:** some best-response solves did not converge.\n")
    return "\n".join(lines)


def plot(config: DSEBoundConfig, table: Table, out_dir: str) -> list[str]:
    if not len(table.get("nash_gap", ())):
        return []
    floor = 1e-7
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown")
    players = list(config.players)
    fig = results.new_figure(figsize=(4.2 * len(players), 4.0), layout="constrained")
    axes = fig.subplots(1, len(players), squeeze=False)[0]
    positive = table["eps_bc"][table["eps_bc"] > 0]
    lo = float(positive.min()) if positive.size else 1e-4
    hi = float(table["eps_bc"].max()) if positive.size else 1.0
    x = np.geomspace(lo, max(hi, lo * 10), 50)
    for ax, n in zip(axes, players):
        for color, gamma in zip(colors, config.discounts):
            sel = results.select(table, num_players=n, discount=gamma)
            ax.scatter(
                sel["eps_bc"],
                np.maximum(sel["nash_gap"], floor),
                s=10,
                alpha=0.5,
                color=color,
                label=f"BC policies, gamma = {gamma:g}",
            )
            bound = np.asarray(jm.theory.lemma3_bound(x, n, gamma))
            ax.plot(x, bound, "--", color=color, label=f"Lemma 3 bound, gamma = {gamma:g}")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("eps_BC (BC error under the expert's occupancy)")
        ax.set_ylabel("NashGap of the BC policy")
        ax.set_title(f"n = {n} players")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize="small")
    fig.suptitle(
        "Lemma 3 on dominant-strategy games: BC policies vs the bound"
        + (
            f" (NashGap < {floor:g} drawn at {floor:g})"
            if np.any(table["nash_gap"] < floor)
            else ""
        )
    )
    scatter = results.save_figure(fig, os.path.join(out_dir, "nash_gap_vs_bc_error.png"))

    fig = results.new_figure(figsize=(8.0, 4.4), layout="constrained")
    ax = fig.add_subplot()
    styles = ("-o", "-s", "-^", "-D", "-v", "-x")
    for style, n in zip(styles, players):
        for color, gamma in zip(colors, config.discounts):
            medians = [
                _nanmedian(
                    results.select(table, num_players=n, discount=gamma, num_trajectories=size)[
                        "tightness"
                    ]
                )
                for size in config.dataset_sizes
            ]
            ax.plot(
                config.dataset_sizes,
                medians,
                style,
                color=color,
                label=f"n = {n}, gamma = {gamma:g}",
            )
    ax.axhline(PAPER_TIGHTNESS, color="gray", linestyle=":", label="paper: around 0.01")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of expert trajectories N")
    ax.set_ylabel("median tightness NashGap / bound")
    ax.set_title("How loose is Lemma 3? (1 = tight)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    tightness = results.save_figure(fig, os.path.join(out_dir, "tightness_vs_demonstrations.png"))
    return [scatter, tightness]


EXPERIMENT = register(
    Experiment(
        name="dse-bound",
        description="Lemma 3: NashGap of BC from N demos in dominant-strategy games vs its bound",
        config_type=DSEBoundConfig,
        settings=settings,
        run_chunk=run_chunk,
        summarize=summarize,
        plot=plot,
    )
)
