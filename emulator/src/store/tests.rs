use super::*;

#[test]
fn iso_timestamps() {
    assert_eq!(iso_from_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(
        iso_from_millis(1_704_067_200_123),
        "2024-01-01T00:00:00.123Z"
    );
    assert_eq!(iso_from_millis(951_782_400_000), "2000-02-29T00:00:00.000Z");
}

#[test]
fn ids_and_emails() {
    let id = new_user_id();
    assert_eq!(id.len(), "auth0|".len() + 24);
    let job = new_alnum_id("job_", 16);
    assert!(job[4..].chars().all(|c| c.is_ascii_alphanumeric()) && job.len() == 20);
    assert!(valid_email("a+b@example.org"));
    assert!(!valid_email("not-an-email"));
    assert!(!valid_email("a@b"));
    assert!(!valid_email("a b@example.org"));
}
