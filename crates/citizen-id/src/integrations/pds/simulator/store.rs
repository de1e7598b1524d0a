//! The simulator's patients, packed and indexed so a million of them fit in a few hundred
//! megabytes and a search touches only the few records that could match.
//!
//! Each patient is one [`Record`]: numbers as integers and every text field in one boxed
//! string, instead of a dozen separately allocated `String`s (about a quarter of the memory).
//! Two hash maps index them: NHS number to record, and a hash of (normalised family name, date
//! of birth) to the first record with that key, the rest chained through [`Record::next`]. PDS
//! requires both family name and date of birth (or a range) in every search, so this key alone
//! narrows a search to a handful of candidates; the rules in `matches` then decide.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use domain::NhsNumber;

use super::super::{PdsPatient, compact_postcode, normalise_name};

/// End of a chain / no record.
const NONE: u32 = u32::MAX;
/// Separates fields in [`Record::text`]; names and contact details never contain it.
const FIELD: char = '\u{1f}';
/// Separates given names inside the first field.
const GIVEN: char = '\u{1e}';
const RESTRICTED: u8 = 1;
const DECEASED: u8 = 2;
/// Superseded numbers are followed at most this far, so a cycle in a dataset cannot hang us.
const MAX_HOPS: usize = 8;

struct Record {
    nhs: u64,
    /// The replacing NHS number, or 0.
    superseded_by: u64,
    /// Next record with the same search key hash, or [`NONE`].
    next: u32,
    /// Date of birth as the number YYYYMMDD.
    birth: u32,
    version: u32,
    flags: u8,
    /// given names (joined by [`GIVEN`]), family, postcode, GP, mobile, email (joined by [`FIELD`]).
    text: Box<str>,
}

/// A search, as parsed from the query string.
pub struct Criteria {
    pub family: String,
    /// Empty when the search has no `given`. A trailing `*` is a prefix (non-fuzzy only).
    pub given: String,
    pub birth: u32,
    /// Compact (upper case, no spaces); `None` when not searched on. A trailing `*` is a prefix.
    pub postcode: Option<String>,
    pub fuzzy: bool,
}

/// All patients, with their indexes.
#[derive(Default)]
pub struct Store {
    records: Vec<Record>,
    by_nhs: HashMap<u64, u32>,
    by_key: HashMap<u64, u32>,
    skipped: usize,
}

impl Store {
    /// Builds the store. Rows with an unreadable date of birth or a repeated NHS number are
    /// skipped (and counted in [`Store::skipped`]) rather than failing the whole dataset.
    pub fn new(patients: impl IntoIterator<Item = PdsPatient>) -> Self {
        let mut store = Store::default();
        for p in patients {
            store.insert(&p);
        }
        store.records.shrink_to_fit();
        store
    }

    fn insert(&mut self, p: &PdsPatient) {
        let nhs = nhs_key(&p.nhs_number);
        let Some(birth) = parse_date(&p.birth_date) else {
            self.skipped += 1;
            return;
        };
        if self.by_nhs.contains_key(&nhs) || self.records.len() >= NONE as usize {
            self.skipped += 1;
            return;
        }
        let superseded_by = p
            .superseded_by
            .as_deref()
            .and_then(|s| NhsNumber::parse(s).ok())
            .map(|n| nhs_key(&n))
            .unwrap_or(0);
        let idx = self.records.len() as u32;
        let mut next = NONE;
        // Superseded records are reachable by number only: PDS never returns them to a search.
        if superseded_by == 0 {
            let key = search_key(&normalise_name(&p.family_name), birth);
            next = self.by_key.insert(key, idx).unwrap_or(NONE);
        }
        let flags =
            (if p.restricted { RESTRICTED } else { 0 }) | (if p.deceased { DECEASED } else { 0 });
        self.records.push(Record {
            nhs,
            superseded_by,
            next,
            birth,
            version: p.version.trim().parse().unwrap_or(1),
            flags,
            text: pack(p),
        });
        self.by_nhs.insert(nhs, idx);
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn skipped(&self) -> usize {
        self.skipped
    }

    /// The record that answers for `nhs`: its own, or the end of its chain of supersessions.
    pub fn resolve(&self, nhs: &NhsNumber) -> Option<u32> {
        let mut idx = *self.by_nhs.get(&nhs_key(nhs))?;
        for _ in 0..MAX_HOPS {
            let r = &self.records[idx as usize];
            if r.superseded_by == 0 {
                return Some(idx);
            }
            idx = *self.by_nhs.get(&r.superseded_by)?;
        }
        None
    }

    /// The full (unredacted) patient and its current version.
    pub fn get(&self, idx: u32) -> (PdsPatient, u32) {
        let r = &self.records[idx as usize];
        (unpack(r), r.version)
    }

    /// Sets the contact details and bumps the version; returns the new version.
    pub fn set_contact(&mut self, idx: u32, mobile: Option<String>, email: Option<String>) -> u32 {
        let (mut p, _) = self.get(idx);
        p.mobile = mobile;
        p.email = email;
        let r = &mut self.records[idx as usize];
        r.text = pack(&p);
        r.version += 1;
        r.version
    }

    /// Records matching `c` with their scores (1.0 exact, less for fuzzy-only), best first.
    /// Restricted patients are left out when the search names a postcode, as in PDS.
    pub fn search(&self, c: &Criteria) -> Vec<(u32, f64)> {
        let mut found = Vec::new();
        let mut idx = self
            .by_key
            .get(&search_key(&normalise_name(&c.family), c.birth))
            .copied()
            .unwrap_or(NONE);
        while idx != NONE {
            let r = &self.records[idx as usize];
            let restricted_hidden = r.flags & RESTRICTED != 0 && c.postcode.is_some();
            if r.birth == c.birth
                && !restricted_hidden
                && let Some(score) = score(c, &r.text)
            {
                found.push((idx, score));
            }
            idx = r.next;
        }
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        found
    }
}

/// How well one record's text fits the criteria: `None` for no match.
fn score(c: &Criteria, text: &str) -> Option<f64> {
    let mut fields = text.split(FIELD);
    let given_names: Vec<&str> = fields
        .next()
        .unwrap_or("")
        .split(GIVEN)
        .filter(|g| !g.is_empty())
        .collect();
    let family = fields.next().unwrap_or("");
    let postcode = fields.next().unwrap_or("");
    if let Some(wanted) = &c.postcode {
        let have = compact_postcode(postcode);
        let ok = match wanted.strip_suffix('*') {
            Some(prefix) if !c.fuzzy => have.starts_with(prefix),
            _ => have == *wanted,
        };
        if !ok {
            return None;
        }
    }
    let exact_family = family.trim().to_lowercase() == c.family.trim().to_lowercase();
    let exact_given = c.given.is_empty() || exact_given(&given_names, &c.given);
    if exact_family && exact_given {
        return Some(1.0);
    }
    if !c.fuzzy || normalise_name(family) != normalise_name(&c.family) {
        return None;
    }
    let want = normalise_name(&c.given);
    let first = given_names
        .first()
        .map(|g| normalise_name(g))
        .unwrap_or_default();
    let all = normalise_name(&given_names.concat());
    if want == first || want == all {
        Some(0.9)
    } else if !want.is_empty() && want.chars().next() == first.chars().next() {
        Some(0.7)
    } else {
        None
    }
}

/// Case-insensitive equality with the first given name or with all of them ("Anne Marie"),
/// or, with a trailing `*`, a prefix of the first given name.
fn exact_given(given_names: &[&str], wanted: &str) -> bool {
    let wanted = wanted.trim().to_lowercase();
    let first = given_names
        .first()
        .map(|g| g.to_lowercase())
        .unwrap_or_default();
    match wanted.strip_suffix('*') {
        Some(prefix) => first.starts_with(prefix),
        None => wanted == first || wanted == given_names.join(" ").to_lowercase(),
    }
}

fn nhs_key(n: &NhsNumber) -> u64 {
    n.as_str().parse().unwrap_or(0)
}

fn search_key(normalised_family: &str, birth: u32) -> u64 {
    let mut h = DefaultHasher::new();
    normalised_family.hash(&mut h);
    birth.hash(&mut h);
    h.finish()
}

/// `YYYY-MM-DD` to YYYYMMDD, checking the shape and ranges (not the calendar).
pub fn parse_date(s: &str) -> Option<u32> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<u32>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    ((1..=12).contains(&m) && (1..=31).contains(&d)).then_some(y * 10_000 + m * 100 + d)
}

fn format_date(d: u32) -> String {
    format!("{:04}-{:02}-{:02}", d / 10_000, d / 100 % 100, d % 100)
}

/// Separator characters inside a value would corrupt the record, so they become spaces.
fn clean(s: &str) -> String {
    s.replace([FIELD, GIVEN], " ")
}

fn pack(p: &PdsPatient) -> Box<str> {
    let given: Vec<String> = p.given_names.iter().map(|g| clean(g)).collect();
    let opt = |o: &Option<String>| o.as_deref().map(clean).unwrap_or_default();
    let fields = [
        given.join(&GIVEN.to_string()),
        clean(&p.family_name),
        opt(&p.postcode),
        opt(&p.gp_ods_code),
        opt(&p.mobile),
        opt(&p.email),
    ];
    fields.join(&FIELD.to_string()).into_boxed_str()
}

fn unpack(r: &Record) -> PdsPatient {
    let mut f = r.text.split(FIELD);
    let mut next = || f.next().unwrap_or("").to_owned();
    let given = next();
    let family_name = next();
    let some = |s: String| (!s.is_empty()).then_some(s);
    let (postcode, gp_ods_code, mobile, email) =
        (some(next()), some(next()), some(next()), some(next()));
    let nhs =
        |n: u64| NhsNumber::parse(&format!("{n:010}")).expect("stored NHS numbers were valid");
    PdsPatient {
        nhs_number: nhs(r.nhs),
        given_names: given
            .split(GIVEN)
            .filter(|g| !g.is_empty())
            .map(str::to_owned)
            .collect(),
        family_name,
        birth_date: format_date(r.birth),
        postcode,
        gp_ods_code,
        mobile,
        email,
        restricted: r.flags & RESTRICTED != 0,
        deceased: r.flags & DECEASED != 0,
        superseded_by: (r.superseded_by != 0).then(|| nhs(r.superseded_by).as_str().to_owned()),
        version: r.version.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patient(nhs: &str, given: &[&str], family: &str) -> PdsPatient {
        PdsPatient {
            nhs_number: NhsNumber::parse(nhs).unwrap(),
            given_names: given.iter().map(|g| g.to_string()).collect(),
            family_name: family.into(),
            birth_date: "1980-03-27".into(),
            postcode: Some("LS1 4AP".into()),
            gp_ods_code: Some("A12345".into()),
            mobile: None,
            email: Some("a@example.com".into()),
            restricted: false,
            deceased: false,
            superseded_by: None,
            version: "3".into(),
        }
    }

    fn criteria(given: &str, family: &str, fuzzy: bool) -> Criteria {
        Criteria {
            family: family.into(),
            given: given.into(),
            birth: 19800327,
            postcode: None,
            fuzzy,
        }
    }

    #[test]
    fn packs_and_unpacks_losslessly() {
        let p = patient("9434765919", &["Mary", "Anne"], "O'Brien");
        let store = Store::new([p.clone()]);
        assert_eq!(store.get(0), (p, 3));
    }

    #[test]
    fn exact_and_fuzzy_rules() {
        let store = Store::new([patient("9434765919", &["Mary", "Anne"], "O'Brien")]);
        assert_eq!(store.search(&criteria("mary", "o'brien", false)).len(), 1);
        assert_eq!(
            store.search(&criteria("Mary Anne", "O'Brien", false)).len(),
            1
        );
        assert!(
            store.search(&criteria("Mary", "OBrien", false)).is_empty(),
            "exact keeps punctuation"
        );
        assert_eq!(
            store.search(&criteria("Mary", "OBrien", true)),
            vec![(0, 0.9)]
        );
        assert_eq!(
            store.search(&criteria("M", "o brien", true)),
            vec![(0, 0.7)]
        );
        assert!(store.search(&criteria("Anne", "O'Brien", true)).is_empty());
        assert_eq!(store.search(&criteria("Ma*", "O'Brien", false)).len(), 1);
    }
}
