import numpy as np
import pandas as pd
import pytest

from genies.errors import GeniesError
from genies.evaluation.summary import genies_summary
from genies.figures import make_model_figures
from genies.figures.bars import genies_de_figure
from genies.figures.common import PAPER_MODEL_COLOURS, interventions_of, model_colours
from genies.figures.heatmap import heatmap_figure
from genies.figures.ours import drawn_rows
from genies.figures.scatter import accuracy_vs_zero_shot_figure

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODELS = ("tiny-llama", "smollm2-135m")
# In order of appearance; a user-registered oracle marked not comparable by its rows.
INTERVENTIONS = ("probe", "random", "my_oracle", "zero_shot", "lora_fine_tuning")
INCOMPARABLE = "my_oracle"
# (source, target, genies_position, genies_label): positions out of row order, one non-GENIES.
SHIFTS = [
    ("a", "b", 2, "extreme"),
    ("a", "c", 1, "extreme"),
    ("d", "e", 4, "probing"),
    ("f", "g", 3, "probing"),
    ("h", "i", 0, ""),
]
TTC = 0.9
# The columns of genies.paper.tables.recompute, in its order.
TIDY_COLUMNS = [
    "model",
    "intervention",
    "source",
    "target",
    "target_reference",
    "generalization_accuracy",
    "baseline_accuracy",
    "baseline_intervention",
    "target_tuned_capability",
    "target_tuned_capability_intervention",
    "source_ID_accuracy",
    "RMS_calibration_error",
    "differential_elicitation",
    "elicitation",
    "baseline_elicitation",
    "rms_calibration_error",
    "brier_score",
    "n_pairs",
    "tied_pairs",
    "discretised",
    "comparable",
    "accuracy_low",
    "accuracy_high",
    "label",
    "category",
    "genies_position",
    "genies_label",
]


def tidy_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    rows = []
    for model in MODELS:
        zero_shot = rng.uniform(0.4, 0.7, len(SHIFTS))
        for intervention in INTERVENTIONS:
            accuracy = zero_shot if intervention == "zero_shot" else rng.uniform(0.3, 0.9, 5)
            for (source, target, position, label), acc, base in zip(
                SHIFTS, accuracy, zero_shot, strict=True
            ):
                rows.append(
                    {
                        "model": model,
                        "intervention": intervention,
                        "source": source,
                        "target": target,
                        "target_reference": target,
                        "generalization_accuracy": acc,
                        "baseline_accuracy": base,
                        "baseline_intervention": "zero_shot",
                        "target_tuned_capability": TTC,
                        "target_tuned_capability_intervention": "lora_fine_tuning",
                        "source_ID_accuracy": acc + 0.05,
                        "RMS_calibration_error": 0.1,
                        "differential_elicitation": (acc - base) / TTC,
                        "elicitation": acc / TTC,
                        "baseline_elicitation": base / TTC,
                        "rms_calibration_error": 0.08,
                        "brier_score": 0.2,
                        "n_pairs": 40,
                        "tied_pairs": 0,
                        "discretised": intervention == "random",
                        "comparable": intervention != INCOMPARABLE,
                        "accuracy_low": acc - 0.1,
                        "accuracy_high": acc + 0.1,
                        "label": label or "other",
                        "category": "made up",
                        "genies_position": position,
                        "genies_label": label,
                    }
                )
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def summary_of(tidy: pd.DataFrame) -> pd.DataFrame:
    return genies_summary(tidy, seed=0, resamples=200, level=0.95)


@pytest.fixture(scope="module")
def tidy():
    return tidy_frame()


def assert_real_pngs(written: dict, out_dir) -> None:
    for name, path in written.items():
        assert path == out_dir / f"{name}.png"
        data = path.read_bytes()
        assert data.startswith(PNG_MAGIC), name
        assert len(data) > 10_000, name
    # Nothing else, such as a temporary file, is left beside the figures.
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{n}.png" for n in written)


def tick_texts(labels) -> list[str]:
    return [label.get_text() for label in labels]


# --- figures written ------------------------------------------------------------------------------


def test_every_figure_of_made_up_models_is_written_as_a_real_png(tidy, tmp_path):
    written = make_model_figures(tidy, summary_of(tidy), tmp_path, 0.95)
    expected = {"genies_de", "extreme_vs_probing", "models_per_shift"}  # two models: compared
    # heatmap_all, extreme_vs_probing_all: the runs have a shift beyond the GENIES ones
    expected.add("extreme_vs_probing_all")
    for prefix in ("heatmap", "heatmap_all", "accuracy_vs_zero_shot"):
        expected |= {f"{prefix}_{model}" for model in MODELS}
    assert set(written) == expected
    assert_real_pngs(written, tmp_path)


def test_one_shift_of_one_model_still_draws_every_figure(tidy, tmp_path):
    one = tidy[(tidy.model == "tiny-llama") & (tidy.target == "c")]
    written = make_model_figures(one, summary_of(one), tmp_path, 0.95)
    assert set(written) == {
        "genies_de",
        "heatmap_tiny-llama",
        "accuracy_vs_zero_shot_tiny-llama",
        "extreme_vs_probing",
    }
    assert_real_pngs(written, tmp_path)


def test_a_single_point_shows_an_undefined_r(tidy):
    one = tidy[(tidy.model == "tiny-llama") & (tidy.target == "c")]
    fig = accuracy_vs_zero_shot_figure(one, "tiny-llama", "#000000")
    texts = [text.get_text() for ax in fig.axes for text in ax.texts]
    assert texts and all(text == "r = undefined\nn = 1" for text in texts)


def test_runs_without_a_genies_shift_draw_all_their_shifts(tidy, tmp_path):
    outside = tidy.assign(genies_position=0, genies_label="")
    summary = summary_of(outside)
    assert summary.empty  # genies_summary covers GENIES shifts only
    written = make_model_figures(outside, summary, tmp_path / "no_summary", 0.95)
    assert set(written) == {"models_per_shift"} | {
        f"{p}_{m}" for p in ("heatmap", "accuracy_vs_zero_shot") for m in MODELS
    }
    assert_real_pngs(written, tmp_path / "no_summary")
    # A summary over all the run's shifts is drawn too.
    over_all = summary_of(tidy.assign(genies_position=1))
    written = make_model_figures(outside, over_all, tmp_path / "summary", 0.95)
    assert set(written) == {"genies_de", "models_per_shift"} | {f"heatmap_{m}" for m in MODELS} | {
        f"accuracy_vs_zero_shot_{m}" for m in MODELS
    }
    assert_real_pngs(written, tmp_path / "summary")
    heatmap = heatmap_figure(drawn_rows(outside), "tiny-llama")
    assert tick_texts(heatmap.axes[0].get_xticklabels()) == [
        f"{source} → {target}" for source, target, _, _ in SHIFTS
    ]


# --- shifts, order, colours, comparability --------------------------------------------------------


def test_with_genies_shifts_the_heatmap_draws_only_them_in_genies_order(tidy):
    heatmap = heatmap_figure(drawn_rows(tidy), "smollm2-135m")
    assert tick_texts(heatmap.axes[0].get_xticklabels()) == ["a → c", "a → b", "f → g", "d → e"]


def test_paper_interventions_come_first_then_the_others_as_they_appear(tidy):
    expected = ["zero_shot", "lora_fine_tuning", "probe", "random", "my_oracle"]
    assert interventions_of(tidy) == expected
    heatmap = heatmap_figure(drawn_rows(tidy), "tiny-llama")
    labels = tick_texts(heatmap.axes[0].get_yticklabels())
    assert [label.split(" ")[0] for label in labels] == expected


def test_not_comparable_comes_from_the_comparable_column(tidy):
    summary = summary_of(tidy)
    fig = genies_de_figure(summary, model_colours(MODELS), 0.9)
    assert "with 90% bootstrap intervals resampling sources" in fig.get_suptitle()
    labels = tick_texts(fig.axes[0].get_xticklabels())
    assert [label for label in labels if "not comparable" in label] == [
        f"{INCOMPARABLE}\n(not comparable)"
    ]
    # Marked comparable by its rows, the intervention loses the label.
    fig = genies_de_figure(summary.assign(comparable=True), model_colours(MODELS), 0.95)
    assert not any("not comparable" in label for label in tick_texts(fig.axes[0].get_xticklabels()))


def test_made_up_models_get_distinct_spare_colours_whatever_their_order():
    colours = model_colours(["tiny-llama", "llama-7b", "smollm2-135m"])
    assert colours["llama-7b"] == PAPER_MODEL_COLOURS["llama-7b"]
    ours = {colours["tiny-llama"], colours["smollm2-135m"]}
    assert len(ours) == 2
    assert not ours & set(PAPER_MODEL_COLOURS.values())
    assert model_colours(["smollm2-135m", "tiny-llama"]) == model_colours(reversed(MODELS))


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "column", ["comparable", "baseline_accuracy", "genies_position", "differential_elicitation"]
)
def test_a_tidy_missing_a_column_raises_naming_it_and_writes_nothing(tidy, tmp_path, column):
    out_dir = tmp_path / "figures"
    with pytest.raises(GeniesError, match=column):
        make_model_figures(tidy.drop(columns=column), summary_of(tidy), out_dir, 0.95)
    assert not out_dir.exists()


def test_a_summary_missing_a_column_raises_naming_it_and_writes_nothing(tidy, tmp_path):
    out_dir = tmp_path / "figures"
    summary = summary_of(tidy).drop(columns="differential_elicitation_high")
    with pytest.raises(GeniesError, match="differential_elicitation_high"):
        make_model_figures(tidy, summary, out_dir, 0.95)
    assert not out_dir.exists()


def test_an_empty_tidy_raises_and_writes_nothing(tidy, tmp_path):
    out_dir = tmp_path / "figures"
    with pytest.raises(GeniesError, match="no rows"):
        make_model_figures(tidy.iloc[:0], summary_of(tidy), out_dir, 0.95)
    assert not out_dir.exists()


def test_a_heatmap_of_many_shifts_runs_them_down_the_rows(tidy):
    """Past 20 shifts (the paper's 56) each shift gets a row and a legible label."""
    many = pd.concat(
        [tidy.assign(source=f"s{i}", genies_position=0, genies_label="") for i in range(6)]
    )
    shifts = many[["source", "target"]].drop_duplicates()
    assert len(shifts) == 30
    tall = heatmap_figure(many, "tiny-llama").axes[0]
    assert [t.get_text() for t in tall.get_yticklabels()] == [
        f"{s} → {t}" for s, t in shifts.itertuples(index=False)
    ]
    assert len(tall.get_xticklabels()) == len(INTERVENTIONS)
    wide = heatmap_figure(tidy, "tiny-llama").axes[0]
    assert len(wide.get_xticklabels()) == len(SHIFTS)
