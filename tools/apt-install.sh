#!/usr/bin/env bash
# `make deps`: installs the Debian packages named that are not installed yet, and does nothing
# (no apt-get at all) when every one is.
#
#   tools/apt-install.sh PKG... [--no-install-recommends PKG...]
#
# The packages after --no-install-recommends are installed without their recommended ones.
# No service starts from the installation (a deny-all /usr/sbin/policy-rc.d for its duration,
# unless one is already there): the tests start their own redis-server, and compose-test its
# own dockerd, which a started service would outlive. Runs apt-get through sudo when not root.
set -euo pipefail

command -v dpkg-query >/dev/null || { echo "apt-install.sh: needs Debian's dpkg and apt" >&2; exit 1; }

with=()
without=()
group=with
for package in "$@"; do
    if [ "$package" = --no-install-recommends ]; then
        group=without
        continue
    fi
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q ' ok installed$'; then
        continue
    fi
    if [ "$group" = with ]; then with+=("$package"); else without+=("$package"); fi
done
[ "${#with[@]}" -eq 0 ] && [ "${#without[@]}" -eq 0 ] && exit 0

sudo=()
[ "$(id -u)" -eq 0 ] || sudo=(sudo)
missing=("${with[@]}" "${without[@]}")
echo "apt-install.sh: installing ${missing[*]}"

policy=/usr/sbin/policy-rc.d
own_policy=
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" >/dev/null
    "${sudo[@]}" chmod +x "$policy"
    own_policy=1
fi
remove_policy() { if [ -n "$own_policy" ]; then "${sudo[@]}" rm -f "$policy"; fi; }
trap remove_policy EXIT

apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get)
"${apt[@]}" update -qq
if [ "${#with[@]}" -gt 0 ]; then "${apt[@]}" install -y -qq "${with[@]}"; fi
if [ "${#without[@]}" -gt 0 ]; then "${apt[@]}" install -y -qq --no-install-recommends "${without[@]}"; fi
