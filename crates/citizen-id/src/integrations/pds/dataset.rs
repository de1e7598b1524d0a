//! Synthetic patients for the PDS simulator: a small documented set that people type into the
//! sandpit, a deterministic generator for load runs, and a JSON Lines file format between them.
//!
//! Nothing here is a real person. Documented NHS numbers use the 999 range set aside for
//! testing; generated ones use 900 000 000 0 to 989 999 999 9, so the two never collide. All
//! mobiles are in 07700 9xxxxx, reserved by Ofcom for drama, and emails are at example.com.

mod generate;

use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use domain::{MobileNumber, NhsNumber, Postcode};
use serde::{Deserialize, Serialize};

use super::PdsPatient;

pub use generate::generate;

/// The fixed patients of the sandpit and README. Each suits one proofing scenario:
///
/// | NHS number | Name | Born | Postcode | Mobile | Scenario |
/// |---|---|---|---|---|---|
/// | 999 000 0018 | Sarah Thompson | 1985-03-14 | LS1 4AP | 07700 900001 | plain match; IDVM to P9 if registered with this mobile |
/// | 999 000 0026 | Oliver James Matthew Bennett | 1990-07-02 | M1 1AE | 07700 900002 | middle names; AMNV (register with another mobile) |
/// | 999 000 0034 | Emily Clarke | 1978-11-23 | BS1 4DJ | (withheld) | restricted: found only by NHS number |
/// | 999 000 0042 | Harold Whitfield | 1932-05-09 | NE1 7RU | 07700 900004 | deceased |
/// | 999 000 0050 | Priya Patel | 1995-09-30 | B1 1BB | 07700 900005 | superseded by 999 000 0069 |
/// | 999 000 0069 | Priya Patel | 1995-09-30 | B1 1BB | 07700 900005 | current record of the above |
/// | 999 000 0077 | Thomas Edward Wright | 2001-01-15 | CF10 1EP | 07700 900006 | shares name, birth date, postcode with the next |
/// | 999 000 0085 | Thomas Henry Wright | 2001-01-15 | CF10 1EP | 07700 900007 | "several matches" |
/// | 999 000 0093 | Grace O'Neill | 1969-12-01 | G2 1DU | (none) | no mobile on PDS: P5 only by demographics |
/// | 999 000 0107 | Mohammed Ahmed-Khan | 1988-04-18 | E1 6AN | 07700 900008 | fuzzy: "Ahmed Khan" or "M" match |
pub fn documented_patients() -> Vec<PdsPatient> {
    #[rustfmt::skip]
    let rows: [DocumentedRow; 10] = [
        ("9990000018", &["Sarah"], "Thompson", "1985-03-14", "LS1 4AP", "A12345", Some("+447700900001"), Some("sarah.thompson@example.com"), ""),
        ("9990000026", &["Oliver", "James", "Matthew"], "Bennett", "1990-07-02", "M1 1AE", "B23456", Some("+447700900002"), Some("oliver.bennett@example.com"), ""),
        ("9990000034", &["Emily"], "Clarke", "1978-11-23", "BS1 4DJ", "C34567", Some("+447700900003"), Some("emily.clarke@example.com"), "restricted"),
        ("9990000042", &["Harold"], "Whitfield", "1932-05-09", "NE1 7RU", "D45678", Some("+447700900004"), None, "deceased"),
        ("9990000050", &["Priya"], "Patel", "1995-09-30", "B1 1BB", "E56789", Some("+447700900005"), Some("priya.patel@example.com"), "9990000069"),
        ("9990000069", &["Priya"], "Patel", "1995-09-30", "B1 1BB", "E56789", Some("+447700900005"), Some("priya.patel@example.com"), ""),
        ("9990000077", &["Thomas", "Edward"], "Wright", "2001-01-15", "CF10 1EP", "F67890", Some("+447700900006"), Some("tom.wright@example.com"), ""),
        ("9990000085", &["Thomas", "Henry"], "Wright", "2001-01-15", "CF10 1EP", "F67890", Some("+447700900007"), Some("thomas.h.wright@example.com"), ""),
        ("9990000093", &["Grace"], "O'Neill", "1969-12-01", "G2 1DU", "G78901", None, Some("grace.oneill@example.com"), ""),
        ("9990000107", &["Mohammed"], "Ahmed-Khan", "1988-04-18", "E1 6AN", "H89012", Some("+447700900008"), Some("m.ahmed-khan@example.com"), ""),
    ];
    rows.iter()
        .map(
            |(nhs, given, family, born, postcode, gp, mobile, email, note)| PdsPatient {
                nhs_number: NhsNumber::parse(nhs).expect("documented NHS numbers are valid"),
                given_names: given.iter().map(|g| g.to_string()).collect(),
                family_name: family.to_string(),
                birth_date: born.to_string(),
                postcode: Some(postcode.to_string()),
                gp_ods_code: Some(gp.to_string()),
                mobile: mobile.map(str::to_owned),
                email: email.map(str::to_owned),
                restricted: *note == "restricted",
                deceased: *note == "deceased",
                superseded_by: note.starts_with('9').then(|| note.to_string()),
                version: "1".into(),
            },
        )
        .collect()
}

/// NHS number, given names, family name, born, postcode, GP, mobile, email, and a note:
/// "restricted", "deceased", or the NHS number that supersedes this one.
type DocumentedRow = (
    &'static str,
    &'static [&'static str],
    &'static str,
    &'static str,
    &'static str,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
    &'static str,
);

/// One line of a patients file. A plain row type (not [`PdsPatient`]) so the file format is
/// explicit and every value goes through the domain parsers on the way in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PatientRow {
    pub nhs_number: String,
    pub given_names: Vec<String>,
    pub family_name: String,
    pub birth_date: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postcode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gp_ods_code: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mobile: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub restricted: bool,
    #[serde(default, skip_serializing_if = "is_false")]
    pub deceased: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superseded_by: Option<String>,
    #[serde(default = "first_version")]
    pub version: String,
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn first_version() -> String {
    "1".into()
}

impl From<&PdsPatient> for PatientRow {
    fn from(p: &PdsPatient) -> Self {
        PatientRow {
            nhs_number: p.nhs_number.as_str().to_owned(),
            given_names: p.given_names.clone(),
            family_name: p.family_name.clone(),
            birth_date: p.birth_date.clone(),
            postcode: p.postcode.clone(),
            gp_ods_code: p.gp_ods_code.clone(),
            mobile: p.mobile.clone(),
            email: p.email.clone(),
            restricted: p.restricted,
            deceased: p.deceased,
            superseded_by: p.superseded_by.clone(),
            version: p.version.clone(),
        }
    }
}

impl TryFrom<PatientRow> for PdsPatient {
    type Error = String;

    /// NHS numbers must pass Modulus 11 and mobiles must be UK mobiles (stored as E.164);
    /// postcodes are normalised when they have a valid shape and kept as given otherwise.
    fn try_from(r: PatientRow) -> Result<Self, String> {
        let nhs_number = NhsNumber::parse(&r.nhs_number).map_err(|e| format!("nhs_number: {e}"))?;
        let superseded_by = match r.superseded_by.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(s) => Some(
                NhsNumber::parse(s)
                    .map_err(|e| format!("superseded_by: {e}"))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let mobile = match r.mobile.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(m) => Some(
                MobileNumber::parse(m)
                    .map_err(|e| format!("mobile: {e}"))?
                    .as_str()
                    .to_owned(),
            ),
            None => None,
        };
        let postcode =
            r.postcode
                .filter(|p| !p.trim().is_empty())
                .map(|p| match Postcode::parse(&p) {
                    Ok(pc) => pc.as_str().to_owned(),
                    Err(_) => p,
                });
        if r.family_name.trim().is_empty() || r.given_names.is_empty() {
            return Err("a patient needs a family name and a given name".into());
        }
        Ok(PdsPatient {
            nhs_number,
            given_names: r.given_names,
            family_name: r.family_name,
            birth_date: r.birth_date,
            postcode,
            gp_ods_code: r.gp_ods_code.filter(|g| !g.trim().is_empty()),
            mobile,
            email: r.email.filter(|e| !e.trim().is_empty()),
            restricted: r.restricted,
            deceased: r.deceased,
            superseded_by,
            version: r.version,
        })
    }
}

/// Writes one JSON object per line; returns how many were written.
pub fn write_jsonl(path: &Path, patients: impl IntoIterator<Item = PdsPatient>) -> io::Result<u64> {
    let mut out = BufWriter::new(File::create(path)?);
    let mut count = 0;
    for p in patients {
        serde_json::to_writer(&mut out, &PatientRow::from(&p))?;
        out.write_all(b"\n")?;
        count += 1;
    }
    out.flush()?;
    Ok(count)
}

/// Reads a whole patients file. Blank lines are skipped; a bad line is an
/// [`io::ErrorKind::InvalidData`] error naming its line number.
pub fn read_jsonl(path: &Path) -> io::Result<Vec<PdsPatient>> {
    stream_jsonl(path)?.collect()
}

/// Reads a patients file lazily, so a million-patient file never sits in memory twice.
pub fn stream_jsonl(path: &Path) -> io::Result<impl Iterator<Item = io::Result<PdsPatient>>> {
    let lines = BufReader::new(File::open(path)?).lines();
    Ok(lines.enumerate().filter_map(|(i, line)| {
        let line = match line {
            Ok(l) if l.trim().is_empty() => return None,
            Ok(l) => l,
            Err(e) => return Some(Err(e)),
        };
        let bad = |why: String| {
            io::Error::new(io::ErrorKind::InvalidData, format!("line {}: {why}", i + 1))
        };
        let row = serde_json::from_str::<PatientRow>(&line).map_err(|e| bad(e.to_string()));
        Some(row.and_then(|r| PdsPatient::try_from(r).map_err(bad)))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_patients_are_well_formed() {
        let all = documented_patients();
        assert_eq!(all.len(), 10);
        for p in &all {
            let row = PatientRow::from(p);
            assert_eq!(&PdsPatient::try_from(row).unwrap(), p, "{}", p.family_name);
        }
        let superseded = all.iter().find(|p| p.superseded_by.is_some()).unwrap();
        let target = superseded.superseded_by.as_deref().unwrap();
        assert!(all.iter().any(|p| p.nhs_number.as_str() == target));
    }

    #[test]
    fn jsonl_round_trips() {
        let dir = std::env::temp_dir().join(format!("pds-dataset-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("patients.jsonl");
        let patients: Vec<PdsPatient> = documented_patients()
            .into_iter()
            .chain(generate(200, 7))
            .collect();
        assert_eq!(write_jsonl(&path, patients.clone()).unwrap(), 210);
        assert_eq!(read_jsonl(&path).unwrap(), patients);
        std::fs::write(&path, "{\"nhs_number\":\"9990000019\"}\n").unwrap();
        let err = read_jsonl(&path).unwrap_err();
        assert!(err.to_string().starts_with("line 1:"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
