//! Where discovery fetches may go. API owners choose the URLs and everyone who can read products
//! reads what was fetched, so by default only HTTPS to global unicast addresses is allowed, and
//! the platform engineer lists the exceptions (`--fetch-allow`).
//!
//! The check is made on the addresses actually dialled: [`CheckedResolver`] resolves a host name,
//! checks every address and hands reqwest only checked ones (no second lookup, so no DNS
//! rebinding); IP-literal hosts, which reqwest dials without asking the resolver, are checked by
//! [`DestinationPolicy::check_url`] before the request and before every redirect hop
//! ([`redirect_policy`]).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use ipnet::IpNet;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Host;

use super::address::classify;
use super::service_ranges::ServiceRanges;

/// Redirect hops followed per fetch.
const MAX_REDIRECTS: usize = 5;

/// One `--fetch-allow` entry: what may be fetched even though it is not public, and over plain
/// HTTP too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowEntry {
    /// A host name, matched exactly (case-insensitively): every address it resolves to is allowed.
    Host(String),
    /// `*.example.internal`: every host name below that domain (not the domain itself).
    Subdomains(String),
    /// An address or CIDR; a bare address is a /32 or /128.
    Network(IpNet),
}

impl AllowEntry {
    /// Parses one entry: a host name, `*.` and a domain, an IP address or a CIDR.
    pub fn parse(text: &str) -> Result<Self, String> {
        let entry = text.trim();
        if entry.is_empty() {
            return Err("an empty entry (check for doubled or trailing commas)".into());
        }
        if entry.contains("://") {
            return Err(format!(
                "{entry:?} is a URL; give a host name or CIDR, without scheme, port or path"
            ));
        }
        if entry.contains('/') {
            return parse_network(entry).map(AllowEntry::Network);
        }
        let bare = entry.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = bare.parse::<IpAddr>() {
            return Ok(AllowEntry::Network(IpNet::from(ip.to_canonical())));
        }
        let (wildcard, name) = match entry.strip_prefix("*.") {
            Some(domain) => (true, domain),
            None => (false, entry),
        };
        let name = valid_host_name(name).ok_or_else(|| {
            format!(
                "{entry:?} is neither an IP address, a CIDR nor a host name (letters, digits and \
                 hyphens in dot-separated labels, no port; `*.` in front for subdomains)"
            )
        })?;
        Ok(if wildcard {
            AllowEntry::Subdomains(name)
        } else {
            AllowEntry::Host(name)
        })
    }

    fn allows_host(&self, host: &str) -> bool {
        match self {
            AllowEntry::Host(name) => host == name,
            AllowEntry::Subdomains(domain) => host
                .strip_suffix(domain.as_str())
                .is_some_and(|prefix| prefix.len() > 1 && prefix.ends_with('.')),
            AllowEntry::Network(_) => false,
        }
    }
}

/// A `--fetch-allow` value: comma-separated [`AllowEntry`]s; an empty value allows nothing more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AllowList(pub Vec<AllowEntry>);

impl AllowList {
    /// Parses a comma-separated list of entries.
    pub fn parse(text: &str) -> Result<Self, String> {
        comma_separated(text, AllowEntry::parse).map(Self)
    }
}

/// A `--fetch-deny` value: comma-separated CIDRs; an empty value refuses nothing more.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DenyList(pub Vec<IpNet>);

impl DenyList {
    /// Parses a comma-separated list of CIDRs.
    pub fn parse(text: &str) -> Result<Self, String> {
        comma_separated(text, parse_network).map(Self)
    }
}

fn comma_separated<T>(
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',').map(parse).collect()
}

/// Parses a CIDR, refusing one with host bits set (`10.1.2.3/8`), which is usually a typo.
pub fn parse_network(text: &str) -> Result<IpNet, String> {
    let text = text.trim();
    let network: IpNet = text
        .parse()
        .map_err(|_| format!("{text:?} is not a CIDR such as 10.0.0.0/8 or fd00::/8"))?;
    if network.trunc() != network {
        return Err(format!(
            "{text:?} has host bits set; did you mean {}?",
            network.trunc()
        ));
    }
    Ok(network)
}

/// A lower-cased host name without its trailing dot, if `name` is one. A last label of digits
/// only is refused: URLs read such names as IPv4 addresses (`127.1`).
fn valid_host_name(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
    let labels: Vec<&str> = name.split('.').collect();
    let label_ok = |label: &&str| {
        (1..=63).contains(&label.len())
            && !label.starts_with('-')
            && !label.ends_with('-')
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    };
    let numeric = |label: &str| label.bytes().all(|b| b.is_ascii_digit());
    (name.len() <= 253 && labels.iter().all(label_ok) && !numeric(labels.last()?)).then_some(name)
}

/// Why a destination was refused. Names the host and the address, never anything fetched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal(String);

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// The destination rules of every discovery fetch.
#[derive(Clone, Debug)]
pub struct DestinationPolicy {
    allow: Vec<AllowEntry>,
    deny: Vec<IpNet>,
    service_ranges: ServiceRanges,
}

impl DestinationPolicy {
    /// A policy allowing `allow` on top of the defaults, refusing `deny` and `service_ranges` too.
    pub fn new(allow: AllowList, deny: DenyList, service_ranges: ServiceRanges) -> Self {
        Self {
            allow: allow.0,
            deny: deny.0,
            service_ranges,
        }
    }

    /// The cluster's Service ranges this policy refuses.
    pub fn service_ranges(&self) -> &ServiceRanges {
        &self.service_ranges
    }

    /// Checks a URL about to be requested: its scheme, and its host if that is an IP address.
    /// (A host name's addresses are checked when [`CheckedResolver`] resolves it.)
    pub fn check_url(&self, url: &Url) -> Result<(), Refusal> {
        let plain_http = match url.scheme() {
            "https" => false,
            "http" => true,
            other => {
                return Err(Refusal(format!(
                    "the {other:?} scheme is not fetched; use https"
                )));
            }
        };
        let (host, allowed) = match url.host() {
            None => return Err(Refusal("the URL has no host".into())),
            Some(Host::Ipv4(ip)) => self.check_literal(IpAddr::V4(ip))?,
            Some(Host::Ipv6(ip)) => self.check_literal(IpAddr::V6(ip))?,
            // The `url` crate already turns every IPv4 spelling into an address; this is only
            // a second line of defence.
            Some(Host::Domain(name)) => match name.parse::<IpAddr>() {
                Ok(ip) => self.check_literal(ip)?,
                Err(_) => (name.to_string(), self.host_allowed(name)),
            },
        };
        if plain_http && !allowed {
            return Err(Refusal(format!(
                "plain http is fetched only from hosts on the platform's allow-list \
                 (--fetch-allow), and {host} is not on it; use https"
            )));
        }
        Ok(())
    }

    /// Checks the addresses `host` resolved to: all must be reachable, unless the host itself is
    /// on the allow-list.
    pub fn check_resolved(&self, host: &str, addresses: &[IpAddr]) -> Result<(), Refusal> {
        if self.host_allowed(host) {
            return Ok(());
        }
        for &ip in addresses {
            if let Err(why) = self.check_address(ip) {
                return Err(Refusal(format!("{host} resolves to {ip}, {why}")));
            }
        }
        Ok(())
    }

    /// An IP-literal host: refused, or (its text, whether it is explicitly allowed).
    fn check_literal(&self, ip: IpAddr) -> Result<(String, bool), Refusal> {
        self.check_address(ip)
            .map_err(|why| Refusal(format!("{ip} is {why}")))?;
        Ok((ip.to_string(), self.network_allowed(ip)))
    }

    /// Whether `ip` may be dialled; if not, why, as the end of a sentence.
    fn check_address(&self, ip: IpAddr) -> Result<(), String> {
        let ip = ip.to_canonical();
        const HINT: &str = "which discovery does not fetch from unless the platform engineer \
                            allows it (--fetch-allow)";
        if self.network_allowed(ip) {
            return Ok(());
        }
        if let Some(range) = self.deny.iter().find(|range| range.contains(&ip)) {
            return Err(format!(
                "in {range}, refused by the platform (--fetch-deny)"
            ));
        }
        if let Some(range) = self.service_ranges.containing(ip) {
            return Err(format!("in the cluster's Service range {range}, {HINT}"));
        }
        match classify(ip) {
            Some(class) => Err(format!("{}, {HINT}", class.describe())),
            None => Ok(()),
        }
    }

    fn network_allowed(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.allow
            .iter()
            .any(|entry| matches!(entry, AllowEntry::Network(net) if net.contains(&ip)))
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
        self.allow.iter().any(|entry| entry.allows_host(&host))
    }
}

/// A reqwest resolver that resolves with the system resolver and returns the addresses only when
/// the policy allows every one of them: reqwest then dials exactly what was checked.
pub struct CheckedResolver(pub Arc<DestinationPolicy>);

impl Resolve for CheckedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.0.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addresses: Vec<IpAddr> = resolved.iter().map(SocketAddr::ip).collect();
            policy.check_resolved(&host, &addresses)?;
            Ok(Box::new(resolved.into_iter()) as Addrs)
        })
    }
}

/// Follows at most a few redirects, each only if the policy allows its URL (scheme and IP-literal
/// host here; a host name's addresses when the resolver resolves it).
pub fn redirect_policy(policy: Arc<DestinationPolicy>) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        if attempt.previous().len() > MAX_REDIRECTS {
            // Not a refusal of a destination: the fetch failed.
            return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
        }
        match policy.check_url(attempt.url()) {
            Ok(()) => attempt.follow(),
            Err(Refusal(why)) => attempt.error(Refusal(format!("a redirect was refused: {why}"))),
        }
    })
}

#[cfg(test)]
mod tests;
