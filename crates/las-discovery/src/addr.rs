//! Resolving LAS addresses: every address a name (a headless Service) resolves to. The
//! address syntax itself is `las_core::addr`.

use std::net::{IpAddr, SocketAddr};

pub use las_core::addr::{DEFAULT_PORT, LasAddr};

use crate::DiscoveryError;

/// Every address `name` resolves to (e.g. a headless Service: one A/AAAA record per LAS
/// pod), each with `name`'s port (default 18766). Sorted, each once.
pub async fn resolve_all(name: &str) -> Result<Vec<LasAddr>, DiscoveryError> {
    let a = LasAddr::parse(name)?;
    if let Ok(ip) = a.host.parse::<IpAddr>() {
        return Ok(vec![LasAddr::from_socket(SocketAddr::new(ip, a.port))]);
    }
    let found = tokio::net::lookup_host((a.host.as_str(), a.port))
        .await
        .map_err(|e| DiscoveryError::Dns {
            name: a.host.clone(),
            message: e.to_string(),
        })?;
    let mut out: Vec<SocketAddr> = found.collect();
    out.sort();
    out.dedup();
    if out.is_empty() {
        return Err(DiscoveryError::Dns {
            name: a.host,
            message: "no addresses".into(),
        });
    }
    Ok(out.into_iter().map(LasAddr::from_socket).collect())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> LasAddr {
        LasAddr::parse(s).unwrap()
    }

    #[tokio::test]
    async fn resolves_literals_and_localhost() {
        assert_eq!(
            resolve_all("127.0.0.1:5").await.unwrap(),
            vec![p("127.0.0.1:5")]
        );
        let l = resolve_all("localhost:7").await.unwrap();
        assert!(!l.is_empty() && l.iter().all(|a| a.port == 7), "{l:?}");
        assert!(resolve_all("no-such-host.invalid").await.is_err());
    }
}
