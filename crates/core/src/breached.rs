//! The built-in list of breached passwords (NIST SP 800-63B §5.1.1.2: a
//! new password must not be one "obtained from previous breach corpuses").
//! The 100,000 most common passwords of a 10-million-password corpus,
//! lower-cased and sorted, shipped compressed inside the binary (see
//! `data/README.md`). Comparison is case-insensitive: `Password1` is no
//! better than `password1` against an attacker's list.

use std::sync::LazyLock;

const COMPRESSED: &[u8] = include_bytes!("../data/breached-passwords.zlib");

/// Decompressed on first use (a few milliseconds) and kept: immutable data
/// shared by every caller, not configuration or state.
static LIST: LazyLock<Breached> = LazyLock::new(Breached::load);

struct Breached {
    text: String,
    /// Byte offsets of each line's start in `text`, in sorted order.
    starts: Vec<u32>,
}

impl Breached {
    fn load() -> Breached {
        let bytes = miniz_oxide::inflate::decompress_to_vec_zlib(COMPRESSED)
            .expect("the built-in breached-password list is valid zlib");
        let text = String::from_utf8(bytes).expect("the built-in list is UTF-8");
        let mut starts = Vec::with_capacity(100_000);
        let mut at = 0;
        for line in text.split_inclusive('\n') {
            starts.push(at as u32);
            at += line.len();
        }
        Breached { text, starts }
    }

    fn line(&self, i: usize) -> &str {
        let start = self.starts[i] as usize;
        let end = self
            .starts
            .get(i + 1)
            .map_or(self.text.len(), |&s| s as usize);
        self.text[start..end].trim_end_matches('\n')
    }

    fn contains(&self, lowered: &str) -> bool {
        let (mut lo, mut hi) = (0, self.starts.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.line(mid).as_bytes().cmp(lowered.as_bytes()) {
                std::cmp::Ordering::Less => lo = mid + 1,
                std::cmp::Ordering::Greater => hi = mid,
                std::cmp::Ordering::Equal => return true,
            }
        }
        false
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.starts.len()
    }
}

/// Whether `password` (compared case-insensitively) is on the list.
pub fn is_breached(password: &str) -> bool {
    LIST.contains(&password.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_list_is_complete_and_sorted() {
        // 100,000 passwords, fewer once lower-cased duplicates merge.
        assert_eq!(LIST.len(), 96_518);
        for i in 1..LIST.len() {
            assert!(
                LIST.line(i - 1).as_bytes() < LIST.line(i).as_bytes(),
                "unsorted at {i}"
            );
        }
    }

    #[test]
    fn common_passwords_are_found_in_any_case() {
        for p in [
            "123456",
            "password",
            "qwerty",
            "iloveyou",
            "Password1",
            "PASSWORD",
        ] {
            assert!(is_breached(p), "{p}");
        }
        // The first and the last entries, where an off-by-one would hide.
        assert!(is_breached(LIST.line(0)));
        assert!(is_breached(LIST.line(LIST.len() - 1)));
    }

    #[test]
    fn uncommon_passwords_are_not() {
        for p in [
            "correct horse battery staple",
            "x7#Qm!pL2v",
            "",
            "passwor-d",
            "password\u{0}",
        ] {
            assert!(!is_breached(p), "{p}");
        }
    }
}
