#!/usr/bin/env bash
# README.md's tour block, between <!-- curl-tour:start --> and <!-- curl-tour:end -->, is the
# output of `tests/curl/tour.sh --print` for `make run`'s addresses, in a bash fence.
#
#   tests/curl/readme.sh           rewrite the block from the script (make readme-tour-update)
#   tests/curl/readme.sh --check   fail, showing the difference, when it is not (make test)
set -euo pipefail

repo=$(cd "$(dirname "$0")/../.." && pwd)
readme=$repo/README.md
tour=$("$repo/tests/curl/tour.sh" --print http://localhost:8080 http://localhost:9901)
fence='```'
expected=$(
    BLOCK="${fence}bash"$'\n'"$tour"$'\n'"$fence" awk '
        $0 == "<!-- curl-tour:start -->" { print; print ENVIRON["BLOCK"]; inside = 1; starts++; next }
        $0 == "<!-- curl-tour:end -->" { inside = 0; ends++ }
        !inside { print }
        END { if (starts != 1 || ends != 1) exit 3 }
    ' "$readme"
) || {
    echo "readme.sh: README.md needs exactly one <!-- curl-tour:start --> ... <!-- curl-tour:end --> block" >&2
    exit 1
}

if [[ ${1:-} == --check ]]; then
    if ! diff -u --label 'README.md' --label 'tests/curl/tour.sh --print' "$readme" <(printf '%s\n' "$expected"); then
        echo "README.md's tour block is not tests/curl/tour.sh's: run \`make readme-tour-update\`" >&2
        exit 1
    fi
    echo "README.md's tour block is tests/curl/tour.sh --print"
elif [[ -z ${1:-} ]]; then
    printf '%s\n' "$expected" >"$readme.tmp"
    mv "$readme.tmp" "$readme"
    echo "README.md: tour block written from tests/curl/tour.sh --print"
else
    sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
