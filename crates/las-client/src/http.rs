//! The HTTP exchange under [`crate::LasClient`], also used by the verification service's
//! client (`las_verifier_service::client`): a keep-alive plain-HTTP client, and one
//! request whose answer is read whole, capped in size, within a timeout. Each caller
//! names the peer in its own error type.

use std::time::Duration;

use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper::{Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A pooled plain-HTTP client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One exchange failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// Connecting or sending failed, or no answer head came. The message is hyper's whole
    /// cause chain on one line (the OS error is the last part), so the error is kept whole
    /// here and not returned by `source()`, where a chain printer would repeat it.
    #[error("{}", error_chain(.0))]
    Request(hyper_util::client::legacy::Error),
    /// Reading the answer's body failed, or it was larger than allowed (the body
    /// reader's error, e.g. `http_body_util::LengthLimitError`; shown in the message, so
    /// not returned by `source()` either).
    #[error("{0}")]
    Body(Box<dyn std::error::Error + Send + Sync>),
    /// No complete answer within the timeout.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

/// A client whose connections time out after `connect_timeout`, with TCP_NODELAY.
pub fn client(connect_timeout: Duration) -> HttpClient {
    let mut conn = HttpConnector::new();
    conn.set_connect_timeout(Some(connect_timeout));
    conn.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(conn)
}

/// Sends `req` and reads the answer's body (at most `max_answer` bytes), all within
/// `timeout`. Any status is returned: refusals are the caller's to interpret.
pub async fn exchange(
    http: &HttpClient,
    req: Request<Full<Bytes>>,
    timeout: Duration,
    max_answer: usize,
) -> Result<(StatusCode, Bytes), ExchangeError> {
    let fut = async {
        let resp = http.request(req).await.map_err(ExchangeError::Request)?;
        let status = resp.status();
        let body = Limited::new(resp.into_body(), max_answer)
            .collect()
            .await
            .map_err(ExchangeError::Body)?
            .to_bytes();
        Ok::<_, ExchangeError>((status, body))
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ExchangeError::Timeout(timeout))?
}

/// `e: its source: its source...` on one line.
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
