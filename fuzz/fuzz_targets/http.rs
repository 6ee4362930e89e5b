//! The daemon's HTTP handlers, driven in-process: `las_server::app(state)` with the fixed
//! simulated platform, one request per input through `tower::ServiceExt::oneshot` (no
//! sockets: the router, extractors, body cap, content negotiation and handlers at full
//! speed; hyper's own HTTP/1 parser is covered over real sockets by the bad-input suite).
//! Properties: never a 5xx; every error is JSON with an `error` kind; a 200 quote verifies
//! and attests exactly the REPORT sent, whose MAC checks; 200 evidence echoes the nonce.
#![no_main]

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use las_fuzz::{ACCEPTS, CONTENT_TYPES, HttpInput, METHODS, ROUTES};
use libfuzzer_sys::fuzz_target;
use tower::ServiceExt;

struct World {
    rt: tokio::runtime::Runtime,
    router: axum::Router,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let state = las_server::AppState::new(
            Box::new(las_fuzz::platform()),
            las_server::ServerConfig::default(),
        );
        let router = las_server::app(Arc::clone(&state));
        World { rt, router }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some(input) = HttpInput::parse(data) else {
        return;
    };
    let uri = match ROUTES[input.route] {
        Some(path) if input.query.is_empty() => path.to_owned(),
        Some(path) => format!("{path}?{}", String::from_utf8_lossy(input.query)),
        None => String::from_utf8_lossy(input.query).into_owned(),
    };
    let method = METHODS[input.method];
    let mut b = Request::builder().method(method).uri(&uri);
    if let Some(ct) = CONTENT_TYPES[input.content_type] {
        b = b.header(header::CONTENT_TYPE, ct);
    }
    let accept_json = ACCEPTS[input.accept] == Some("application/json");
    if let Some(a) = ACCEPTS[input.accept] {
        b = b.header(header::ACCEPT, a);
    }
    let Ok(req) = b.body(Body::from(input.body.to_vec())) else {
        return; // not a valid URI or method: hyper would refuse it before the router
    };
    let w = world();
    let (status, body) = w.rt.block_on(async {
        let resp = w.router.clone().oneshot(req).await.expect("infallible");
        let status = resp.status();
        let body = resp.into_body().collect().await.expect("body").to_bytes();
        (status, body)
    });
    assert!(!status.is_server_error(), "{status} for {method} {uri}");
    if (status.is_client_error()) && method != "HEAD" {
        let j: serde_json::Value = serde_json::from_slice(&body).expect("JSON error body");
        assert!(j["error"].is_string(), "error without a kind: {j}");
    }
    if status != StatusCode::OK || method == "HEAD" {
        return;
    }
    match ROUTES[input.route] {
        Some("/v1/quote") => {
            let json_req = CONTENT_TYPES[input.content_type]
                .is_some_and(|c| c.starts_with("application/json"));
            let token = las_fuzz::token_from_body(&body, json_req || accept_json, "quote")
                .expect("a quote in the answer");
            let q = las_core::quote::decode_and_verify_quote(&token).expect("the quote verifies");
            // The REPORT that was sent: raw, or base64 in JSON.
            let sent = if json_req {
                let j: serde_json::Value = serde_json::from_slice(input.body).expect("JSON");
                use base64::Engine;
                base64::engine::general_purpose::STANDARD
                    .decode(j["report"].as_str().expect("report").trim())
                    .expect("base64")
            } else {
                input.body.to_vec()
            };
            let r = las_core::sgx::Report::try_from_slice(&sent).expect("a REPORT was sent");
            assert!(
                las_fuzz::mac_checks(&r),
                "a quote for a REPORT whose MAC does not check"
            );
            assert_eq!(
                q.claims.report_body, r.body,
                "the quote attests another body"
            );
            assert_eq!(q.claims.mode, las_core::quote::Mode::Sim);
        }
        Some("/v1/identity") => {
            let token = las_fuzz::token_from_body(&body, accept_json, "evidence")
                .expect("evidence in the answer");
            let e = las_core::evidence::decode_and_verify_evidence(&token)
                .expect("the evidence verifies");
            assert!((16..=64).contains(&e.nonce.len()));
            let q = las_fuzz::form_decode(input.query);
            assert!(
                q.to_ascii_lowercase().contains(&hex::encode(&e.nonce)),
                "evidence for a nonce that was not asked for"
            );
        }
        _ => {}
    }
});
