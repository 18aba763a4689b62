//! Parsers for flag values shared by every subcommand.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

/// Parses a duration flag such as `500ms`, `30s`, `5m`, `12h` or `365d`.
pub fn parse_duration(s: &str) -> std::result::Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit; use ms, s, m, h or d (for example 365d)"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let seconds = match unit {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {s:?}; use ms, s, m, h or d"
            ));
        }
    };
    n.checked_mul(seconds)
        .map(Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is too long"))
}

/// Formats a duration in the largest unit that [`parse_duration`] reads back exactly (`24h`).
pub fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    if d.subsec_nanos() != 0 || secs == 0 {
        return format!("{}ms", d.as_millis());
    }
    [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        .into_iter()
        .find(|(_, unit)| secs.is_multiple_of(*unit))
        .map(|(name, unit)| format!("{}{name}", secs / unit))
        .unwrap_or_default()
}

/// The default address of a listener on `port`: the pod's own IP when the Downward API provides
/// it (`POD_IP`), else 127.0.0.1 — never every interface, so a process started by hand on a
/// workstation is not reachable from the network.
pub fn default_listen(port: u16) -> SocketAddr {
    let ip = std::env::var("POD_IP")
        .ok()
        .and_then(|ip| ip.parse::<IpAddr>().ok())
        .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    SocketAddr::new(ip, port)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listeners_default_to_loopback_without_a_pod_ip() {
        if std::env::var_os("POD_IP").is_none() {
            assert_eq!(default_listen(8443).to_string(), "127.0.0.1:8443");
        }
    }

    #[test]
    fn durations_format_as_they_parse() {
        for text in ["36h", "7d", "90m", "45s", "1500ms", "0ms"] {
            assert_eq!(format_duration(parse_duration(text).unwrap()), text);
        }
    }

    #[test]
    fn durations_parse_with_units_and_refuse_nonsense() {
        assert_eq!(
            parse_duration("365d"),
            Ok(Duration::from_secs(365 * 86_400))
        );
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("12h"), Ok(Duration::from_secs(12 * 3_600)));
        assert!(parse_duration("365").unwrap_err().contains("no unit"));
        assert!(parse_duration("5y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("d").is_err());
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("99999999999999999999d").is_err());
    }
}
