#!/bin/sh
# Data loading benchmark: wall-clock medians of the CLI loading Fashion-MNIST
# in each layout. Makes the CSVs with `fmnist convert --to csv` and plain IDX
# files with gzip -d from the Debian set, then times
#   fmnist show --index 0   loads the training set only (and writes a tiny PNG)
#   fmnist data             loads and validates both sets, splits, counts, stats
# with hyperfine when installed, else a loop of /usr/bin/time.
#
# usage: bench/load_bench.sh [BUILD_DIR [RUNS]]   (default: build 7)
set -eu

BUILD=${1:-build}
RUNS=${2:-7}
BIN=$BUILD/fmnist
SRC=${FMNIST_BENCH_DATA:-/usr/share/datasets/fashion-mnist}
[ -x "$BIN" ] || { echo "no $BIN: build first (cmake --build $BUILD)" >&2; exit 1; }
[ -f "$SRC/train-images-idx3-ubyte.gz" ] || { echo "no data in $SRC (sudo apt-get install dataset-fashion-mnist)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$BIN" convert --to csv "$SRC" "$TMP/csv" >/dev/null
mkdir "$TMP/idx"
for f in "$SRC"/*-ubyte.gz; do gzip -dc "$f" >"$TMP/idx/$(basename "$f" .gz)"; done
echo "train CSV $(($(stat -c %s "$TMP/csv/fashion-mnist_train.csv") / 1000000)) MB; $(nproc) CPUs; load average $(cut -d' ' -f1-3 /proc/loadavg)"

# bench LABEL COMMAND...: prints the median wall time (min, max) of RUNS runs
# and the median CPU time (user + system), which a busy machine inflates less.
bench() {
    label=$1
    shift
    if command -v hyperfine >/dev/null 2>&1; then
        hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$TMP/h.json" "$*" >/dev/null
        /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1]))["results"][0]; print("%-26s wall median %.2f s (min %.2f, max %.2f), CPU mean %.2f s, %d runs (hyperfine)" % (sys.argv[2], r["median"], r["min"], r["max"], r["user"] + r["system"], len(r["times"])))' "$TMP/h.json" "$label"
        return
    fi
    "$@" >/dev/null # warm-up: file cache
    : >"$TMP/times"
    i=0
    while [ "$i" -lt "$RUNS" ]; do
        /usr/bin/time -f "%e %U %S" -o "$TMP/t" "$@" >/dev/null
        cat "$TMP/t" >>"$TMP/times"
        i=$((i + 1))
    done
    awk '{ print $2 + $3 }' "$TMP/times" | sort -n >"$TMP/cpu"
    cut -d' ' -f1 "$TMP/times" | sort -n | paste -d' ' - "$TMP/cpu" | awk -v label="$label" '
        { w[NR] = $1; c[NR] = $2 }
        END { m = int((NR + 1) / 2)
              printf "%-26s wall median %.2f s (min %.2f, max %.2f), CPU median %.2f s, %d runs\n",
                     label, w[m], w[1], w[NR], c[m], NR }'
}

bench "train CSV" "$BIN" show --data "$TMP/csv" --index 0 -o "$TMP/x.png"
bench "train IDX, gzipped" "$BIN" show --data "$SRC" --index 0 -o "$TMP/x.png"
bench "train IDX, plain" "$BIN" show --data "$TMP/idx" --index 0 -o "$TMP/x.png"
bench "fmnist data, CSV" "$BIN" data --data "$TMP/csv"
bench "fmnist data, IDX gzipped" "$BIN" data --data "$SRC"
