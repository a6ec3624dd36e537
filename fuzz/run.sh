#!/usr/bin/env bash
# Runs every fuzz target (or those named) for SECONDS each, PARALLEL at a time, at the
# lowest priority, optimised but with debug assertions and overflow checks (-O -a), and
# prints how long each really ran and how many inputs it tried.
# Crashes are left in fuzz/artifacts/TARGET/ (keep each as a unit test once fixed).
# Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable toolchain RUSTC_BOOTSTRAP=1
# lets it use the nightly-only sanitizer flags.
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_EACH=${FUZZ_SECONDS:-600}
PARALLEL=${FUZZ_PARALLEL:-2}
export RUSTC_BOOTSTRAP=1
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(ls fuzz_targets | sed 's/\.rs$//')
fi
cargo fuzz build -O -a 2>&1 | grep -v "^ *Finished" || true
mkdir -p logs
seed() { # target, files…
  local dir=corpus/$1; shift
  mkdir -p "$dir"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$dir/seed-$(basename "$f")"; done
  true
}
fx=../tests/fixtures
seed ecosystem_json "$fx/ecosystem.json" "$fx/processes.json"
seed ecosystem_js "$fx/ecosystem.config.js"
seed pm2dump "$fx/dump.pm2"
seed inspect "$fx/pm2-prettylist.json" "$fx/dump.pm2"
seed request
seed ecosystem_yaml
seed cron
seed sizes
seed datefmt
one() {
  local t=$1 start end
  start=$(date +%s)
  # -timeout: one input may take at most 10 s; -rss_limit_mb: a leak or a blow-up is a bug.
  nice -n 19 cargo fuzz run -O -a "$t" "corpus/$t" -- -max_total_time="$SECONDS_EACH" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1
  local rc=$?
  end=$(date +%s)
  local runs
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs/$t.log" | grep -o '[0-9]*$' || echo '?')
  printf '%-16s %5ss %12s runs  %s\n' "$t" "$((end - start))" "$runs" \
    "$([ $rc -eq 0 ] && echo ok || echo "FAILED (rc $rc, see fuzz/logs/$t.log)")"
  return $rc
}
export -f one
export SECONDS_EACH
status=0
printf '%s\n' "${targets[@]}" | xargs -P "$PARALLEL" -I{} bash -c 'one {}' || status=1
exit $status
