"""Summarise focus-validator's console report against the columns an export fills.

Usage: focus_validation_summary.py MODEL_JSON EXPORT_FILE REPORT_TXT [REPORT_TXT ...]

Reads the FOCUS columns the export holds (a Parquet file's schema or a CSV header), maps every
rule of the validator's model to the column it is about, and prints rules passed, failed and
skipped: failures on columns the export fills, failures on columns it does not fill, and skip
reasons. Exits 1 if a rule on a filled column failed for a reason not listed in
KNOWN_VALIDATOR_DEFECTS, so the script can gate a change to the view.
"""

from __future__ import annotations

import csv
import json
import re
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

# Rules that apply to every column, not to one.
ATTRIBUTE_REFERENCES = frozenset(
    {
        "ColumnHandling",
        "CurrencyFormat",
        "DateTimeFormat",
        "DiscountHandling",
        "KeyValueFormat",
        "NullHandling",
        "NumericFormat",
        "StringHandling",
        "UnitFormat",
    }
)

# focus-validator 2.2.1 builds these rules' SQL with CommitmentDiscountStatus in the condition
# (inherited from ConsumedQuantity-C-005-C, "when ... CommitmentDiscountStatus is not Unused").
# That column is only required of datasets with commitment discounts; without it DuckDB cannot
# bind the query and the validator counts the error as one violation. Adding an all-NULL
# CommitmentDiscountStatus column makes all of them pass; tests/test_focus_view.py checks the
# same requirements on the view in SQL.
KNOWN_VALIDATOR_DEFECTS: dict[str, str] = {
    rule: "validator SQL names CommitmentDiscountStatus, absent without commitment discounts"
    for rule in (
        "ConsumedQuantity-C-000-C",
        "ConsumedQuantity-C-003-C",
        "ConsumedQuantity-C-004-C",
        "ConsumedQuantity-C-005-C",
        "ConsumedQuantity-C-006-C",
    )
}

_LINE = re.compile(
    r"^\S+ (?P<rule>[A-Za-z]+-[A-Z]-\d{3}-[A-Z]): (?P<status>PASS|FAIL|SKIPPED)\b(?P<rest>.*)$"
)
_REASON = re.compile(r"reason=(?P<reason>[^,]+)")
_DATASET_COLUMN = re.compile(r"^(?P<column>[A-Za-z]+) (is|MUST|presence)")


@dataclass(frozen=True)
class RuleResult:
    rule: str
    status: str
    reason: str


def rule_columns(model_path: Path) -> dict[str, str]:
    """Rule id -> the column (or attribute) it is about."""
    rules = json.loads(model_path.read_text(encoding="utf-8"))["ModelRules"]
    columns = {}
    for rule_id, rule in rules.items():
        reference = rule["Reference"]
        if reference == "CostAndUsage":  # dataset rules: "X MUST be present ..."
            match = _DATASET_COLUMN.match(rule["ValidationCriteria"]["MustSatisfy"])
            reference = match["column"] if match else reference
        columns[rule_id] = reference
    return columns


def export_columns(path: Path) -> set[str]:
    """The FOCUS (not x_) columns of an export."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        names = pq.read_schema(path).names
    else:
        with path.open(newline="", encoding="utf-8") as stream:
            names = next(csv.reader(stream))
    return {name for name in names if not name.startswith("x_")}


def parse_report(path: Path) -> list[RuleResult]:
    results = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _LINE.match(line.strip())
        if match:
            reason = _REASON.search(match["rest"])
            results.append(
                RuleResult(match["rule"], match["status"], reason["reason"] if reason else "")
            )
    return results


def summarise(report: Path, columns: dict[str, str], filled: set[str]) -> bool:
    results = parse_report(report)
    counts = Counter(result.status for result in results)
    print(
        f"{report.stem}: {len(results)} rules: {counts['PASS']} passed, {counts['FAIL']} failed, "
        f"{counts['SKIPPED']} skipped"
    )
    unexplained = False
    failed_by_column: dict[str, list[str]] = defaultdict(list)
    for result in results:
        if result.status == "FAIL":
            failed_by_column[columns.get(result.rule, "?")].append(result.rule)
    for column, rules in sorted(failed_by_column.items()):
        claimed = column in filled or column in ATTRIBUTE_REFERENCES
        for rule in sorted(rules):
            if not claimed:
                note = "column not in the export (not filled)"
            elif rule in KNOWN_VALIDATOR_DEFECTS:
                note = f"known validator defect: {KNOWN_VALIDATOR_DEFECTS[rule]}"
            else:
                note = "FAILS ON A COLUMN THE EXPORT FILLS"
                unexplained = True
            print(f"  FAIL {rule:<28} {note}")
    skipped_filled = Counter(
        result.reason
        for result in results
        if result.status == "SKIPPED" and columns.get(result.rule) in filled
    )
    for reason, number in skipped_filled.most_common():
        print(f"  skipped on filled columns: {number:>3}  {reason}")
    skipped_other = sum(
        1
        for result in results
        if result.status == "SKIPPED" and columns.get(result.rule) not in filled
    )
    print(f"  skipped on columns not in the export or on attributes: {skipped_other}")
    return not unexplained


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    columns = rule_columns(Path(argv[1]))
    filled = export_columns(Path(argv[2]))
    ok = all([summarise(Path(report), columns, filled) for report in argv[3:]])
    print("validation: OK" if ok else "validation: FAILED on a column the export fills")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
