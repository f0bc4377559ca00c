"""Several models side by side per shift (genies.evaluation.model_tables.models_per_shift and
genies.figures.models_per_shift), on hand-made evaluations and tidy rows whose numbers are known."""

import numpy as np
import pandas as pd
import pytest

from genies.data.shifts import load_shifts
from genies.errors import GeniesError
from genies.evaluation.model_tables import model_shift_table, models_per_shift
from genies.figures import make_model_figures
from genies.figures.common import model_colours
from genies.figures.models_per_shift import models_per_shift_figure
from genies.files.tables import write_csv
from tests.helpers import RAW_DIR
from tests.test_model_figures import summary_of, tidy_frame
from tests.test_model_tables import evaluation as made_up_evaluation

BOOTSTRAP = {"seed": 0, "resamples": 500, "level": 0.9}
REGISTRY = load_shifts(RAW_DIR)
SHIFTS = [REGISTRY.lookup("alpaca_short->alpaca_long"), REGISTRY.lookup("code->us_history")]
METHODS = ["zero_shot", "mms", "random"]
PAIRS, EXAMPLES = 12, 4
# per model, (method, source, distribution) -> correct pairs of PAIRS; any other evaluation: 6
CORRECT = {
    "llama": {
        ("zero_shot", "alpaca_short", "alpaca_long"): 3,
        ("mms", "alpaca_short", "alpaca_long"): 9,
        ("random", "alpaca_short", "alpaca_long"): 6,
        ("zero_shot", "code", "us_history"): 5,
        ("mms", "code", "us_history"): 4,
        ("random", "code", "us_history"): 7,
    },
    "neox": {
        ("zero_shot", "alpaca_short", "alpaca_long"): 8,
        ("mms", "alpaca_short", "alpaca_long"): 2,
        ("random", "alpaca_short", "alpaca_long"): 6,
        ("zero_shot", "code", "us_history"): 12,
        ("mms", "code", "us_history"): 4,
        ("random", "code", "us_history"): 0,
    },
}


def evaluation(correct: int, shuffle: int = 0) -> pd.DataFrame:
    """PAIRS pairs over EXAMPLES examples, `correct` of them (P = 0.8; others P = 0.3), in an
    order rotated by `shuffle` (pairs are matched by id, never by position)."""
    frame = made_up_evaluation(correct, PAIRS, examples=EXAMPLES)
    return frame.iloc[np.roll(np.arange(PAIRS), shuffle)].reset_index(drop=True)


def evaluations(model: str, method: str, source: str, distribution: str) -> pd.DataFrame:
    return evaluation(CORRECT[model].get((method, source, distribution), 6), len(model))


@pytest.fixture(scope="module")
def tidy():
    comparable = dict.fromkeys(METHODS, True)
    return pd.concat(
        [
            model_shift_table(
                model,
                METHODS,
                SHIFTS,
                REGISTRY,
                lambda *key, model=model: evaluations(model, *key),
                comparable,
                ["zero_shot", "mms"],
                BOOTSTRAP,
            )
            for model in CORRECT
        ],
        ignore_index=True,
    )


def test_one_row_per_shift_and_intervention_one_column_per_model(tidy, tmp_path):
    write_csv(models_per_shift(tidy, evaluations, BOOTSTRAP), tmp_path / "t.csv")
    table = pd.read_csv(tmp_path / "t.csv")
    assert list(table.columns[:4]) == ["source", "target", "genies_position", "intervention"]
    assert len(table) == len(SHIFTS) * len(METHODS)
    for row in table.itertuples(index=False):
        key = (row.intervention, row.source, row.target)
        expected = {model: CORRECT[model][key] / PAIRS for model in CORRECT}
        assert row.llama == pytest.approx(expected["llama"])
        assert row.neox == pytest.approx(expected["neox"])
        # the tidy rows' own numbers
        mine = tidy[(tidy.intervention == row.intervention) & (tidy.target == row.target)]
        assert mine.set_index("model").generalization_accuracy.to_dict() == pytest.approx(expected)
        difference = expected["neox"] - expected["llama"]
        assert row.neox_minus_llama == pytest.approx(difference)
        assert row.neox_minus_llama_low <= difference + 1e-12
        assert difference - 1e-12 <= row.neox_minus_llama_high


def test_the_difference_is_paired_pair_by_pair():
    """Two models scoring the same pairs alike differ by exactly 0 in every resample (an unpaired
    bootstrap would give an interval around 0); all wrong against all right differ by 1."""
    same = {"a": 6, "b": 6}
    extreme = {"a": 0, "b": PAIRS}
    for counts, expected in ((same, (0.0, 0.0)), (extreme, (1.0, 1.0))):

        def scored(model, *_, counts=counts):
            return evaluation(counts[model], len(model))

        rows = pd.DataFrame(
            {
                "model": ["a", "b"],
                "intervention": "mms",
                "source": "s",
                "target": "t",
                "genies_position": 0,
                "generalization_accuracy": [counts["a"] / PAIRS, counts["b"] / PAIRS],
            }
        )
        table = models_per_shift(rows, scored, BOOTSTRAP)
        assert (table.b_minus_a_low[0], table.b_minus_a_high[0]) == expected


def test_models_scored_on_different_pairs_are_refused(tidy):
    def other_pairs(model, *key):
        frame = evaluations(model, *key)
        if model == "neox":
            frame = frame.assign(pair_id=frame.pair_id + "x")
        return frame

    with pytest.raises(GeniesError, match="neox.*different pairs"):
        models_per_shift(tidy, other_pairs, BOOTSTRAP)


def test_one_model_gets_its_column_and_no_difference(tidy):
    table = models_per_shift(tidy[tidy.model == "llama"], evaluations, BOOTSTRAP)
    assert list(table.columns) == ["source", "target", "genies_position", "intervention", "llama"]


# --- the figure -----------------------------------------------------------------------------------


def test_the_figure_draws_each_models_accuracy_per_shift_in_its_colour(tmp_path):
    rows = tidy_frame()
    rows = rows[rows.genies_position > 0]  # what the figures job draws when there are any
    written = make_model_figures(rows, summary_of(rows), tmp_path, 0.95)
    assert written["models_per_shift"].read_bytes().startswith(b"\x89PNG")
    colours = model_colours(rows.model)
    fig = models_per_shift_figure(rows, colours, 0.8)
    assert "(80% bootstrap intervals over the target's examples" in fig.get_suptitle()
    panels = {
        ax.get_title().removesuffix(" (not comparable)"): ax for ax in fig.axes if ax.get_visible()
    }
    assert sorted(panels) == sorted(set(rows.intervention))
    assert "my_oracle (not comparable)" in [ax.get_title() for ax in fig.axes]
    for intervention, ax in panels.items():
        mine = rows[rows.intervention == intervention]
        for model in dict.fromkeys(rows.model):
            bars = [p for p in ax.patches if p.get_facecolor()[:3] == _rgb(colours[model])]
            expected = mine[mine.model == model].sort_values("genies_position")
            heights = [bar.get_height() for bar in sorted(bars, key=lambda b: b.get_x())]
            assert heights == pytest.approx(list(expected.generalization_accuracy))


def _rgb(colour: str) -> tuple[float, float, float]:
    return tuple(int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))


def test_one_model_draws_no_comparison(tmp_path):
    rows = tidy_frame()
    one = rows[rows.model == "tiny-llama"]
    assert "models_per_shift" not in make_model_figures(one, summary_of(one), tmp_path, 0.95)
    assert not (tmp_path / "models_per_shift.png").exists()
    with pytest.raises(GeniesError, match="two models or more"):
        models_per_shift_figure(one, model_colours(["tiny-llama"]), 0.95)
