use super::*;

#[test]
fn reads_what_serde_json_reads() {
    for text in [
        r#"{"a":1,"b":[true,null,-2,3.5,"x\u00e9"],"c":{"d":{}},"e":18446744073709551615}"#,
        "[]",
        "\"s\"",
        "0",
        " {\"k\" : [ ] } ",
    ] {
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(from_slice(text.as_bytes()).unwrap(), expected, "{text}");
    }
}

#[test]
fn a_repeated_member_is_refused_at_any_depth() {
    for (text, key) in [
        (r#"{"username":"a","username":"b"}"#, "username"),
        (r#"{"a":{"x":1,"y":2,"x":3}}"#, "x"),
        (r#"[1,{"k":[{"deep":1,"deep":1}]}]"#, "deep"),
        // Escapes are decoded first: these are the same name.
        (r#"{"ab":1,"a\u0062":2}"#, "ab"),
    ] {
        assert_eq!(
            from_slice(text.as_bytes()),
            Err(JsonError::Duplicate(key.into())),
            "{text}"
        );
    }
    // The same name in sibling objects is fine.
    assert!(from_slice(br#"[{"a":1},{"a":2}]"#).is_ok());
    assert!(from_slice(br#"{"a":{"a":{"a":1}}}"#).is_ok());
}

#[test]
fn a_repeated_member_is_a_sanitised_400() {
    let err = parse(
        b"{\"a\\u0000\\n\":1,\"a\\u0000\\n\":2}",
        "malformed JSON body",
    )
    .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.message, "`a` is given more than once");
    let long = "k".repeat(200);
    let text = format!(r#"{{"{long}":1,"{long}":2}}"#);
    let err = parse(text.as_bytes(), "malformed").unwrap_err();
    assert_eq!(
        err.message,
        format!("`{}` is given more than once", "k".repeat(64))
    );
}

#[test]
fn nesting_is_bounded() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(from_slice(nested(MAX_DEPTH).as_bytes()).is_ok());
    assert_eq!(
        from_slice(nested(MAX_DEPTH + 1).as_bytes()),
        Err(JsonError::TooDeep)
    );
    // Past serde_json's own recursion limit too: still our answer, and no stack overflow.
    assert_eq!(
        from_slice(nested(100_000).as_bytes()),
        Err(JsonError::TooDeep)
    );
    let objects = format!(
        "{}1{}",
        r#"{"a":"#.repeat(MAX_DEPTH + 1),
        "}".repeat(MAX_DEPTH + 1)
    );
    assert_eq!(from_slice(objects.as_bytes()), Err(JsonError::TooDeep));
    assert_eq!(
        parse(nested(MAX_DEPTH + 1).as_bytes(), "x")
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn malformed_input_is_malformed() {
    for text in [
        &b""[..],
        b"{",
        b"{\"a\":1}x",
        b"{\"a\":1,}",
        b"\xff",
        b"[1 2]",
        b"NaN",
    ] {
        assert_eq!(
            from_slice(text),
            Err(JsonError::Malformed),
            "{:?}",
            String::from_utf8_lossy(text)
        );
    }
    let err = parse(b"{", "acl_rows is not valid JSON").unwrap_err();
    assert_eq!(
        (err.status, err.message.as_str()),
        (400, "acl_rows is not valid JSON")
    );
}
