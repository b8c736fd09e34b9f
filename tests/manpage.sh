#!/bin/sh
# Every flag that a verb's --help shows is in the man page (in that verb's
# section) and in the bash completion's list for that verb, every verb of
# `fmnist --help` has both, and the page names this version.
# Usage: tests/manpage.sh FMNIST man/fmnist.1 completion/fmnist.bash
set -eu
fm=$1 man=$2 comp=$3
status=0
verbs=$("$fm" --help | awk '/^verbs:/ { on = 1; next } on && NF { print $1 }')
[ -n "$verbs" ] || { echo "FAIL: no verbs in fmnist --help"; exit 1; }
version=$("$fm" --version)
grep -q "^\.TH FMNIST 1 .*\"$version\"" "$man" || { echo "FAIL: $man's .TH does not name $version"; status=1; }
n=0
for v in $verbs; do
    # The verb's part of the page: from its ".SS fmnist VERB" to the next verb's.
    section=$(sed 's/\\-/-/g' "$man" | awk -v v="$v" '
        /^\.SS "?fmnist / { split($0, w, " "); on = (w[3] == v) }
        /^\.SH / { on = 0 }
        on')
    [ -n "$section" ] || { echo "FAIL: no section for $v in $man"; status=1; continue; }
    list=$(awk -v v="$v" '$0 ~ "^    " v "\\) flags=" { on = 1 } on { print } on && /;;/ { exit }' "$comp")
    [ -n "$list" ] || { echo "FAIL: no flag list for $v in $comp"; status=1; }
    for f in $("$fm" "$v" --help | grep -oE '(^|[][ |])--?[a-z][a-z0-9-]*' | sed 's/^[][ |]//' | sort -u); do
        n=$((n + 1))
        printf '%s\n' "$section" | grep -qF -- "$f" || { echo "FAIL: fmnist $v $f is not in the man page"; status=1; }
        printf '%s\n' "$list" | grep -qE -- "(\"| )$f( |\"|$)" || { echo "FAIL: fmnist $v $f is not in the completion"; status=1; }
    done
done
[ $status = 0 ] && echo "$n flags of $(echo $verbs | wc -w) verbs: all in the man page and the completion"
exit $status
