use super::*;

fn conns() -> Vec<String> {
    vec!["db-a".into(), "db-b".into()]
}

fn q(query: &str) -> String {
    user_search(Some(query), None, &conns()).unwrap().q
}

#[test]
fn defaults_page_and_connection_clause() {
    let s = user_search(None, None, &conns()).unwrap();
    assert_eq!((s.per_page, s.page), (25, 0));
    assert_eq!(
        s.q,
        r#"(identities.connection:"db-a" OR identities.connection:"db-b")"#
    );
    assert_eq!(
        s.auth0_path_and_query(),
        "/api/v2/users?q=%28identities.connection%3A%22db-a%22+OR+identities.connection%3A%22db-b%22%29&search_engine=v3&per_page=25&page=0"
    );
}

#[test]
fn skip_and_limit_become_page_and_per_page() {
    let s = user_search(Some("_l=10&_sk=35"), None, &conns()).unwrap();
    assert_eq!((s.per_page, s.page), (10, 3));
    for bad in ["_l=0", "_l=101", "_l=ten", "_l=-1", "_sk=-5", "_sk=x"] {
        assert_eq!(
            user_search(Some(bad), None, &conns()).unwrap_err().status,
            400,
            "{bad}"
        );
    }
}

#[test]
fn exact_fields_keep_wildcards_and_escape_the_rest() {
    assert_eq!(
        q("email=alice%40example.org&nickname=al*"),
        r#"(email:alice@example.org AND nickname:al*) AND (identities.connection:"db-a" OR identities.connection:"db-b")"#
    );
    // `a") OR (b` is one literal value: every special character is escaped.
    assert_eq!(
        q("username=a%22%29+OR+%28b"),
        r#"(username:a\"\)\ OR\ \(b) AND (identities.connection:"db-a" OR identities.connection:"db-b")"#
    );
    assert!(q("email=*").starts_with("(email:*) AND (identities.connection"));
    assert!(q("email=a%3Fb%5C").contains(r#"email:a\?b\\"#));
}

#[test]
fn connections_are_checked_and_ored_last() {
    assert_eq!(
        q("connection=db-b&email=x&connection=db-a"),
        r#"(email:x) AND (identities.connection:"db-b" OR identities.connection:"db-a")"#
    );
    assert_eq!(
        user_search(Some("connection=evil"), None, &conns())
            .unwrap_err()
            .status,
        400
    );
    // Without supported connections no clause is added, and none may be asked for.
    assert_eq!(
        user_search(Some("email=x"), None, &[]).unwrap().q,
        "(email:x)"
    );
    assert_eq!(
        user_search(Some("connection=x"), None, &[])
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn app_metadata_filters_are_phrases_and_in_is_an_or_group() {
    assert_eq!(
        user_search(Some("app_metadata.groups=admin"), None, &[])
            .unwrap()
            .q,
        r#"(app_metadata.groups:"admin")"#
    );
    let in_query = format!(
        "app_metadata.groups={}",
        urlencode(r#"{"$in":["admin","ops"]}"#)
    );
    assert_eq!(
        user_search(Some(&in_query), None, &[]).unwrap().q,
        r#"((app_metadata.groups:"admin" OR app_metadata.groups:"ops"))"#
    );
    assert_eq!(
        user_search(
            Some("app_metadata.subscription.plan=gold%22+OR+%22x"),
            None,
            &[]
        )
        .unwrap()
        .q,
        r#"(app_metadata.subscription.plan:"gold\" OR \"x")"#
    );
    for bad in [
        "app_metadata.=x",
        "app_metadata.a%20b=x",
        "app_metadata.a:b=x",
        "app_metadata.groups=",
        "app_metadata.groups=%7B%22%24nin%22%3A%5B%22a%22%5D%7D",
        "app_metadata.groups=%7B%22%24in%22%3A%5B%5D%7D",
        "app_metadata.groups=%7B",
        "user_metadata.x=1",
        "q=*",
        "email=a&email=b",
        "email=a%0Ab",
    ] {
        assert_eq!(
            user_search(Some(bad), None, &[]).unwrap_err().status,
            400,
            "{bad}"
        );
    }
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

#[test]
fn acl_rows_are_translated_and_anded_in_front() {
    let acl = r#"{"$and":[{"app_metadata.tenant":"t1"},{"$or":[{"app_metadata.groups":{"$in":["admin","ops"]}},{"app_metadata.level":{"$eq":3}}]}]}"#;
    let s = user_search(Some("email=a*"), Some(acl), &conns()).unwrap();
    assert_eq!(
        s.q,
        concat!(
            r#"((app_metadata.tenant:"t1" AND ((app_metadata.groups:"admin" OR app_metadata.groups:"ops") OR app_metadata.level:"3")))"#,
            r#" AND (email:a*) AND (identities.connection:"db-a" OR identities.connection:"db-b")"#
        )
    );
    assert_eq!(
        user_search(
            None,
            Some(r#"{"app_metadata.a":"x","app_metadata.b":true}"#),
            &[]
        )
        .unwrap()
        .q,
        r#"((app_metadata.a:"x" AND app_metadata.b:"true"))"#
    );
    for bad in [
        "not json",
        "{}",
        "[]",
        r#"{"$and":[]}"#,
        r#"{"$nor":[{"a":"b"}]}"#,
        r#"{"a b":"x"}"#,
        r#"{"a":{"$regex":".*"}}"#,
        r#"{"a":{"$eq":"x","$in":["y"]}}"#,
        r#"{"a":null}"#,
        r#"{"a":""}"#,
    ] {
        assert_eq!(
            user_search(None, Some(bad), &[]).unwrap_err().status,
            400,
            "{bad}"
        );
    }
    let mut deep = String::from(r#"{"a":"x"}"#);
    for _ in 0..12 {
        deep = format!(r#"{{"$and":[{deep}]}}"#);
    }
    assert_eq!(user_search(None, Some(&deep), &[]).unwrap_err().status, 400);
}

#[test]
fn injection_attempts_stay_literal() {
    // A value can never close the group it sits in: every `"` or `)` is escaped.
    for attack in [
        r#"a") OR (b"#,
        r#"x" OR email:*"#,
        r#"*) OR (*"#,
        "\\\" OR \\\"",
    ] {
        let query = format!("username={}", urlencode(attack));
        let s = user_search(Some(&query), None, &conns()).unwrap();
        let inner =
            s.q.strip_prefix("(username:")
                .and_then(|r| r.split(") AND (identities").next())
                .unwrap();
        assert!(
            !inner.contains(" OR ") || inner.contains("\\ OR\\ "),
            "{attack} → {}",
            s.q
        );
        let query = format!("app_metadata.x={}", urlencode(attack));
        let s = user_search(Some(&query), None, &conns()).unwrap();
        assert!(
            s.q.ends_with(
                r#") AND (identities.connection:"db-a" OR identities.connection:"db-b")"#
            ),
            "{}",
            s.q
        );
    }
}

#[test]
fn acl_fields_cannot_start_with_a_lucene_operator() {
    // `{"-x":"1"}` became `(-x:"1")`, Lucene's NOT: an ACL that widened the search to every
    // user without x=1. Found with the fuzz target's query-shape check.
    for acl in [r#"{"-x":"1"}"#, r#"{"+x":"1"}"#, r#"{"$or":[{"-x":"1"}]}"#] {
        let err = user_search(None, Some(acl), &conns()).unwrap_err();
        assert_eq!(err.status, 400, "{acl}");
    }
    let ok = user_search(None, Some(r#"{"_x.a-b":"1"}"#), &conns()).unwrap();
    assert!(ok.q.starts_with(r#"(_x.a-b:"1")"#), "{}", ok.q);
}

#[test]
fn acl_rows_and_in_filters_with_a_repeated_member_are_400() {
    for (acl, key) in [
        (
            r#"{"app_metadata.tenant":"a","app_metadata.tenant":"b"}"#,
            "app_metadata.tenant",
        ),
        (r#"{"$or":[{"a":"x"}],"$or":[{"b":"y"}]}"#, "$or"),
        (r#"{"a":{"$eq":"x","$eq":"y"}}"#, "$eq"),
        (r#"{"$and":[{"b":{"$in":["y"],"$in":["z"]}}]}"#, "$in"),
    ] {
        let err = user_search(None, Some(acl), &[]).unwrap_err();
        assert_eq!(
            (err.status, err.message),
            (400, format!("`{key}` is given more than once")),
            "{acl}"
        );
    }
    let query = format!(
        "app_metadata.groups={}",
        urlencode(r#"{"$in":["a"],"$in":["b"]}"#)
    );
    let err = user_search(Some(&query), None, &[]).unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (400, "`$in` is given more than once")
    );
}
