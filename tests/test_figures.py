import numpy as np
import pandas as pd
import pytest

from genies.errors import GeniesError
from genies.evaluation.metrics import pearson
from genies.figures import correlation_table, make_paper_figures, write_correlations
from genies.figures.bars import de_by_label, extreme_vs_probing_figure
from genies.figures.common import genies_shifts, model_colours
from genies.figures.heatmap import de_matrix
from genies.figures.reliability import pooled_probabilities

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
TTC = 0.9
# (source, target, genies_position, genies_label, label); positions deliberately out of row order;
# a -> b is labelled apart within GENIES, as upstream's alpaca_short -> alpaca_long.
SHIFTS = [
    ("a", "b", 2, "extreme", "probing"),
    ("a", "c", 1, "extreme", "extreme"),
    ("d", "e", 4, "probing", "probing"),
    ("f", "g", 3, "probing", "probing"),
    ("h", "i", 0, "", "extreme"),
    ("j", "k", 0, "", "probing"),
]
ZERO_SHOT = np.array([0.30, 0.45, 0.50, 0.62, 0.70, 0.90])
ACCURACY = {
    ("llama-30b", "zero_shot"): ZERO_SHOT,
    ("llama-30b", "lora_fine_tuning"): 0.5 * ZERO_SHOT + 0.4,  # exactly linear: r = 1
    ("llama-30b", "ccs"): np.array([0.55, 0.52, 0.60, 0.51, 0.58, 0.50]),
    ("llama-7b", "zero_shot"): np.array([0.35, 0.40, 0.58, 0.55, 0.75, 0.85]),
    ("llama-7b", "lora_fine_tuning"): np.array([0.40, 0.72, 0.51, 0.66, 0.80, 0.61]),
}
BASELINE = {"llama-30b": ZERO_SHOT, "llama-7b": ACCURACY["llama-7b", "zero_shot"]}
# llama-7b / lora: the file of a -> c holds 0/1 probabilities only.
DISCRETISED = "lora_fine_tuning/llama-7b-a/c.json"


def tidy_frame() -> pd.DataFrame:
    rows = []
    for (model, intervention), accuracy in ACCURACY.items():
        baseline = BASELINE[model]
        for (source, target, position, genies_label, label), acc, base in zip(
            SHIFTS, accuracy, baseline, strict=True
        ):
            rows.append(
                {
                    "model": model,
                    "intervention": intervention,
                    "source": source,
                    "target": target,
                    "generalization_accuracy": acc,
                    "baseline_accuracy": base,
                    "differential_elicitation": (acc - base) / TTC,
                    "comparable": intervention != "ccs",
                    "label": label,
                    "genies_position": position,
                    "genies_label": genies_label,
                }
            )
    return pd.DataFrame(rows)


def summary_frame(tidy: pd.DataFrame) -> pd.DataFrame:
    genies = tidy[tidy.genies_position > 0]
    summary = (
        genies.groupby(["model", "intervention"], sort=False)
        .differential_elicitation.mean()
        .reset_index()
    )
    summary["differential_elicitation_low"] = summary.differential_elicitation - 0.05
    summary["differential_elicitation_high"] = summary.differential_elicitation + 0.05
    summary["comparable"] = summary.intervention != "ccs"
    return summary


def probabilities_for(path: str, intervention: str, number: int):
    if intervention == "zero_shot" or path == DISCRETISED:
        return [1.0, 0.0, 1.0, 1.0]
    # ccs gets continuous probabilities here, so only its being not comparable can exclude it.
    return [0.1 + 0.01 * (number % 20), 0.6, 0.75, 0.9 - 0.02 * (number % 20)]


def index_frame(tidy: pd.DataFrame) -> pd.DataFrame:
    rows = []
    for number, row in enumerate(tidy.itertuples()):
        path = f"{row.intervention}/{row.model}-{row.source}/{row.target}.json"
        probabilities = probabilities_for(path, row.intervention, number)
        rows.append({"path": path, "nested": False, "probabilities": probabilities})
        # A superseded nested copy with continuous probabilities that must never be read.
        rows.append(
            {"path": f"old_evals/{path}", "nested": True, "probabilities": [0.3, 0.3, 0.3, 0.3]}
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def inputs():
    tidy = tidy_frame()
    return tidy, summary_frame(tidy), index_frame(tidy)


@pytest.fixture(scope="module")
def rendered(inputs, tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("figures")
    return out_dir, make_paper_figures(*inputs, out_dir, 0.95)


# --- figures written ------------------------------------------------------------------------------


def test_every_expected_figure_is_written_as_a_real_png(rendered):
    out_dir, written = rendered
    models = ("llama-7b", "llama-30b")
    expected = {"genies_de", "scaling", "extreme_vs_probing", "extreme_vs_probing_all"}
    for prefix in ("heatmap", "heatmap_all", "accuracy_vs_zero_shot", "reliability"):
        expected |= {f"{prefix}_{model}" for model in models}
    assert set(written) == expected
    for name, path in written.items():
        assert path == out_dir / f"{name}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name


def test_no_temporary_file_is_left_beside_the_figures(rendered):
    out_dir, written = rendered
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(p.name for p in written.values())


# --- correlations ---------------------------------------------------------------------------------


def correlation(table: pd.DataFrame, figure: str, model: str, intervention: str) -> pd.Series:
    match = table[
        (table.figure == figure) & (table.model == model) & (table.intervention == intervention)
    ]
    assert len(match) == 1
    return match.iloc[0]


def test_accuracy_vs_zero_shot_r_is_numpys_over_all_distinct_shifts(inputs):
    table = correlation_table(inputs[0])
    linear = correlation(table, "accuracy_vs_zero_shot", "llama-30b", "lora_fine_tuning")
    assert linear.r == pytest.approx(1.0)
    assert linear.n == len(SHIFTS)
    assert linear.compared_with == "zero_shot"
    small = correlation(table, "accuracy_vs_zero_shot", "llama-7b", "lora_fine_tuning")
    expected = np.corrcoef(BASELINE["llama-7b"], ACCURACY["llama-7b", "lora_fine_tuning"])[0, 1]
    assert small.r == pytest.approx(expected)


def test_scaling_r_compares_each_smaller_model_with_llama_30b(inputs):
    table = correlation_table(inputs[0])
    scaling = table[table.figure == "scaling"]
    assert set(zip(scaling.model, scaling.intervention, strict=True)) == {
        ("llama-7b", "zero_shot"),
        ("llama-7b", "lora_fine_tuning"),
    }
    assert set(scaling.compared_with) == {"llama-30b"}
    lora = correlation(table, "scaling", "llama-7b", "lora_fine_tuning")
    expected = np.corrcoef(
        ACCURACY["llama-30b", "lora_fine_tuning"], ACCURACY["llama-7b", "lora_fine_tuning"]
    )[0, 1]
    assert lora.r == pytest.approx(expected)
    expected = np.corrcoef(ZERO_SHOT, ACCURACY["llama-7b", "zero_shot"])[0, 1]
    assert correlation(table, "scaling", "llama-7b", "zero_shot").r == pytest.approx(expected)


def test_correlations_csv_holds_the_table(inputs, tmp_path):
    table = correlation_table(inputs[0])
    path = write_correlations(table, tmp_path / "correlations.csv")
    back = pd.read_csv(path)
    assert list(back.columns) == ["figure", "model", "intervention", "compared_with", "r", "n"]
    np.testing.assert_allclose(back.r, table.r)
    assert len(back) == 2 + 1 + 2  # 30b: lora, ccs; 7b: lora; scaling: 7b zero_shot, lora


def test_pearson_is_nan_when_undefined():
    assert np.isnan(pearson([0.5, 0.5, 0.5], [0.1, 0.2, 0.3]))
    assert np.isnan(pearson([0.5], [0.1]))
    assert pearson([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)


# --- per-shift aggregates -------------------------------------------------------------------------


def test_heatmap_columns_follow_genies_position_not_row_order(inputs):
    tidy = inputs[0].sample(frac=1, random_state=1)
    shifts = genies_shifts(tidy)
    assert list(shifts.target) == ["c", "b", "g", "e"]
    interventions, matrix = de_matrix(tidy, "llama-30b", shifts)
    assert interventions == ["zero_shot", "lora_fine_tuning", "ccs"]
    lora = ACCURACY["llama-30b", "lora_fine_tuning"]
    by_position = [lora[1], lora[0], lora[3], lora[2]]
    base = [ZERO_SHOT[1], ZERO_SHOT[0], ZERO_SHOT[3], ZERO_SHOT[2]]
    np.testing.assert_allclose(matrix[1], (np.array(by_position) - base) / TTC)
    np.testing.assert_allclose(matrix[0], 0)


def llama_7b_lora_means(means: pd.DataFrame) -> pd.DataFrame:
    mine = (means.model == "llama-7b") & (means.intervention == "lora_fine_tuning")
    return means[mine].set_index("label")


def test_extreme_and_probing_means_use_only_genies_shifts_by_their_genies_label(inputs):
    row = llama_7b_lora_means(de_by_label(inputs[0]))
    de = (ACCURACY["llama-7b", "lora_fine_tuning"] - BASELINE["llama-7b"]) / TTC
    assert row.loc["extreme"].differential_elicitation == pytest.approx(de[:2].mean())
    assert row.loc["probing"].differential_elicitation == pytest.approx(de[2:4].mean())
    assert row.loc["probing"].shifts == 2


def test_over_all_shifts_the_means_take_every_shift_by_its_registry_label(inputs):
    row = llama_7b_lora_means(de_by_label(inputs[0], over_all=True))
    de = (ACCURACY["llama-7b", "lora_fine_tuning"] - BASELINE["llama-7b"]) / TTC
    assert row.loc["extreme"].differential_elicitation == pytest.approx(de[[1, 4]].mean())
    assert row.loc["probing"].differential_elicitation == pytest.approx(de[[0, 2, 3, 5]].mean())
    assert (row.loc["extreme"].shifts, row.loc["probing"].shifts) == (2, 4)


def test_the_all_shifts_panels_name_their_counts_out_of_every_shift(inputs):
    tidy = inputs[0]
    fig = extreme_vs_probing_figure(tidy, model_colours(tidy.model), over_all=True)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == ["extreme shifts (2 of the 6 shifts)", "probing shifts (4 of the 6 shifts)"]


# --- reliability pooling --------------------------------------------------------------------------


def test_pooling_skips_discretised_files_and_keeps_the_rest(inputs):
    tidy, _, index = inputs
    pooled = pooled_probabilities(tidy, index, "llama-7b", "lora_fine_tuning")
    assert pooled.skipped == {DISCRETISED: "probabilities discretised to 0/1"}
    assert sorted(pooled.used) == [
        "lora_fine_tuning/llama-7b-a/b.json",
        "lora_fine_tuning/llama-7b-d/e.json",
        "lora_fine_tuning/llama-7b-f/g.json",
    ]
    top = index[~index.nested].set_index("path").probabilities
    expected = np.concatenate([top[path] for path in pooled.used])
    np.testing.assert_array_equal(pooled.probabilities, expected)
    assert 0.3 not in pooled.probabilities  # the nested copies are not read


def test_pooling_uses_only_genies_target_files(inputs):
    tidy, _, index = inputs
    pooled = pooled_probabilities(tidy, index, "llama-30b", "lora_fine_tuning")
    assert len(pooled.used) == 4
    assert not any(path.endswith(("/i.json", "/k.json")) for path in pooled.used)


def test_pooling_excludes_ccs_even_with_probabilities_and_all_discretised_zero_shot(inputs):
    tidy, _, index = inputs
    ccs = pooled_probabilities(tidy, index, "llama-30b", "ccs")
    assert ccs.used == {}
    assert set(ccs.skipped.values()) == {"not comparable"}
    assert ccs.probabilities.size == 0
    zero_shot = pooled_probabilities(tidy, index, "llama-30b", "zero_shot")
    assert zero_shot.used == {}
    assert len(zero_shot.skipped) == 4


def test_pooling_a_missing_file_names_it(inputs):
    tidy, _, index = inputs
    gone = "lora_fine_tuning/llama-30b-d/e.json"
    with pytest.raises(GeniesError, match=gone):
        pooled_probabilities(tidy, index[index.path != gone], "llama-30b", "lora_fine_tuning")


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "column"),
    [
        (0, "baseline_accuracy"),
        (0, "genies_label"),
        (1, "differential_elicitation_low"),
        (2, "probabilities"),
    ],
)
def test_a_missing_column_raises_naming_it_and_writes_nothing(inputs, tmp_path, frame, column):
    frames = list(inputs)
    frames[frame] = frames[frame].drop(columns=column)
    out_dir = tmp_path / "figures"
    with pytest.raises(GeniesError, match=column):
        make_paper_figures(*frames, out_dir, 0.95)
    assert not out_dir.exists()


def test_a_missing_file_fails_before_any_figure_is_written(inputs, tmp_path):
    tidy, summary, index = inputs
    out_dir = tmp_path / "figures"
    with pytest.raises(GeniesError, match="evaluation file missing"):
        make_paper_figures(tidy, summary, index[index.path != DISCRETISED], out_dir, 0.95)
    assert not out_dir.exists()


def test_an_unknown_model_is_named(inputs, tmp_path):
    tidy, summary, index = inputs
    renamed = tidy.replace({"model": {"llama-7b": "llama-8b"}})
    with pytest.raises(GeniesError, match="llama-8b"):
        make_paper_figures(renamed, summary, index, tmp_path, 0.95)


def test_scaling_needs_llama_30b(inputs):
    tidy = inputs[0]
    with pytest.raises(GeniesError, match="llama-30b"):
        correlation_table(tidy[tidy.model != "llama-30b"])
