use super::*;
use Credential::*;
use ProofingLevel::*;

#[test]
fn vector_parse_table() {
    use VectorError::*;
    let cases: &[(&str, Result<&str, VectorError>)] = &[
        ("P9.Cp.Cd", Ok("P9.Cp.Cd")),
        ("Cd.Cp.P9", Ok("P9.Cp.Cd")),
        ("Cm.P5", Ok("P5.Cm")),
        ("P9.Cp.Cd ", Ok("P9.Cp.Cd")),
        ("P0", Ok("P0")),
        ("Cm.Ck.Cd.Cp", Ok("Cp.Cd.Ck.Cm")),
        ("", Err(Empty)),
        ("  ", Err(Empty)),
        ("P9..Cp", Err(EmptyComponent)),
        ("P9.Cp.", Err(EmptyComponent)),
        (".P9", Err(EmptyComponent)),
        ("P9.Cx", Err(UnknownComponent("Cx".into()))),
        ("p9.Cp", Err(UnknownComponent("p9".into()))),
        ("P7.Cp", Err(UnknownComponent("P7".into()))),
        ("P9.Cp.Cp", Err(DuplicateComponent("Cp".into()))),
        ("P9.P9.Cp", Err(DuplicateComponent("P9".into()))),
        ("P5.P9.Cp", Err(MultipleProofingLevels)),
    ];
    for (input, expected) in cases {
        let got = Vector::parse(input);
        assert_eq!(
            got.as_ref().map(Vector::as_str).map_err(Clone::clone),
            expected.clone(),
            "input {input:?}"
        );
    }
}

#[test]
fn vector_parts() {
    let v = Vector::parse("Cd.P9.Cp").unwrap();
    assert_eq!(v.level(), Some(P9));
    assert_eq!(v.credentials(), CredentialSet::from([Cp, Cd]));
    let only_creds = Vector::parse("Cm").unwrap();
    assert_eq!(only_creds.level(), None);
    assert_eq!(only_creds.required_level(), P0);
}

#[test]
fn from_parts_builds_canonical_vectors() {
    let v = Vector::from_parts(Some(P5), CredentialSet::from([Cd, Cp])).unwrap();
    assert_eq!(v.as_str(), "P5.Cp.Cd");
    assert_eq!(v, Vector::parse("P5.Cd.Cp").unwrap());
    assert_eq!(Vector::from_parts(None, CredentialSet::new()), None);
}

#[test]
fn vector_is_met_by() {
    let p9_cp_cd = Vector::parse("P9.Cp.Cd").unwrap();
    let cases = [
        (P9, CredentialSet::from([Cp, Cd]), true),
        (P9, CredentialSet::from([Cp, Cd, Cm]), true),
        (P9, CredentialSet::from([Cp]), false),
        (P5, CredentialSet::from([Cp, Cd]), false),
    ];
    for (level, creds, expected) in cases {
        assert_eq!(
            p9_cp_cd.is_met_by(level, creds),
            expected,
            "{level:?} {creds:?}"
        );
    }
    let any_level_cm = Vector::parse("Cm").unwrap();
    assert!(any_level_cm.is_met_by(P0, CredentialSet::from([Cm])));
    let p5_any_credential = Vector::parse("P5").unwrap();
    assert!(p5_any_credential.is_met_by(P9, CredentialSet::new()));
    assert!(!p5_any_credential.is_met_by(P0, CredentialSet::from([Cp])));
}

#[test]
fn request_parse_table() {
    use VectorRequestError::*;
    let eleven = format!("[{}]", ["\"P9.Cm\""; 11].join(","));
    let ten = format!("[{}]", ["\"P9.Cm\""; 10].join(","));
    let cases: Vec<(&str, Result<&str, VectorRequestError>)> = vec![
        (r#"["P9.Cp.Cd","P9.Cm"]"#, Ok(r#"["P9.Cp.Cd","P9.Cm"]"#)),
        (r#"[ "P9.Cp.Cd ", "P9.Ck" ]"#, Ok(r#"["P9.Cp.Cd","P9.Ck"]"#)),
        (
            "[\u{201C}P5.Cp.Cd\u{201D}, \u{201C}P5.Cp.Ck\u{201D},\u{201C}P5.Cm\u{201D}]",
            Ok(r#"["P5.Cp.Cd","P5.Cp.Ck","P5.Cm"]"#),
        ),
        (r#"["Cd.Cp.P9"]"#, Ok(r#"["P9.Cp.Cd"]"#)),
        (&ten, Ok(&ten)),
        ("[]", Err(Empty)),
        ("P9.Cp.Cd", Err(NotJsonArray)),
        (r#"["P9.Cm", 9]"#, Err(NotAString)),
        (&eleven, Err(TooMany)),
        (
            r#"["P9.Cm","P9.Cx"]"#,
            Err(InvalidVector {
                vector: "P9.Cx".into(),
                source: VectorError::UnknownComponent("Cx".into()),
            }),
        ),
        (
            r#"["P9.Cd.Cd"]"#,
            Err(InvalidVector {
                vector: "P9.Cd.Cd".into(),
                source: VectorError::DuplicateComponent("Cd".into()),
            }),
        ),
    ];
    for (input, expected) in cases {
        let got = VectorRequest::parse(input);
        assert_eq!(
            got.as_ref()
                .map(VectorRequest::as_str)
                .map_err(Clone::clone),
            expected,
            "input {input:?}"
        );
    }
}

#[test]
fn default_request_is_the_specification_default() {
    let d = VectorRequest::default_request();
    assert_eq!(d.as_str(), r#"["P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]"#);
    assert_eq!(d.vectors().len(), 3);
    assert_eq!(d, VectorRequest::default());
    assert_eq!(d.lowest_level(), P9);
}

#[test]
fn best_match_prefers_highest_level_then_request_order() {
    // Example 3 of section 5.1.6.3: a service accepting P5 or P9.
    let req =
        VectorRequest::parse(r#"["P5.Cp.Cd","P5.Cp.Ck","P5.Cm","P9.Cp.Cd","P9.Cp.Ck","P9.Cm"]"#)
            .unwrap();
    let best = |level, creds: &[Credential]| {
        req.best_match(level, creds.iter().copied().collect())
            .map(Vector::as_str)
    };
    assert_eq!(best(P9, &[Cp, Cd]), Some("P9.Cp.Cd"));
    assert_eq!(best(P5, &[Cp, Cd]), Some("P5.Cp.Cd"));
    assert_eq!(best(P9, &[Cp, Cd, Ck]), Some("P9.Cp.Cd"));
    assert_eq!(best(P9, &[Cm]), Some("P9.Cm"));
    assert_eq!(best(P0, &[Cp, Cd]), None);
    assert_eq!(best(P9, &[Cp]), None);
    assert_eq!(req.lowest_level(), P5);
}

#[test]
fn vectors_without_a_level_count_as_p0() {
    let req = VectorRequest::parse(r#"["P9.Cp","Cp"]"#).unwrap();
    assert_eq!(req.lowest_level(), P0);
    let creds = CredentialSet::from([Cp]);
    assert_eq!(req.best_match(P0, creds).map(Vector::as_str), Some("Cp"));
    assert_eq!(req.best_match(P9, creds).map(Vector::as_str), Some("P9.Cp"));
}

#[test]
fn serde_goes_through_parse() {
    let v: Vector = serde_json::from_str("\"Cd.Cp.P9\"").unwrap();
    assert_eq!(serde_json::to_string(&v).unwrap(), "\"P9.Cp.Cd\"");
    assert!(serde_json::from_str::<Vector>("\"P9.Cz\"").is_err());
    let r: VectorRequest = serde_json::from_str(r#""[\"P9.Cm\"]""#).unwrap();
    assert_eq!(r.vectors()[0].as_str(), "P9.Cm");
    assert!(serde_json::from_str::<VectorRequest>(r#""[]""#).is_err());
}

#[test]
fn error_messages_are_readable() {
    let e = VectorRequest::parse(r#"["P9.Cx"]"#).unwrap_err();
    assert_eq!(
        e.to_string(),
        "The vector of trust \"P9.Cx\" in vtr is not valid: \"Cx\" is not a supported \
         vector of trust component: use P0, P5, P9, Cp, Cd, Ck or Cm"
    );
}
