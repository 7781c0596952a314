//! `xsd:dateTime` (RFC 3339) for `meta.created` / `meta.lastModified`.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// Seconds since the epoch, as `2026-11-25T10:00:00Z`.
pub fn format_datetime(seconds: i64) -> String {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

/// Parses an RFC 3339 date-time; fractions are dropped.
pub fn parse_datetime(text: &str) -> Option<i64> {
    OffsetDateTime::parse(text, &Rfc3339)
        .ok()
        .map(OffsetDateTime::unix_timestamp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        assert_eq!(format_datetime(0), "1970-01-01T00:00:00Z");
        assert_eq!(parse_datetime("2011-05-13T04:42:34Z"), Some(1_305_261_754));
        assert_eq!(
            parse_datetime("2011-05-13T06:42:34+02:00"),
            Some(1_305_261_754)
        );
        assert_eq!(parse_datetime("yesterday"), None);
        assert_eq!(
            parse_datetime(&format_datetime(1_700_000_000)),
            Some(1_700_000_000)
        );
    }
}
