#!/bin/sh
# The shared library exports exactly the public API: every name it defines
# dynamically starts with fm_ (the fm__ internals and everything else are
# hidden), every declaration in the header is marked FM_API, and every FM_API
# name in the header is exported (none is missing from the library); with a
# third argument, the Debian symbols file lists exactly the exported names.
# Usage: tests/exports.sh LIBFMNIST.so fmnist.h [libfmnist0.symbols]
set -eu
lib=$1 header=$2 symbols=${3:-}
command -v nm >/dev/null || { echo "nm is missing (binutils)"; exit 77; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
status=0
nm -D --defined-only "$lib" | awk '{print $NF}' | sort -u >"$tmp/exported"
[ -s "$tmp/exported" ] || { echo "FAIL: $lib exports nothing"; exit 1; }
if grep -v '^fm_' "$tmp/exported" >"$tmp/foreign" || grep '^fm__' "$tmp/exported" >>"$tmp/foreign"; then
    echo "FAIL: exported but not public:"; cat "$tmp/foreign"; status=1
fi
# Declarations start at column 0 (the header's style): a function or the one
# extern table, outside typedefs; each must carry FM_API.
grep -E '^[a-z]' "$header" | grep -vE '^(typedef|struct|enum|union|extern "C")' \
    | grep -E '\bfm_[a-z0-9_]+( *\(|\[)' >"$tmp/unmarked" || true
if [ -s "$tmp/unmarked" ]; then echo "FAIL: declared without FM_API:"; cat "$tmp/unmarked"; status=1; fi
grep -E '^FM_API ' "$header" | sed -E 's/^[^(\[]*[ *](fm_[a-z0-9_]+) *[(\[].*/\1/' | sort -u >"$tmp/declared"
if ! comm -23 "$tmp/declared" "$tmp/exported" >"$tmp/missing" || [ -s "$tmp/missing" ]; then
    echo "FAIL: declared FM_API but not exported:"; cat "$tmp/missing"; status=1
fi
if comm -13 "$tmp/declared" "$tmp/exported" | grep . >"$tmp/extra"; then
    echo "FAIL: exported but not declared in the header:"; cat "$tmp/extra"; status=1
fi
if [ -n "$symbols" ]; then
    sed -n 's/^ \(fm_[a-z0-9_]*\)@.*/\1/p' "$symbols" | sort -u >"$tmp/listed"
    if ! cmp -s "$tmp/listed" "$tmp/exported"; then
        echo "FAIL: $symbols differs from the exports (< listed only, > exported only):"
        diff "$tmp/listed" "$tmp/exported" | grep '^[<>]'; status=1
    fi
fi
[ $status = 0 ] && echo "$(wc -l <"$tmp/exported") fm_ names exported, all declared FM_API in the header, nothing else"
exit $status
