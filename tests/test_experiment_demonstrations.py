"""The ``demonstrations`` experiment: NashGap of learned policies against the number of demos.

One quick run through the runner (one compiled program: the quick config's three families,
general-sum with a QRE expert, general-sum with the homotopy's Nash expert and
dominant-strategy, all 2-player, share it), reused by every test; the re-run of a chunk hits
the same compiled program (a new nash_gap_tol or nash_end_temperature is an array leaf).
Expected numbers are derived beside each.
"""

from __future__ import annotations

import numpy as np
import pytest

import jaxmail as jm  # before any JAX computation: the XLA guard
from jaxmail.experiments import demonstrations as demo
from jaxmail.experiments import results, runner

COLUMNS = [
    "family",
    "seed",
    "learner",
    "num_trajectories",
    "num_samples",
    "eps_bc",
    "eps_rho",
    "nash_gap",
    "expert_nash_gap",
    "reward_bound",
    "expert_gap_tol",
    "value_gap",
    "converged",
    "expert_converged",
    "chunk_crc32",  # the runner's per-chunk checksum, always last
]


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    out = tmp_path_factory.mktemp("demonstrations")
    config = demo.DemonstrationsConfig.quick()
    runner.run(demo.EXPERIMENT, config, out, progress=False)
    return config, out, results.read_table(out / "results.csv")


def test_quick_run_writes_the_files(quick):
    config, out, table = quick
    header, _ = results.read_rows(out / "results.csv")
    assert header == COLUMNS
    # quick: 3 families x 4 seeds x 4 learners x 3 sizes = 144 rows, one per (seed, learner, N).
    assert (config.families, config.seeds, config.dataset_sizes) == (
        ("general_sum", "general_sum_nash", "dominant"),
        4,
        (1, 8, 64),
    )
    assert len(table["seed"]) == 3 * 4 * len(demo.LEARNERS) * 3 == 144
    for family in config.families:
        for seed in range(config.seeds):
            for learner in demo.LEARNERS:
                sel = results.select(table, family=family, seed=seed, learner=learner)
                assert sel["num_trajectories"].tolist() == [1, 8, 64]
                assert np.all(np.diff(sel["num_samples"]) > 0)  # nested datasets (truncate)
    summary = (out / "summary.md").read_text()
    assert summary.startswith("# demonstrations")
    assert "## Median NashGap" in summary and "| random general-sum | bc |" in summary
    figures = sorted(p.name for p in out.glob("*.png"))
    assert figures == ["bc_error_vs_demonstrations.png", "nash_gap_vs_demonstrations.png"]
    for name in figures:
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_are_sane(quick):
    config, _, table = quick
    assert bool(np.all(table["converged"]))
    # The QRE and dominant experts always converge here; the Nash family's flag is the
    # homotopy's certificate (test_nash_expert_is_certified).
    exact = table["family"] != "general_sum_nash"
    assert bool(np.all(table["expert_converged"][exact]))
    # L1 distances lie in [0, 2]; NashGap >= 0 up to float32 rounding of values of size
    # 1/(1-gamma) = 10 (1e-4 / (1 - gamma) = 1e-3).
    tol = demo.violation_tolerance(config.discount)
    for name in ("eps_bc", "eps_rho"):
        assert np.all(table[name] >= -1e-6) and np.all(table[name] <= 2 + 1e-5)
    assert np.all(table["nash_gap"] >= -tol) and np.all(table["expert_nash_gap"] >= -tol)
    # The QRE expert at tau = 0.2 is a regularised equilibrium, not a Nash one: its gap is > 0
    # (0.28 median in the quick run); the dominant expert is an exact equilibrium (gap 0).
    gs = results.select(table, family="general_sum")
    assert np.all(gs["expert_nash_gap"] > 1e-3)
    dominant = results.select(table, family="dominant")
    assert np.all(np.abs(dominant["expert_nash_gap"]) <= tol)


def test_bc_error_falls_with_data(quick):
    config, _, table = quick
    sizes = config.dataset_sizes
    # General-sum (full-support QRE expert, A = 2): the MLE's L1 error at a state seen m times
    # is about 2 sqrt(2 p (1 - p) / (pi m)), so it falls like 1/sqrt(samples): 64x the data
    # gives ~8x less error once every state is seen (more where N = 1 misses a state, whose
    # policy is then uniform). Required, on the mean over the 4 seeds: strictly decreasing in
    # N, and a fall by at least 2x from N = 1 to N = 64 (a margin of 4x below the ~8x expected).
    means = [
        np.mean(
            results.select(table, family="general_sum", learner="bc", num_trajectories=n)["eps_bc"]
        )
        for n in sizes
    ]
    assert np.all(np.diff(means) < 0), means
    assert means[0] >= 2 * means[-1], means
    # Dominant-strategy (deterministic expert): the MLE equals the expert at every visited state
    # and is uniform elsewhere, so eps_BC = sum over unvisited s of d_E(s) ||u - e_a||_1 with
    # ||u - e_a||_1 = 2 (1 - 1/A) = 1 at A = 2. The visited set grows with N (nested data), so
    # eps_BC is non-increasing in N for EVERY seed (up to float32 rounding, 1e-6).
    for seed in range(config.seeds):
        sel = results.select(table, family="dominant", learner="bc", seed=seed)
        assert np.all(np.diff(sel["eps_bc"]) <= 1e-6), sel["eps_bc"]


def test_lemma3_holds_for_every_learner_on_dominant_games(quick):
    config, _, table = quick
    dominant = results.select(table, family="dominant")
    assert len(dominant["seed"]) == 4 * len(demo.LEARNERS) * 3  # 48 rows
    n = demo.family_players(config, "dominant")
    assert n == 2  # quick: (2n - 1) / (1 - gamma)^2 = 3 / 0.01 = 300
    bound = np.asarray(jm.theory.lemma3_bound(dominant["eps_bc"], n, config.discount))
    np.testing.assert_allclose(bound, 300 * dominant["eps_bc"], rtol=1e-6)
    # float32 tolerance: values of size 1/(1-gamma) = 10 -> 1e-4 / (1 - gamma) = 1e-3.
    tol = demo.violation_tolerance(config.discount)
    assert np.all(dominant["nash_gap"] <= bound + tol)
    # The finding reports the same count, and says it is no evidence in this family.
    lemma3 = [f for f in demo.findings(config, table) if f.claim.startswith("Lemma 3")]
    assert len(lemma3) == 1 and lemma3[0].checked == 48 and lemma3[0].violations == 0
    assert not lemma3[0].evidence and "ignore the actions" in lemma3[0].why
    # Its margin (NashGap / (bound + rounding allowance)) is below the family's ceiling
    # (1-gamma)/(2n-1): NashGap <= (range of u_i / 2) eps_BC/(1-gamma) <= r_max eps_BC/(1-gamma)
    # when the state distribution ignores the actions.
    assert lemma3[0].margin <= (1 - config.discount) / 3 + 1e-6


def test_value_gap_findings_hold_and_can_fail(quick):
    config, _, table = quick
    found = {f.claim: f for f in demo.findings(config, table)}
    value = [f for c, f in found.items() if c.startswith("ValueGap")]
    assert len(value) == 2 and all(f.evidence and f.status == "held" for f in value), value
    assert np.all(table["reward_bound"] <= 1 + 1e-6)  # rewards of the random families in [-1, 1]
    # A value gap above n r_max eps_BC/(1-gamma)^2 (a wrong metric) breaks both findings.
    broken = {k: v.copy() for k, v in table.items()}
    row = np.argmax(broken["eps_bc"])
    broken["value_gap"][row] = 1.0 + 2 * 2 * broken["eps_bc"][row] / (1 - config.discount) ** 2
    broken["value_gap"][row] += broken["eps_rho"][row] / (1 - config.discount)
    again = [f for f in demo.findings(config, broken) if f.claim.startswith("ValueGap")]
    assert [f.status for f in again] == ["failed", "failed"]


def test_summary_labels_model_based_learners(quick):
    config, _, table = quick
    summary = demo.summarize(config, table, "")
    assert "unequal" in summary and "model-based" in summary
    assert "Corollary 3" in summary and "## Bounds against measurements" in summary


def test_same_seed_same_numbers(quick):
    config, _, table = quick
    # Another chunk of chunk_size = 4 seeds, in another order: the same compiled program, and
    # each seed's numbers depend on its key alone (bit for bit: float32 written exactly).
    seeds = np.array([3, 1, 0, 2])
    for family in config.families:
        columns = demo.run_chunk(
            config, {"family": family}, runner.seed_keys(config.base_seed, seeds)
        )
        for row, seed in enumerate(seeds):
            sel = results.select(table, family=family, seed=int(seed))
            for name in ("eps_bc", "eps_rho", "nash_gap", "value_gap", "expert_nash_gap"):
                np.testing.assert_array_equal(
                    columns[name][row].reshape(-1), sel[name].astype(np.float32), err_msg=name
                )
            assert columns["learner"][row].reshape(-1).tolist() == sel["learner"].tolist()


def test_families_share_programs_by_shape():
    config = demo.DemonstrationsConfig()  # n = 3 for general-sum and dominant, 2 for zero-sum
    assert demo.program_families(config, "general_sum") == ("general_sum", "dominant")
    assert demo.program_families(config, "dominant") == ("general_sum", "dominant")
    # The Nash family has nash_players = 2 players: it joins the zero-sum program (the homotopy
    # is compiled there only).
    assert demo.program_families(config, "zero_sum") == ("general_sum_nash", "zero_sum")
    assert demo.program_families(config, "general_sum_nash") == ("general_sum_nash", "zero_sum")
    assert demo.program_families(config, "tag") == ("tag",)
    two = config.replace(num_players=2)
    assert demo.program_families(two, "dominant") == (
        "general_sum",
        "general_sum_nash",
        "zero_sum",
        "dominant",
    )
    assert demo.family_discount(config, "tag") == 0.8 and demo.family_players(config, "tag") == 2
    assert demo.settings(config) == [{"family": f} for f in demo.FAMILIES]


def test_config_checks():
    with pytest.raises(ValueError, match=r"families\[0\]: expected one of \[.*\], got 'poker'"):
        demo.DemonstrationsConfig.from_dict({"families": ["poker"]})
    with pytest.raises(ValueError, match=r"learners\[1\]: expected one of \[.*\], got 'dagger'"):
        demo.DemonstrationsConfig.from_dict({"learners": "bc,dagger"})
    with pytest.raises(ValueError, match="dataset_sizes"):
        demo.DemonstrationsConfig.from_dict({"dataset_sizes": [0, 4]})
    with pytest.raises(ValueError, match="temperature: expected a number > 0, got 0.0"):
        demo.DemonstrationsConfig.from_dict({"temperature": 0.0})
    with pytest.raises(ValueError, match="nash_gap_tol: expected a number > 0 or null"):
        demo.DemonstrationsConfig.from_dict({"nash_gap_tol": 0.0})
    with pytest.raises(ValueError, match="nash_end_temperature: expected a number > 0"):
        demo.DemonstrationsConfig.from_dict({"nash_end_temperature": -1.0})
    with pytest.raises(ValueError, match="nash_players: expected an int >= 1, got 0"):
        demo.DemonstrationsConfig.from_dict({"nash_players": 0})
    with pytest.raises(ValueError, match="unknown configuration key"):
        demo.DemonstrationsConfig.from_dict({"family": ["tag"]})
    assert demo.EXPERIMENT.name == "demonstrations"
    assert demo.DemonstrationsConfig().families == demo.FAMILIES


# The solver's default certificate tolerance (jaxmail.tolerances.nash_gap_zero_tol) in float32 at
# gamma = 0.9: 1000 eps max(1, r_max) / (1 - gamma) with eps = 2^-23 and r_max <= 1 (rewards
# U[-1, 1]): 1000 * 2^-23 / 0.1 = 1.192e-3.
QUICK_GAP_TOL = 1000 * 2.0**-23 / 0.1


def test_nash_expert_is_certified(quick):
    config, _, table = quick
    nash = results.select(table, family="general_sum_nash")
    assert len(nash["seed"]) == 4 * len(demo.LEARNERS) * 3  # 48 rows, as every family
    np.testing.assert_allclose(nash["expert_gap_tol"], QUICK_GAP_TOL, rtol=1e-6)
    assert np.all(np.isnan(table["expert_gap_tol"][table["family"] != "general_sum_nash"]))
    cert = demo.certification(table)
    assert cert.seeds.tolist() == [0, 1, 2, 3]
    # Tiny games (S = 3, A = 2, n = 2): the homotopy certifies most (measured: 53 of 64 at
    # S = 4); at least one of the four here, and every certified expert's NashGap, recomputed by
    # the experiment's metrics, is within gap_tol (+ float32 rounding of values of size
    # 1/(1-gamma) = 10: 1e-6).
    assert cert.certified.sum() >= 1
    assert np.all(cert.nash_gap[cert.certified] <= cert.gap_tol[cert.certified] + 1e-6)
    # An exact equilibrium, unlike the QRE at tau = 0.2 (NashGap > 1e-3, test_metrics_are_sane).
    assert np.all(np.abs(cert.nash_gap[cert.certified]) <= 2 * QUICK_GAP_TOL)
    found = demo.findings(config, table)
    last = found[-1]
    assert last.claim.startswith("The general-sum Nash experts (qre_homotopy) are certified")
    assert (last.checked, last.violations) == (4, 4 - int(cert.certified.sum()))
    summary = demo.summarize(config, table, "")
    assert f"{int(cert.certified.sum())} of 4 Nash experts certified" in summary


def test_uncertified_nash_expert_is_excluded_and_counted(quick):
    config, _, table = quick
    # End temperature 1e3 max|R| (an array leaf: the same compiled program): the path stops at
    # lambda max|R| = 1e-3, where the QRE is within ~1e-3 of the uniform policy, whose NashGap
    # in these random games is far above gap_tol = 1.2e-3. No expert is certified.
    stop = config.replace(nash_end_temperature=1e3)
    seeds = np.arange(config.seeds)
    columns = demo.run_chunk(
        stop, {"family": "general_sum_nash"}, runner.seed_keys(config.base_seed, seeds)
    )
    assert not columns["expert_converged"].any()
    assert np.all(columns["expert_nash_gap"] > columns["expert_gap_tol"])
    broken = {k: v.copy() for k, v in table.items()}
    for row, seed in enumerate(seeds):
        at = (table["family"] == "general_sum_nash") & (table["seed"] == seed)
        for name in ("expert_converged", "expert_nash_gap"):
            broken[name][at] = columns[name][row].reshape(-1)[0]
    found = {f.claim: f for f in demo.findings(config, broken)}
    cert = found[next(c for c in found if c.startswith("The general-sum Nash experts"))]
    assert (cert.checked, cert.violations, cert.status) == (4, 4, "failed")
    assert cert.margin > 1  # the largest NashGap / gap_tol
    # Excluded from the value-gap claims: only the other two families' 2 x 48 rows remain,
    # and the claims say why.
    for claim, f in found.items():
        if claim.startswith("ValueGap"):
            assert f.checked == 96 and "4 uncertified Nash experts are left out" in f.why
    summary = demo.summarize(config, broken, "")
    assert "0 of 4 Nash experts certified" in summary and "the 4 uncertified ones" in summary
    assert "| random general-sum, Nash expert |" not in summary  # no table row
    assert "random general-sum, Nash expert 0%" in summary  # but counted among the solvers
