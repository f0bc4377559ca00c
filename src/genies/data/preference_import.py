"""Preference data in the community's layouts, read with `datasets`, as GENIES examples.

Input (`read_source`): a folder with one file per split (`train.*` and `test.*`: JSON Lines,
JSON, CSV or Parquet), a `DatasetDict` saved with `save_to_disk`, or one file (or saved `Dataset`)
with a test fraction, split by `split_examples`.

Layouts (`find_columns`: detected from the column names, or named):
- pairwise: `prompt`, `chosen`, `rejected` (TRL's reward trainer, RewardBench, Anthropic HH).
  Without a prompt column the prompt is implicit, as in TRL: what chosen and rejected share at
  their start, cut back to the last whitespace for texts, whole leading messages for chats.
- multi-response: `prompt`, a list of `responses` and a list of `scores` (higher is better) or of
  `ranks` (1 is best), UltraFeedback style: the best response is preferred, the others are not.
A text may be chat messages (a list of `{"role", "content"}`), flattened by FLATTEN_RULE.

An example has one preferred response: pairwise rows of one prompt that prefer the same response
become one example (it against each rejected one); where they prefer different ones, each pair
stays an example of its own, and the import report counts them for the data audit.
"""

import hashlib
import os
import re
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from genies.data.records import repeated_response
from genies.errors import GeniesError
from genies.files.hashing import sha256_file

FORMATS = {".jsonl": "json", ".json": "json", ".csv": "csv", ".parquet": "parquet"}
PROMPT_NAMES = ("prompt", "instruction", "question")
RESPONSES_NAMES = ("responses", "completions")
SCORES_NAMES = ("scores", "ratings")
FLATTEN_RULE = (
    "chat messages flattened: a single message is its content; several are '<Role>: <content>' "
    "(role capitalised) joined by blank lines"
)


@dataclass(frozen=True)
class Columns:
    """The columns a layout reads; None: detected (or, for a pairwise prompt, implicit)."""

    prompt: str | None = None
    chosen: str | None = None
    rejected: str | None = None
    responses: str | None = None
    scores: str | None = None
    ranks: str | None = None


@dataclass
class Example:
    prompt: str
    responses: list[str]
    preferred: int
    rows: list[int]  # the source rows it came from

    def record(self) -> dict:
        """The upstream record: each response with its score, 1.0 for the preferred one."""
        scores = {text: float(i == self.preferred) for i, text in enumerate(self.responses)}
        return {"prompt": self.prompt, "responses": scores, "source_rows": self.rows}


# --- reading --------------------------------------------------------------------------------


def read_source(path: Path) -> tuple[dict[str, list[dict]], dict]:
    """(split -> rows, what was read: format and each file's sha256), loaded with `datasets`."""
    import datasets

    datasets.disable_progress_bars()
    if (path / "dataset_dict.json").is_file() or (path / "state.json").is_file():
        return read_saved(path, datasets), {"format": "save_to_disk", "files": folder_hashes(path)}
    if path.is_dir():
        files = split_files(path)
    elif path.suffix in FORMATS:
        files = {"all": path}
    else:
        known = ", ".join(FORMATS)
        raise GeniesError(f"{path}: not a folder, nor a data file ({known})")
    kinds = {FORMATS[file.suffix] for file in files.values()}
    if len(kinds) > 1:
        raise GeniesError(
            f"{path}: its splits are in different formats ({', '.join(sorted(kinds))})"
        )
    (kind,) = kinds
    splits = {}
    for split, file in files.items():
        if holds_no_rows(file, kind):
            raise GeniesError(f"{file}: no rows")
        # a throwaway cache: nothing of the user's data is left under ~/.cache
        with tempfile.TemporaryDirectory() as cache:
            try:
                loaded = datasets.load_dataset(kind, data_files=str(file), cache_dir=cache)
            except Exception as exc:  # datasets raises its own, pyarrow's and ValueErrors
                raise GeniesError(
                    f"{file}: datasets cannot read it as {kind}: {root_cause(exc)}"
                ) from exc
            splits[split] = loaded["train"].to_list()
    hashes = {file.name: sha256_file(file) for file in files.values()}
    return splits, {"format": kind, "files": hashes}


def holds_no_rows(file: Path, kind: str) -> bool:
    """An empty file, a Parquet table of no rows, a CSV header alone, an empty JSON list: what
    `datasets` fails on without saying so."""
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return pq.read_metadata(file).num_rows == 0
        except (pa.ArrowException, OSError):  # not Parquet: datasets says why
            return False
    with open(file, encoding="utf-8", errors="replace") as f:
        start = f.read(1 << 16).strip()  # a file with rows has them here, or is large
    return start in ("", "[]") or (kind == "csv" and len(start.splitlines()) < 2)


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost exception's message: datasets wraps the parser's."""
    while exc.__cause__ or exc.__context__:
        exc = exc.__cause__ or exc.__context__
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def split_files(folder: Path) -> dict[str, Path]:
    """The folder's train.* and test.* data files, one each."""
    found = {}
    for split in ("train", "test"):
        candidates = sorted(p for p in folder.glob(f"{split}.*") if p.suffix in FORMATS)
        if len(candidates) != 1:
            names = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
            raise GeniesError(
                f"{folder}: expected one {split} file ({split}.jsonl, .json, .csv or .parquet), "
                f"found {len(candidates)}; the folder holds {names}"
            )
        found[split] = candidates[0]
    return found


def read_saved(path: Path, datasets) -> dict[str, list[dict]]:
    try:
        saved = datasets.load_from_disk(str(path))
    except Exception as exc:  # as read_source
        raise GeniesError(f"{path}: datasets cannot load it from disk: {exc}") from exc
    if isinstance(saved, datasets.Dataset):
        return {"all": saved.to_list()}
    if set(saved) == {"train"}:
        return {"all": saved["train"].to_list()}
    missing = [split for split in ("train", "test") if split not in saved]
    if missing:
        raise GeniesError(
            f"{path}: the saved DatasetDict has no {' or '.join(missing)} split (splits: "
            f"{', '.join(saved)})"
        )
    return {split: saved[split].to_list() for split in ("train", "test")}


def folder_hashes(folder: Path) -> dict[str, str]:
    return {
        str(file.relative_to(folder)): sha256_file(file)
        for file in sorted(folder.rglob("*"))
        if file.is_file()
    }


# --- layout ---------------------------------------------------------------------------------


def find_columns(rows: list[dict], given: Columns, where: str) -> tuple[str, Columns]:
    """(layout, the columns it reads) of `rows`: the named columns, the rest detected."""
    names = list(rows[0]) if rows else []
    found = ", ".join(names)
    for column in asdict(given).values():
        if column is not None and column not in names:
            raise GeniesError(f"{where}: no column {column!r} (columns found: {found})")

    def pick(named: str | None, candidates: tuple[str, ...]) -> str | None:
        return named or next((name for name in candidates if name in names), None)

    pairwise = Columns(
        prompt=pick(given.prompt, PROMPT_NAMES),
        chosen=pick(given.chosen, ("chosen",)),
        rejected=pick(given.rejected, ("rejected",)),
    )
    scores = None if given.ranks else pick(given.scores, SCORES_NAMES)
    multi = Columns(
        prompt=pairwise.prompt,
        responses=pick(given.responses, RESPONSES_NAMES),
        scores=scores,
        ranks=None if scores else pick(given.ranks, ("ranks",)),
    )
    kinds = {
        "pairwise": pairwise if pairwise.chosen and pairwise.rejected else None,
        "multi-response": multi if multi.responses and (multi.scores or multi.ranks) else None,
    }
    present = {
        kind: [i for i, row in enumerate(rows) if any(row.get(c) is not None for c in read)]
        for kind, columns in kinds.items()
        if columns
        for read in [[columns.chosen, columns.rejected, columns.responses]]
    }
    present = {kind: at for kind, at in present.items() if at}
    if len(present) > 1:
        (a, rows_a), (b, rows_b) = present.items()
        raise GeniesError(
            f"{where}: mixed layouts in one file: row {rows_a[0]} is {a}, row {rows_b[0]} is {b}"
        )
    if not present:
        raise GeniesError(
            f"{where}: no preference layout in its columns ({found}): expected chosen and "
            "rejected (pairwise) or responses with scores or ranks (multi-response); name them "
            "with --chosen-column and --rejected-column, or --responses-column and "
            "--scores-column (or --ranks-column)"
        )
    (layout,) = present
    columns = kinds[layout]
    if layout == "multi-response" and columns.prompt is None:
        raise GeniesError(f"{where}: no prompt column (columns found: {found}); name it")
    return layout, columns


def text_of(value, where: str, field: str) -> str:
    """A text as stored: a string, or chat messages flattened by FLATTEN_RULE."""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and value and all(is_message(m) for m in value):
        return flatten(value)
    kind = "empty" if value in (None, [], "") else f"a {type(value).__name__}"
    raise GeniesError(f"{where}: field {field!r} is {kind}, not a string or chat messages")


def holds_messages(value) -> bool:
    return isinstance(value, list) and any(is_message(v) or holds_messages(v) for v in value)


def is_message(value) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("role"), str)
        and isinstance(value.get("content"), str)
    )


def flatten(messages: list[dict]) -> str:
    if len(messages) == 1:
        return messages[0]["content"]
    return "\n\n".join(f"{m['role'].capitalize()}: {m['content']}" for m in messages)


def implicit_prompt(chosen, rejected, where: str) -> tuple[str, str, str]:
    """(prompt, chosen, rejected) split where the two stop agreeing: at the last whitespace of
    their common start for texts, after their common leading messages for chats."""
    if isinstance(chosen, list) and isinstance(rejected, list):
        shared = 0
        while shared < min(len(chosen), len(rejected)) and chosen[shared] == rejected[shared]:
            shared += 1
        parts = (chosen[:shared], chosen[shared:], rejected[shared:])
        if all(parts):
            return tuple(text_of(part, where, "chosen") for part in parts)
    elif isinstance(chosen, str) and isinstance(rejected, str):
        common = os.path.commonprefix([chosen, rejected])
        cut = max((m.end() for m in re.finditer(r"\s", common)), default=0)
        if cut:
            return chosen[:cut], chosen[cut:], rejected[cut:]
    raise GeniesError(
        f"{where}: chosen and rejected share no prompt at their start; name the prompt column"
    )


# --- rows to examples -----------------------------------------------------------------------


def pairwise_examples(rows: list[dict], columns: Columns, where: str) -> tuple[list, int]:
    """(examples, pairs kept apart): the pairs of one prompt grouped where they prefer one
    response, each pair its own example otherwise."""
    groups: dict[str, list[tuple[int, str, str]]] = {}
    for index, row in enumerate(rows):
        at = f"{where}: row {index}"
        if columns.prompt is None:
            prompt, chosen, rejected = implicit_prompt(
                row[columns.chosen], row[columns.rejected], at
            )
        else:
            prompt = prompt_of(row[columns.prompt], at)
            chosen = text_of(row[columns.chosen], at, columns.chosen)
            rejected = text_of(row[columns.rejected], at, columns.rejected)
        if chosen == rejected:
            raise GeniesError(f"{at}: chosen and rejected are the same text")
        groups.setdefault(prompt, []).append((index, chosen, rejected))
    examples, apart = [], 0
    for prompt, pairs in groups.items():
        chosen = {c for _, c, _ in pairs}
        rejected = [r for _, _, r in pairs]
        if len(chosen) == 1 and len(set(rejected)) == len(rejected) and not chosen & {*rejected}:
            examples.append(Example(prompt, [pairs[0][1], *rejected], 0, [i for i, _, _ in pairs]))
            continue
        apart += len(pairs)
        examples += [Example(prompt, [c, r], 0, [i]) for i, c, r in pairs]
    examples.sort(key=lambda example: example.rows[0])
    return examples, apart


def prompt_of(value, where: str) -> str:
    if isinstance(value, str) or (isinstance(value, list) and value):
        return text_of(value, where, "prompt")
    raise GeniesError(f"{where}: field 'prompt' must be a string, got {type(value).__name__}")


def multi_response_examples(rows: list[dict], columns: Columns, where: str) -> list[Example]:
    examples = []
    ranked = columns.ranks is not None
    for index, row in enumerate(rows):
        at = f"{where}: row {index}"
        field = columns.ranks if ranked else columns.scores
        prompt, values = prompt_of(row[columns.prompt], at), row[columns.responses]
        if not isinstance(values, list) or len(values) < 2:
            count = len(values) if isinstance(values, list) else 0
            raise GeniesError(f"{at}: {count} response(s) in {columns.responses!r}, needs 2+")
        texts = [text_of(value, at, columns.responses) for value in values]
        if repeats := [text for text, n in Counter(texts).items() if n > 1]:
            raise GeniesError(f"{at}: {repeated_response(texts.index(repeats[0]), repeats[0])}")
        marks = row[field]
        if not isinstance(marks, list) or len(marks) != len(texts):
            raise GeniesError(f"{at}: {field!r} must list one number per response")
        if any(isinstance(m, bool) or not isinstance(m, int | float) or m != m for m in marks):
            raise GeniesError(f"{at}: {field!r} holds a value that is not a number: {marks}")
        best = min(marks) if ranked else max(marks)
        tied = [i for i, mark in enumerate(marks) if mark == best]
        if len(tied) > 1:
            raise GeniesError(
                f"{at}: responses {' and '.join(map(str, tied))} tie for the best {field} {best}"
            )
        examples.append(Example(prompt, texts, tied[0], [index]))
    return examples


def examples_of(rows: list[dict], given: Columns, where: str) -> tuple[list, dict]:
    """(examples, report) of one file's rows."""
    if not rows:
        raise GeniesError(f"{where}: no rows")
    layout, columns = find_columns(rows, given, where)
    if layout == "pairwise":
        examples, apart = pairwise_examples(rows, columns, where)
    else:
        examples, apart = multi_response_examples(rows, columns, where), 0
    texts = [c for c in (columns.prompt, columns.chosen, columns.rejected, columns.responses) if c]
    return examples, {
        "layout": layout,
        "columns": asdict(columns),
        "chat_messages": any(holds_messages(row[c]) for row in rows for c in texts),
        "rows": len(rows),
        "examples": len(examples),
        "pairs_kept_apart": apart,
    }


# --- the seeded split -----------------------------------------------------------------------


SPLIT_RULE = (
    "the examples of one prompt stay together; prompts are taken in the order of "
    "sha256('<seed>/<prompt>') into test until it holds round(test_fraction x examples)"
)


def split_examples(examples: list[Example], fraction: float, seed: int, where: str):
    """(train, test): a seeded draw of whole prompts, in source order within each split."""
    if not 0 < fraction < 1:
        raise GeniesError(f"--test-fraction {fraction}: expected a number between 0 and 1")
    wanted = round(fraction * len(examples))
    prompts = sorted(
        dict.fromkeys(e.prompt for e in examples),
        key=lambda p: hashlib.sha256(f"{seed}/{p}".encode()).hexdigest(),
    )
    counts = Counter(e.prompt for e in examples)
    test, held = set(), 0
    for prompt in prompts:
        if held >= wanted:
            break
        test.add(prompt)
        held += counts[prompt]
    if held in (0, len(examples)):
        raise GeniesError(
            f"{where}: a test fraction of {fraction} of {len(examples)} examples leaves a split "
            "empty; choose another fraction"
        )
    return [e for e in examples if e.prompt not in test], [e for e in examples if e.prompt in test]


def import_preferences(
    path: Path, given: Columns, test_fraction: float | None, seed: int
) -> tuple[dict[str, list[dict]], dict]:
    """(split -> upstream records, the import record for metadata.json) of the data at `path`."""
    splits, source = read_source(path)
    if "all" in splits and test_fraction is None:
        raise GeniesError(f"{path}: one split only; give --test-fraction to draw a test split")
    if "all" not in splits and test_fraction is not None:
        raise GeniesError(f"{path}: already has train and test; --test-fraction is for one file")
    examples, reports = {}, {}
    for split, rows in splits.items():
        where = f"{path}" + ("" if split == "all" else f" ({split})")
        examples[split], reports[split] = examples_of(rows, given, where)
    chat = any(report["chat_messages"] for report in reports.values())
    described = {**source, "chat": FLATTEN_RULE if chat else None, "per_split": reports}
    if "all" in examples:
        examples["train"], examples["test"] = split_examples(
            examples.pop("all"), test_fraction, seed, str(path)
        )
        described["split"] = {"test_fraction": test_fraction, "seed": seed, "rule": SPLIT_RULE}
    records = {split: [e.record() for e in examples[split]] for split in ("train", "test")}
    return records, described
