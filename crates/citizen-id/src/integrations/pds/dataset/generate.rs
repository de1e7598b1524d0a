//! A deterministic generator of realistic-looking synthetic patients, for load runs and large
//! simulator datasets: the same `(n, seed)` always gives the same patients, so a benchmark
//! can be rerun and compared, and files need not be checked in.
//!
//! It uses its own small PRNG (SplitMix64) rather than a crate's, because the exact sequence
//! is part of the contract: a dependency upgrade must not change the patients.

use domain::NhsNumber;

use super::super::PdsPatient;

/// NHS numbers are drawn from the first nine digits 900 000 000 to 989 999 999.
const NHS_BASE: u64 = 900_000_000;
const NHS_SPAN: u64 = 90_000_000;
/// Steps through the span as a permutation: coprime with 90 000 000 (= 2^7 x 3^2 x 5^7).
const NHS_STRIDE: u64 = 7_654_321;

const GIVEN: &[&str] = &[
    "Oliver",
    "George",
    "Harry",
    "Noah",
    "Jack",
    "Leo",
    "Arthur",
    "Muhammad",
    "Oscar",
    "Charlie",
    "Jacob",
    "Thomas",
    "Henry",
    "William",
    "James",
    "Samuel",
    "Daniel",
    "David",
    "Joseph",
    "Ethan",
    "Olivia",
    "Amelia",
    "Isla",
    "Ava",
    "Mia",
    "Ivy",
    "Lily",
    "Isabella",
    "Rosie",
    "Sophia",
    "Grace",
    "Freya",
    "Emily",
    "Poppy",
    "Ella",
    "Evie",
    "Charlotte",
    "Sarah",
    "Priya",
    "Aisha",
    "Margaret",
    "Susan",
    "Patricia",
    "Elizabeth",
    "Anne",
    "John",
    "Peter",
    "Michael",
    "Robert",
    "Siobhan",
];

const FAMILY: &[&str] = &[
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Williams",
    "Wilson",
    "Johnson",
    "Davies",
    "Robinson",
    "Wright",
    "Thompson",
    "Evans",
    "Walker",
    "White",
    "Roberts",
    "Green",
    "Hall",
    "Wood",
    "Jackson",
    "Clarke",
    "Patel",
    "Khan",
    "Lewis",
    "James",
    "Phillips",
    "Mason",
    "Mitchell",
    "Rose",
    "Davis",
    "Rodriguez",
    "Cox",
    "Alexander",
    "Morgan",
    "Moore",
    "Mills",
    "Murphy",
    "Ahmed",
    "O'Brien",
    "Kelly",
    "Hughes",
    "Edwards",
    "Harris",
    "Martin",
    "Cooper",
    "Ward",
    "Morris",
    "Turner",
    "Baker",
    "Singh",
    "Smith-Jones",
];

/// Postcode areas (one or two letters); the district is a number after them.
const AREAS: &[&str] = &[
    "LS", "M", "B", "BS", "CF", "G", "E", "NE", "SW", "N", "EH", "L", "S", "NG", "LE", "CV", "BN",
    "PL", "EX", "YO", "HU", "SO", "OX", "CB", "NR", "DE", "ST", "WV", "BD", "HD",
];
/// Letters Royal Mail uses in the inward code (no C, I, K, M, O or V).
const INWARD_LETTERS: &[u8] = b"ABDEFGHJLNPQRSTUWXYZ";
const ODS_LETTERS: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWY";

/// SplitMix64 (Steele, Lea and Flood, 2014): tiny, fast and statistically fine for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (the tiny modulo bias is irrelevant here).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// True with probability `per_mille` / 1000.
    fn chance(&mut self, per_mille: u64) -> bool {
        self.below(1000) < per_mille
    }
}

/// `n` patients (fewer only if the 81 million or so usable NHS numbers run out), about 1%
/// restricted, 1% deceased and 0.5% with a superseded old number (which counts towards `n`
/// and comes just before its current record).
pub fn generate(n: usize, seed: u64) -> impl Iterator<Item = PdsPatient> {
    let mut rng = SplitMix64(seed);
    let offset = rng.below(NHS_SPAN);
    Generator {
        rng,
        offset,
        step: 0,
        left: n,
        pending: None,
    }
}

struct Generator {
    rng: SplitMix64,
    offset: u64,
    /// How far through the NHS number permutation we are.
    step: u64,
    left: usize,
    /// A current record to emit after the superseded one just returned.
    pending: Option<PdsPatient>,
}

impl Generator {
    fn next_nhs(&mut self) -> Option<NhsNumber> {
        while self.step < NHS_SPAN {
            let first_nine = NHS_BASE + (self.step * NHS_STRIDE + self.offset) % NHS_SPAN;
            self.step += 1;
            if let Some(n) = NhsNumber::from_first_nine(first_nine as u32) {
                return Some(n);
            }
        }
        None
    }

    fn patient(&mut self, nhs_number: NhsNumber) -> PdsPatient {
        let r = &mut self.rng;
        let mut given_names = vec![r.pick(GIVEN).to_string()];
        if r.chance(300) {
            given_names.push(r.pick(GIVEN).to_string());
        }
        let family_name = r.pick(FAMILY).to_string();
        let year = 1925 + r.below(83);
        let birth_date = format!("{year}-{:02}-{:02}", 1 + r.below(12), 1 + r.below(28));
        let inward: String = (0..2)
            .map(|_| char::from(*r.pick(INWARD_LETTERS)))
            .collect();
        let postcode = format!(
            "{}{} {}{inward}",
            r.pick(AREAS),
            1 + r.below(20),
            r.below(10)
        );
        let gp_ods_code = format!(
            "{}{:05}",
            char::from(*r.pick(ODS_LETTERS)),
            10_000 + r.below(500) * 7
        );
        let mobile = r
            .chance(900)
            .then(|| format!("+4477009{:05}", r.below(100_000)));
        let email = r.chance(700).then(|| {
            let local: String = format!("{}.{}", given_names[0], family_name)
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
                .collect();
            format!("{}{}@example.com", local.to_lowercase(), r.below(1000))
        });
        let restricted = r.chance(10);
        let deceased = year < 1960 && r.chance(40);
        PdsPatient {
            nhs_number,
            given_names,
            family_name,
            birth_date,
            postcode: Some(postcode),
            gp_ods_code: Some(gp_ods_code),
            mobile,
            email,
            restricted,
            deceased,
            superseded_by: None,
            version: (1 + r.below(3)).to_string(),
        }
    }
}

impl Iterator for Generator {
    type Item = PdsPatient;

    fn next(&mut self) -> Option<PdsPatient> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        if let Some(p) = self.pending.take() {
            return Some(p);
        }
        let nhs = self.next_nhs()?;
        let current = self.patient(nhs);
        if self.left > 0
            && self.rng.chance(5)
            && let Some(old_number) = self.next_nhs()
        {
            let old = PdsPatient {
                nhs_number: old_number,
                superseded_by: Some(current.nhs_number.as_str().to_owned()),
                version: "1".into(),
                ..current.clone()
            };
            self.pending = Some(current);
            return Some(old);
        }
        Some(current)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn deterministic_unique_and_valid() {
        let a: Vec<PdsPatient> = generate(5_000, 42).collect();
        assert_eq!(a.len(), 5_000);
        assert_eq!(a, generate(5_000, 42).collect::<Vec<_>>());
        assert_ne!(a, generate(5_000, 43).collect::<Vec<_>>());
        let numbers: HashSet<&str> = a.iter().map(|p| p.nhs_number.as_str()).collect();
        assert_eq!(numbers.len(), a.len(), "NHS numbers are unique");
        for p in &a {
            assert!(
                domain::Postcode::parse(p.postcode.as_deref().unwrap()).is_ok(),
                "{:?}",
                p.postcode
            );
            if let Some(m) = &p.mobile {
                assert_eq!(domain::MobileNumber::parse(m).unwrap().as_str(), m);
            }
            if let Some(new) = &p.superseded_by {
                assert!(numbers.contains(new.as_str()));
            }
        }
        assert!(a.iter().any(|p| p.restricted) && a.iter().any(|p| p.deceased));
        assert!(
            a.iter().any(|p| p.superseded_by.is_some())
                && a.iter().any(|p| p.given_names.len() > 1)
        );
    }
}
