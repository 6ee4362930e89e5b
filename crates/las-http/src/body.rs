//! The request body, read by the serve loop before any route sees the request: within
//! the body cap, and within one deadline shared with the headers.
//!
//! Hyper bounds the time to read a request's headers (`header_read_timeout`), but not its
//! body: a client that sends headers with a large `Content-Length` and then one byte a
//! second, or nothing, would hold its connection and a slot of `--max-connections` for
//! ever, and a route that forgot its own deadline (the verification service's did) would
//! let a handful of such clients take every slot. So [`ReadFirst`] wraps every router
//! that [`serve_router`](crate::serve_router) serves:
//!
//! - the deadline is `header_timeout` from when the connection began to wait for this
//!   request (its accept, or the previous answer), which is also when hyper starts its
//!   header timer: headers and body share one deadline;
//! - a declared `Content-Length` over the cap is answered 413 at once, a streamed body
//!   (chunked or not) once it passes the cap;
//! - a body not complete at the deadline is answered 408 `body-timeout`;
//! - each refusal carries `Connection: close`, so the connection and its slot are freed
//!   instead of waiting for the rest of a body nobody will read;
//! - `GET` and `HEAD` carry no body in our APIs: a body they declare is not read (the
//!   route sees an empty one, and hyper closes the connection after the answer).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, Request, header};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::error::ErrorKind;
use crate::{ApiError, KindLabel, Limits};

/// What a [`FastRoute`] answers with: the request's head and its body.
pub type FastAnswer = Arc<dyn Fn(&Parts, Bytes) -> Response + Send + Sync>;

/// A route answered without the router: one method and exact path, whose answer a plain
/// function makes from the request's head and its body (already read within the limits).
/// For a server's hottest route (the daemon's `POST /v1/quote`): no routing, no
/// middleware, no extractor copies. The function does what the router's layers would
/// have done for it (its metrics). Other methods on the same path still go to the
/// router (405 and the like).
#[derive(Clone)]
pub struct FastRoute {
    /// The method.
    pub method: Method,
    /// The exact path (as the router would match it: no query, no normalisation).
    pub path: &'static str,
    /// The answer.
    pub answer: FastAnswer,
}

impl std::fmt::Debug for FastRoute {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FastRoute({} {})", self.method, self.path)
    }
}

/// The hyper service of one connection: reads each request's body within the limits,
/// then hands the request to the fast route or to the router.
#[derive(Debug, Clone)]
pub(crate) struct ReadFirst {
    router: axum::Router,
    fast: Option<FastRoute>,
    limits: Limits,
    refused: Family<KindLabel, Counter>,
    /// When the connection began to wait for its next request.
    waiting_since: Arc<Mutex<Instant>>,
}

impl ReadFirst {
    pub(crate) fn new(
        router: axum::Router,
        fast: Option<FastRoute>,
        limits: Limits,
        refused: Family<KindLabel, Counter>,
    ) -> Self {
        Self {
            router,
            fast,
            limits,
            refused,
            waiting_since: Arc::new(Mutex::new(Instant::now())),
        }
    }
}

impl hyper::service::Service<Request<Incoming>> for ReadFirst {
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn call(&self, req: Request<Incoming>) -> Self::Future {
        let since = *self.waiting_since.lock().unwrap_or_else(|p| p.into_inner());
        let deadline = since + self.limits.header_timeout;
        let this = self.clone();
        Box::pin(async move {
            let resp = match read(req, this.limits.body_limit, deadline).await {
                Ok((parts, body)) => match &this.fast {
                    Some(f) if parts.method == f.method && parts.uri.path() == f.path => {
                        (f.answer)(&parts, body)
                    }
                    _ => match this
                        .router
                        .oneshot(Request::from_parts(parts, Body::from(body)))
                        .await
                    {
                        Ok(r) => r,
                        Err(never) => match never {},
                    },
                },
                Err(e) => {
                    this.refused
                        .get_or_create(&KindLabel {
                            kind: e.kind().into(),
                        })
                        .inc();
                    refusal(e, this.limits.header_timeout)
                }
            };
            *this.waiting_since.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
            // Let the other ready connections make their answers first: answers then
            // leave in bursts, and a client waiting on many connections is woken once
            // per burst instead of once per answer (docs/performance.md, issue 27).
            tokio::task::yield_now().await;
            Ok(resp)
        })
    }
}

/// A refusal of the serve loop: the documented JSON error, and the connection closed.
fn refusal(e: ReadError, limit: std::time::Duration) -> Response {
    let mut r = match e {
        ReadError::TooLarge(n) => ApiError::body_too_large(n),
        ReadError::Late => ApiError::body_timeout(limit),
        ReadError::Broken(m) => ApiError::new(ErrorKind::BadRequest, m),
    }
    .into_response();
    r.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    r
}

/// Why a body was not read.
#[derive(Debug)]
enum ReadError {
    /// Over the cap (bytes).
    TooLarge(usize),
    /// Not complete at the deadline.
    Late,
    /// The client broke the body's framing.
    Broken(String),
}

impl ReadError {
    fn kind(&self) -> &'static str {
        match self {
            ReadError::TooLarge(_) => "body-too-large",
            ReadError::Late => "body-timeout",
            ReadError::Broken(_) => "bad-request",
        }
    }
}

/// `req`'s head and its body read in full, within `limit` bytes and by `deadline`.
async fn read(
    req: Request<Incoming>,
    limit: usize,
    deadline: Instant,
) -> Result<(Parts, Bytes), ReadError> {
    let (parts, body) = req.into_parts();
    if parts.method == Method::GET || parts.method == Method::HEAD {
        drop(body);
        return Ok((parts, Bytes::new()));
    }
    let declared = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(ReadError::TooLarge(limit));
    }
    match tokio::time::timeout_at(deadline, Limited::new(body, limit).collect()).await {
        Err(_) => Err(ReadError::Late),
        Ok(Ok(collected)) => Ok((parts, collected.to_bytes())),
        Ok(Err(e)) if e.is::<LengthLimitError>() => Err(ReadError::TooLarge(limit)),
        Ok(Err(e)) => Err(ReadError::Broken(format!(
            "cannot read the request body: {e}"
        ))),
    }
}
