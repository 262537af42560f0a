use serde_json::json;

use super::*;

fn users() -> Vec<Value> {
    vec![
        json!({"user_id": "auth0|a1", "email": "Alice@Example.org", "name": "Alice Example",
               "username": "alice", "identities": [{"connection": "db", "provider": "auth0"}],
               "app_metadata": {"groups": ["admin"], "subscription": {"plan": "gold", "seats": 5},
                                "beta": true, "tags": []},
               "user_metadata": {"theme": "dark", "addresses": [{"city": "Paris"}, {"city": "Rome"}]}}),
        json!({"user_id": "auth0|b2", "email": "bob@example.org", "name": "Bob Example",
               "identities": [{"connection": "db", "provider": "auth0"}],
               "app_metadata": {"groups": ["users"], "note": "a\") OR (b", "star": "x*y"}}),
        json!({"user_id": "auth0|c3", "email": "carol+test@partner.example", "name": "Carol Partner",
               "username": "o'brien", "identities": [{"connection": "partners-db", "provider": "auth0"}],
               "app_metadata": {"groups": ["admin", "ops"], "subscription": {"plan": "silver"},
                                "path": "a:b (c)", "quoted": "say \"hi\"\\now"}}),
    ]
}

/// The user ids a query selects, in order.
fn run(q: &str) -> Vec<String> {
    let query = parse(q).unwrap_or_else(|e| panic!("{q}: {e}"));
    users()
        .iter()
        .filter(|u| matches(&query, u))
        .map(|u| u["user_id"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn ids(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| format!("auth0|{s}")).collect()
}

#[test]
fn terms_and_phrases() {
    assert_eq!(run("email:bob@example.org"), ids(&["b2"]));
    assert_eq!(run(r#"name:"Alice Example""#), ids(&["a1"]));
    assert_eq!(
        run(r#"name:"Alice""#),
        ids(&[]),
        "phrases match whole values"
    );
    assert_eq!(run("user_id:auth0|c3"), ids(&["c3"]));
    assert_eq!(run("identities.connection:partners-db"), ids(&["c3"]));
    assert_eq!(run("email:carol+test@partner.example"), ids(&["c3"]));
}

#[test]
fn normalized_fields_ignore_case_and_others_do_not() {
    assert_eq!(run("email:alice@example.org"), ids(&["a1"]));
    assert_eq!(run("email:BOB@EXAMPLE.ORG"), ids(&["b2"]));
    assert_eq!(run(r#"name:"alice example""#), ids(&["a1"]));
    assert_eq!(run("name:ALICE*"), ids(&["a1"]));
    assert_eq!(run("username:ALICE"), ids(&[]));
    assert_eq!(run("app_metadata.groups:Admin"), ids(&[]));
    assert_eq!(run("app_metadata.groups:admin"), ids(&["a1", "c3"]));
}

#[test]
fn boolean_operators_and_precedence() {
    assert_eq!(
        run("app_metadata.groups:admin AND app_metadata.groups:ops"),
        ids(&["c3"])
    );
    assert_eq!(
        run("app_metadata.groups:users OR app_metadata.groups:ops"),
        ids(&["b2", "c3"])
    );
    assert_eq!(run("NOT app_metadata.groups:admin"), ids(&["b2"]));
    assert_eq!(
        run("app_metadata.groups:admin NOT username:alice"),
        ids(&["c3"])
    );
    // AND binds tighter than OR: users OR (admin AND ops).
    assert_eq!(
        run("app_metadata.groups:users OR app_metadata.groups:admin AND app_metadata.groups:ops"),
        ids(&["b2", "c3"])
    );
    assert_eq!(
        run("(app_metadata.groups:users OR app_metadata.groups:admin) AND NOT app_metadata.groups:ops"),
        ids(&["a1", "b2"])
    );
    assert_eq!(
        run(
            "((email:alice@example.org OR email:bob@example.org) AND (NOT (name:\"Bob Example\")))"
        ),
        ids(&["a1"])
    );
    // Side by side is OR.
    assert_eq!(run("username:alice username:o'brien"), ids(&["a1", "c3"]));
    // Lowercase `or` is not an operator: a bare word without a field is a syntax error.
    assert!(parse("username:alice or username:bob").is_err());
}

#[test]
fn field_groups() {
    assert_eq!(run("username:(alice OR o'brien)"), ids(&["a1", "c3"]));
    assert_eq!(run("app_metadata.groups:(admin AND ops)"), ids(&["c3"]));
    assert_eq!(run("app_metadata.groups:(admin AND NOT ops)"), ids(&["a1"]));
}

#[test]
fn wildcards_and_existence() {
    assert_eq!(run("email:*@example.org"), ids(&["a1", "b2"]));
    assert_eq!(run("name:*Partner"), ids(&["c3"]));
    assert_eq!(run("name:*ample*"), ids(&["a1", "b2"]));
    assert_eq!(run("username:?lice"), ids(&["a1"]));
    assert_eq!(run("username:*"), ids(&["a1", "c3"]));
    assert_eq!(
        run("app_metadata.subscription:*"),
        ids(&[]),
        "objects are not indexed"
    );
    assert_eq!(run("app_metadata.subscription.plan:*"), ids(&["a1", "c3"]));
    assert_eq!(
        run("app_metadata.tags:*"),
        ids(&[]),
        "empty arrays are not indexed"
    );
    assert_eq!(run("app_metadata.missing:*"), ids(&[]));
}

#[test]
fn escaped_characters_are_literal() {
    // An escaped `*` is a literal star, not a wildcard.
    assert_eq!(run(r"app_metadata.star:x\*y"), ids(&["b2"]));
    assert_eq!(run(r"app_metadata.star:x\*"), ids(&[]));
    assert_eq!(run(r"app_metadata.star:x*"), ids(&["b2"]));
    assert_eq!(run(r"username:o\'brien"), ids(&["c3"]));
    assert_eq!(run(r"app_metadata.path:a\:b\ \(c\)"), ids(&["c3"]));
    assert_eq!(run(r#"app_metadata.path:"a:b (c)""#), ids(&["c3"]));
    assert_eq!(
        run(r#"app_metadata.quoted:"say \"hi\"\\now""#),
        ids(&["c3"])
    );
    assert_eq!(run(r#"app_metadata.quoted:say\ \"hi\"\\now"#), ids(&["c3"]));
}

#[test]
fn a_quoted_value_cannot_break_out() {
    let q = r#"email:"a\") OR (b""#;
    assert_eq!(
        parse(q),
        Ok(Query::Term {
            field: "email".into(),
            value: Term::Phrase("a\") OR (b".into())
        })
    );
    assert_eq!(run(q), ids(&[]));
    assert_eq!(run(r#"app_metadata.note:"a\") OR (b""#), ids(&["b2"]));
    // Unescaped, the same text is a real OR of two (invalid) pieces.
    assert!(parse(r#"email:"a") OR (b""#).is_err());
    assert_eq!(run(r#"app_metadata.note:a\"\)\ OR\ \(b"#), ids(&["b2"]));
}

#[test]
fn nested_paths_and_arrays() {
    assert_eq!(run("app_metadata.subscription.plan:gold"), ids(&["a1"]));
    assert_eq!(run("app_metadata.subscription.seats:5"), ids(&["a1"]));
    assert_eq!(run("app_metadata.beta:true"), ids(&["a1"]));
    assert_eq!(run("user_metadata.addresses.city:Rome"), ids(&["a1"]));
    assert_eq!(run("user_metadata.addresses.city:rome"), ids(&[]));
    assert_eq!(run("identities.provider:auth0"), ids(&["a1", "b2", "c3"]));
}

#[test]
fn syntax_errors() {
    for bad in [
        "",
        "   ",
        "(email:a@b.c",
        "email:a@b.c)",
        "((email:a@b.c) OR name:x",
        "email:a@b.c AND",
        "email:a@b.c OR",
        "AND email:a@b.c",
        "OR email:a@b.c",
        "NOT",
        "email:a@b.c AND OR name:x",
        "alice",
        ":alice",
        "email:",
        "email: alice",
        "email:\"unterminated",
        "email:a\\",
        "email:a\"b",
        "email:a:b",
        "email:\"a\"b",
        "()",
        "email:()",
    ] {
        assert!(
            parse(bad).is_err(),
            "{bad:?} should not parse: {:?}",
            parse(bad)
        );
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("{}email:a@b.c{}", "(".repeat(60), ")".repeat(60));
    assert!(parse(&deep).is_ok());
    let too_deep = format!("{}email:a@b.c{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse(&too_deep).is_err());
    assert!(parse(&format!("{}email:a@b.c", "NOT ".repeat(10_000))).is_err());
}

#[test]
fn tree_shape() {
    let t = |f: &str, v: &str| Query::Term {
        field: f.into(),
        value: Term::Pattern(v.chars().map(Piece::Char).collect()),
    };
    assert_eq!(
        parse("a:1 OR b:2 AND NOT c:3"),
        Ok(Query::Or(
            Box::new(t("a", "1")),
            Box::new(Query::And(
                Box::new(t("b", "2")),
                Box::new(Query::Not(Box::new(t("c", "3"))))
            ))
        ))
    );
    assert_eq!(
        parse("a:x\\*"),
        Ok(Query::Term {
            field: "a".into(),
            value: Term::Pattern(vec![Piece::Char('x'), Piece::Char('*')])
        })
    );
    assert_eq!(
        parse("a:*"),
        Ok(Query::Term {
            field: "a".into(),
            value: Term::Exists
        })
    );
    assert_eq!(parse("ORDER:1"), Ok(t("ORDER", "1")));
}
