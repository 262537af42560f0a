use super::*;

#[test]
fn formats_rfc3339_utc() {
    assert_eq!(Timestamp::from_secs(0).to_rfc3339(), "1970-01-01T00:00:00Z");
    let t = Timestamp {
        secs: 1_626_424_104,
        nanos: 568_365_226,
    };
    assert_eq!(t.to_rfc3339(), "2021-07-16T08:28:24.568365226Z");
    let t = Timestamp {
        secs: 951_782_400,
        nanos: 500_000_000,
    };
    assert_eq!(t.to_rfc3339(), "2000-02-29T00:00:00.5Z");
    assert_eq!(
        Timestamp::from_secs(4_102_444_800).to_rfc3339(),
        "2100-01-01T00:00:00Z"
    );
}
