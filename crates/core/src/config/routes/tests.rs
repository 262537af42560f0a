use super::*;

fn table(prefix: &str, users: bool) -> RouteTable {
    RouteTable::new(
        prefix,
        &[
            (RouteKind::Token, "paths.token", None, &["/oauth/token"]),
            (
                RouteKind::RefreshToken,
                "paths.refreshToken",
                Some(vec!["/refreshtoken".into(), "/oauth/refreshtoken".into()]),
                &["/refreshtoken"],
            ),
            (RouteKind::Logout, "paths.logout", None, &["/logout"]),
        ],
        users.then_some(("paths.users", None)),
    )
    .unwrap()
}

fn kind(t: &RouteTable, method: &str, path: &str) -> Option<RouteKind> {
    t.classify(method, path).map(|m| m.kind)
}

#[test]
fn owns_only_listed_method_and_path() {
    let t = table("", false);
    assert_eq!(kind(&t, "POST", "/oauth/token"), Some(RouteKind::Token));
    assert_eq!(kind(&t, "POST", "/oauth/token?x=1"), Some(RouteKind::Token));
    assert_eq!(kind(&t, "GET", "/oauth/token"), None);
    assert_eq!(kind(&t, "POST", "/oauth/token/"), None);
    assert_eq!(
        kind(&t, "POST", "/oauth/refreshtoken"),
        Some(RouteKind::RefreshToken)
    );
    assert_eq!(
        kind(&t, "POST", "/refreshtoken"),
        Some(RouteKind::RefreshToken)
    );
    assert_eq!(
        kind(&t, "GET", "/logout?redirect=/x"),
        Some(RouteKind::Logout)
    );
    assert_eq!(kind(&t, "GET", "/anything"), None);
}

#[test]
fn management_routes_are_closed_unless_opened() {
    let closed = table("", false);
    for (method, path) in [
        ("GET", "/users"),
        ("POST", "/users"),
        ("GET", "/users/active"),
        ("DELETE", "/users/x"),
    ] {
        assert_eq!(closed.classify(method, path), None, "{method} {path}");
    }
}

#[test]
fn management_routes_and_their_parameters() {
    let t = table("/auth", true);
    let m = |method: &str, path: &str| t.classify(method, path).map(|m| (m.kind, m.param));
    assert_eq!(
        m("GET", "/auth/users?email=a"),
        Some((RouteKind::UsersSearch, None))
    );
    assert_eq!(
        m("POST", "/auth/users"),
        Some((RouteKind::UserCreate, None))
    );
    assert_eq!(
        m("GET", "/auth/users/active"),
        Some((RouteKind::UsersActive, None))
    );
    assert_eq!(
        m("POST", "/auth/users/import"),
        Some((RouteKind::UsersImport, None))
    );
    assert_eq!(
        m("GET", "/auth/users/import/status/job_1"),
        Some((RouteKind::ImportStatus, Some("job_1".into())))
    );
    assert_eq!(
        m("GET", "/auth/users/import/status/job_1/errors"),
        Some((RouteKind::ImportErrors, Some("job_1".into())))
    );
    assert_eq!(
        m("PATCH", "/auth/users/auth0%7Cabc"),
        Some((RouteKind::UserUpdate, Some("auth0%7Cabc".into())))
    );
    assert_eq!(
        m("DELETE", "/auth/users/a/b"),
        Some((RouteKind::UserDelete, Some("a/b".into())))
    );
    assert_eq!(m("GET", "/auth/users/auth0%7Cabc"), None);
    assert_eq!(m("PUT", "/auth/users"), None);
    assert_eq!(m("GET", "/auth/usersx"), None);
    assert_eq!(m("GET", "/auth/users/import/status/"), None);
    assert_eq!(m("DELETE", "/auth/users/"), None);
    assert_eq!(m("GET", "/users"), None);
}

#[test]
fn prefix_applies_to_every_route() {
    let t = table("/auth", false);
    assert_eq!(
        kind(&t, "POST", "/auth/oauth/token"),
        Some(RouteKind::Token)
    );
    assert_eq!(kind(&t, "POST", "/oauth/token"), None);
}

#[test]
fn duplicate_or_relative_paths_are_refused() {
    let dup = RouteTable::new(
        "",
        &[
            (
                RouteKind::Token,
                "paths.token",
                Some(vec!["/x".into()]),
                &[],
            ),
            (
                RouteKind::Logout,
                "paths.logout",
                Some(vec!["/x".into()]),
                &[],
            ),
        ],
        None,
    );
    assert_eq!(dup.unwrap_err().field, "paths.logout[0]");
    let rel = RouteTable::new(
        "",
        &[(RouteKind::Token, "paths.token", Some(vec!["x".into()]), &[])],
        None,
    );
    assert_eq!(rel.unwrap_err().field, "paths.token[0]");
    let overlap = RouteTable::new(
        "",
        &[(
            RouteKind::Token,
            "paths.token",
            Some(vec!["/users".into()]),
            &[],
        )],
        Some(("paths.users", None)),
    );
    assert_eq!(overlap.unwrap_err().field, "paths.users[0]");
}
