//! Ending a session (logout) ends its token however it is presented: as the `sid` cookie, as a
//! Bearer token on protected routes, on `/userinfo` and `/refreshtoken`; on the worker that
//! ended it at once, on other workers within `sessionRecheckSeconds`.

use super::driver::{Driver, NOW};
use super::identity::{sign, website_login, ISSUER};
use super::*;
use crate::testing::jwks_json;

#[test]
fn logout_ends_a_token_however_it_is_presented() {
    for recheck in [0, 5] {
        let mut d = Driver::new(serde_json::json!({
            "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"],
            "protectedRoutes": {"prefixes": ["/api/"], "sessionRecheckSeconds": recheck},
            "tokenLeewaySeconds": 0
        }));
        d.jwks()
            .put(ISSUER, jwks_json(&["k1"]).as_bytes(), NOW)
            .unwrap();
        let audiences = [
            "https://api.example.org",
            "https://tenant.eu.auth0.com/userinfo",
        ];
        let access = sign("k1", &audiences, "web-client-id", 600);
        website_login(&mut d, &access);
        let bearer = format!("Bearer {access}");
        let cookie = format!("sid={access}");
        let as_bearer = [("authorization", bearer.as_str())];
        let as_cookie = [("cookie", cookie.as_str()), ("secret", "web-key")];
        // Used as a Bearer token before the logout, here and on another worker or replica
        // (another verifier): `recheck` bounds how long that one goes on from its last read.
        assert!(d.request("GET", "/api/orders", &as_bearer, b"").is_none());
        let mut elsewhere = crate::tokens::verifier::Verifier::default();
        let store = d.jwks();
        let source = |issuer: &str| store.source(issuer);
        let seen_elsewhere = elsewhere
            .verify(
                &access,
                &crate::tokens::verifier::VerifyAgainst::TokenClient,
                &d.config,
                &source,
                NOW,
            )
            .unwrap();
        *seen_elsewhere.session_seen.borrow_mut() = Some(crate::jwt::SessionSeen {
            at: NOW.secs,
            groups: String::new(),
        });
        d.answers.push_back(CalloutResult::Answered {
            status: 200,
            headers: vec![],
            body: Vec::new(),
        });
        let logout = d.request("GET", "/logout", &as_cookie, b"").unwrap();
        assert_eq!(logout.status, 302);
        assert!(d.session(&access).is_none());
        // The worker that ended the session forgets its read at once.
        let bearer_after = d.request("GET", "/api/orders", &as_bearer, b"");
        assert_eq!(bearer_after.unwrap().status, 401);
        // Another worker goes on from its last read only within the bound.
        std::mem::swap(&mut *d.verifier.borrow_mut(), &mut elsewhere);
        let bearer_elsewhere = d.request("GET", "/api/orders", &as_bearer, b"");
        match recheck {
            0 => assert_eq!(bearer_elsewhere.unwrap().status, 401),
            _ => assert!(
                bearer_elsewhere.is_none(),
                "within the bound, from its last read"
            ),
        }
        // Everywhere else the filter takes the token, at once.
        for (method, path, headers) in [
            ("GET", "/api/orders", &as_cookie[..1]),
            ("GET", "/userinfo", &as_bearer[..]),
            ("GET", "/userinfo", &as_cookie[..]),
        ] {
            let reply = d.request(method, path, headers, b"").unwrap();
            assert_eq!(reply.status, 401, "{method} {path} {headers:?}");
        }
        let refresh = d
            .request(
                "POST",
                "/refreshtoken",
                &[as_bearer[0], ("secret", "web-key")],
                b"",
            )
            .unwrap();
        assert_eq!(refresh.status, 401);
    }
}
