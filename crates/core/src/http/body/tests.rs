use super::*;

#[test]
fn content_type_selects_format_or_415() {
    assert_eq!(
        body_format(Some("application/x-www-form-urlencoded; charset=UTF-8")).unwrap(),
        BodyFormat::Form
    );
    assert_eq!(
        body_format(Some("Application/JSON")).unwrap(),
        BodyFormat::Json
    );
    assert_eq!(body_format(Some("text/plain")).unwrap_err().status, 415);
    assert_eq!(body_format(None).unwrap_err().status, 415);
}

#[test]
fn form_fields_are_decoded() {
    let f = Fields::parse(
        BodyFormat::Form,
        b"grant_type=password&username=a%40b.c&password=p+w%26x",
    )
    .unwrap();
    assert_eq!(f.required("username").unwrap(), "a@b.c");
    assert_eq!(f.required("password").unwrap(), "p w&x");
    assert_eq!(f.text("connection").unwrap(), None);
}

#[test]
fn malformed_forms_are_400() {
    for body in [
        &b"username"[..],
        b"a=1&a=2",
        b"a=%FF%FE",
        b"a=\xff",
        b"a=b c",
        b"a=b\r\nc=d",
    ] {
        let err = Fields::parse(BodyFormat::Form, body).unwrap_err();
        assert_eq!(err.status, 400, "{:?}", String::from_utf8_lossy(body));
    }
}

#[test]
fn json_fields_must_be_strings_in_an_object() {
    let f = Fields::parse(BodyFormat::Json, br#"{"username":"u","n":5}"#).unwrap();
    assert_eq!(f.required("username").unwrap(), "u");
    assert_eq!(f.text("n").unwrap_err().status, 400);
    assert_eq!(
        Fields::parse(BodyFormat::Json, b"[1]").unwrap_err().status,
        400
    );
    assert_eq!(
        Fields::parse(BodyFormat::Json, b"{").unwrap_err().status,
        400
    );
}

#[test]
fn a_json_member_given_twice_is_400_at_any_depth() {
    for (body, key) in [
        (&br#"{"username":"a","username":"b"}"#[..], "username"),
        (br#"{"password":"p","x":{"k":1,"k":2}}"#, "k"),
        (
            br#"{"refresh_token":"r","refresh_token":"r"}"#,
            "refresh_token",
        ),
    ] {
        let err = Fields::parse(BodyFormat::Json, body).unwrap_err();
        assert_eq!(
            (err.status, err.message),
            (400, format!("`{key}` is given more than once"))
        );
    }
}

#[test]
fn at_most_max_fields_are_read() {
    fn form(n: usize) -> String {
        (0..n)
            .map(|i| format!("f{i}=v"))
            .collect::<Vec<_>>()
            .join("&")
    }
    fn json(n: usize) -> String {
        let members: Vec<String> = (0..n).map(|i| format!(r#""f{i}":"v""#)).collect();
        format!("{{{}}}", members.join(","))
    }
    for (format, body) in [
        (BodyFormat::Form, form as fn(usize) -> String),
        (BodyFormat::Json, json),
    ] {
        let full = Fields::parse(format, body(MAX_FIELDS).as_bytes()).unwrap();
        assert_eq!(full.required("f63").unwrap(), "v");
        let err = Fields::parse(format, body(MAX_FIELDS + 1).as_bytes()).unwrap_err();
        assert_eq!(err.status, 400);
        assert!(err.message.contains("at most 64 fields"), "{}", err.message);
    }
}

#[test]
fn missing_required_field_is_400() {
    let f = Fields::parse(BodyFormat::Form, b"username=").unwrap();
    assert_eq!(f.required("username").unwrap_err().status, 400);
}
