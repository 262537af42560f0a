use super::*;

const CT: &str = "multipart/form-data; boundary=XyZ";

#[test]
fn parses_fields_and_files() {
    let body = "--XyZ\r\nContent-Disposition: form-data; name=\"connection_id\"\r\n\r\ncon_1\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\n\
                Content-Type: application/json\r\n\r\n[{\"email\":\"a@b.c\"}]\r\n\
                --XyZ\r\nContent-Disposition: form-data; name=\"empty\"\r\n\r\n\r\n--XyZ--\r\n";
    let parts = parse(CT, body.as_bytes()).unwrap();
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[0].name, "connection_id");
    assert_eq!(parts[0].data, b"con_1");
    assert_eq!(parts[1].filename.as_deref(), Some("users.json"));
    assert_eq!(parts[1].content_type.as_deref(), Some("application/json"));
    assert_eq!(parts[1].data, br#"[{"email":"a@b.c"}]"#);
    assert_eq!(parts[2].data, b"");
}

#[test]
fn boundary_forms() {
    assert_eq!(
        boundary("multipart/form-data; boundary=\"a b\"").unwrap(),
        "a b"
    );
    assert!(boundary("application/json").is_err());
    assert!(boundary("multipart/form-data").is_err());
}

#[test]
fn malformed_bodies() {
    for body in [
        "",
        "no boundary here",
        "--XyZ\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\nunterminated",
        "--XyZ\r\nno-colon-header\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
        "--XyZ\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--XyZ--",
        "--XyZjunk",
    ] {
        assert!(parse(CT, body.as_bytes()).is_err(), "{body:?}");
    }
}
