use super::*;
use Scope::*;

#[test]
fn every_scope_round_trips() {
    assert_eq!(Scope::all().len(), 11);
    for scope in Scope::all() {
        assert_eq!(Scope::parse(scope.as_str()), Ok(*scope));
        assert!(!scope.description().is_empty());
        assert!(!scope.claims().is_empty());
    }
    for bad in [
        "",
        "Openid",
        "Basic_demographics",
        "offline_access",
        "profile ",
    ] {
        assert_eq!(Scope::parse(bad), Err(ScopeError::Unknown), "{bad:?}");
    }
}

#[test]
fn claims_follow_the_reference_table() {
    assert_eq!(
        Profile.claims(),
        [
            "nhs_number",
            "birthdate",
            "family_name",
            "identity_proofing_level"
        ]
    );
    assert_eq!(
        BasicDemographics.claims(),
        ["birthdate", "family_name", "identity_proofing_level"]
    );
    assert_eq!(Email.claims(), ["email", "email_verified"]);
    assert_eq!(
        Phone.claims(),
        [
            "phone_number",
            "phone_number_verified",
            "phone_number_pds_matched"
        ]
    );
    assert_eq!(
        Landline.claims(),
        ["landline_number", "landline_number_verified"]
    );
    assert_eq!(ClientMetadata.claims(), ["client_user_metadata"]);
}

#[test]
fn scope_set_parse_table() {
    let cases: &[(&str, Result<&str, ScopeSetError>, &[&str])] = &[
        ("openid", Ok("openid"), &[]),
        ("email openid profile", Ok("openid profile email"), &[]),
        ("openid  openid\tphone", Ok("openid phone"), &[]),
        (
            "openid offline_access Basic_demographics offline_access",
            Ok("openid"),
            &["offline_access", "Basic_demographics"],
        ),
        (
            "delegation client_metadata gp_integration_credentials gp_registration_details \
             landline profile_extended basic_demographics openid",
            Ok(
                "openid basic_demographics profile_extended landline gp_registration_details \
                gp_integration_credentials client_metadata delegation",
            ),
            &[],
        ),
        ("", Err(ScopeSetError::MissingOpenid), &[]),
        ("profile email", Err(ScopeSetError::MissingOpenid), &[]),
        ("OpenID profile", Err(ScopeSetError::MissingOpenid), &[]),
    ];
    for (input, expected, ignored) in cases {
        let got = ScopeSet::parse(input);
        assert_eq!(
            got.as_ref().map(ScopeSet::as_string).map_err(|e| *e),
            expected.map(str::to_owned),
            "input {input:?}"
        );
        if let Ok(set) = got {
            assert_eq!(set.ignored(), *ignored, "input {input:?}");
        }
    }
}

#[test]
fn contains_iter_and_subset() {
    let requested = ScopeSet::parse("openid email profile").unwrap();
    let allowed = ScopeSet::parse("openid profile email phone").unwrap();
    assert!(requested.contains(Email) && !requested.contains(Phone));
    assert_eq!(
        requested.iter().collect::<Vec<_>>(),
        vec![Openid, Profile, Email]
    );
    assert!(requested.is_subset_of(&allowed));
    assert!(!allowed.is_subset_of(&requested));
    assert!(requested.is_subset_of(&requested));
}

#[test]
fn intersection_keeps_openid_and_ignored_values() {
    let requested = ScopeSet::parse("openid email landline wat").unwrap();
    let allowed = ScopeSet::parse("openid email phone").unwrap();
    let granted = requested.intersection(&allowed);
    assert_eq!(granted.as_string(), "openid email");
    assert_eq!(granted.ignored(), ["wat"]);
}

#[test]
fn claims_of_a_set_are_unique_and_ordered() {
    let set = ScopeSet::parse("openid basic_demographics profile").unwrap();
    assert_eq!(
        set.claims(),
        [
            "iss",
            "aud",
            "sub",
            "nhs_number",
            "birthdate",
            "family_name",
            "identity_proofing_level"
        ]
    );
}

#[test]
fn equality_ignores_ignored_values() {
    assert_eq!(
        ScopeSet::parse("openid email x").unwrap(),
        ScopeSet::parse("email openid").unwrap()
    );
}

#[test]
fn serde_goes_through_parse() {
    let set: ScopeSet = serde_json::from_str("\"profile openid\"").unwrap();
    assert_eq!(serde_json::to_string(&set).unwrap(), "\"openid profile\"");
    assert!(serde_json::from_str::<ScopeSet>("\"profile\"").is_err());
    let s: Scope = serde_json::from_str("\"gp_registration_details\"").unwrap();
    assert_eq!(s, GpRegistrationDetails);
    assert_eq!(s.to_string(), "gp_registration_details");
}
