"""Expansion of k-way examples into (chosen, rejected) pairs.

Evaluation uses every pair: an example with k responses gives k-1 pairs (the preferred response
against each other one, in upstream order). Training uses one pair per example, chosen by a seeded
hash of (seed, example_id), so the choice for an example does not depend on which other examples
are loaded or in what order.
"""

import hashlib

import pandas as pd

PAIR_COLUMNS = [
    "pair_id",
    "example_id",
    "example_index",  # the example's row in the split (and in its activation cache)
    "prompt",
    "chosen",
    "rejected",
    "chosen_position",
    "rejected_position",
]


def example_pairs(index: int, row) -> list[dict]:
    chosen = int(row.preferred)
    return [
        {
            "pair_id": f"{row.example_id}/{position}",
            "example_id": row.example_id,
            "example_index": index,
            "prompt": row.prompt,
            "chosen": row.responses[chosen],
            "rejected": response,
            "chosen_position": chosen,
            "rejected_position": position,
        }
        for position, response in enumerate(row.responses)
        if position != chosen
    ]


def evaluation_pairs(split: pd.DataFrame) -> pd.DataFrame:
    """All (preferred, dispreferred) pairs of a split, in example order."""
    rows = [
        pair
        for index, row in enumerate(split.itertuples(index=False))
        for pair in example_pairs(index, row)
    ]
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def seeded_choice(seed: int, key: str, n: int) -> int:
    digest = hashlib.blake2b(f"{seed}:{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % n


def training_pairs(split: pd.DataFrame, seed: int) -> pd.DataFrame:
    """One pair per example; the dispreferred response is drawn with `seed`."""
    rows = []
    for index, row in enumerate(split.itertuples(index=False)):
        pairs = example_pairs(index, row)
        rows.append(pairs[seeded_choice(seed, row.example_id, len(pairs))])
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)
