//! Versions: dotted whole numbers (`0.1.0`, `2026.12.1`), compared part by part; a missing
//! part is 0 (`1.2` = `1.2.0`). Nothing else is a version: a bundle's is compared with the
//! running one, so "newer" must not depend on how a string happens to sort.

use std::cmp::Ordering;
use std::fmt;

/// A parsed version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    parts: Vec<u64>,
    text: String,
}

/// The most parts a version has.
pub const MAX_PARTS: usize = 4;

impl Version {
    /// Parses `1.2.3`; an error names what is wrong.
    pub fn parse(text: &str) -> Result<Version, String> {
        let parts = text
            .split('.')
            .map(|p| {
                if p.is_empty() || p.len() > 9 || !p.bytes().all(|b| b.is_ascii_digit()) {
                    Err(format!(
                        "`{text}` is not a version (whole numbers with dots, like 1.2.3)"
                    ))
                } else {
                    p.parse::<u64>().map_err(|e| format!("`{text}`: {e}"))
                }
            })
            .collect::<Result<Vec<u64>, String>>()?;
        if parts.len() > MAX_PARTS {
            return Err(format!("`{text}` has more than {MAX_PARTS} parts"));
        }
        Ok(Version {
            parts,
            text: text.to_owned(),
        })
    }

    fn part(&self, i: usize) -> u64 {
        self.parts.get(i).copied().unwrap_or(0)
    }
}

impl Ord for Version {
    fn cmp(&self, other: &Self) -> Ordering {
        (0..MAX_PARTS)
            .map(|i| self.part(i).cmp(&other.part(i)))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal)
    }
}

impl PartialOrd for Version {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap()
    }

    #[test]
    fn compares_part_by_part_not_as_text() {
        assert!(v("0.10.0") > v("0.9.9"));
        assert!(v("1.2") == v("1.2.0").max(v("1.2")));
        assert_eq!(v("1.2").cmp(&v("1.2.0")), Ordering::Equal);
        assert!(v("2026.12.1") > v("2026.2.30"));
        assert!(v("0.1.0.1") > v("0.1.0"));
    }

    #[test]
    fn refuses_what_is_not_a_version() {
        for bad in [
            "",
            "1..2",
            "v1.2",
            "1.2-rc1",
            "1.2.3.4.5",
            " 1",
            "1.2.",
            "9999999999",
        ] {
            assert!(Version::parse(bad).is_err(), "{bad:?}");
        }
    }
}
