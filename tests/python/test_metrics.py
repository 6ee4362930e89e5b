"""/metrics of a real daemon, read by independent parsers from the Prometheus project's
Python client (prometheus_client): the strict OpenMetrics parser (the daemon serves
`application/openmetrics-text`) for types and values, and the classic Prometheus text
parser (what a scraper falls back to) for every sample line. Every family must parse,
carry the documented type, and count what this client sent."""
import urllib.error
import urllib.request

from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families as prometheus_families


def request(addr, path, method="GET", body=None, ctype=None):
    req = urllib.request.Request(f"http://{addr}{path}", data=body, method=method)
    if ctype:
        req.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def scrape(addr):
    req = urllib.request.Request(f"http://{addr}/metrics")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200
        ctype = r.headers["Content-Type"]
        text = r.read().decode("utf-8")
    assert ctype == "application/openmetrics-text; version=1.0.0; charset=utf-8", ctype
    families = {f.name: f for f in openmetrics_families(text)}
    # The classic text parser reads the same samples with the same values.
    classic = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for f in prometheus_families(text) for s in f.samples}
    strict = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for f in families.values() for s in f.samples}
    assert classic == strict
    return families


def value(family, **labels):
    return sum(s.value for s in family.samples
               if s.name == family.name + "_total" and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_parse_as_prometheus_text_and_count_the_requests(las_daemon):
    addr = las_daemon.addr
    sent = {("/healthz", "200"): 0, ("/v1/platform", "200"): 0, ("/v1/quote", "400"): 0,
            ("/v1/quote", "415"): 0}
    for _ in range(5):
        assert request(addr, "/healthz")[0] == 200
        sent[("/healthz", "200")] += 1
    for _ in range(3):
        assert request(addr, "/v1/platform")[0] == 200
        sent[("/v1/platform", "200")] += 1
    for _ in range(4):
        assert request(addr, "/v1/quote", "POST", b"short", "application/octet-stream")[0] == 400
        sent[("/v1/quote", "400")] += 1
    for _ in range(2):
        assert request(addr, "/v1/quote", "POST", bytes(432), "text/plain")[0] == 415
        sent[("/v1/quote", "415")] += 1

    families = scrape(addr)
    # The documented families and their types.
    want = {
        "las_http_requests": "counter",
        "las_http_request_duration_seconds": "histogram",
        "las_quotes_issued": "counter",
        "las_quotes_refused": "counter",
        "las_quote_duration_seconds": "histogram",
        "las_connections_open": "gauge",
        "las_connections_refused": "counter",
        "las_connections_write_timeout": "counter",
        "las_request_bodies_refused": "counter",
        "las_process_start_time_seconds": "gauge",
        "las_info": "gauge",
    }
    got = {name: f.type for name, f in families.items()}
    assert got == want, got
    assert all(f.documentation for f in families.values()), "every family has HELP"

    reqs = families["las_http_requests"]
    for (route, status), n in sent.items():
        assert value(reqs, route=route, status=status) == n, (route, status)
    assert value(reqs) == sum(sent.values()), "nothing else counted before the first scrape"
    assert value(families["las_quotes_issued"]) == 0
    refused = families["las_quotes_refused"]
    assert value(refused, reason="invalid-report-length") == 4
    assert value(refused, reason="unsupported-media-type") == 2
    assert value(refused) == 6

    # Histograms: cumulative buckets ending in +Inf equal to _count.
    hist = families["las_http_request_duration_seconds"]
    for route in ("/healthz", "/v1/quote"):
        buckets = [s for s in hist.samples if s.name.endswith("_bucket") and s.labels["route"] == route]
        counts = [s.value for s in buckets]
        assert counts == sorted(counts), "buckets are cumulative"
        assert buckets[-1].labels["le"] == "+Inf"
        count = next(s.value for s in hist.samples if s.name.endswith("_count") and s.labels["route"] == route)
        assert buckets[-1].value == count == sum(n for (r, _), n in sent.items() if r == route)

    info = families["las_info"].samples[0]
    assert info.labels["mode"] == "sim" and info.value == 1
    assert len(info.labels["platform_id"]) == 64

    # The first scrape is counted once, by the second.
    assert value(scrape(addr)["las_http_requests"], route="/metrics", status="200") == 1
