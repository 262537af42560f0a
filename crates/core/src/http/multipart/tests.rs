use super::*;

const BODY: &[u8] = b"preamble\r\n--XyZ\r\nContent-Disposition: form-data; name=\"users\"; filename=\"u.json\"\r\nContent-Type: application/json\r\n\r\n[{\"email\":\"a@b.c\"}]\r\n--XyZ\r\ncontent-disposition: form-data; name=\"upsert\"\r\n\r\ntrue\r\n--XyZ--\r\n";

#[test]
fn boundary_comes_from_the_content_type() {
    assert_eq!(
        boundary_of(Some("multipart/form-data; boundary=XyZ")).unwrap(),
        "XyZ"
    );
    assert_eq!(
        boundary_of(Some("Multipart/Form-Data; charset=x; boundary=\"a b\"")).unwrap(),
        "a b"
    );
    assert_eq!(
        boundary_of(Some("application/json")).unwrap_err().status,
        415
    );
    assert_eq!(boundary_of(None).unwrap_err().status, 415);
    assert_eq!(
        boundary_of(Some("multipart/form-data")).unwrap_err().status,
        400
    );
    assert_eq!(
        boundary_of(Some("multipart/form-data; boundary=a\r\nb"))
            .unwrap_err()
            .status,
        400
    );
}

#[test]
fn parses_parts_with_names_filenames_and_types() {
    let parts = parse(BODY, "XyZ").unwrap();
    assert_eq!(parts.len(), 2);
    assert_eq!(parts[0].name, "users");
    assert_eq!(parts[0].filename.as_deref(), Some("u.json"));
    assert_eq!(parts[0].content_type.as_deref(), Some("application/json"));
    assert_eq!(parts[0].data, br#"[{"email":"a@b.c"}]"#);
    assert_eq!(
        (parts[1].name.as_str(), parts[1].data.as_slice()),
        ("upsert", &b"true"[..])
    );
}

#[test]
fn malformed_bodies_are_400() {
    let truncated = &BODY[..BODY.len() - 30];
    for body in [
        &b""[..],
        b"no boundary here",
        truncated,
        b"--XyZ\r\nContent-Disposition: form-data\r\n\r\nx\r\n--XyZ--",
        b"--XyZ\r\nX: y\r\n\r\nx\r\n--XyZ--",
        b"--XyZjunk",
    ] {
        assert_eq!(
            parse(body, "XyZ").unwrap_err().status,
            400,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn build_round_trips_and_picks_a_boundary_absent_from_the_data() {
    let parts = parse(BODY, "XyZ").unwrap();
    let (body, boundary) = build(&parts, b"seed");
    assert_eq!(parse(&body, &boundary).unwrap(), parts);
    let tricky = vec![Part {
        name: "users".into(),
        filename: None,
        content_type: None,
        data: boundary.clone().into_bytes(),
    }];
    let (body, other) = build(&tricky, b"seed");
    assert_ne!(other, boundary);
    assert!(boundary_of(Some(&format!("multipart/form-data; boundary={other}"))).is_ok());
    assert_eq!(parse(&body, &other).unwrap(), tricky);
}
