//! Which IP addresses discovery fetches stay away from by default: everything that is not a
//! globally routed unicast address, because behind those sit the node, the pod network, cloud
//! metadata services and the cluster's own Services.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not reached unless a platform engineer allows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AddressClass {
    /// `127.0.0.0/8`, `::1`: this host.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`: the link, where cloud metadata services answer.
    LinkLocal,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), site-local `fec0::/10`, local-use NAT64.
    Private,
    /// `100.64.0.0/10`, RFC 6598 carrier-grade NAT space, also used for pod and node networks.
    SharedAddressSpace,
    /// `fc00::/7`, IPv6 unique-local addresses.
    UniqueLocal,
    /// `0.0.0.0/8`, `::`: "this host" on "this network".
    Unspecified,
    /// `224.0.0.0/4`, `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// Special-purpose space that is never a public server: `192.0.0.0/24`, `198.18.0.0/15`,
    /// `240.0.0.0/4`, deprecated IPv4-compatible IPv6, the IPv6 discard prefix.
    Reserved,
}

impl AddressClass {
    /// The class as it reads in a sentence: "a loopback address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::Loopback => "a loopback address",
            AddressClass::LinkLocal => {
                "a link-local address (where cloud metadata services answer)"
            }
            AddressClass::Private => "a private address",
            AddressClass::SharedAddressSpace => "a shared (carrier-grade NAT, RFC 6598) address",
            AddressClass::UniqueLocal => "a unique-local IPv6 address",
            AddressClass::Unspecified => "the unspecified address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "the broadcast address",
            AddressClass::Reserved => "a reserved special-purpose address",
        }
    }
}

/// The class that keeps `ip` out of reach by default, or `None` for a global unicast address.
/// IPv6 forms that carry an IPv4 address (IPv4-mapped, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// are judged by the IPv4 address they lead to.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b) {
        _ if ip.is_broadcast() => AddressClass::Broadcast,
        (0, _) => AddressClass::Unspecified,
        (127, _) => AddressClass::Loopback,
        (169, 254) => AddressClass::LinkLocal,
        (10, _) | (192, 168) => AddressClass::Private,
        (172, 16..=31) => AddressClass::Private,
        (100, 64..=127) => AddressClass::SharedAddressSpace,
        (224..=239, _) => AddressClass::Multicast,
        (240..=255, _) | (198, 18..=19) => AddressClass::Reserved,
        (192, 0) if c == 0 => AddressClass::Reserved,
        _ => return None,
    })
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    let segments = ip.segments();
    Some(match segments {
        _ if ip.is_unspecified() => AddressClass::Unspecified,
        _ if ip.is_loopback() => AddressClass::Loopback,
        // NAT64 well-known prefix: the gateway connects to the embedded IPv4 address.
        [0x64, 0xff9b, 0, 0, 0, 0, ..] => {
            return classify_v4(embedded_v4(segments[6], segments[7]));
        }
        // 6to4: the relay forwards to the IPv4 address in bits 16..48.
        [0x2002, high, low, ..] => return classify_v4(embedded_v4(high, low)),
        [0x64, 0xff9b, 1, ..] => AddressClass::Private,
        // IPv4-compatible (deprecated) `::a.b.c.d` and the discard-only prefix `100::/64`.
        [0, 0, 0, 0, 0, 0, ..] | [0x100, 0, 0, 0, ..] => AddressClass::Reserved,
        [first, ..] if first & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        [first, ..] if first & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [first, ..] if first & 0xffc0 == 0xfec0 => AddressClass::Private,
        [first, ..] if first & 0xff00 == 0xff00 => AddressClass::Multicast,
        _ => return None,
    })
}

fn embedded_v4(high: u16, low: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(high) << 16) | u32::from(low))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        classify(ip.parse().expect("an IP address"))
    }

    #[test]
    fn public_unicast_is_reachable() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.0",
            "169.253.1.1",
            "192.0.2.10",
            "203.0.113.7",
            "223.255.255.255",
            "2001:4860:4860::8888",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
        ] {
            assert_eq!(class(ip), None, "{ip}");
        }
    }

    #[test]
    fn the_cluster_and_the_node_are_out_of_reach() {
        use AddressClass::*;
        for (ip, expected) in [
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("::1", Loopback),
            ("169.254.169.254", LinkLocal),
            ("fe80::1", LinkLocal),
            ("10.96.0.1", Private),
            ("172.16.0.1", Private),
            ("172.31.255.254", Private),
            ("192.168.1.1", Private),
            ("fec0::1", Private),
            ("64:ff9b:1::a00:1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.100.100.200", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("fd00:ec2::254", UniqueLocal),
            ("fc00::1", UniqueLocal),
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("::", Unspecified),
            ("224.0.0.1", Multicast),
            ("239.255.255.250", Multicast),
            ("ff02::1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Reserved),
            ("192.0.0.8", Reserved),
            ("198.18.0.1", Reserved),
            ("::10.0.0.1", Reserved),
            ("100::1", Reserved),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        use AddressClass::*;
        for (ip, expected) in [
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("::ffff:100.64.0.1", SharedAddressSpace),
            ("::ffff:0.0.0.0", Unspecified),
            ("64:ff9b::7f00:1", Loopback),
            ("64:ff9b::a9fe:a9fe", LinkLocal),
            ("2002:7f00:1::", Loopback),
            ("2002:c0a8:101::1", Private),
        ] {
            assert_eq!(class(ip), Some(expected), "{ip}");
        }
    }
}
