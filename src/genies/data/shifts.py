"""The shift registry, read from the vendored `distribution_shifts/` specifications.

- `all.json` lists 69 rows: the 37 extreme and 32 probing rows, where the 13 unwanted-personas
  rows appear twice, so there are 56 distinct (source, target) shifts.
- The category of a shift is the category file under `extreme/` or `probing/` that lists it, and
  its label is that folder's name. The 15 GENIES rows carry their own label and category in
  `GENIES.json`, kept as they are within the `genies` set: there upstream labels
  alpaca_short->alpaca_long "extreme", while its category (spurious_cues) lives under probing/,
  so that shift is "probing" in the `all` and category sets and "extreme" in the `genies` set.
- `target_reference` (the distribution measuring target-tuned capability) defaults to the target.
"""

import os
from dataclasses import dataclass
from functools import cached_property

from genies.data.vendored import load_vendored_json, read_manifest
from genies.errors import GeniesError

SHIFTS_DIR = "distribution_shifts"
LABELS = ("extreme", "probing")
SET_NAMES = ("genies", "all")


@dataclass(frozen=True)
class Shift:
    source: str
    target: str
    target_reference: str
    label: str
    category: str

    @property
    def name(self) -> str:
        return f"{self.source}->{self.target}"


def parse_shift_name(name: str) -> tuple[str, str]:
    source, sep, target = name.partition("->")
    if not sep or not source or not target:
        raise GeniesError(f"shift {name!r}: expected the form 'source->target'")
    return source.strip(), target.strip()


class ShiftRegistry:
    def __init__(self, rows: list[Shift], genies: list[Shift]):
        self.rows = rows  # all.json, 69 rows, duplicates included, in upstream order
        self.genies = genies  # GENIES.json, 15 rows, in upstream order

    @cached_property
    def distinct(self) -> list[Shift]:
        seen, distinct = set(), []
        for shift in self.rows:
            if shift.name not in seen:
                seen.add(shift.name)
                distinct.append(shift)
        return distinct

    @cached_property
    def categories(self) -> list[str]:
        return list(dict.fromkeys(shift.category for shift in self.rows))

    @cached_property
    def distributions(self) -> set[str]:
        return {
            name
            for shift in self.rows
            for name in (shift.source, shift.target, shift.target_reference)
        }

    def set_names(self) -> list[str]:
        return [*SET_NAMES, *self.categories]

    def select(self, name: str) -> list[Shift]:
        """A named set: 'genies' (15), 'all' (56 distinct) or one category."""
        if name == "genies":
            return list(self.genies)
        if name == "all":
            return list(self.distinct)
        if name in self.categories:
            return [shift for shift in self.distinct if shift.category == name]
        raise GeniesError(f"unknown shift set {name!r}; allowed: {', '.join(self.set_names())}")

    def lookup(self, name: str) -> Shift:
        source, target = parse_shift_name(name)
        for shift in self.distinct:
            if (shift.source, shift.target) == (source, target):
                return shift
        from_source = [s.target for s in self.distinct if s.source == source]
        hint = (
            f"targets of {source!r}: {', '.join(from_source)}"
            if from_source
            else f"known sources: {', '.join(sorted({s.source for s in self.distinct}))}"
        )
        raise GeniesError(f"unknown shift {source}->{target} (not in all.json); {hint}")


def category_files(raw_dir: str | os.PathLike) -> list[tuple[str, str, str]]:
    """(label, category, manifest path) of every per-category file."""
    files = []
    for relpath in read_manifest(raw_dir):
        parts = relpath.split("/")
        if len(parts) == 3 and parts[0] == SHIFTS_DIR and parts[1] in LABELS:
            category = parts[2].removesuffix(".json")
            if category != "all":
                files.append((parts[1], category, relpath))
    return sorted(files)


def spec_rows(raw_dir: str | os.PathLike, relpath: str) -> list[dict]:
    rows = load_vendored_json(raw_dir, relpath)
    if not isinstance(rows, list):
        raise GeniesError(f"{relpath}: expected a JSON list of shifts")
    for index, row in enumerate(rows):
        if not isinstance(row, dict) or not {"source", "target"} <= row.keys():
            raise GeniesError(f"{relpath}: row {index}: needs 'source' and 'target'")
    return rows


def load_shifts(raw_dir: str | os.PathLike = "data/raw") -> ShiftRegistry:
    membership: dict[tuple[str, str], tuple[str, str]] = {}
    for label, category, relpath in category_files(raw_dir):
        for row in spec_rows(raw_dir, relpath):
            membership.setdefault((row["source"], row["target"]), (label, category))

    def make(row: dict, relpath: str) -> Shift:
        key = (row["source"], row["target"])
        if key not in membership:
            raise GeniesError(f"{relpath}: shift {key[0]}->{key[1]} is in no category file")
        label, category = membership[key]
        return Shift(
            source=row["source"],
            target=row["target"],
            target_reference=row.get("target_reference", row["target"]),
            label=row.get("label", label),
            category=row.get("category", category),
        )

    all_path, genies_path = f"{SHIFTS_DIR}/all.json", f"{SHIFTS_DIR}/GENIES.json"
    rows = [make(row, all_path) for row in spec_rows(raw_dir, all_path)]
    genies = [make(row, genies_path) for row in spec_rows(raw_dir, genies_path)]
    return ShiftRegistry(rows, genies)


def splits_read(shifts: list[Shift]) -> list[tuple[str, str]]:
    """(distribution, split) pairs an evaluation of `shifts` reads: the source's splits (to fit,
    and to measure in-distribution accuracy), the target's test split, the reference's splits
    (to fit and measure the target-tuned capability)."""
    pairs = set()
    for shift in shifts:
        pairs |= {(shift.source, "train"), (shift.source, "test"), (shift.target, "test")}
        pairs |= {(shift.target_reference, "train"), (shift.target_reference, "test")}
    return sorted(pairs)
