//! Time as plain values: the host passes `Timestamp`s in, the core formats them.

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Timestamp {
    pub secs: u64,
    pub nanos: u32,
}

impl Timestamp {
    pub fn from_secs(secs: u64) -> Self {
        Timestamp { secs, nanos: 0 }
    }

    pub fn from_system_time(time: std::time::SystemTime) -> Self {
        let since = time
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            secs: since.as_secs(),
            nanos: since.subsec_nanos(),
        }
    }

    pub fn millis(&self) -> u64 {
        self.secs.saturating_mul(1000) + u64::from(self.nanos / 1_000_000)
    }

    pub fn plus_secs(&self, secs: u64) -> Timestamp {
        Timestamp {
            secs: self.secs.saturating_add(secs),
            nanos: self.nanos,
        }
    }

    /// RFC 3339 in UTC with nanoseconds, as Go's `time.Time` marshals it
    /// (`2021-07-16T08:28:24.568365226Z`), trailing zeros of the fraction trimmed.
    pub fn to_rfc3339(&self) -> String {
        let days = self.secs / 86_400;
        let rem = self.secs % 86_400;
        let (year, month, day) = civil_from_days(days);
        let base = format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
            rem / 3600,
            (rem % 3600) / 60,
            rem % 60
        );
        if self.nanos == 0 {
            return format!("{base}Z");
        }
        let fraction = format!("{:09}", self.nanos);
        format!("{base}.{}Z", fraction.trim_end_matches('0'))
    }
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
