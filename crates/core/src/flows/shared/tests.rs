use super::presented_token_and_source;
use crate::http::RequestHead;

#[test]
fn the_session_cookie_wins_over_a_bearer_token_and_says_so() {
    let bearer = ("authorization", "Bearer from-header");
    type Headers<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Headers, Option<(&str, bool)>); 3] = [
        (
            &[bearer, ("cookie", "theme=dark; sid=from-cookie")],
            Some(("from-cookie", true)),
        ),
        (
            &[bearer, ("cookie", "theme=dark")],
            Some(("from-header", false)),
        ),
        (&[("cookie", "sid=")], None),
    ];
    for (headers, expected) in cases {
        let head = RequestHead::from_headers(headers);
        assert_eq!(presented_token_and_source(&head), expected, "{headers:?}");
    }
}
