#!/bin/sh
# Installs the build into a temporary prefix and uses it the way a user
# would: the installed fmnist trains a tiny network on a slice of the data
# and writes test pictures; examples/classify.c is compiled once with
# `cc ... $(pkg-config --cflags --libs fmnist)` and once through
# find_package(fmnist) (examples/cmake/); both must give exactly the classes
# and probabilities of the installed `fmnist predict --json`.
# Usage: tests/install.sh BUILD_DIR SOURCE_DIR WORK_DIR
set -eu
build=$1 src=$2 work=$3
rm -rf "$work"; mkdir -p "$work"
prefix=$work/prefix
for tool in pkg-config "${CC:-cc}"; do
    command -v "$tool" >/dev/null || { echo "SKIPPED: $tool is missing"; exit 77; }
done

cmake --install "$build" --prefix "$prefix" >"$work/install.log"
fm=$prefix/bin/fmnist
"$fm" --version
pc=$(find "$prefix" -name fmnist.pc)
[ -n "$pc" ] || { echo "FAIL: no fmnist.pc installed"; exit 1; }
libdir=$(dirname "$(dirname "$pc")")
for f in "$libdir/libfmnist.a" "$libdir/libfmnist.so" "$prefix/include/fmnist/fmnist.h" \
    "$libdir/cmake/fmnist/fmnistConfig.cmake" "$prefix/share/man/man1/fmnist.1" \
    "$prefix/share/bash-completion/completions/fmnist"; do
    [ -e "$f" ] || { echo "FAIL: $f not installed"; exit 1; }
done

"$fm" data >"$work/data.log" 2>&1 || { echo "SKIPPED: no data set ($(tail -1 "$work/data.log"))"; exit 77; }
printf 'input 28 28 1\nconv filters=4 kernel=3 padding=same activation=relu\nmaxpool 2\nflatten\ndense units=10 activation=softmax\n' >"$work/tiny.cfg"
"$fm" train --model "$work/tiny.cfg" --limit 1000 --epochs 1 --out "$work/run" --quiet
model=$work/run/model.safetensors
imgs=""
for i in 0 1 2 3 4 5 6 7; do
    "$fm" show --set test --index $i --scale 1 -o "$work/t$i.png" >/dev/null
    imgs="$imgs $work/t$i.png"
done
"$fm" show --set test --index 8 --scale 3 -o "$work/big.png" >/dev/null # resized, with a note
imgs="$imgs $work/big.png"

# predict --json's top three per picture, as lines "IMAGE CLASS c1 p1 c2 p2 c3 p3".
# shellcheck disable=SC2086
"$fm" predict --weights "$model" --json $imgs 2>/dev/null | tr '{' '\n' | awk '
    /"image":/ { if (line) print line; match($0, /"image": "[^"]*"/); line = substr($0, RSTART + 10, RLENGTH - 11); top = 0 }
    /"class":/ { match($0, /"class": [0-9]+/); c = substr($0, RSTART + 9, RLENGTH - 9)
                 if (match($0, /"probability": [^}]*/)) line = line " " c " " substr($0, RSTART + 15, RLENGTH - 15)
                 else line = line " " c }
    END { if (line) print line }' >"$work/predict.txt"
[ "$(wc -l <"$work/predict.txt")" = 9 ] || { echo "FAIL: predict --json gave:"; cat "$work/predict.txt"; exit 1; }

# The example's lines "IMAGE CLASS NAME p0..p9" (a name may have spaces: the
# probability of class k is field NF - 9 + k) against those.
same() {
    awk 'NR == FNR { want[$1] = $0; next }
         { n = split(want[$1], w, " ");
           if (n != 8 || w[2] != $2) { print "class differs: " $0 " vs " want[$1]; bad = 1; next }
           for (j = 3; j <= 7; j += 2)
               if ($(NF - 9 + w[j]) != w[j + 1]) { print "probability of class " w[j] " differs: " $0 " vs " want[$1]; bad = 1 }
           seen++ }
         END { if (seen != 9) { print seen + 0 " pictures compared, not 9"; bad = 1 }; exit bad }' \
        "$work/predict.txt" "$1"
}
export PKG_CONFIG_PATH="$libdir/pkgconfig"
# shellcheck disable=SC2046
"${CC:-cc}" -Wall -Wextra -Werror -o "$work/classify" "$src/examples/classify.c" $(pkg-config --cflags --libs fmnist)
# shellcheck disable=SC2086
LD_LIBRARY_PATH=$libdir "$work/classify" "$model" $imgs >"$work/classify.txt"
same "$work/classify.txt" || { echo "FAIL: pkg-config example differs from fmnist predict"; exit 1; }
echo "pkg-config example: the same classes and probabilities as fmnist predict"

cmake -S "$src/examples/cmake" -B "$work/cmake-example" -DCMAKE_PREFIX_PATH="$prefix" >"$work/cmake.log"
cmake --build "$work/cmake-example" >>"$work/cmake.log"
# shellcheck disable=SC2086
"$work/cmake-example/classify" "$model" $imgs >"$work/classify-cmake.txt"
same "$work/classify-cmake.txt" || { echo "FAIL: find_package example differs from fmnist predict"; exit 1; }
echo "find_package example: the same classes and probabilities as fmnist predict"
