"""The data audit: counts, balance, overlap and the known upstream defects, computed from the data.

Nothing is fixed here; upstream labels stay as they are. The flags:
- `degenerate_prompts`: the median prompt is under 20 characters (commonsense_qa: every prompt "B").
- `duplicate_distribution`: both splits are identical, record for record, to another distribution.
- `metadata_id_mismatch`: metadata.json names another distribution.
- `fixed_preferred_position`: the preferred response sits at the same position in every example
  (in upstream order), so anything order-dependent must shuffle.
- `suspected_label_inversion`: where the prompt asks for a mechanical constraint, the preferred
  response breaks it (and the dispreferred one obeys) more often than the reverse.
- `pairs_kept_apart`: an imported pairwise distribution has prompts whose pairs prefer different
  responses; each such pair is an example of its own, so those examples are not independent.
"""

import hashlib
import json
import os
from collections import Counter
from pathlib import Path

import pandas as pd

from genies.data.constraints import instructed_constraint, obeys
from genies.data.splits import read_split
from genies.data.vendored import distribution_file, load_vendored_json
from genies.files.tables import markdown_table, write_csv, write_markdown

DEGENERATE_PROMPT_CHARS = 20
MIN_CONSTRAINT_EXAMPLES = 10


def constraint_evidence(split: pd.DataFrame) -> tuple[int, int, int]:
    """(pairs with a checkable constraint, preferred breaks it, dispreferred breaks it)."""
    checked = preferred_breaks = dispreferred_breaks = 0
    for row in split.itertuples(index=False):
        constraint = instructed_constraint(row.prompt)
        if constraint is None:
            continue
        chosen_ok = obeys(constraint, row.responses[row.preferred])
        for position, response in enumerate(row.responses):
            if position == row.preferred:
                continue
            checked += 1
            rejected_ok = obeys(constraint, response)
            preferred_breaks += (not chosen_ok) and rejected_ok
            dispreferred_breaks += chosen_ok and not rejected_ok
    return checked, preferred_breaks, dispreferred_breaks


def repeated(values) -> int:
    """How many items repeat an earlier one."""
    return sum(count - 1 for count in Counter(values).values())


def content_digest(splits: dict[str, pd.DataFrame]) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name in sorted(splits):
        for row in splits[name].itertuples(index=False):
            digest.update(json.dumps([row.prompt, list(row.responses), list(row.scores)]).encode())
    return digest.hexdigest()


def audit_distribution(name: str, splits: dict[str, pd.DataFrame], metadata: dict) -> dict:
    train, test = splits["train"], splits["test"]
    both = pd.concat([train, test], ignore_index=True)
    counts = {split: sorted(set(df.responses.map(len))) for split, df in splits.items()}
    positions = Counter(both.preferred)
    width = max(counts["train"] + counts["test"])
    checked, preferred_breaks, dispreferred_breaks = constraint_evidence(both)
    imported = metadata.get("import") or {}
    reports = imported.get("per_split", {}).values()
    return {
        "distribution": name,
        "train_examples": len(train),
        "test_examples": len(test),
        "responses_per_example": "/".join(
            str(c) for c in dict.fromkeys(counts["train"] + counts["test"])
        ),
        "test_pairs": int(test.responses.map(len).sum() - len(test)),
        "preferred_position_counts": "/".join(str(positions.get(i, 0)) for i in range(width)),
        "preferred_first_share": positions.get(0, 0) / len(both),
        "distinct_prompts": both.prompt.nunique(),
        "duplicate_prompts_train": repeated(train.prompt),
        "duplicate_prompts_test": repeated(test.prompt),
        "train_test_prompt_overlap": len(set(train.prompt) & set(test.prompt)),
        "median_prompt_chars": float(both.prompt.str.len().median()),
        "constraint_pairs": checked,
        "preferred_breaks_constraint": preferred_breaks,
        "dispreferred_breaks_constraint": dispreferred_breaks,
        "metadata_id": metadata.get("id", ""),
        "imported_from": " ".join(
            dict.fromkeys([*(r["layout"] for r in reports), imported.get("format", "")])
        ).strip(),
        "pairs_kept_apart": sum(r["pairs_kept_apart"] for r in reports),
    }


def flags_of(row: pd.Series) -> str:
    flags = []
    if row.median_prompt_chars < DEGENERATE_PROMPT_CHARS:
        flags.append("degenerate_prompts")
    if row.identical_to:
        flags.append("duplicate_distribution")
    if max(int(n) for n in row.preferred_position_counts.split("/")) == (
        row.train_examples + row.test_examples
    ):
        flags.append("fixed_preferred_position")
    if row.metadata_id and row.metadata_id != row.distribution:
        flags.append("metadata_id_mismatch")
    if (
        row.constraint_pairs >= MIN_CONSTRAINT_EXAMPLES
        and row.preferred_breaks_constraint > row.dispreferred_breaks_constraint
    ):
        flags.append("suspected_label_inversion")
    if row.pairs_kept_apart:
        flags.append("pairs_kept_apart")
    return ";".join(flags)


def audit(raw_dir: str | os.PathLike, splits_dir: str | os.PathLike, names: list[str]):
    rows, digests = [], {}
    for name in names:
        splits = {
            s: read_split(Path(splits_dir) / name / f"{s}.parquet") for s in ("train", "test")
        }
        metadata = load_vendored_json(raw_dir, distribution_file(name, "metadata"))
        rows.append(audit_distribution(name, splits, metadata))
        digests[name] = content_digest(splits)
    table = pd.DataFrame(rows)
    table["identical_to"] = [
        ";".join(other for other in names if other != name and digests[other] == digests[name])
        for name in names
    ]
    table["flags"] = table.apply(flags_of, axis=1)
    return table


def evidence_lines(table: pd.DataFrame) -> str:
    lines = []
    for row in table[table["flags"] != ""].itertuples(index=False):
        for flag in row.flags.split(";"):
            if flag == "degenerate_prompts":
                why = f"median prompt length {row.median_prompt_chars:.0f} characters"
            elif flag == "duplicate_distribution":
                why = f"both splits identical to {row.identical_to}"
            elif flag == "fixed_preferred_position":
                why = f"preferred position counts {row.preferred_position_counts}"
            elif flag == "metadata_id_mismatch":
                why = f"metadata.json id is {row.metadata_id!r}"
            elif flag == "pairs_kept_apart":
                why = (
                    f"{row.pairs_kept_apart} pairs are examples of their own: their prompt's "
                    "pairs prefer different responses, so one prompt gives several examples"
                )
            else:
                why = (
                    f"of {row.constraint_pairs} pairs whose prompt asks for a mechanical "
                    "constraint, the preferred response breaks it while the dispreferred obeys in "
                    f"{row.preferred_breaks_constraint}, the reverse in "
                    f"{row.dispreferred_breaks_constraint}"
                )
            lines.append(f"- **{row.distribution}** `{flag}`: {why}.")
    return "\n".join(lines) + "\n"


def write_audit(table: pd.DataFrame, csv_path, md_path) -> None:
    write_csv(table, csv_path)
    body = (
        "Computed from the Parquet splits; nothing is fixed, upstream labels stay as they are.\n\n"
        "## Flags\n\n" + evidence_lines(table) + "\n## Per distribution\n\n" + markdown_table(table)
    )
    write_markdown(md_path, "GENIES data audit", body)
