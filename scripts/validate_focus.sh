#!/usr/bin/env bash
# Export the demo data's FOCUS view (one Parquet file per demo tenant, through the reporting
# role's row-level security) and validate each file with the FinOps Foundation's
# focus-validator against FOCUS 1.2.
#
#   scripts/validate_focus.sh              # runs `finops demo` first (90 days), then validates
#   scripts/validate_focus.sh --no-demo    # validates what the database already holds
#
# Honours DATABASE_URL / FINOPS_HOME like every finops command. Writes the exports and the
# validator's reports to FOCUS_OUTPUT_DIR (default: tmp-focus/, git-ignored). Exits 1 if a rule
# on a column the view fills fails; see scripts/focus_validation_summary.py.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
FINOPS="${FINOPS:-$ROOT/.venv/bin/finops}"
VENV="${FOCUS_VALIDATOR_VENV:-$ROOT/.venv-focus}"
OUT="${FOCUS_OUTPUT_DIR:-$ROOT/tmp-focus}"
DAYS="${DEMO_DAYS:-90}"
TENANTS=(acme-retail globex initech)
# The claims the view makes: accounts have names, sub accounts exist, usage is measured.
CRITERIA="ACCOUNT_NAMING_SUPPORTED,SUB_ACCOUNT_SUPPORTED,USAGE_MEASUREMENT_SUPPORTED"

run_demo=1
for arg in "$@"; do
  case "$arg" in
    --no-demo) run_demo=0 ;;
    *) echo "usage: $0 [--no-demo]" >&2; exit 2 ;;
  esac
done

# focus-validator 2.2.1 needs Python >= 3.12. It pins numpy < 2 but not pyarrow, and pyarrow 21
# and later need numpy 2, so pyarrow is held below 21.
if [ ! -x "$VENV/bin/focus-validator" ]; then
  PYTHON312="${FOCUS_VALIDATOR_PYTHON:-}"
  if [ -z "$PYTHON312" ]; then
    for candidate in "$(command -v python3.12 || true)" \
        "$(ls -d "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.12*/bin/python3 2>/dev/null | tail -1)"; do
      if [ -n "$candidate" ] && [ -x "$candidate" ]; then PYTHON312="$candidate"; break; fi
    done
  fi
  if [ -z "$PYTHON312" ]; then
    echo "error: focus-validator needs Python 3.12+; set FOCUS_VALIDATOR_PYTHON to one" >&2
    exit 1
  fi
  echo "Installing focus-validator 2.2.1 into $VENV (Python: $PYTHON312)" >&2
  "$PYTHON312" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "focus-validator==2.2.1" "pyarrow>=17,<21"
fi

if [ "$run_demo" = 1 ]; then
  "$FINOPS" demo --days "$DAYS"
fi

mkdir -p "$OUT"
SITE="$("$VENV/bin/python" -c 'import focus_validator, os; print(os.path.dirname(os.path.dirname(focus_validator.__file__)))')"
# The validator opens its currency list at the relative path focus_validator/rules/...; give it
# that path inside the output folder instead of running it inside site-packages.
mkdir -p "$OUT/focus_validator/rules"
ln -sf "$SITE/focus_validator/rules/currency_codes.csv" "$OUT/focus_validator/rules/currency_codes.csv"

reports=()
for tenant in "${TENANTS[@]}"; do
  "$FINOPS" export focus --tenant "$tenant" --start 2000-01-01 --end "$(date -u +%F)" \
    --format parquet --output "$OUT/$tenant.parquet"
  echo "Validating $tenant.parquet against FOCUS 1.2 ..." >&2
  (cd "$OUT" && "$VENV/bin/focus-validator" --data-file "$OUT/$tenant.parquet" \
      --validate-version 1.2 --block-download --applicability-criteria "$CRITERIA" \
      > "$OUT/$tenant.txt")
  reports+=("$OUT/$tenant.txt")
done

"$VENV/bin/python" "$ROOT/scripts/focus_validation_summary.py" \
  "$SITE/focus_validator/rules/model-1.2.0.1.json" "$OUT/${TENANTS[0]}.parquet" "${reports[@]}"
