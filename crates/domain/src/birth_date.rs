//! A date of birth from the three boxes of the NHS.UK date input: a real calendar date, in the
//! past, and not absurdly long ago. Kept as `YYYY-MM-DD` (ISO 8601, the `birthdate` claim).

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BirthDateError {
    #[error("Enter your date of birth")]
    Missing,
    #[error("Date of birth must be a real date, for example 27 3 1980")]
    NotADate,
    #[error("Date of birth must be in the past")]
    InFuture,
    #[error("Year must be after 1900")]
    TooOld,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BirthDate(String);

fn days_in_month(year: u32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => 29,
        2 => 28,
        _ => 0,
    }
}

/// (year, month, day) of a unix day number (days since 1970-01-01), proleptic Gregorian.
pub fn civil_from_days(days: i64) -> (u32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = (yoe + era * 400 + i64::from(m <= 2)) as u32;
    (y, m, d)
}

impl BirthDate {
    /// Parses day, month and year boxes; `today` is (year, month, day).
    pub fn parse_parts(day: &str, month: &str, year: &str, today: (u32, u32, u32)) -> Result<BirthDate, BirthDateError> {
        let (day, month, year) = (day.trim(), month.trim(), year.trim());
        if day.is_empty() && month.is_empty() && year.is_empty() {
            return Err(BirthDateError::Missing);
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| BirthDateError::NotADate);
        let (d, m, y) = (num(day)?, num(month)?, num(year)?);
        if year.len() != 4 || !(1..=12).contains(&m) || d == 0 || d > days_in_month(y, m) {
            return Err(BirthDateError::NotADate);
        }
        if y < 1900 {
            return Err(BirthDateError::TooOld);
        }
        if (y, m, d) >= today {
            return Err(BirthDateError::InFuture);
        }
        Ok(BirthDate(format!("{y:04}-{m:02}-{d:02}")))
    }

    /// Parses an ISO `YYYY-MM-DD` date (as PDS and the store hold it).
    pub fn parse_iso(s: &str, today: (u32, u32, u32)) -> Result<BirthDate, BirthDateError> {
        let mut parts = s.split('-');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(y), Some(m), Some(d), None) => BirthDate::parse_parts(d, m, y, today),
            _ => Err(BirthDateError::NotADate),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BirthDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const TODAY: (u32, u32, u32) = (2026, 11, 24);

    #[test]
    fn parse_table() {
        assert_eq!(BirthDate::parse_parts("27", "3", "1980", TODAY).unwrap().as_str(), "1980-03-27");
        assert_eq!(BirthDate::parse_parts("29", "2", "2000", TODAY).unwrap().as_str(), "2000-02-29");
        assert_eq!(BirthDate::parse_parts("29", "2", "1900", TODAY), Err(BirthDateError::NotADate));
        assert_eq!(BirthDate::parse_parts("31", "4", "1980", TODAY), Err(BirthDateError::NotADate));
        assert_eq!(BirthDate::parse_parts("", "", "", TODAY), Err(BirthDateError::Missing));
        assert_eq!(BirthDate::parse_parts("1", "1", "80", TODAY), Err(BirthDateError::NotADate));
        assert_eq!(BirthDate::parse_parts("24", "11", "2026", TODAY), Err(BirthDateError::InFuture));
        assert_eq!(BirthDate::parse_parts("1", "1", "1899", TODAY), Err(BirthDateError::TooOld));
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_416), (2025, 11, 24));
    }

    proptest! {
        #[test]
        fn every_real_past_date_round_trips(days in -25_000i64..20_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assume!(y >= 1900);
            let parsed = BirthDate::parse_parts(&d.to_string(), &m.to_string(), &y.to_string(), TODAY).unwrap();
            prop_assert_eq!(BirthDate::parse_iso(parsed.as_str(), TODAY).unwrap(), parsed);
        }

        #[test]
        fn never_panics(d in "\\PC{0,4}", m in "\\PC{0,4}", y in "\\PC{0,6}") {
            let _ = BirthDate::parse_parts(&d, &m, &y, TODAY);
        }
    }
}
