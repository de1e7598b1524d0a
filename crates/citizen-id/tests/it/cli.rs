//! The operator CLI (F2) against the same data dir the server uses.

use std::process::Command;

fn citizen_id(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_citizen-id")).args(args).env_remove("DATABASE_URL").output().expect("run citizen-id");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["sandpit", "--help"],
        vec!["serve", "--help"],
        vec!["migrate", "--help"],
        vec!["keys", "list", "--help"],
        vec!["keys", "rotate", "--help"],
        vec!["partner", "add", "--help"],
        vec!["partner", "list", "--help"],
        vec!["partner", "show", "--help"],
        vec!["partner", "update", "--help"],
        vec!["partner", "remove", "--help"],
        vec!["simulate", "pds", "--help"],
        vec!["simulate", "gp", "--help"],
        vec!["simulate", "generate-patients", "--help"],
    ] {
        let (ok, stdout, _) = citizen_id(&args);
        assert!(ok && stdout.contains("Usage:"), "{args:?}");
    }
}

#[test]
fn operators_manage_partners_and_keys() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().to_str().unwrap();
    let (der, jwk) = citizen_id::oidc::keys::generate_rsa_pkcs8().unwrap();
    let _ = der;
    let key = dir.path().join("key.jwk");
    std::fs::write(&key, jwk.to_string()).unwrap();
    let key = key.to_str().unwrap();
    let (ok, client_id, err) = citizen_id(&[
        "partner", "add", "--data-dir", d, "--name", "GP Online", "--redirect-uri", "https://gp.example/cb", "--public-key", key,
        "--scopes", "openid profile email", "--vtr", "P9.Cp.Cd", "--vtr", "P5.Cp.Cd",
    ]);
    assert!(ok, "{err}");
    let client_id = client_id.trim().to_string();
    let (_, listed, _) = citizen_id(&["partner", "list", "--data-dir", d]);
    assert!(listed.contains(&client_id) && listed.contains("GP Online"));
    let (ok, _, err) = citizen_id(&["partner", "update", "--data-dir", d, &client_id, "--name", "GP Online Services"]);
    assert!(ok, "{err}");
    let (_, shown, _) = citizen_id(&["partner", "show", "--data-dir", d, &client_id]);
    assert!(shown.contains("GP Online Services") && shown.contains("P9.Cp.Cd"));

    let (ok, _, err) = citizen_id(&["partner", "add", "--data-dir", d, "--name", "Bad", "--redirect-uri", "http://gp.example/cb", "--public-key", key, "--vtr", "P9.Cp.Cd"]);
    assert!(!ok && err.contains("redirect URI"), "plain http is refused: {err}");
    // http only for a developer's own machine, and only in a sandpit's registry (NHS login:
    // "HTTP URIs are NOT permitted"); at most 10 redirect URIs; a chosen client_id.
    let local = [
        "partner", "add", "--data-dir", d, "--name", "Local dev", "--redirect-uri", "http://localhost:3000/cb", "--public-key", key,
        "--vtr", "P0.Cp.Cd", "--client-id", "local-dev-app",
    ];
    let (ok, _, err) = citizen_id(&local);
    assert!(!ok && err.contains("HTTP URIs are NOT permitted") && err.contains("--sandpit"), "http://localhost needs --sandpit: {err}");
    let (ok, _, err) = citizen_id(&["partner", "update", "--data-dir", d, &client_id, "--redirect-uri", "http://localhost:3000/cb"]);
    assert!(!ok && err.contains("HTTP URIs are NOT permitted"), "nor can an update add one: {err}");
    let (ok, out, err) = citizen_id(&[&local[..], &["--sandpit"]].concat());
    assert!(ok && out.trim() == "local-dev-app", "{out} {err}");
    let (ok, _, err) = citizen_id(&["partner", "update", "--data-dir", d, "local-dev-app", "--name", "Local dev 2"]);
    assert!(!ok && err.contains("http://localhost:3000/cb"), "a sandpit registration stays a sandpit's: {err}");
    let (ok, _, err) = citizen_id(&["partner", "update", "--data-dir", d, "local-dev-app", "--name", "Local dev 2", "--sandpit"]);
    assert!(ok, "{err}");
    let uris: Vec<String> = (0..11).map(|i| format!("https://gp.example/cb{i}")).collect();
    let mut args = vec!["partner", "add", "--data-dir", d, "--name", "Too many", "--public-key", key, "--vtr", "P9.Cp.Cd"];
    for uri in &uris {
        args.extend(["--redirect-uri", uri.as_str()]);
    }
    let (ok, _, err) = citizen_id(&args);
    assert!(!ok && err.contains("between 1 and 10"), "eleven redirect URIs are refused: {err}");
    let (_, listed, _) = citizen_id(&["partner", "list", "--data-dir", d]);
    assert!(!listed.contains("Too many"), "nothing half-made: {listed}");

    for _ in 0..2 {
        let (ok, _, err) = citizen_id(&["keys", "rotate", "--publish-ahead", "0", "--data-dir", d]);
        assert!(ok, "{err}");
    }
    let (_, keys, _) = citizen_id(&["keys", "list", "--data-dir", d]);
    assert_eq!(keys.lines().filter(|l| l.ends_with("signing")).count(), 1, "{keys}");
    assert_eq!(keys.lines().filter(|l| l.contains("retired")).count(), 1, "the old key stays published: {keys}");
    // By default the new key is published two minutes before it signs, the current key signing
    // until then.
    let (ok, rotated, _) = citizen_id(&["keys", "rotate", "--data-dir", d]);
    assert!(ok && rotated.contains("published now, signs from"), "{rotated}");
    let new_kid = rotated.split('\t').next().unwrap().to_string();
    let (_, keys, _) = citizen_id(&["keys", "list", "--data-dir", d]);
    let line_of = |kid: &str| keys.lines().find(|l| l.starts_with(kid)).unwrap_or_else(|| panic!("{kid} not listed: {keys}")).to_string();
    assert!(line_of(&new_kid).contains("published, signs from"), "{keys}");
    assert_eq!(keys.lines().filter(|l| l.contains("signing until")).count(), 1, "{keys}");
    assert_eq!(keys.lines().filter(|l| l.contains("retired")).count(), 1, "{keys}");

    let (ok, _, _) = citizen_id(&["partner", "remove", "--data-dir", d, &client_id]);
    assert!(ok);
    let (ok, _, _) = citizen_id(&["partner", "show", "--data-dir", d, &client_id]);
    assert!(!ok);
}

#[test]
fn serve_refuses_to_start_without_its_secrets() {
    let out = Command::new(env!("CARGO_BIN_EXE_citizen-id"))
        .args(["serve"])
        .env_remove("DATABASE_URL")
        .env_remove("CITIZEN_ID_ISSUER")
        .env_remove("CITIZEN_ID_KEY_ENCRYPTION_SECRET")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("issuer URL is required"));
}

/// A production server with no PDS or GP service refuses to start, saying which (rather than
/// starting with both pointed at a dead address, so that every proof of identity fails).
#[test]
fn serve_refuses_to_start_without_pds_or_gp() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("citizen-id.toml");
    let db = dir.path().join("cid.db");
    std::fs::write(
        &config,
        format!(
            "issuer = \"https://auth.example.org\"\ndatabase_url = \"sqlite://{}?mode=rwc\"\nkey_encryption_secret = \"{}\"\n",
            db.display(),
            "k".repeat(32)
        ),
    )
    .unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_citizen-id"));
        cmd.args(["serve", "--config", config.to_str().unwrap()]);
        for var in ["DATABASE_URL", "CITIZEN_ID_ISSUER", "CITIZEN_ID_KEY_ENCRYPTION_SECRET", "CITIZEN_ID_PDS_URL", "CITIZEN_ID_GP_URL"] {
            cmd.env_remove(var);
        }
        cmd.envs(extra.iter().copied());
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (ok, err) = run(&[]);
    assert!(!ok && err.contains("a PDS FHIR base URL is required (pds_base_url / CITIZEN_ID_PDS_URL)"), "{err}");
    let (ok, err) = run(&[("CITIZEN_ID_PDS_URL", "https://pds.example/FHIR/R4")]);
    assert!(!ok && err.contains("a GP linkage service URL is required (gp_base_url / CITIZEN_ID_GP_URL)"), "{err}");
    assert!(!db.exists(), "refused before touching the database");
}

#[test]
fn generates_a_patients_file_the_simulator_can_serve() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("patients.jsonl");
    let (ok, stdout, err) = citizen_id(&["simulate", "generate-patients", "--count", "250", "--out", out.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(stdout.contains("wrote 250 patients"));
    let patients = citizen_id::integrations::pds::dataset::read_jsonl(&out).unwrap();
    assert_eq!(patients.len(), 250);
    assert!(patients.iter().all(|p| domain::NhsNumber::parse(p.nhs_number.as_str()).is_ok()));
}
