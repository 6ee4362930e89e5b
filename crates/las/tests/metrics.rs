//! Metrics correctness: after a known mix of requests, `/metrics` counts exactly what the
//! client sent and received: requests by route, method and status, quotes issued, quotes
//! refused by reason. (The Prometheus text format itself is checked by an independent
//! parser in tests/python/test_metrics.py.)
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use las_testkit::daemon::Daemon;
use las_testkit::fixtures::{metric, metric_sum, scrape, valid_report};
use las_testkit::http::{Client, Resp};

type Key = (String, String, u16);

#[derive(Default)]
struct Tally {
    requests: BTreeMap<Key, u64>,
    issued: u64,
    refused: BTreeMap<String, u64>,
}

impl Tally {
    fn send(
        &mut self,
        c: &mut Client,
        route: &str,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Resp {
        let r = c.request(method, path, headers, body).unwrap();
        *self
            .requests
            .entry((route.into(), method.into(), r.status))
            .or_default() += 1;
        if route == "/v1/quote" {
            if r.status == 200 {
                self.issued += 1;
            } else {
                let kind = r.json()["error"].as_str().unwrap().to_owned();
                *self.refused.entry(kind).or_default() += 1;
            }
        }
        r
    }
}

#[test]
fn counters_match_what_the_client_sent_and_received() {
    let dir = tempfile::tempdir().unwrap();
    let d = Daemon::start(dir.path(), &[]);
    // valid_report fetches the target info once.
    let good = valid_report(dir.path(), d.addr, [7; 64]);
    let mut t = Tally::default();
    *t.requests
        .entry(("/v1/target-info".into(), "GET".into(), 200))
        .or_default() += 1;
    let mut bad_mac = good.clone();
    bad_mac[431] ^= 1;
    let octet = [("Content-Type", "application/octet-stream")];
    let mut c = Client::connect(d.addr).unwrap();
    for i in 0..23 {
        t.send(&mut c, "/v1/quote", "POST", "/v1/quote", &octet, &good);
        if i % 3 == 0 {
            t.send(&mut c, "/v1/quote", "POST", "/v1/quote", &octet, &bad_mac);
        }
        if i % 4 == 0 {
            t.send(
                &mut c,
                "/v1/quote",
                "POST",
                "/v1/quote",
                &octet,
                &good[..100],
            );
        }
        if i % 5 == 0 {
            let text = [("Content-Type", "text/plain")];
            t.send(&mut c, "/v1/quote", "POST", "/v1/quote", &text, &good);
        }
        if i % 2 == 0 {
            t.send(&mut c, "/v1/platform", "GET", "/v1/platform", &[], b"");
            t.send(&mut c, "/healthz", "GET", "/healthz", &[], b"");
        }
        if i % 6 == 0 {
            let nonce = format!("/v1/identity?nonce={}", "ab".repeat(16));
            t.send(&mut c, "/v1/identity", "GET", &nonce, &[], b"");
            t.send(
                &mut c,
                "/v1/identity",
                "GET",
                "/v1/identity?nonce=zz",
                &[],
                b"",
            );
        }
    }
    // The kinds are the ones the mix was built to produce.
    assert_eq!(
        t.refused.keys().collect::<Vec<_>>(),
        [
            "invalid-report-length",
            "invalid-report-mac",
            "unsupported-media-type"
        ]
    );
    assert_eq!(t.issued, 23);

    let m = scrape(d.addr);
    assert_eq!(
        metric(&m, "las_quotes_issued_total"),
        Some(t.issued as f64),
        "{m}"
    );
    for (reason, n) in &t.refused {
        assert_eq!(
            metric_sum(&m, "las_quotes_refused_total", &[("reason", reason)]),
            *n as f64,
            "refused {reason}:\n{m}"
        );
    }
    assert_eq!(
        metric_sum(&m, "las_quotes_refused_total", &[]),
        t.refused.values().sum::<u64>() as f64,
        "no other refusals"
    );
    for ((route, method, status), n) in &t.requests {
        let s = status.to_string();
        assert_eq!(
            metric_sum(
                &m,
                "las_http_requests_total",
                &[("route", route), ("method", method), ("status", &s)]
            ),
            *n as f64,
            "{method} {route} {status}:\n{m}"
        );
    }
    // Nothing else was counted (the scrape counts itself only after it is answered).
    assert_eq!(
        metric_sum(&m, "las_http_requests_total", &[]),
        t.requests.values().sum::<u64>() as f64,
        "{m}"
    );
    // Latency histograms saw every request of their route.
    let quote_requests: u64 = t
        .requests
        .iter()
        .filter(|((r, _, _), _)| r == "/v1/quote")
        .map(|(_, n)| n)
        .sum();
    assert_eq!(
        metric(
            &m,
            "las_http_request_duration_seconds_count{route=\"/v1/quote\"}"
        ),
        Some(quote_requests as f64)
    );
    assert_eq!(
        metric(&m, "las_quote_duration_seconds_count"),
        Some(t.issued as f64)
    );
    let second = scrape(d.addr);
    assert_eq!(
        metric_sum(&second, "las_http_requests_total", &[("route", "/metrics")]),
        1.0,
        "the first scrape counted once"
    );
    println!(
        "metrics: {} requests in {} (route, method, status) series, {} quotes issued, {} refused: all equal to the client's counts",
        t.requests.values().sum::<u64>(),
        t.requests.len(),
        t.issued,
        t.refused.values().sum::<u64>()
    );
    assert!(d.terminate().success());
}
