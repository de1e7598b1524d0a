use super::api::notify_client::{ApiKey, NotifyClient, NotifyConfigError};
use super::{SECRET, SERVICE_ID};

#[test]
fn parses_a_well_formed_key() {
    let key = ApiKey::parse(&format!("live-{SERVICE_ID}-{SECRET}")).unwrap();
    assert_eq!(key.key_name(), "live");
    assert_eq!(key.service_id(), SERVICE_ID);
    assert_eq!(key.secret(), SECRET);
}

#[test]
fn key_names_may_contain_hyphens_and_whitespace_is_trimmed() {
    let key = ApiKey::parse(&format!("  citizen-id-prod-2-{SERVICE_ID}-{SECRET}\n")).unwrap();
    assert_eq!(key.key_name(), "citizen-id-prod-2");
    assert_eq!(key.service_id(), SERVICE_ID);
    assert_eq!(key.secret(), SECRET);

    let key = ApiKey::parse(&format!("clé-de-test-{SERVICE_ID}-{SECRET}")).unwrap();
    assert_eq!(key.key_name(), "clé-de-test");
    assert_eq!(key.service_id(), SERVICE_ID);
}

#[test]
fn malformed_keys_are_refused_without_echoing_the_key() {
    let cases = [
        String::new(),
        "not-a-key".to_owned(),
        // No key name.
        format!("{SERVICE_ID}-{SECRET}"),
        // Empty key name.
        format!("-{SERVICE_ID}-{SECRET}"),
        // Secret truncated by one character.
        format!("live-{SERVICE_ID}-{}", &SECRET[..35]),
        // Service id not a UUID (hex digit replaced).
        format!("live-{}-{SECRET}", SERVICE_ID.replace('a', "z")),
        // Separator missing between name and ids.
        format!("live_{SERVICE_ID}{SECRET}x"),
        // Non-ASCII inside the ids must not panic on a char boundary.
        format!("live-{}é-{SECRET}", &SERVICE_ID[..35]),
    ];
    for key in cases {
        let err = ApiKey::parse(&key).expect_err(&key);
        assert!(
            matches!(err, NotifyConfigError::MalformedApiKey(_)),
            "{key}: {err:?}"
        );
        assert!(!err.to_string().contains(SECRET), "error leaks the secret");
    }
}

#[test]
fn client_construction_reports_bad_key_and_bad_url() {
    let http = reqwest::Client::new();
    let good = format!("live-{SERVICE_ID}-{SECRET}");
    assert!(matches!(
        NotifyClient::new(http.clone(), "http://127.0.0.1:1", "live-nope"),
        Err(NotifyConfigError::MalformedApiKey(_))
    ));
    assert!(matches!(
        NotifyClient::new(http.clone(), "not a url", &good),
        Err(NotifyConfigError::InvalidBaseUrl(_))
    ));
    assert!(matches!(
        NotifyClient::new(http.clone(), "ftp://example.invalid", &good),
        Err(NotifyConfigError::InvalidBaseUrl(_))
    ));
    let client = NotifyClient::new(http, "https://api.example.invalid/", &good).unwrap();
    let shown = format!("{client:?}");
    assert!(!shown.contains(SECRET), "Debug leaks the secret: {shown}");
    assert!(shown.contains(SERVICE_ID));
}
