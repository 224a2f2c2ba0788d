//! What operators read and type: aligned tables, UTC times, durations, and the time
//! arguments of the commands (`now`, `+2h`, `2026-05-01T12:00:00Z`, or milliseconds).

use serde_json::Value;

/// Prints `rows` under `header`, each column as wide as its widest cell, two spaces apart.
pub(super) fn table(header: &[&str], rows: &[Vec<String>]) {
    print!("{}", render(header, rows));
}

fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let n = cells.len();
        let mut s = String::new();
        for (i, (c, w)) in cells.into_iter().zip(&widths).enumerate() {
            s.push_str(c);
            if i + 1 < n {
                s.push_str(&" ".repeat(w - c.chars().count() + 2));
            }
        }
        s.push('\n');
        s
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

/// A JSON value as a table cell: strings bare, null as `-`.
pub(super) fn cell(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Days since 1970-01-01 → (year, month, day) (proleptic Gregorian; H. Hinnant's algorithm).
fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// (year, month, day) → days since 1970-01-01.
fn days(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM:SSZ`.
pub(super) fn utc(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}Z",
        s / 3600,
        s / 60 % 60,
        s % 60
    )
}

/// A JSON `*_ms` value as UTC, `-` when absent.
pub(super) fn utc_of(v: &Value) -> String {
    v.as_u64().map(utc).unwrap_or_else(|| "-".into())
}

/// A duration in ms, short (`850 ms`, `12.4 s`, `3.2 min`, `5.0 h`, `2.1 d`).
pub(super) fn age(ms: u64) -> String {
    let f = ms as f64;
    match ms {
        0..=999 => format!("{ms} ms"),
        1_000..=59_999 => format!("{:.1} s", f / 1e3),
        60_000..=3_599_999 => format!("{:.1} min", f / 6e4),
        3_600_000..=86_399_999 => format!("{:.1} h", f / 3.6e6),
        _ => format!("{:.1} d", f / 8.64e7),
    }
}

/// A time argument, relative to `now_ms`: `now`, `+90s`, `+30m`, `+2h`, `+7d`, an RFC 3339
/// UTC time `2026-05-01T12:00:00Z`, or milliseconds since the epoch.
pub(super) fn parse_time(s: &str, now_ms: u64) -> Result<u64, String> {
    let bad = || {
        format!(
            "{s:?}: give now, +N[s|m|h|d], YYYY-MM-DDTHH:MM:SSZ or milliseconds since the epoch"
        )
    };
    if s == "now" {
        return Ok(now_ms);
    }
    if let Some(rel) = s.strip_prefix('+') {
        let unit = rel.chars().last().ok_or_else(bad)?;
        let n: u64 = rel[..rel.len() - unit.len_utf8()]
            .parse()
            .map_err(|_| bad())?;
        let per = match unit {
            's' => 1_000,
            'm' => 60_000,
            'h' => 3_600_000,
            'd' => 86_400_000,
            _ => return Err(bad()),
        };
        return n
            .checked_mul(per)
            .and_then(|d| now_ms.checked_add(d))
            .ok_or_else(bad);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse().map_err(|_| bad());
    }
    let t = s.strip_suffix('Z').ok_or_else(bad)?;
    let (date, time) = t.split_once('T').ok_or_else(bad)?;
    let num = |p: &str, len: usize| -> Result<u32, String> {
        if p.len() != len || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        p.parse().map_err(|_| bad())
    };
    let d: Vec<&str> = date.split('-').collect();
    let h: Vec<&str> = time.split(':').collect();
    let ([y, mo, da], [hh, mi, se]) = (d.as_slice(), h.as_slice()) else {
        return Err(bad());
    };
    let (y, mo, da) = (num(y, 4)?, num(mo, 2)?, num(da, 2)?);
    let (hh, mi, se) = (num(hh, 2)?, num(mi, 2)?, num(se, 2)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || hh > 23 || mi > 59 || se > 59 {
        return Err(bad());
    }
    let day = days(i64::from(y), mo, da);
    if civil(day) != (i64::from(y), mo, da) || day < 0 {
        return Err(bad());
    }
    Ok(day as u64 * 86_400_000 + u64::from(hh * 3600 + mi * 60 + se) * 1_000)
}

/// Now, in milliseconds since the epoch (the operator's clock; only to resolve `+2h`).
pub(super) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse_and_print() {
        assert_eq!(utc(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc(1_796_240_004_638), "2026-12-02 19:33:24Z");
        assert_eq!(parse_time("2026-12-02T19:33:24Z", 0), Ok(1_796_240_004_000));
        assert_eq!(parse_time("2024-02-29T00:00:00Z", 0), Ok(1_709_164_800_000));
        assert!(parse_time("2023-02-29T00:00:00Z", 0).is_err());
        assert_eq!(parse_time("now", 5), Ok(5));
        assert_eq!(parse_time("+2h", 5), Ok(7_200_005));
        assert_eq!(parse_time("+90s", 0), Ok(90_000));
        assert_eq!(parse_time("42", 7), Ok(42));
        for bad in [
            "",
            "+",
            "+h",
            "+2y",
            "-5",
            "2026-12-01 20:53:24Z",
            "2026-13-01T00:00:00Z",
            "+99999999999999999d",
        ] {
            assert!(parse_time(bad, 0).is_err(), "{bad}");
        }
        for ms in [0, 86_399_999, 951_782_400_000, 4_102_444_800_000] {
            let s = utc(ms).replace(' ', "T");
            assert_eq!(parse_time(&s, 0), Ok(ms / 1000 * 1000), "{s}");
        }
        assert_eq!(age(850), "850 ms");
        assert_eq!(age(12_400), "12.4 s");
        assert_eq!(age(2 * 86_400_000), "2.0 d");
    }

    #[test]
    fn tables_align_columns() {
        let out = render(
            &["ID", "NAME"],
            &[
                vec!["gpu-1".into(), "GPU box".into()],
                vec!["a".into(), "é".into()],
            ],
        );
        assert_eq!(out, "ID     NAME\ngpu-1  GPU box\na      é\n");
    }
}
