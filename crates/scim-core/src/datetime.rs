//! Timestamps as scimd stores and compares them.
//!
//! Every timestamp is kept as UTC text in one fixed-width RFC 3339 form
//! (`2026-11-26T14:53:36.123456Z`), so that text order is time order on
//! both database backends and `meta.lastModified gt "…"` filters compare
//! correctly in SQL.

use time::format_description::well_known::Rfc3339;
use time::macros::format_description;
use time::{OffsetDateTime, UtcOffset};

const FIXED: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z");

/// Formats an instant in the fixed stored form.
pub fn format(at: OffsetDateTime) -> String {
    // Formatting a UTC date with four-digit years cannot fail; fall back to
    // RFC 3339 rather than panic if it ever did.
    let utc = at.to_offset(UtcOffset::UTC);
    utc.format(FIXED)
        .or_else(|_| utc.format(&Rfc3339))
        .unwrap_or_default()
}

/// The current instant in the fixed stored form.
pub fn now() -> String {
    format(OffsetDateTime::now_utc())
}

/// Parses any RFC 3339 date-time (as clients send in filters) into the
/// fixed stored form, or `None` if it is not one.
pub fn normalize(input: &str) -> Option<String> {
    OffsetDateTime::parse(input, &Rfc3339).ok().map(format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_offsets_and_precision() {
        assert_eq!(
            normalize("2011-05-13T04:42:34Z").as_deref(),
            Some("2011-05-13T04:42:34.000000Z")
        );
        assert_eq!(
            normalize("2011-05-13T06:42:34.5+02:00").as_deref(),
            Some("2011-05-13T04:42:34.500000Z")
        );
        assert_eq!(normalize("yesterday"), None);
        assert_eq!(now().len(), "2011-05-13T04:42:34.000000Z".len());
    }
}
