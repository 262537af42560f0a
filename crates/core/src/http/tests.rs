use super::*;

fn serialised(headers: &[(&str, &[u8])]) -> Vec<u8> {
    serialise_header_map(headers).unwrap()
}

#[test]
fn header_pairs_are_read_in_place_from_the_abi_buffer() {
    let headers: [(&str, &[u8]); 4] = [
        (":path", b"/oauth/token?x=1"),
        (":method", b"POST"),
        ("x-empty", b""),
        ("x-latin1", b"caf\xe9"),
    ];
    let buffer = serialised(&headers);
    assert_eq!(header_pairs(&buffer).unwrap(), headers);
    assert_eq!(header_pairs(&serialised(&[])).unwrap(), vec![]);
    // A name that is not UTF-8 drops that header only.
    let mut odd = serialised(&[("x-\u{e9}", b"1"), ("a", b"2")]);
    let at = odd.iter().position(|&b| b == 0xc3).unwrap();
    odd[at] = 0xff;
    assert_eq!(header_pairs(&odd).unwrap(), vec![("a", &b"2"[..])]);
}

#[test]
fn any_header_buffer_is_read_or_refused_without_panicking() {
    // Bytes after the last header are not the map's: ignored.
    let mut trailing = serialised(&[(":path", b"/x")]);
    trailing.extend(b"\x01\x02");
    assert_eq!(
        header_pairs(&trailing).unwrap(),
        vec![(":path", &b"/x"[..])]
    );
    // Pseudo-random buffers, some starting like a real map (small counts and lengths).
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..20_000u32 {
        let mut buffer = Vec::new();
        let len = (round % 64) as usize;
        for _ in 0..len {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            buffer.push((state >> 56) as u8 % if round % 2 == 0 { 4 } else { 255 });
        }
        let _ = header_pairs(&buffer);
    }
}

#[test]
fn a_header_buffer_out_of_format_is_refused() {
    let buffer = serialised(&[(":path", b"/x"), ("accept", b"*/*")]);
    // Cut anywhere, or a NUL turned into another byte: refused, never read past the end.
    for cut in 0..buffer.len() {
        assert_eq!(header_pairs(&buffer[..cut]), None, "cut at {cut}");
    }
    for (at, _) in buffer.iter().enumerate().skip(20).filter(|(_, &b)| b == 0) {
        let mut bad = buffer.clone();
        bad[at] = b'x';
        assert_eq!(header_pairs(&bad), None, "NUL at {at}");
    }
    // Counts and lengths that overflow or exceed the buffer.
    assert_eq!(header_pairs(&u32::MAX.to_le_bytes()), None);
    let mut huge = buffer.clone();
    huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
    assert_eq!(header_pairs(&huge), None);
}

#[test]
fn log_tags_carry_a_sanitised_request_id_and_the_route() {
    assert_eq!(
        log_tag("4f1c-9a0b", "token"),
        "[request_id=4f1c-9a0b route=token]"
    );
    assert_eq!(log_tag("", "logout"), "[request_id=- route=logout]");
    // A client cannot start a new log line or fake another field.
    assert_eq!(
        log_tag("x\r\nroute=admin ok", "token"),
        "[request_id=x__route_admin_ok route=token]"
    );
    assert_eq!(
        log_tag(&"a".repeat(500), "t").len(),
        "[request_id= route=t]".len() + 64
    );
}

fn head(headers: &[(&str, &str)]) -> RequestHead {
    RequestHead::from_headers(headers)
}

#[test]
fn splits_pseudo_headers_and_query() {
    let h = head(&[
        (":method", "GET"),
        (":path", "/logout?redirect=/a?b=c"),
        (":authority", "example.org"),
        ("X-Forwarded-Host", "public.example.org"),
    ]);
    assert_eq!(h.method, "GET");
    assert_eq!(h.path_only(), "/logout");
    assert_eq!(h.query(), Some("redirect=/a?b=c"));
    assert_eq!(h.header("x-forwarded-host"), Some("public.example.org"));
    assert_eq!(
        h.headers().collect::<Vec<_>>(),
        [("x-forwarded-host", "public.example.org")],
        "names lower-cased, pseudo-headers apart"
    );
}

#[test]
fn a_head_read_from_envoy_keeps_every_header_in_order_and_bad_bytes_lossily() {
    let pairs: [(&str, &[u8]); 5] = [
        (":path", b"/api/x"),
        ("cookie", b"a=1"),
        ("x-note", b"caf\xc3\xa9 \xff end"),
        ("Cookie", b"sid=t"),
        ("empty", b""),
    ];
    let h = RequestHead::from_pairs(pairs.into_iter());
    assert_eq!(h.path, "/api/x");
    assert_eq!(
        h.header_values("cookie").collect::<Vec<_>>(),
        ["a=1", "sid=t"]
    );
    assert_eq!(h.header("x-note"), Some("caf\u{e9} \u{fffd} end"));
    assert_eq!(h.header("empty"), Some(""));
    assert_eq!(h.header("missing"), None);
    assert_eq!(h.headers().count(), 4);
    // Names compare whole and in any case; pseudo-headers are not headers.
    assert_eq!(h.header("COOKIE"), Some("a=1"));
    assert_eq!(h.header("cook"), None);
    assert_eq!(h.header("cookies"), None);
    assert_eq!(h.header(":path"), None);
    assert_eq!(h.header("X-Note"), h.header("x-note"));
}

#[test]
fn ip_of_envoy_addresses() {
    assert_eq!(ip_of_address("10.1.2.3:5678").as_deref(), Some("10.1.2.3"));
    assert_eq!(
        ip_of_address("[2001:db8::1]:443").as_deref(),
        Some("2001:db8::1")
    );
    assert_eq!(ip_of_address("2001:db8::1").as_deref(), Some("2001:db8::1"));
    assert_eq!(ip_of_address("/var/run/uds.sock"), None);
    assert_eq!(ip_of_address("1.2.3.4\r\nx:1"), None);
}

#[test]
fn bearer_token_is_case_insensitive_and_trimmed() {
    assert_eq!(
        head(&[("authorization", "bearer  abc ")]).bearer_token(),
        Some("abc")
    );
    assert_eq!(head(&[("authorization", "Basic abc")]).bearer_token(), None);
    assert_eq!(head(&[("authorization", "Bearer ")]).bearer_token(), None);
    let twice = [
        ("authorization", "Bearer abc"),
        ("Authorization", "Bearer def"),
    ];
    assert_eq!(head(&twice).bearer_token(), None);
}

#[test]
fn a_single_header_is_refused_when_repeated() {
    let h = head(&[
        ("acl_rows", "{}"),
        ("x-one", "1"),
        ("ACL_ROWS", "{\"a\":1}"),
    ]);
    let err = h.single_header("acl_rows").unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.message, "the `acl_rows` header is given more than once");
    assert_eq!(h.single_header("x-one").unwrap(), Some("1"));
    assert_eq!(h.single_header("missing").unwrap(), None);
    // An empty repeat still counts as a second copy.
    let h = head(&[("secret", "k"), ("secret", "")]);
    assert_eq!(h.single_header("secret").unwrap_err().status, 400);
}

#[test]
fn header_values_with_crlf_are_never_sent() {
    let mut reply = Reply::new(302);
    reply.push_header("location", "https://a/\r\nset-cookie: x=y");
    reply.push_header("x-ok", "fine\tvalue");
    assert_eq!(reply.header("location"), None);
    assert_eq!(reply.header("x-ok"), Some("fine\tvalue"));
}
