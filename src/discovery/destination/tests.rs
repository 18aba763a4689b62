use super::*;

fn policy(allow: &[&str], deny: &[&str], service: &[&str]) -> DestinationPolicy {
    DestinationPolicy::new(
        AllowList::parse(&allow.join(",")).unwrap(),
        DenyList::parse(&deny.join(",")).unwrap(),
        ServiceRanges::fixed(service.iter().map(|e| e.parse().unwrap()).collect()),
    )
}

fn check(policy: &DestinationPolicy, url: &str) -> Result<(), String> {
    policy
        .check_url(&Url::parse(url).unwrap())
        .map_err(|r| r.to_string())
}

fn ips(list: &[&str]) -> Vec<IpAddr> {
    list.iter().map(|ip| ip.parse().unwrap()).collect()
}

#[test]
fn allow_entries_parse_into_hosts_domains_and_networks() {
    let cases = [
        (
            "docs.example.com",
            AllowEntry::Host("docs.example.com".into()),
        ),
        (
            " Docs.Example.COM. ",
            AllowEntry::Host("docs.example.com".into()),
        ),
        ("localhost", AllowEntry::Host("localhost".into())),
        (
            "*.svc.cluster.local",
            AllowEntry::Subdomains("svc.cluster.local".into()),
        ),
        (
            "127.0.0.1",
            AllowEntry::Network("127.0.0.1/32".parse().unwrap()),
        ),
        ("[::1]", AllowEntry::Network("::1/128".parse().unwrap())),
        (
            "::ffff:10.0.0.1",
            AllowEntry::Network("10.0.0.1/32".parse().unwrap()),
        ),
        (
            "10.20.0.0/16",
            AllowEntry::Network("10.20.0.0/16".parse().unwrap()),
        ),
        ("fd00::/8", AllowEntry::Network("fd00::/8".parse().unwrap())),
    ];
    for (text, expected) in cases {
        assert_eq!(AllowEntry::parse(text), Ok(expected), "{text}");
    }
}

#[test]
fn bad_allow_entries_say_what_is_wrong() {
    let cases = [
        ("", "empty entry"),
        ("https://docs.example.com", "is a URL"),
        ("10.1.2.3/8", "did you mean 10.0.0.0/8?"),
        ("10.0.0.0/33", "not a CIDR"),
        ("docs.example.com:8443", "neither an IP address"),
        ("docs_example.com", "neither an IP address"),
        ("-docs.example.com", "neither an IP address"),
        ("127.1", "neither an IP address"),
        ("*.", "neither an IP address"),
        ("a..b", "neither an IP address"),
    ];
    for (text, expected) in cases {
        let error = AllowEntry::parse(text).expect_err(text);
        assert!(error.contains(expected), "{text}: {error}");
    }
}

#[test]
fn by_default_only_https_to_public_addresses_is_fetched() {
    let defaults = policy(&[], &[], &[]);
    assert_eq!(
        check(&defaults, "https://docs.example.com/openapi.json"),
        Ok(())
    );
    assert_eq!(
        check(&defaults, "https://93.184.215.14/openapi.json"),
        Ok(())
    );
    for (url, expected) in [
        ("http://docs.example.com/openapi.json", "plain http"),
        ("ftp://docs.example.com/openapi.json", "\"ftp\" scheme"),
        ("file:///etc/passwd", "\"file\" scheme"),
        (
            "http://127.0.0.1:8080/internal",
            "127.0.0.1 is a loopback address",
        ),
        ("https://127.0.0.1/internal", "loopback"),
        ("https://2130706433/", "127.0.0.1 is a loopback address"),
        ("https://0x7f.1/", "127.0.0.1 is a loopback address"),
        ("https://[::1]/", "::1 is a loopback address"),
        ("https://[::ffff:127.0.0.1]/", "loopback"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[fd00:ec2::254]/", "unique-local"),
        ("https://10.0.0.1/", "a private address"),
        ("https://100.100.100.200/", "carrier-grade NAT"),
        ("https://0.0.0.0/", "unspecified"),
        ("https://255.255.255.255/", "broadcast"),
        ("https://224.0.0.1/", "multicast"),
    ] {
        let refusal = check(&defaults, url).expect_err(url);
        assert!(refusal.contains(expected), "{url}: {refusal}");
    }
}

#[test]
fn allowed_hosts_and_networks_may_be_fetched_over_plain_http() {
    let allowing = policy(
        &[
            "127.0.0.1",
            "docs.internal",
            "*.svc.cluster.local",
            "10.20.0.0/16",
        ],
        &[],
        &[],
    );
    for url in [
        "http://127.0.0.1:8080/openapi.json",
        "http://docs.internal/openapi.json",
        "http://DOCS.internal./openapi.json",
        "http://toys.team-a.svc.cluster.local/openapi.json",
        "http://10.20.3.4/openapi.json",
        "https://10.20.3.4/openapi.json",
    ] {
        assert_eq!(check(&allowing, url), Ok(()), "{url}");
    }
    for url in [
        "http://127.0.0.2/",
        "http://svc.cluster.local/",
        "http://evilsvc.cluster.local/",
        "http://docs.internal.evil.com/",
        "http://10.21.0.1/",
    ] {
        assert!(check(&allowing, url).is_err(), "{url}");
    }
    // A host name on the list is allowed whatever it resolves to.
    assert_eq!(
        allowing.check_resolved("docs.internal", &ips(&["10.9.9.9"])),
        Ok(())
    );
    // A network on the list allows resolved addresses in it, over https.
    assert_eq!(
        allowing.check_resolved("x.example", &ips(&["10.20.0.9"])),
        Ok(())
    );
}

#[test]
fn every_resolved_address_must_be_allowed() {
    let defaults = policy(&[], &[], &[]);
    assert_eq!(
        defaults.check_resolved("docs.example.com", &ips(&["93.184.215.14"])),
        Ok(())
    );
    let refusal = defaults
        .check_resolved("localhost", &ips(&["127.0.0.1", "::1"]))
        .unwrap_err()
        .to_string();
    assert!(
        refusal.starts_with("localhost resolves to 127.0.0.1, a loopback address"),
        "{refusal}"
    );
    let mixed = defaults
        .check_resolved(
            "rebind.example",
            &ips(&["93.184.215.14", "169.254.169.254"]),
        )
        .unwrap_err()
        .to_string();
    assert!(
        mixed.contains("169.254.169.254, a link-local address"),
        "{mixed}"
    );
    let only_ipv4_allowed = policy(&["127.0.0.1"], &[], &[]);
    assert!(
        only_ipv4_allowed
            .check_resolved("localhost", &ips(&["127.0.0.1", "::1"]))
            .is_err()
    );
}

#[test]
fn service_ranges_and_denied_ranges_are_refused_even_when_public() {
    let strict = policy(&["203.0.113.9"], &["198.51.100.0/24"], &["203.0.113.0/24"]);
    let service = check(&strict, "https://203.0.113.7/").unwrap_err();
    assert!(
        service.contains("in the cluster's Service range 203.0.113.0/24"),
        "{service}"
    );
    let denied = check(&strict, "https://198.51.100.1/").unwrap_err();
    assert!(denied.contains("--fetch-deny"), "{denied}");
    let resolved = strict
        .check_resolved("svc.example", &ips(&["::ffff:203.0.113.8"]))
        .unwrap_err()
        .to_string();
    assert!(resolved.contains("Service range"), "{resolved}");
    // An explicit allow entry wins.
    assert_eq!(check(&strict, "https://203.0.113.9/"), Ok(()));
}

#[test]
fn lists_are_comma_separated_and_may_be_empty() {
    assert_eq!(AllowList::parse(""), Ok(AllowList::default()));
    assert_eq!(DenyList::parse("  "), Ok(DenyList::default()));
    assert_eq!(
        AllowList::parse("127.0.0.1, docs.internal").unwrap().0,
        vec![
            AllowEntry::Network("127.0.0.1/32".parse().unwrap()),
            AllowEntry::Host("docs.internal".into())
        ]
    );
    assert!(
        AllowList::parse("127.0.0.1,,docs.internal")
            .unwrap_err()
            .contains("empty entry")
    );
    assert!(
        AllowList::parse("127.0.0.1,")
            .unwrap_err()
            .contains("empty entry")
    );
    assert!(
        DenyList::parse("10.0.0.0/8,docs.internal")
            .unwrap_err()
            .contains("not a CIDR")
    );
}
