//! LAS addresses as operators write them (the `SCONE_LAS_ADDR` syntax): `host` or
//! `host:port`, IPv6 in brackets (`[::1]:18766`) or bare (`::1`); the port defaults to 18766.
//! Shared by the enclave-side client and `las platform-ids`.

use std::fmt;
use std::net::SocketAddr;

/// An address that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid LAS address `{0}`: expected host or host:port (e.g. 10.0.0.5, las:18766, [::1]:18766)"
)]
pub struct AddrError(pub String);

/// The LAS port when an address names none.
pub const DEFAULT_PORT: u16 = 18766;

/// A LAS address: a host (name or IP) and a port.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LasAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl LasAddr {
    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
    pub fn parse(s: &str) -> Result<Self, AddrError> {
        let bad = || AddrError(s.to_owned());
        let t = s.trim();
        if t.is_empty() || t.contains(char::is_whitespace) || t.contains('/') {
            return Err(bad());
        }
        if let Some(rest) = t.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(bad)?;
            host.parse::<std::net::Ipv6Addr>().map_err(|_| bad())?;
            let port = match after {
                "" => DEFAULT_PORT,
                p => parse_port(p.strip_prefix(':').ok_or_else(bad)?).ok_or_else(bad)?,
            };
            return Ok(LasAddr {
                host: host.to_owned(),
                port,
            });
        }
        if t.parse::<std::net::Ipv6Addr>().is_ok() {
            return Ok(LasAddr {
                host: t.to_owned(),
                port: DEFAULT_PORT,
            });
        }
        let (host, port) = match t.split_once(':') {
            None => (t, DEFAULT_PORT),
            Some((h, p)) => (h, parse_port(p).ok_or_else(bad)?),
        };
        if host.is_empty()
            || !host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
        {
            return Err(bad());
        }
        Ok(LasAddr {
            host: host.to_owned(),
            port,
        })
    }

    /// The address of a socket address.
    pub fn from_socket(a: SocketAddr) -> Self {
        LasAddr {
            host: a.ip().to_string(),
            port: a.port(),
        }
    }

    /// `host:port` for a URI authority (IPv6 in brackets).
    pub fn authority(&self) -> String {
        self.to_string()
    }
}

fn parse_port(p: &str) -> Option<u16> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    p.parse::<u16>().ok().filter(|&n| n != 0)
}

impl fmt::Display for LasAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn p(s: &str) -> LasAddr {
        LasAddr::parse(s).unwrap()
    }

    #[test]
    fn the_scone_las_addr_syntax() {
        assert_eq!(p("10.0.0.5").to_string(), "10.0.0.5:18766");
        assert_eq!(p("las:1234").to_string(), "las:1234");
        assert_eq!(p("las.ns.svc").port, 18766);
        assert_eq!(p("[::1]:9").to_string(), "[::1]:9");
        assert_eq!(p("[::1]").to_string(), "[::1]:18766");
        assert_eq!(p("::1").host, "::1");
        assert_eq!(p("fe80::1").to_string(), "[fe80::1]:18766");
        for bad in [
            "", "a:", ":1", "a:0", "a:99999", "a:b", "[::1", "[x]:1", "[::1]1", "a b", "http://a",
            "a:1:2x",
        ] {
            assert!(LasAddr::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
