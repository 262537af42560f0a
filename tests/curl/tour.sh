#!/usr/bin/env bash
# The curl tour: the original auth0-client's documented curl examples with this setup's values
# (envoy/filter-config.json, emulator/tenant.json), each run against a gateway and checked
# (status, headers, body). Needs bash, curl and jq.
#
#   tests/curl/tour.sh BASE_URL [ADMIN_URL]        run and check every step
#   tests/curl/tour.sh --print [BASE_URL [ADMIN_URL]]   print the steps' commands, run nothing
#
# BASE_URL is the gateway's origin (http://localhost:8080 for `make run` and docker compose),
# ADMIN_URL Envoy's admin interface (http://localhost:9901); without it the admin steps are
# skipped. `make run` prints `--print`'s output, README's tour block is that output
# (`make readme-tour-update`), and `make test` runs the tour against `make run`'s processes
# (`make curl-tour-test`) and, through tests/behaviour/integration.rs, in every session store and
# body-reading mode.
#
# Each command runs as printed, with the values earlier steps answered in place of
# your_access_token, your_refresh_token and your_sid, and with curl options added that keep
# the answer for the checks (-sS, --max-time, -D headers, -o body, -w '%{http_code}').
# The tour creates nothing on the tenant, so it can run any number of times.
set -euo pipefail

print_only=false
if [[ ${1:-} == --print ]]; then
    print_only=true
    shift
    BASE=${1:-http://localhost:8080}
    ADMIN=${2:-}
elif [[ $# -ge 1 && $# -le 2 && $1 != -* ]]; then
    BASE=$1
    ADMIN=${2:-}
else
    sed -n '2,/^set -euo pipefail/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
BASE=${BASE%/}
ADMIN=${ADMIN%/}
origin_re='^https?://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]+)?$'
for url in "$BASE" ${ADMIN:+"$ADMIN"}; do
    [[ $url =~ $origin_re ]] || {
        echo "tour.sh: '$url' is not an origin such as http://localhost:8080" >&2
        exit 2
    }
done
$print_only || for tool in curl jq; do
    command -v "$tool" >/dev/null || {
        echo "tour.sh: $tool is missing (make deps installs it)" >&2
        exit 2
    }
done

MAX_TIME=${TOUR_MAX_TIME:-10}
ALICE_ID='auth0|0000000000000000000000a1'
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

n=0
steps=0
title=
code=
declare -A value=() origin_of=()

# step TITLE COMMAND: prints the step; in print mode returns 1, which skips its checks.
# COMMAND names the gateway $BASE and the admin interface $ADMIN.
step() {
    n=$((n + 1))
    steps=$((steps + 1))
    [[ -z $title ]] || echo
    title=$1
    local cmd=${2//\$BASE/$BASE}
    cmd=${cmd//\$ADMIN/$ADMIN}
    printf '# %d. %s\n%s\n' "$n" "$title" "$cmd"
    $print_only && return 1
    run "$cmd"
}

# keep PLACEHOLDER VALUE WHAT: later commands get VALUE in place of PLACEHOLDER. Values are
# tokens (base64url, dots); anything else would change the command's meaning, so it is refused.
keep() {
    [[ $2 =~ ^[A-Za-z0-9._~+/=-]+$ ]] || fail "$3 is not a token: '$2'"
    value[$1]=$2
    origin_of[$1]="$3 of step $n"
}

run() {
    local cmd=$1 name
    for name in "${!value[@]}"; do
        if [[ $cmd == *"$name"* ]]; then
            cmd=${cmd//$name/${value[$name]}}
            printf '#   %s: the %s\n' "$name" "${origin_of[$name]}"
        fi
    done
    [[ $cmd != *your_* ]] || fail "a placeholder has no value yet: $cmd"
    : >"$work/headers"
    : >"$work/raw"
    : >"$work/head"
    : >"$work/body"
    local capture="-sS --connect-timeout 5 --max-time $MAX_TIME -D '$work/headers' -o '$work/raw' -w '%{http_code}'"
    if ! code=$(eval "curl $capture ${cmd#curl }" 2>"$work/stderr"); then
        fail "curl failed: $(cat "$work/stderr")"
    fi
    # The last answer's headers (--location may have followed redirects), CRs dropped.
    tr -d '\r' <"$work/headers" | awk 'BEGIN { RS = "" } { last = $0 } END { print last }' >"$work/head"
    # With -i the headers are in the output too, ahead of the body.
    if [[ " $cmd " == *" -i "* ]]; then
        tail -c +$(($(wc -c <"$work/headers") + 1)) "$work/raw" >"$work/body"
    else
        cp "$work/raw" "$work/body"
    fi
    printf '#   -> %s\n' "$code"
}

ok() { printf '#   ok  %s\n' "$1"; }

fail() {
    {
        printf 'FAIL step %d (%s): %s\n' "$n" "$title" "$1"
        if [[ -s $work/head ]]; then
            echo "--- answer headers"
            cat "$work/head"
        fi
        if [[ -s $work/body ]]; then
            echo "--- answer body (first 2000 bytes)"
            head -c 2000 "$work/body"
            echo
        fi
    } >&2
    exit 1
}

expect_status() {
    [[ $code == "$1" ]] || fail "status $code, expected $1"
    ok "status $1"
}

# The values of header NAME in the last answer, one a line.
header() {
    awk -v name="${1,,}" 'index(tolower($0), name ": ") == 1 { print substr($0, length(name) + 3) }' "$work/head"
}

expect_header() {
    local got
    got=$(header "$1")
    [[ $got == "$2" ]] || fail "header $1 is '$got', expected '$2'"
    ok "$1: $2"
}

expect_no_header() {
    [[ -z $(header "$1") ]] || fail "unexpected header $1: $(header "$1")"
    ok "no $1"
}

# expect_json FILTER WHAT: jq FILTER is true on the body.
expect_json() {
    jq -e "$1" "$work/body" >/dev/null 2>&1 || fail "$2 (jq '$1' is not true of the body)"
    ok "$2"
}

json() { jq -r "$1" "$work/body"; }

expect_empty_body() {
    [[ ! -s $work/body ]] || fail "the body is not empty"
    ok "empty body"
}

# The JSON claims of a JWT (its base64url payload).
claims() {
    local payload
    payload=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
    while ((${#payload} % 4)); do payload+='='; done
    base64 -d <<<"$payload" 2>/dev/null || fail "not a JWT: $1"
}

# The values of header NAME the echo upstream received, one a line.
expect_echoed() {
    local got
    got=$(jq -r --arg name "$1" '.headers[] | select(.[0] == $name) | .[1]' "$work/body")
    [[ $got == "$2" ]] || fail "the upstream got $1 '$got', expected '$2' (once)"
    ok "upstream got $1: $2"
}

# The filter's error body: {"statusCode", "error", "message"}.
expect_error() {
    expect_json ".statusCode == $1 and .error == \"$2\" and (.message | type == \"string\")" \
        "error body {statusCode: $1, error: $2, message}"
}

jwt_re='^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$'

# The four fields of a token answer, an access token for ALICE issued to client CLIENT_ID, and
# expireAt in RFC 3339 UTC within the tenant's access-token lifetime (86400 s).
expect_token_json() {
    expect_header content-type application/json
    expect_header cache-control no-store
    expect_header pragma no-cache
    expect_json 'keys == ["accessToken", "expireAt", "idToken", "refreshToken"]' \
        'fields accessToken, expireAt, idToken, refreshToken'
    [[ $(json .accessToken) =~ $jwt_re ]] || fail "accessToken is not a JWT"
    [[ $(json .idToken) =~ $jwt_re ]] || fail "idToken is not a JWT"
    [[ -n $(json .refreshToken) ]] || fail "refreshToken is empty"
    ok "accessToken and idToken are JWTs, refreshToken is set"
    claims "$(json .accessToken)" | jq -e --arg sub "$ALICE_ID" --arg azp "$1" \
        '.sub == $sub and .azp == $azp' >/dev/null ||
        fail "the access token is not alice's for $1: $(claims "$(json .accessToken)")"
    ok "the access token's sub is $ALICE_ID, its azp $1"
    # shellcheck disable=SC2016 # jq's $at, not the shell's
    expect_json '.expireAt | test("^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\\.[0-9]+)?Z$")
        and (sub("\\.[0-9]+Z$"; "Z") | fromdateiso8601) as $at | $at > now and $at <= now + 86400 + 60' \
        "expireAt ($(json .expireAt)) is RFC 3339 UTC, within the next 24 h"
}

# The sid cookie of the last answer (kept in $cookie), attribute by attribute; VALUE_RE
# matches its value.
expect_sid_cookie() {
    local attribute
    cookie=$(header set-cookie | grep '^sid=') || fail "no sid cookie"
    [[ ${cookie%%;*} =~ ^sid=$1$ ]] || fail "the sid value: ${cookie%%;*}"
    ok "Set-Cookie: ${cookie:0:24}…"
    shift
    for attribute in "$@"; do
        [[ "; ${cookie,,}; " == *"; ${attribute,,}; "* ]] || fail "no $attribute in: $cookie"
        ok "  $attribute"
    done
}

# A counter of the filter's (Envoy names proxy-wasm metrics wasmcustom.<name>).
filter_counter() {
    curl -sS --max-time "$MAX_TIME" "$ADMIN/stats?filter=auth0_filter" |
        awk -v name="wasmcustom.auth0_filter.$1:" '$1 == name { print $2; found = 1 } END { if (!found) print 0 }'
}

if [[ -n $ADMIN ]]; then
    n=-1 # step 0, so the tour's numbers do not depend on ADMIN_URL
    if step "Envoy is ready (admin interface)" \
        "curl '\$ADMIN/ready'"; then
        expect_status 200
        [[ $(<"$work/body") == LIVE ]] || fail "the body is not LIVE"
        ok "LIVE"
        logins_before=$(filter_counter login.password) || fail "the admin stats"
        logouts_before=$(filter_counter logout) || fail "the admin stats"
    fi
fi

if step "Password login, app client (no \`website\` scope): token JSON" \
    "curl --location \\
    -X POST '\$BASE/oauth/token' \\
    --header 'secret: app-api-key' \\
    --header 'Content-Type: application/x-www-form-urlencoded' \\
    --data-urlencode 'grant_type=password' \\
    --data-urlencode 'username=alice' \\
    --data-urlencode 'password=Alice-Passw0rd!' \\
    --data-urlencode 'connection=Username-Password-Authentication'"; then
    expect_status 200
    expect_token_json app-client-id
    keep your_access_token "$(json .accessToken)" accessToken
    keep your_refresh_token "$(json .refreshToken)" refreshToken
fi

if step "Website login (client with the \`website\` scope): empty body, \`sid\` cookie" \
    "curl -i --location \\
    -X POST '\$BASE/oauth/token' \\
    --header 'secret: website-api-key' \\
    --header 'Content-Type: application/x-www-form-urlencoded' \\
    --data-urlencode 'grant_type=password' \\
    --data-urlencode 'username=alice' \\
    --data-urlencode 'password=Alice-Passw0rd!'"; then
    expect_status 200
    expect_empty_body
    expect_header cache-control no-store
    expect_sid_cookie '[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+' \
        'Path=/' HttpOnly Secure 'Max-Age=86400' 'SameSite=Lax'
    sid=$(header set-cookie | grep '^sid=' | cut -d';' -f1)
    keep your_sid "${sid#sid=}" 'sid cookie'
fi

if step "Refresh: the Bearer token and the refresh token (from 1.) in the body" \
    "curl --location \\
    -X POST '\$BASE/oauth/refreshtoken' \\
    --header 'secret: app-api-key' \\
    --header 'Content-type: application/json' \\
    --header 'authorization: Bearer your_access_token' \\
    -d '{ \"refresh_token\": \"your_refresh_token\" }'"; then
    expect_status 200
    expect_token_json app-client-id
    [[ $(json .refreshToken) != "${value[your_refresh_token]}" ]] || fail "the refresh token was not rotated"
    ok "a new refresh token (the tenant rotates them)"
    keep your_access_token "$(json .accessToken)" 'new accessToken'
    keep your_refresh_token "$(json .refreshToken)" 'new refreshToken'
fi

if step "A call under /protected/ with the new token (from 3.) reaches the upstream with the identity headers; the client's own x-auth0-user-id is dropped" \
    "curl --location \\
    '\$BASE/protected/orders?page=1' \\
    --header 'secret: app-api-key' \\
    --header 'authorization: Bearer your_access_token' \\
    --header 'x-auth0-user-id: auth0|someone-else'"; then
    expect_status 200
    expect_json '.upstream == "echo" and .method == "GET" and .path == "/protected/orders"' \
        'the echo upstream got GET /protected/orders'
    expect_echoed x-auth0-user-id "$ALICE_ID"
    expect_echoed x-auth0-user-groups admin
    expect_echoed x-auth0-client-type app
fi

if step "/userinfo with the website session (sid from 2.)" \
    "curl '\$BASE/userinfo' \\
    --header 'secret: website-api-key' \\
    --cookie 'sid=your_sid'"; then
    expect_status 200
    expect_header content-type application/json
    expect_json ".sub == \"$ALICE_ID\" and .email == \"alice@example.org\" and .email_verified == true
        and .name == \"Alice Example\" and .nickname == \"alice\" and .groups == [\"admin\"] and .theme == \"dark\"" \
        "alice's profile: sub, email, email_verified, name, nickname, groups [admin], theme"
fi

if step "User search with the admin API key (alice* in the management connection, first page of 10)" \
    "curl '\$BASE/users?email=alice*&_l=10' \\
    --header 'secret: admin-api-key'"; then
    expect_status 200
    expect_json "length == 1 and .[0].user_id == \"$ALICE_ID\" and .[0].email == \"alice@example.org\"" \
        "one user: $ALICE_ID, alice@example.org"
fi

if step "Logout (sid from 2.): 302 to Auth0's /v2/logout with returnTo, the cookie cleared" \
    "curl -i '\$BASE/logout?redirect=/logout-page' \\
    --header 'secret: website-api-key' \\
    --cookie 'sid=your_sid'"; then
    expect_status 302
    return_to=$(jq -rn --arg url "$BASE/logout-page" '$url | @uri')
    location=$(header location)
    [[ $location =~ ^https?://[^/?#]+/v2/logout\?returnTo=(.*)$ && ${BASH_REMATCH[1]} == "$return_to" ]] ||
        fail "Location is '$location', expected <tenant>/v2/logout?returnTo=$return_to"
    ok "Location: $location"
    expect_sid_cookie '' 'Path=/' HttpOnly Secure 'Expires=Thu, 01 Jan 1970 00:00:00 GMT' 'SameSite=Lax'
    [[ ${cookie,,} != *max-age* ]] || fail "the cleared cookie has a Max-Age: $cookie"
    ok "  no Max-Age"
fi

if step "After the logout the session is gone: /userinfo with the same sid is 401" \
    "curl '\$BASE/userinfo' \\
    --header 'secret: website-api-key' \\
    --cookie 'sid=your_sid'"; then
    expect_status 401
    expect_error 401 Unauthorized
fi

if step "Error: a wrong password is 403" \
    "curl -X POST '\$BASE/oauth/token' \\
    --header 'secret: app-api-key' \\
    --data-urlencode 'grant_type=password' \\
    --data-urlencode 'username=alice' \\
    --data-urlencode 'password=not-her-password'"; then
    expect_status 403
    expect_error 403 Forbidden
    expect_no_header set-cookie
fi

if step "Error: an unknown API key is 401 (never the default client)" \
    "curl -X POST '\$BASE/oauth/token' \\
    --header 'secret: not-a-configured-key' \\
    --data-urlencode 'grant_type=password' \\
    --data-urlencode 'username=alice' \\
    --data-urlencode 'password=Alice-Passw0rd!'"; then
    expect_status 401
    expect_error 401 Unauthorized
fi

if step "Error: an absolute logout redirect is 400 (only paths on this site)" \
    "curl -i '\$BASE/logout?redirect=https://evil.example/' \\
    --header 'secret: website-api-key'"; then
    expect_status 400
    expect_error 400 'Bad Request'
    expect_no_header location
    expect_no_header set-cookie
fi

if [[ -n $ADMIN ]]; then
    if step "The filter's own stats on the admin interface" \
        "curl '\$ADMIN/stats?filter=auth0_filter'"; then
        expect_status 200
        # Each worker hands its counters to Envoy once a second: wait up to 5 s for them.
        for _ in {1..50}; do
            logins=$(filter_counter login.password)
            logouts=$(filter_counter logout)
            ((logins >= logins_before + 2 && logouts >= logouts_before + 1)) && break
            sleep 0.1
        done
        ((logins >= logins_before + 2)) || fail "login.password went from $logins_before to $logins, expected +2"
        ok "wasmcustom.auth0_filter.login.password: $logins (+$((logins - logins_before)))"
        ((logouts >= logouts_before + 1)) || fail "logout went from $logouts_before to $logouts, expected +1"
        ok "wasmcustom.auth0_filter.logout: $logouts (+$((logouts - logouts_before)))"
    fi
fi

$print_only || printf '\ntour.sh: all %d steps passed against %s\n' "$steps" "$BASE"
