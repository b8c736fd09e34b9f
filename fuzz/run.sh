#!/bin/sh
# Builds the libFuzzer targets with clang (CMake, -DFM_FUZZ=ON) and runs each
# for SECONDS (default 30), one after the other, each from a fresh copy of its
# seed corpus (fuzz/corpus/<target>/, which the run never modifies).
# Exits non-zero when any target finds a crash, leak, timeout or out-of-memory
# input, or does not build; the input and the log stay in
# $FUZZ_BUILD/artifacts/<target>/<date-time>/.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]      TARGET: csv idx cfg model checkpoint recipe
# Environment: FUZZ_BUILD (build folder, default build-fuzz), JOBS (build
# jobs), FUZZ_NICE (nice level of the fuzzers, default 10), FUZZ_ARGS (more
# libFuzzer flags).
set -eu
secs=${1:-30}
[ $# -gt 0 ] && shift
targets=${*:-csv idx cfg model checkpoint recipe}
root=$(cd "$(dirname "$0")/.." && pwd)
build=${FUZZ_BUILD:-$root/build-fuzz}
case $build in /*) ;; *) build=$(pwd)/$build ;; esac
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

if ! command -v clang >/dev/null 2>&1; then
    echo "fuzz/run.sh: clang is missing (sudo apt-get install -y clang libclang-rt-14-dev)" >&2
    exit 1
fi
bins=""
for t in $targets; do
    case $t in csv | idx | cfg | model | checkpoint | recipe) bins="$bins fuzz_$t" ;;
    *) echo "fuzz/run.sh: unknown target '$t' (csv, idx, cfg, model, checkpoint, recipe)" >&2; exit 2 ;;
    esac
done
CC=clang cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Debug -DFM_FUZZ=ON -DFM_OPENMP=OFF >/dev/null
# shellcheck disable=SC2086
cmake --build "$build" -j "$jobs" --target $bins

work=$(mktemp -d "${TMPDIR:-/tmp}/fmnist-fuzz-run.XXXXXX")
# What the targets write (round trips) goes to memory when /dev/shm is there:
# on a disk file system each rename-over costs a flush.
scratch=$work
if [ -d /dev/shm ] && [ -w /dev/shm ]; then scratch=$(mktemp -d /dev/shm/fmnist-fuzz.XXXXXX); fi
trap 'rm -rf "$work" "$scratch"' EXIT
trap 'exit 130' INT TERM
status=0
for t in $targets; do
    case $t in
    csv) max=16384 ;;  # a header (7 kB) and a row or two
    idx) max=8192 ;;   # a flags byte and up to ten images
    cfg) max=4096 ;;
    model) max=32768 ;;
    checkpoint) max=32768 ;;
    recipe) max=2048 ;;
    esac
    dict=""
    [ -f "$root/fuzz/$t.dict" ] && dict="-dict=$root/fuzz/$t.dict"
    out="$build/artifacts/$t/$(date +%Y%m%d-%H%M%S)"  # this run's log and findings
    mkdir -p "$work/$t/corpus" "$scratch/$t" "$out"
    cp "$root/fuzz/corpus/$t/"* "$work/$t/corpus/"
    log="$out/fuzz.log"
    echo "== fuzz_$t: $secs s (log: $log)"
    # One process (no -jobs/-workers): the machine is shared.
    # shellcheck disable=SC2086
    if (cd "$work/$t" && TMPDIR="$scratch/$t" nice -n "${FUZZ_NICE:-10}" "$build/fuzz_$t" \
        -max_total_time="$secs" -max_len="$max" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=1 -artifact_prefix="$out/" $dict ${FUZZ_ARGS:-} \
        corpus) >"$log" 2>&1; then
        grep -E '^stat::number_of_executed_units|^Done' "$log" || true
    else
        status=1
        echo "fuzz_$t FAILED; the last lines of its log:" >&2
        tail -n 60 "$log" >&2
        for f in "$out"/*; do
            [ "$f" = "$log" ] || echo "reproduce: $build/fuzz_$t $f" >&2
        done
    fi
done
[ $status = 0 ] && echo "fuzz/run.sh: all targets ran $secs s clean"
exit $status
