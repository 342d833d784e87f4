//! Wall-clock milliseconds and HubSpot's timestamp formats.

use std::time::{SystemTime, UNIX_EPOCH};

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `2020-01-09T20:11:27.309Z`, the form HubSpot uses for `createdAt` and datetime properties.
pub fn iso(ms: i64) -> String {
    let Ok(t) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000) else {
        return "1970-01-01T00:00:00.000Z".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// A filter or property value as epoch milliseconds: digits, or an RFC 3339 timestamp.
pub fn parse_ms(value: &str) -> Option<i64> {
    let value = value.trim();
    if let Ok(ms) = value.parse::<i64>() {
        return Some(ms);
    }
    OffsetDateTime::parse(value, &Rfc3339)
        .ok()
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_and_parse_round_trip() {
        assert_eq!(iso(1_578_600_687_309), "2020-01-09T20:11:27.309Z");
        assert_eq!(
            parse_ms("2020-01-09T20:11:27.309Z"),
            Some(1_578_600_687_309)
        );
        assert_eq!(parse_ms("1579514400000"), Some(1_579_514_400_000));
        assert_eq!(parse_ms("yesterday"), None);
    }
}
