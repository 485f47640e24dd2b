//! Human display of counts, sizes and durations, as the Hub shows them.

/// A parameter count as the Hub shows it: three significant digits with a k/M/B/T suffix
/// (`6738415616` → `6.74B`, `85800194` → `85.8M`, `999` → `999`).
pub fn human_count(n: u64) -> String {
    const UNITS: [(f64, &str); 4] = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")];
    #[allow(clippy::cast_precision_loss)]
    let x = n as f64;
    for (i, (scale, suffix)) in UNITS.iter().enumerate() {
        if x >= *scale {
            let v = x / scale;
            let s = three_significant(v);
            // Rounding may reach 1000 of this unit: move up one unit.
            if s == "1000" && i > 0 {
                return format!("1{}", UNITS[i - 1].1);
            }
            return format!("{s}{suffix}");
        }
    }
    n.to_string()
}

/// Three significant digits for a value under 1000 (`41.06` → `41.1`, `2.5` → `2.5`).
pub fn three_significant(v: f64) -> String {
    let decimals = if v >= 100.0 {
        0
    } else if v >= 10.0 {
        1
    } else {
        2
    };
    trimmed(v, decimals)
}

/// A float with at most `decimals` decimals, trailing zeros dropped (`2.50` → `2.5`).
pub fn trimmed(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// An integer with thousands separators (`1234567` → `1,234,567`).
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A byte size in binary units with two decimals (`13476831232` → `12.55 GiB`).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    #[allow(clippy::cast_precision_loss)]
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.2} {}", UNITS[unit])
    }
}

/// Hours with sensible precision (`12.5` → `12.5`, `0.0833` → `0.08`, `173.16` → `173.2`).
pub fn human_hours(h: f64) -> String {
    trimmed(h, if h >= 100.0 { 1 } else { 2 })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_like_the_hub() {
        assert_eq!(human_count(6_738_415_616), "6.74B");
        assert_eq!(human_count(7_241_732_096), "7.24B");
        assert_eq!(human_count(2_506_172_416), "2.51B");
        assert_eq!(human_count(85_800_194), "85.8M");
        assert_eq!(human_count(123_060_480), "123M");
        assert_eq!(human_count(999), "999");
        assert_eq!(human_count(1_000), "1k");
        assert_eq!(human_count(999_999_999), "1B");
        assert_eq!(human_count(405_000_000_000), "405B");
    }

    #[test]
    fn bytes_and_hours() {
        assert_eq!(human_bytes(13_476_831_232), "12.55 GiB");
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(thousands(6_738_415_616), "6,738,415,616");
        assert_eq!(thousands(999), "999");
        assert_eq!(human_hours(12.5), "12.5");
        assert_eq!(human_hours(173.16), "173.2");
        assert_eq!(human_hours(2.0), "2");
    }
}
