use super::*;

#[test]
fn outcomes_follow_the_status() {
    assert_eq!(outcome_of(200), "success");
    assert_eq!(outcome_of(302), "success");
    assert_eq!(outcome_of(400), "client_error");
    assert_eq!(outcome_of(401), "client_error");
    assert_eq!(outcome_of(413), "client_error");
    assert_eq!(outcome_of(429), "auth0_error");
    assert_eq!(outcome_of(502), "auth0_error");
    assert_eq!(outcome_of(503), "unavailable");
    assert_eq!(outcome_of(504), "timeout");
    assert_eq!(outcome_of(500), "internal_error");
}

#[test]
fn a_successful_login_counts_its_grant_and_a_failed_one_does_not() {
    let names = |route: &str, status: u16, grant: Option<LoginGrant>| -> Vec<String> {
        let mut events = Vec::new();
        request_end(&mut events, "p", route, status, grant);
        events.into_iter().map(|e| e.name).collect()
    };
    assert_eq!(
        names("token", 200, Some(LoginGrant::Password)),
        ["p.route.token.success", "p.login.password"]
    );
    assert_eq!(
        names("token", 403, Some(LoginGrant::Password)),
        ["p.route.token.client_error"]
    );
    assert_eq!(
        names("logout", 302, None),
        ["p.route.logout.success", "p.logout"]
    );
}

#[test]
fn callout_failures_are_classified_by_kind() {
    let answered = |status: u16, headers: Vec<(String, String)>| CalloutResult::Answered {
        status,
        headers,
        body: Vec::new(),
    };
    let kinds = |result: &CalloutResult| -> Vec<String> {
        callout_answered("p", result, 5, 1000)
            .into_iter()
            .filter(|e| e.kind == MetricKind::Counter)
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(
        kinds(&CalloutResult::Failed { elapsed_ms: 950 }),
        ["p.callout_failure.timeout"]
    );
    assert_eq!(
        kinds(&CalloutResult::Failed { elapsed_ms: 3 }),
        ["p.callout_failure.connect"]
    );
    assert_eq!(
        kinds(&answered(429, vec![])),
        ["p.callout_failure.rate_limited"]
    );
    assert_eq!(kinds(&answered(504, vec![])), ["p.callout_failure.timeout"]);
    let from_upstream = vec![("x-envoy-upstream-service-time".into(), "3".into())];
    assert_eq!(
        kinds(&answered(504, from_upstream)),
        ["p.callout_failure.status_5xx"]
    );
    assert_eq!(
        kinds(&answered(500, vec![])),
        ["p.callout_failure.status_5xx"]
    );
    assert!(kinds(&answered(200, vec![])).is_empty());
    let latency = callout_answered("p", &answered(200, vec![]), 42, 1000);
    assert_eq!(latency[0].kind, MetricKind::Histogram);
    assert_eq!(latency[0].value, 42);
}

#[test]
fn management_callouts_are_told_apart_by_path() {
    let callout = |path: &str| Callout {
        cluster: "auth0".into(),
        method: "GET".into(),
        path: path.into(),
        authority: "tenant".into(),
        headers: Vec::new(),
        body: None,
        timeout_ms: 1000,
    };
    let names = |c: &Callout, management: bool| -> Vec<String> {
        callout_made("p", "users_search", c, management)
            .into_iter()
            .map(|e| e.name)
            .collect()
    };
    assert_eq!(
        names(&callout("/api/v2/users?q=x"), true),
        ["p.management_call.users_search"]
    );
    assert_eq!(
        names(&callout("/oauth/token"), true),
        ["p.management_token_fetch"]
    );
    assert!(names(&callout("/oauth/token"), false).is_empty());
}
