//! API requests by verb and resource, from the API server's own `apiserver_request_total`
//! (its /metrics, scraped as the admin before and after a run).

use std::collections::BTreeMap;

use kube::Client;

/// `apiserver_request_total` summed by `VERB resource[/subresource]` (every code, group, scope).
pub type Requests = BTreeMap<String, f64>;

/// Scrapes the API server's /metrics once and sums `apiserver_request_total`.
pub async fn scrape(admin: &Client) -> Requests {
    let request = hyper::Request::get("/metrics")
        .body(Vec::new())
        .expect("a request");
    let text = admin
        .request_text(request)
        .await
        .expect("the API server's /metrics");
    parse(&text)
}

/// Sums the `apiserver_request_total` samples of a Prometheus text exposition.
pub fn parse(text: &str) -> Requests {
    let mut sums = Requests::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_request_total{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        let Ok(value) = value.trim().parse::<f64>() else {
            continue;
        };
        let label = |name: &str| {
            let start = labels.find(&format!("{name}=\""))? + name.len() + 2;
            let end = labels[start..].find('"')?;
            Some(&labels[start..start + end])
        };
        let resource = label("resource").unwrap_or("");
        let what = match (resource, label("subresource").unwrap_or("")) {
            ("", _) => "(non-resource)".to_string(),
            (r, "") => r.to_string(),
            (r, s) => format!("{r}/{s}"),
        };
        *sums
            .entry(format!("{} {what}", label("verb").unwrap_or("?")))
            .or_insert(0.0) += value;
    }
    sums
}

/// Prints what changed between two scrapes, per key, largest first.
pub fn print_delta(before: &Requests, after: &Requests, n: usize) {
    let mut rows: Vec<(&String, f64)> = after
        .iter()
        .map(|(k, v)| (k, v - before.get(k).copied().unwrap_or(0.0)))
        .filter(|(_, d)| *d >= 0.5)
        .collect();
    rows.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f64 = rows.iter().map(|(_, d)| d).sum();
    println!(
        "  API requests (apiserver_request_total, all clients incl. this harness): {total:.0} ({:.2}/key)",
        total / n as f64
    );
    // Below 0.01 per key (other components' watches ending, the election): one line.
    let (shown, rest): (Vec<_>, Vec<_>) =
        rows.into_iter().partition(|(_, d)| *d / n as f64 >= 0.01);
    for (what, delta) in shown {
        println!("    {what:<32} {delta:>9.0}  {:>6.2}/key", delta / n as f64);
    }
    if !rest.is_empty() {
        let other: f64 = rest.iter().map(|(_, d)| d).sum();
        let what = format!("other ({} kinds)", rest.len());
        println!("    {what:<32} {other:>9.0}  {:>6.2}/key", other / n as f64);
    }
}
