"""The contract every intervention follows, and the inputs and states it works with.

An intervention declares what it reads (`Reads`: cache templates with the residual layers and
heads it needs, and/or the model itself), its hyper-parameters (a JSON schema with defaults, which
the config validation uses), and two methods:
- `fit(data, hyperparameters, seed) -> State` on the source's training pairs (one pair per
  example, drawn with the seed);
- `score(data, hyperparameters, state) -> P(preferred)`, one probability per evaluation pair
  (every pair of the split), in the order of `data.pairs`.
A method that learns nothing (`trained = False`) gets no training pairs; its scores are the same
whatever the source, so the pipeline computes them once.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, NamedTuple

import numpy as np
import pandas as pd
import torch

from genies.errors import GeniesError


@dataclass(frozen=True)
class Reads:
    """What a method reads. `templates` maps a cache template (see genies.models.templates) to
    the layers it needs, in the activation config's terms: {"residual": spec, "heads": spec} with
    spec "all", "none" or a list of indices (negative ones count from the end)."""

    templates: dict[str, dict[str, Any]] = field(default_factory=dict)
    model: bool = False
    # whether `fit` runs the model too, or only scoring does (few_shot's fit records its shot
    # pool: its job then imports no transformers and loads no weights)
    model_in_fit: bool = True

    def runs_model(self, job: str) -> bool:
        """Whether the method's `job` ("fit" or "evaluate") loads the model."""
        return self.model and (job == "evaluate" or self.model_in_fit)


@dataclass
class State:
    """What `fit` learnt: tensors (saved as safetensors) and JSON-able facts (saved beside)."""

    tensors: dict[str, torch.Tensor] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


class Features(NamedTuple):
    """Last-token features of both responses of every pair: [pairs, units, ...]; `units` names
    each unit (a residual hidden-state index, or a (layer, head) pair)."""

    chosen: np.ndarray
    rejected: np.ndarray
    units: list


@dataclass
class PairData:
    """The pairs a method fits on or scores, and what it may read about them.

    `pairs` has the columns of genies.data.pairs plus `example_index` (the example's row in the
    split, as in the activation cache). `activations` maps a template to the cache file's tensors
    and metadata; `manifest` is the model's (genies.models.manifest); `model` is the loaded model
    (genies.models.loading.LoadedModel) for a job that runs it; `shots` is the source's training
    split for few-shot prompting; `device` where the model runs ("cpu" or "cuda:N"); `settings`
    the model's resolved settings (batch_size, max_length, dtype: how to compute, never what);
    `work_dir`, when fitting, a folder of the fit's own that survives an interrupted job (for
    checkpoints to resume from).
    """

    pairs: pd.DataFrame
    activations: dict[str, tuple[dict[str, torch.Tensor], dict]] = field(default_factory=dict)
    model: Any = None
    manifest: dict[str, Any] = field(default_factory=dict)
    shots: pd.DataFrame | None = None
    device: str = "cpu"
    settings: dict[str, Any] = field(default_factory=dict)
    work_dir: Path | None = None

    def rows(self, template: str, positions: str) -> np.ndarray:
        """Cache rows of each pair's `positions` ("chosen_position" or "rejected_position")."""
        tensors, metadata = self.activations[template]
        examples = tensors["example_index"].numpy()
        responses = tensors["response_index"].numpy()
        wanted = self.pairs.example_index.to_numpy(), self.pairs[positions].to_numpy()
        # rows are in (example, response) order: an example's rows start where its index first is
        rows = np.searchsorted(examples, wanted[0]) + wanted[1]
        found = rows < len(examples)
        found[found] &= (examples[rows[found]] == wanted[0][found]) & (
            responses[rows[found]] == wanted[1][found]
        )
        if not found.all():
            raise GeniesError(
                f"{metadata.get('split')}: the {template} activation rows do not match the split "
                "(extracted from other examples?); rebuild the activation file"
            )
        return rows

    def features(self, template: str, kind: str) -> Features:
        """The `kind` ("residual" or "heads") features of `template` for both responses, float32."""
        tensors, metadata = self.activations[template]
        values = tensors[kind].float().numpy()
        if kind == "residual":
            units = list(metadata["residual_layers"])
        else:
            heads = values.shape[2]
            units = [(layer, head) for layer in metadata["head_layers"] for head in range(heads)]
            values = values.reshape(values.shape[0], len(units), -1)
        return Features(
            values[self.rows(template, "chosen_position")],
            values[self.rows(template, "rejected_position")],
            units,
        )


class Intervention:
    """Base class of every method; subclasses register with `@register` (genies.interventions)."""

    name: ClassVar[str]
    reads: ClassVar[Reads] = Reads()
    trained: ClassVar[bool] = True
    # JSON-schema properties of the hyper-parameters, each with a default.
    hyperparameters: ClassVar[dict[str, dict]] = {}
    # Why its accuracy is not comparable with the pairwise methods, if it is not.
    not_comparable: ClassVar[str] = ""
    # Whether it competes for the target-tuned capability (a chance baseline does not).
    target_tuned_candidate: ClassVar[bool] = True

    @classmethod
    def min_examples(cls, hyperparameters: dict) -> int:
        """The fewest examples per split it can fit on (config validation refuses fewer)."""
        return 1

    def fit(self, data: PairData, hyperparameters: dict, seed: int) -> State:
        raise NotImplementedError

    # What a method that reads the model runs through it, for its jobs' memory and time requests
    # (genies.models.footprint).
    @classmethod
    def fit_texts(cls, hyperparameters: dict) -> tuple[int, int]:
        """(texts, texts per step) its fit runs forward and backward: none unless it trains."""
        return 0, 0

    @classmethod
    def text_length(cls, hyperparameters: dict, max_length: int) -> int:
        """The tokens of a text it runs: about the model's `max_length` unless it says more."""
        return max_length

    def score(self, data: PairData, hyperparameters: dict, state: State) -> np.ndarray:
        raise NotImplementedError
