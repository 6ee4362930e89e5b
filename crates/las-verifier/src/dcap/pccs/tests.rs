//! The PCCS client against a small fake PCCS on 127.0.0.1 that serves the pieces of the real
//! sample collateral shipped in dcap-qvl's crate package, as a PCCS does (PCCS API v4).

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response as HttpResponse, StatusCode};
use hyper_util::rt::TokioIo;

use super::*;
use crate::dcap::tests::{SAMPLE_NOW, sample};
use crate::dcap::{CollateralSet, appraise, collateral_key};
use crate::policy::Policy;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    None,
    TcbStatus500,
    NoQeHeader,
    NoRootCrlEndpoint,
}

struct FakePccs {
    base: String,
    hits: Arc<AtomicUsize>,
    paths: Arc<std::sync::Mutex<Vec<String>>>,
}

fn encode_header(s: &str) -> String {
    // As a PCCS does: the PEM chain URL-encoded into one header line.
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

async fn start(fault: Fault) -> FakePccs {
    let (_, coll) = sample();
    let c: QuoteCollateralV3 = serde_json::from_slice(&coll).unwrap();
    let c = Arc::new(c);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let paths = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (h, p) = (hits.clone(), paths.clone());
    tokio::spawn(async move {
        // Bounded: a test makes at most a few dozen requests.
        for _ in 0..64 {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (c, h, p) = (c.clone(), h.clone(), p.clone());
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<hyper::body::Incoming>| {
                    let (c, h, p) = (c.clone(), h.clone(), p.clone());
                    async move {
                        h.fetch_add(1, Ordering::SeqCst);
                        let pq = req
                            .uri()
                            .path_and_query()
                            .map(|x| x.to_string())
                            .unwrap_or_default();
                        p.lock().unwrap().push(pq.clone());
                        let ok = |body: Vec<u8>, hdr: Option<(&str, &str)>| {
                            let mut b = HttpResponse::builder().status(200);
                            if let Some((k, v)) = hdr {
                                b = b.header(k, encode_header(v));
                            }
                            b.body(Full::new(Bytes::from(body))).unwrap()
                        };
                        let status = |s: StatusCode| {
                            HttpResponse::builder()
                                .status(s)
                                .body(Full::new(Bytes::new()))
                                .unwrap()
                        };
                        let v4 = "/sgx/certification/v4/";
                        let r = match pq.strip_prefix(v4).unwrap_or("") {
                            "pckcrl?ca=processor&encoding=der" => ok(
                                c.pck_crl.clone(),
                                Some(("SGX-PCK-CRL-Issuer-Chain", &c.pck_crl_issuer_chain)),
                            ),
                            "tcb?fmspc=00A067110000" if fault == Fault::TcbStatus500 => {
                                status(StatusCode::INTERNAL_SERVER_ERROR)
                            }
                            "tcb?fmspc=00A067110000" => ok(
                                format!(
                                    "{{\"tcbInfo\":{},\"signature\":\"{}\"}}",
                                    c.tcb_info,
                                    hex::encode(&c.tcb_info_signature)
                                )
                                .into_bytes(),
                                Some(("TCB-Info-Issuer-Chain", &c.tcb_info_issuer_chain)),
                            ),
                            "qe/identity" => ok(
                                format!(
                                    "{{\"enclaveIdentity\":{},\"signature\":\"{}\"}}",
                                    c.qe_identity,
                                    hex::encode(&c.qe_identity_signature)
                                )
                                .into_bytes(),
                                (fault != Fault::NoQeHeader).then_some((
                                    "SGX-Enclave-Identity-Issuer-Chain",
                                    c.qe_identity_issuer_chain.as_str(),
                                )),
                            ),
                            "rootcacrl" if fault == Fault::NoRootCrlEndpoint => {
                                status(StatusCode::NOT_FOUND)
                            }
                            // A PCCS sends the root CA CRL as hex text.
                            "rootcacrl" => ok(hex::encode(&c.root_ca_crl).into_bytes(), None),
                            // Intel's CRL distribution point sends DER.
                            _ if pq == "/IntelSGXRootCA.der" => ok(c.root_ca_crl.clone(), None),
                            _ => status(StatusCode::NOT_FOUND),
                        };
                        Ok::<_, Infallible>(r)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    FakePccs {
        base: format!("http://{addr}"),
        hits,
        paths,
    }
}

fn tolerant() -> Policy {
    Policy::from_yaml(
        b"security:\n  attestation:\n    tolerate: [insecure-configuration, software-hardening-needed]\n    ignore_advisories: [INTEL-SA-00289, INTEL-SA-00615]\nservices:\n  - name: app\n",
    )
    .unwrap()
}

#[tokio::test]
async fn fetches_the_real_collateral_verifies_with_it_and_caches_it() {
    let pccs = start(Fault::None).await;
    let (quote, coll) = sample();
    let key = collateral_key(&quote).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let client = PccsClient::new(&format!("{}/sgx/certification/v4/", pccs.base))
        .unwrap()
        .cache_dir(dir.path().join("cache"));
    let c = client.collateral(&key, SAMPLE_NOW).await.unwrap();
    assert_eq!(pccs.hits.load(Ordering::SeqCst), 4);
    // Exactly the pieces Intel signed (the TCB info and QE identity text is kept byte for
    // byte, not re-serialised).
    let want: QuoteCollateralV3 = serde_json::from_slice(&coll).unwrap();
    assert_eq!(c.raw(), &want);
    // And it verifies the real quote up to the binding check.
    let a = appraise(&tolerant(), &quote, &[0; 64], &c.clone().into(), SAMPLE_NOW);
    let names: Vec<_> = a.rejections.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(names, ["report-data-mismatch"]);

    // Cached: no new request while it is valid; the cache file is a --collateral file.
    let again = client.collateral(&key, SAMPLE_NOW + 3600).await.unwrap();
    assert_eq!(again.raw(), &want);
    assert_eq!(pccs.hits.load(Ordering::SeqCst), 4);
    let path = client.cache_path(&key).unwrap();
    assert!(path.starts_with(dir.path()));
    let file = CollateralSet::from_json(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(file.iter().next().unwrap().raw(), &want);

    // Expired: fetched again (and, since the PCCS has nothing newer, not cached).
    let later = c.not_after() + 1;
    let stale = client.collateral(&key, later).await.unwrap();
    assert!(!stale.valid_at(later));
    assert_eq!(pccs.hits.load(Ordering::SeqCst), 8);
    let paths = pccs.paths.lock().unwrap().clone();
    assert!(paths.contains(&"/sgx/certification/v4/tcb?fmspc=00A067110000".to_owned()));
}

#[tokio::test]
async fn each_failure_names_the_url_and_what_is_missing() {
    let (quote, _) = sample();
    let key = collateral_key(&quote).unwrap();

    let pccs = start(Fault::TcbStatus500).await;
    let e = PccsClient::new(&pccs.base)
        .unwrap()
        .fetch(&key)
        .await
        .unwrap_err();
    assert!(matches!(e, PccsError::Status { status: 500, .. }), "{e}");
    assert!(e.to_string().contains("/tcb?fmspc=00A067110000"), "{e}");

    let pccs = start(Fault::NoQeHeader).await;
    let e = PccsClient::new(&pccs.base)
        .unwrap()
        .fetch(&key)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("SGX-Enclave-Identity-Issuer-Chain"), "{e}");

    // Without a rootcacrl endpoint (as at Intel's PCS) the client takes the Root CA CRL
    // from the CRL distribution point (here a loopback stand-in for Intel's URL).
    let pccs = start(Fault::NoRootCrlEndpoint).await;
    let c = PccsClient::new(&pccs.base)
        .unwrap()
        .root_ca_crl_url(&format!("{}/IntelSGXRootCA.der", pccs.base))
        .fetch(&key)
        .await
        .unwrap();
    let (_, coll) = sample();
    let want: QuoteCollateralV3 = serde_json::from_slice(&coll).unwrap();
    assert_eq!(c.raw(), &want);
    assert!(
        pccs.paths
            .lock()
            .unwrap()
            .contains(&"/IntelSGXRootCA.der".to_owned())
    );
    // ... and says which URL failed when that fails too.
    let e = PccsClient::new(&pccs.base)
        .unwrap()
        .root_ca_crl_url(&format!("{}/missing.der", pccs.base))
        .fetch(&key)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("/missing.der") && e.contains("404"), "{e}");

    // Nobody listening.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", l.local_addr().unwrap());
    drop(l);
    let e = PccsClient::new(&dead)
        .unwrap()
        .fetch(&key)
        .await
        .unwrap_err();
    assert!(matches!(e, PccsError::Http { .. }), "{e}");

    assert!(matches!(
        PccsClient::new("pccs:8081"),
        Err(PccsError::Url { url }) if url == "pccs:8081"
    ));
    let e = PccsClient::new("https://127.0.0.1:1")
        .unwrap()
        .extra_ca_file("/nonexistent/ca.pem")
        .fetch(&key)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, PccsError::CaFile { path, .. } if path.ends_with("ca.pem")),
        "{e}"
    );
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn blocking_entry_point_works_outside_a_runtime() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let pccs = rt.block_on(start(Fault::None));
    let (quote, _) = sample();
    let key = collateral_key(&quote).unwrap();
    let c = PccsClient::new(&pccs.base)
        .unwrap()
        .collateral_blocking(&key, SAMPLE_NOW)
        .unwrap();
    assert_eq!(c.fmspc(), "00A067110000");
    drop(rt);
}

#[test]
fn header_and_crl_decoding() {
    assert_eq!(percent_decode("a%20b%0A-").as_deref(), Some("a b\n-"));
    assert_eq!(percent_decode("%2"), None);
    assert_eq!(percent_decode("%zz"), None);
    let der = vec![0x30, 0x82, 0x01, 0x02];
    assert_eq!(crl_bytes(&der), der);
    assert_eq!(crl_bytes(b"30820102"), der);
    assert_eq!(
        crl_bytes(b"-----BEGIN X509 CRL-----\nMIIBAg==\n-----END X509 CRL-----\n"),
        der
    );
}

/// Links and other users' files planted at the cache name and at the temp name the cache
/// write used to use (`<name>.tmp-<pid>`) are replaced or ignored, never written through.
#[tokio::test]
async fn cache_write_follows_no_planted_link() {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let pccs = start(Fault::None).await;
    let (quote, _) = sample();
    let key = collateral_key(&quote).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let client = PccsClient::new(&format!("{}/sgx/certification/v4/", pccs.base))
        .unwrap()
        .cache_dir(&cache);
    let path = client.cache_path(&key).unwrap();
    let outside = tempfile::tempdir().unwrap();
    let victim = |n: &str| {
        let v = outside.path().join(n);
        std::fs::write(&v, b"victim").unwrap();
        std::fs::set_permissions(&v, std::fs::Permissions::from_mode(0o600)).unwrap();
        if is_root() {
            std::os::unix::fs::chown(&v, Some(65534), Some(65534)).unwrap();
        }
        v
    };
    let (v1, v2) = (victim("v1"), victim("v2"));
    std::os::unix::fs::symlink(&v1, &path).unwrap();
    let old_tmp = path.with_extension(format!("tmp-{}", std::process::id()));
    std::os::unix::fs::symlink(&v2, &old_tmp).unwrap();

    client.collateral(&key, SAMPLE_NOW).await.unwrap();
    for v in [&v1, &v2] {
        assert_eq!(std::fs::read(v).unwrap(), b"victim", "{}", v.display());
        let m = std::fs::metadata(v).unwrap();
        assert_eq!(m.mode() & 0o777, 0o600);
        if is_root() {
            assert_eq!(m.uid(), 65534);
        }
    }
    let m = std::fs::symlink_metadata(&path).unwrap();
    assert!(m.is_file(), "the link was replaced by the cache file");
    assert!(CollateralSet::from_json(&std::fs::read(&path).unwrap()).is_ok());
    let leftovers: Vec<_> = std::fs::read_dir(&cache)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("las-tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}
