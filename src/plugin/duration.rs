//! Durations on the command line: `30d`, `12h`, `90m`, `45s`, `2w`, or several (`1d12h`).

use std::time::Duration;

/// Parses a positive duration made of `<number><unit>` parts, units `w`, `d`, `h`, `m`, `s`.
/// The error is a sentence for clap to show.
pub fn parse(text: &str) -> Result<Duration, String> {
    let invalid = || {
        format!("{text:?} is not a duration: use a number and a unit, such as 30d, 12h, 90m or 45s")
    };
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit: u64 = match c {
            'w' => 7 * 86_400,
            'd' => 86_400,
            'h' => 3_600,
            'm' => 60,
            's' => 1,
            _ => return Err(invalid()),
        };
        let value: u64 = number.parse().map_err(|_| invalid())?;
        number.clear();
        total = value
            .checked_mul(unit)
            .and_then(|seconds| total.checked_add(seconds))
            .ok_or_else(|| format!("{text:?} is too long a duration"))?;
    }
    if !number.is_empty() || total == 0 {
        return Err(
            if total == 0 && number.is_empty() && !text.trim().is_empty() {
                format!("{text:?} is not a positive duration")
            } else {
                invalid()
            },
        );
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_and_combinations() {
        assert_eq!(parse("30d"), Ok(Duration::from_secs(30 * 86_400)));
        assert_eq!(parse("2w"), Ok(Duration::from_secs(14 * 86_400)));
        assert_eq!(parse("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert_eq!(parse("90m"), Ok(Duration::from_secs(5_400)));
        assert_eq!(parse("45s"), Ok(Duration::from_secs(45)));
        assert_eq!(parse("1d12h"), Ok(Duration::from_secs(86_400 + 12 * 3_600)));
    }

    #[test]
    fn malformed_zero_and_huge_durations_are_refused() {
        for bad in ["", "30", "d", "30x", "1.5h", "-1d", "30 d", "h30"] {
            assert!(parse(bad).is_err(), "{bad:?} was accepted");
        }
        assert_eq!(parse("0s"), Err("\"0s\" is not a positive duration".into()));
        assert!(
            parse("99999999999999999999w").is_err(),
            "an overflowing number is refused"
        );
        assert!(parse("99999999999999w").unwrap_err().contains("too long"));
    }
}
