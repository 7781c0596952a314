//! Durations as written in the domain file and configuration: `"90s"`,
//! `"15m"`, `"1h"`, `"7d"`, or whole seconds.

pub fn parse_duration(value: &str) -> Result<i64, String> {
    let value = value.trim();
    let bad = || {
        format!(
            "invalid duration {value:?} (write e.g. \"90s\", \"15m\", \"1h\", \"7d\" or whole seconds)"
        )
    };
    if value.is_empty() {
        return Err(bad());
    }
    let split = value
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(value.len());
    let (digits, unit) = value.split_at(split);
    let n: i64 = digits.parse().map_err(|_| bad())?;
    let factor = match unit {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    n.checked_mul(factor).ok_or_else(bad)
}

/// Formats seconds back into the largest exact unit.
pub fn format_duration(seconds: i64) -> String {
    for (unit, factor) in [("d", 86_400), ("h", 3600), ("m", 60)] {
        if seconds != 0 && seconds % factor == 0 {
            return format!("{}{unit}", seconds / factor);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse_duration("90s"), Ok(90));
        assert_eq!(parse_duration("15m"), Ok(900));
        assert_eq!(parse_duration("1h"), Ok(3600));
        assert_eq!(parse_duration("7d"), Ok(604_800));
        assert_eq!(parse_duration("42"), Ok(42));
        for bad in ["", "h", "1w", "-1h", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
        assert_eq!(format_duration(3600), "1h");
        assert_eq!(format_duration(90), "90s");
    }
}
