//! The policy: the attestation part of the session language v0.3 (docs/policy.md).
//!
//! Only this subset is read; any other field of a real session file (secrets, images,
//! volumes, command, …) is accepted and ignored. Inside the subset every field is checked
//! strictly, and an error names the field path and, for syntax and type errors, the line.

use std::fmt;

use las_core::PlatformId;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

/// Largest policy file read (bytes).
pub const MAX_POLICY_SIZE: usize = 4 * 1024 * 1024;

/// Bound on [`flow_work`] of a policy: what the YAML parser may spend on flow collections.
///
/// The YAML parser (libyaml's scanner) takes time that grows faster than quadratically
/// with the nesting depth of flow collections (`[...]`, `{...}`): 320 KB of `[` took
/// about 4 minutes in a release build, a 4 MiB file would take days. The bound keeps the
/// worst case near two seconds (release build) while real policies stay well below it (a
/// 1000-service policy with three flow collections per service is at 0.37 of it).
pub const MAX_FLOW_WORK: u64 = 1_000_000_000;

/// A sound upper bound on the parser's flow-collection work: the sum, over every byte,
/// of the number of `[` and `{` before it (the flow depth at a byte is at most that).
/// It counts brackets inside quotes and comments too: whatever tells those apart is
/// itself a YAML parser, and one that disagrees with libyaml could be fooled.
pub fn flow_work(text: &[u8]) -> u64 {
    let mut openers: u64 = 0;
    let mut work: u64 = 0;
    for &b in text {
        if b == b'[' || b == b'{' {
            openers += 1;
        }
        work = work.saturating_add(openers);
    }
    work
}

/// A policy could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// YAML syntax, a wrong type or a malformed value; the message names field and line.
    #[error("{0}")]
    Yaml(String),
    /// A value is well-typed but not allowed.
    #[error("{path}: {message}")]
    Invalid {
        /// Field path, e.g. `services[0].attestation[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file is too large or not UTF-8.
    #[error("{0}")]
    Input(String),
}

/// Weaknesses a policy may tolerate (`security.attestation.tolerate`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Tolerance {
    /// Debug enclaves (their memory is readable by the host).
    DebugMode,
    /// A platform whose TCB is out of date.
    OutdatedTcb,
    /// TCB up to date but software mitigations needed.
    SoftwareHardeningNeeded,
    /// Hyper-threading enabled.
    Hyperthreading,
    /// Integrated GPU enabled.
    InsecureIgpu,
    /// ÆPIC Leak not mitigated.
    AepicLeak,
    /// Platform configuration needs changes.
    InsecureConfiguration,
    /// The simulated platform: no hardware protection at all.
    Simulation,
}

impl Tolerance {
    /// Every tolerance with its policy spelling.
    pub const ALL: [(Tolerance, &'static str); 8] = [
        (Tolerance::DebugMode, "debug-mode"),
        (Tolerance::OutdatedTcb, "outdated-tcb"),
        (
            Tolerance::SoftwareHardeningNeeded,
            "software-hardening-needed",
        ),
        (Tolerance::Hyperthreading, "hyperthreading"),
        (Tolerance::InsecureIgpu, "insecure-igpu"),
        (Tolerance::AepicLeak, "aepic-leak"),
        (Tolerance::InsecureConfiguration, "insecure-configuration"),
        (Tolerance::Simulation, "simulation"),
    ];

    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, s)| *s)
            .unwrap_or("?")
    }
}

impl<'de> Deserialize<'de> for Tolerance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(t, _)| *t)
            .ok_or_else(|| {
                let names: Vec<&str> = Self::ALL.iter().map(|(_, n)| *n).collect();
                de::Error::custom(format!(
                    "unknown tolerance `{s}`, expected one of: {}",
                    names.join(", ")
                ))
            })
    }
}

/// `security.attestation.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttestationMode {
    /// Attest (the default).
    #[default]
    Hardware,
    /// No attestation: quotes cannot be evaluated against such a policy.
    None,
}

/// 32 bytes written as 64 hex characters (either case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Hex32(pub [u8; 32]);

impl<'de> Deserialize<'de> for Hex32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        las_core::hexfmt::decode_fixed::<32>("value", &s)
            .map(Hex32)
            .map_err(|_| {
                de::Error::custom(format!(
                    "expected 64 hex characters, got `{}`",
                    s.chars().take(80).collect::<String>()
                ))
            })
    }
}

/// A trusted LAS build (`security.attestation.trusted_las`, an extension of v0.3).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrustedLas {
    /// Accepted LAS MRENCLAVE values.
    #[serde(default)]
    pub mrenclave: Vec<Hex32>,
    /// Accepted LAS signer (MRSIGNER), with optional product and minimum SVN.
    #[serde(default)]
    pub mrsigner: Option<Hex32>,
    /// Required ISVPRODID with `mrsigner`.
    #[serde(default)]
    pub isvprodid: Option<u16>,
    /// Minimum ISVSVN with `mrsigner`.
    #[serde(default)]
    pub isvsvn_min: Option<u16>,
}

/// `security.attestation`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Attestation {
    /// `hardware` (default) or `none`.
    #[serde(default)]
    pub mode: AttestationMode,
    /// Tolerated weaknesses.
    #[serde(default)]
    pub tolerate: Vec<Tolerance>,
    /// Intel security advisories to ignore (DCAP evidence).
    #[serde(default)]
    pub ignore_advisories: Vec<String>,
    /// Pinned LAS keys: trusted without identity evidence.
    #[serde(default)]
    pub trusted_scone_qe_pubkeys: Vec<Hex32>,
    /// Trusted LAS builds, for identity evidence.
    #[serde(default)]
    pub trusted_las: Vec<TrustedLas>,
}

/// `services[].attestation[].signer`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signer {
    /// Required MRSIGNER.
    pub mrsigner: Hex32,
    /// Required ISVPRODID.
    #[serde(default)]
    pub isvprodid: Option<u16>,
    /// Lowest accepted ISVSVN.
    #[serde(default)]
    pub isvsvn_min: Option<u16>,
    /// Highest accepted ISVSVN.
    #[serde(default)]
    pub isvsvn_max: Option<u16>,
}

/// One attestation alternative: every field given must match.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Alternative {
    /// Accepted MRENCLAVE values (any one).
    #[serde(default)]
    pub mrenclave: Vec<Hex32>,
    /// Required signer.
    #[serde(default)]
    pub signer: Option<Signer>,
}

/// A list of alternatives written as one object or a list of objects.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alternatives(pub Vec<Alternative>);

impl<'de> Deserialize<'de> for Alternatives {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Alternatives;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attestation object or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                Alternative::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(|a| Alternatives(vec![a]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                Vec::<Alternative>::deserialize(de::value::SeqAccessDeserializer::new(s))
                    .map(Alternatives)
            }
        }
        d.deserialize_any(V)
    }
}

/// `services[]`.
#[derive(Debug, Clone, Deserialize)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Attestation alternatives (one must match).
    #[serde(default)]
    pub attestation: Option<Alternatives>,
    /// Allowed platform IDs; absent = any platform.
    #[serde(default)]
    pub platforms: Option<Vec<Hex32>>,
}

#[derive(Debug, Default, Deserialize)]
struct Security {
    #[serde(default)]
    attestation: Option<Attestation>,
}

#[derive(Debug, Deserialize)]
struct Raw {
    #[serde(default)]
    security: Option<Security>,
    #[serde(default)]
    services: Option<Vec<Service>>,
}

/// A parsed, validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// `security.attestation` (defaults when absent).
    pub attestation: Attestation,
    /// `services`.
    pub services: Vec<Service>,
}

/// Longest parser message passed on (characters).
const MAX_MESSAGE: usize = 600;

/// Shortens a parser message that quotes a huge value (a million-digit number gave a
/// 1 MB error): keeps its start (the field and what is wrong) and its end (the line and
/// column).
fn clip_message(m: &str) -> String {
    let n = m.chars().count();
    if n <= MAX_MESSAGE {
        return m.to_owned();
    }
    let head: String = m.chars().take(MAX_MESSAGE / 2).collect();
    let tail: String = m.chars().skip(n - MAX_MESSAGE / 4).collect();
    format!(
        "{head} … ({} characters left out) … {tail}",
        n - MAX_MESSAGE / 2 - MAX_MESSAGE / 4
    )
}

impl Policy {
    /// Parses a policy from YAML bytes (JSON is YAML too).
    pub fn from_yaml(bytes: &[u8]) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::Input(format!(
                "policy is {} bytes, more than the {MAX_POLICY_SIZE} allowed",
                bytes.len()
            )));
        }
        let text = std::str::from_utf8(bytes).map_err(|e| {
            PolicyError::Input(format!("policy is not UTF-8 (byte {})", e.valid_up_to()))
        })?;
        if flow_work(bytes) > MAX_FLOW_WORK {
            let openers = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
            return Err(PolicyError::Input(format!(
                "policy has {openers} flow collections (`[` or `{{`) in {} bytes: more nesting or repetition than it can be parsed with in bounded time; write large lists and maps in block style (`- item`, `key: value`)",
                bytes.len()
            )));
        }
        let raw: Raw = serde_norway::from_str(text)
            .map_err(|e| PolicyError::Yaml(clip_message(&e.to_string())))?;
        let p = Policy {
            attestation: raw.security.and_then(|s| s.attestation).unwrap_or_default(),
            services: raw.services.unwrap_or_default(),
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |path: String, message: &str| PolicyError::Invalid {
            path,
            message: message.to_owned(),
        };
        for (i, t) in self.attestation.trusted_las.iter().enumerate() {
            if t.mrenclave.is_empty() && t.mrsigner.is_none() {
                return Err(invalid(
                    format!("security.attestation.trusted_las[{i}]"),
                    "needs `mrenclave` or `mrsigner`",
                ));
            }
            if t.mrsigner.is_none() && (t.isvprodid.is_some() || t.isvsvn_min.is_some()) {
                return Err(invalid(
                    format!("security.attestation.trusted_las[{i}]"),
                    "`isvprodid` and `isvsvn_min` need `mrsigner`",
                ));
            }
        }
        for (i, s) in self.services.iter().enumerate() {
            if s.name.trim().is_empty() {
                return Err(invalid(format!("services[{i}].name"), "must not be empty"));
            }
            if self.services.iter().take(i).any(|o| o.name == s.name) {
                return Err(invalid(
                    format!("services[{i}].name"),
                    &format!("service `{}` is defined twice", s.name),
                ));
            }
            if let Some(alts) = &s.attestation {
                if alts.0.is_empty() {
                    return Err(invalid(
                        format!("services[{i}].attestation"),
                        "an empty list accepts nothing; give at least one alternative",
                    ));
                }
                for (j, a) in alts.0.iter().enumerate() {
                    if a.mrenclave.is_empty() && a.signer.is_none() {
                        return Err(invalid(
                            format!("services[{i}].attestation[{j}]"),
                            "an alternative needs `mrenclave` or `signer`",
                        ));
                    }
                    if let Some(sg) = &a.signer
                        && let (Some(lo), Some(hi)) = (sg.isvsvn_min, sg.isvsvn_max)
                        && lo > hi
                    {
                        return Err(invalid(
                            format!("services[{i}].attestation[{j}].signer"),
                            "isvsvn_min is above isvsvn_max: nothing can match",
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether the policy tolerates `t`.
    pub fn tolerates(&self, t: Tolerance) -> bool {
        self.attestation.tolerate.contains(&t)
    }

    /// The service named `name`, or the only service when `name` is `None`.
    pub fn service(&self, name: Option<&str>) -> Result<&Service, String> {
        match name {
            Some(n) => self.services.iter().find(|s| s.name == n).ok_or_else(|| {
                format!(
                    "no service `{n}` in the policy (services: {})",
                    self.service_names()
                )
            }),
            None => match self.services.as_slice() {
                [only] => Ok(only),
                [] => Err("the policy defines no services".to_owned()),
                _ => Err(format!(
                    "the policy defines several services ({}): choose one with --service",
                    self.service_names()
                )),
            },
        }
    }

    fn service_names(&self) -> String {
        self.services
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The pinned LAS keys.
    pub fn pinned_las_keys(&self) -> impl Iterator<Item = PlatformId> + '_ {
        self.attestation
            .trusted_scone_qe_pubkeys
            .iter()
            .map(|h| PlatformId(h.0))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    const A: &str = "2C45C8294D491808AA9B2A6BCA01B8E185FFC69266C833546E5DCA1C676A6151";

    #[test]
    fn reads_the_subset_of_a_real_session_file() {
        let y = format!(
            r#"
name: my-session
version: "0.3"
security:
  attestation:
    mode: hardware
    tolerate: [debug-mode, outdated-tcb, simulation]
    ignore_advisories: [INTEL-SA-00289]
    trusted_scone_qe_pubkeys: ["{A}"]
services:
  - name: app
    image_name: registry/app
    command: python3 app.py
    environment: {{ A: "1" }}
    attestation:
      mrenclave: ["{a}"]
      signer: {{mrsigner: "{A}", isvprodid: 1, isvsvn_min: 2}}
    platforms: ["{a}", "{A}"]
  - name: other
    attestation:
      - mrenclave: ["{A}"]
      - signer: {{mrsigner: "{A}"}}
secrets:
  - name: s
    kind: ascii
volumes:
  - name: v
"#,
            a = A.to_lowercase()
        );
        let p = Policy::from_yaml(y.as_bytes()).unwrap();
        assert!(p.tolerates(Tolerance::DebugMode) && p.tolerates(Tolerance::Simulation));
        assert!(!p.tolerates(Tolerance::Hyperthreading));
        assert_eq!(p.services.len(), 2);
        let app = p.service(Some("app")).unwrap();
        assert_eq!(app.attestation.as_ref().unwrap().0.len(), 1);
        assert_eq!(
            app.platforms.as_ref().unwrap()[0],
            app.platforms.as_ref().unwrap()[1]
        );
        let other = p.service(Some("other")).unwrap();
        assert_eq!(other.attestation.as_ref().unwrap().0.len(), 2);
        assert!(p.service(None).is_err());
        assert_eq!(p.pinned_las_keys().count(), 1);
    }

    fn err(y: &str) -> String {
        let e = Policy::from_yaml(y.as_bytes()).unwrap_err().to_string();
        eprintln!("{e}");
        e
    }

    #[test]
    fn errors_name_the_field_and_line() {
        let e = err("services:\n  - name: app\n    platforms: [\"abc\"]\n");
        assert!(
            e.contains("services[0].platforms") && e.contains("line 3"),
            "{e}"
        );
        let e = err("services:\n  - name: app\n    attestation:\n      signer: {mrsigner: x}\n");
        assert!(
            e.contains("services[0].attestation") && e.contains("line 4"),
            "{e}"
        );
        let e = err("security:\n  attestation:\n    tolerate: [everything]\n");
        assert!(
            e.contains("unknown tolerance `everything`") && e.contains("line 3"),
            "{e}"
        );
        let e = err(
            "services:\n  - name: app\n    attestation:\n      signer: {mrsigner: \"00000000000000000000000000000000000000000000000000000000000000AA\", isvprodid: abc}\n",
        );
        assert!(e.contains("isvprodid") && e.contains("line 4"), "{e}");
        let e = err("services:\n  - name: app\n    attestation: {}\n");
        assert!(e.contains("services[0].attestation[0]"), "{e}");
        let e = err("services:\n  - name: a\n  - name: a\n");
        assert!(e.contains("defined twice"), "{e}");
        assert!(
            err("services: [").contains("line"),
            "syntax errors carry a line"
        );
        assert!(
            Policy::from_yaml(b"\xff\xfe")
                .unwrap_err()
                .to_string()
                .contains("UTF-8")
        );
    }

    #[test]
    fn hostile_inputs_are_errors_not_panics() {
        let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(Policy::from_yaml(deep.as_bytes()).is_err());
        let laughs = "a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\ng: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g,*g]\n";
        // Top-level keys other than the policy's are ignored (SCONE session files carry
        // more), so the aliases are never expanded: an empty policy, at once.
        let t = std::time::Instant::now();
        let p = Policy::from_yaml(laughs.as_bytes()).unwrap();
        assert!(p.services.is_empty(), "{p:?}");
        assert!(t.elapsed() < std::time::Duration::from_secs(10));
        // Aimed at a field the policy reads: refused.
        let aimed = format!("{laughs}services: *g\n");
        assert!(Policy::from_yaml(aimed.as_bytes()).is_err());
        assert!(Policy::from_yaml(b"services: 12").is_err());
        assert!(Policy::from_yaml(b"- 1\n- 2").is_err());
        let big = vec![b' '; MAX_POLICY_SIZE + 1];
        assert!(Policy::from_yaml(&big).is_err());
    }
}
