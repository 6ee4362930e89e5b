//! The policy: the attestation part of the session language v0.3 (docs/policy.md).
//!
//! Every key of a session file is accounted for ([`keys`]): evaluated, a known SCONE key
//! deliberately ignored (its whole value skipped, listed in [`Policy::ignored`]), or an
//! error that names the key and its line and suggests the nearest known key. A typo can
//! therefore never widen what a policy allows. Errors name the field path and the line.
//!
//! ```text
//!  bytes ─► size, UTF-8, flow bound ─► parse (key tables, one visitor per map) ─► validate
//!                                         └─► ignored keys + their lines (for --explain)
//! ```

pub mod edit;
pub mod explain;
mod import;
pub mod keys;
mod locate;
mod parse;

use las_core::PlatformId;
use las_core::tcb::QeId;
use serde::Deserialize;
use serde::de::{self, Deserializer};

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
#[non_exhaustive]
pub enum PolicyError {
    /// YAML syntax, a wrong type or a malformed value: the parser's error, whose message
    /// names field and line (and its [`location`](serde_norway::Error::location)). The
    /// message is shown shortened to about 600 characters, since it can quote a huge
    /// value; for that reason the parser's error is kept here whole but is not returned
    /// by `source()`, where a cause-chain printer would print it unshortened.
    #[error("{}", clip_message(&.0.to_string()))]
    Yaml(serde_norway::Error),
    /// A value is well-typed but not allowed. The enum's one catch-all: what is wrong,
    /// described for the operator at the field path (the checks are ours; no source error).
    #[error("{path}: {message}")]
    Invalid {
        /// Field path, e.g. `services[0].attestation[1]`.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The file is larger than [`MAX_POLICY_SIZE`] (its size).
    #[error("policy is {0} bytes, more than the {MAX_POLICY_SIZE} allowed")]
    TooLarge(usize),
    /// The file is not UTF-8.
    #[error("policy is not UTF-8 (byte {})", .0.valid_up_to())]
    NotUtf8(#[source] std::str::Utf8Error),
    /// The file's flow collections exceed [`MAX_FLOW_WORK`]: the parser could not read it
    /// in bounded time.
    #[error(
        "policy has {openers} flow collections (`[` or `{{`) in {size} bytes: more nesting or repetition than it can be parsed with in bounded time; write large lists and maps in block style (`- item`, `key: value`)"
    )]
    FlowWork {
        /// Number of `[` and `{` in the file.
        openers: usize,
        /// The file's size in bytes.
        size: usize,
    },
    /// The policy file could not be read ([`Policy::from_file`]).
    #[error("cannot read policy {}: {source}", path.display())]
    Read {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// No service of the policy answers a request ([`Policy::service`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// No service has the name asked for.
    #[error("no service `{name}` in the policy (services: {})", .known.join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
        /// The services the policy defines.
        known: Vec<String>,
    },
    /// The policy defines no service.
    #[error("the policy defines no services")]
    NoServices,
    /// The policy defines several services and none was named.
    #[error(
        "the policy defines several services ({}): choose one with --service",
        .known.join(", ")
    )]
    Ambiguous {
        /// The services the policy defines.
        known: Vec<String>,
    },
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
    /// DCAP: the PCK certificate says the platform is dynamic (CPU packages may be added
    /// after provisioning; Platform CA certificates only).
    DynamicPlatform,
    /// DCAP: the PCK certificate says platform keys are cached (kept by the platform
    /// across reboots rather than re-derived; Platform CA certificates only).
    CachedKeys,
    /// DCAP: the PCK certificate says the SGX type is Scalable without memory integrity
    /// protection (Ice Lake SP and later without TME-MK integrity): enclave memory is
    /// encrypted but a physical attacker's modifications go undetected.
    ScalableSgxWithoutIntegrity,
}

impl Tolerance {
    /// Every tolerance with its policy spelling.
    pub const ALL: [(Tolerance, &'static str); 11] = [
        (Tolerance::DebugMode, Tolerance::DebugMode.as_str()),
        (Tolerance::OutdatedTcb, Tolerance::OutdatedTcb.as_str()),
        (
            Tolerance::SoftwareHardeningNeeded,
            Tolerance::SoftwareHardeningNeeded.as_str(),
        ),
        (
            Tolerance::Hyperthreading,
            Tolerance::Hyperthreading.as_str(),
        ),
        (Tolerance::InsecureIgpu, Tolerance::InsecureIgpu.as_str()),
        (Tolerance::AepicLeak, Tolerance::AepicLeak.as_str()),
        (
            Tolerance::InsecureConfiguration,
            Tolerance::InsecureConfiguration.as_str(),
        ),
        (Tolerance::Simulation, Tolerance::Simulation.as_str()),
        (
            Tolerance::DynamicPlatform,
            Tolerance::DynamicPlatform.as_str(),
        ),
        (Tolerance::CachedKeys, Tolerance::CachedKeys.as_str()),
        (
            Tolerance::ScalableSgxWithoutIntegrity,
            Tolerance::ScalableSgxWithoutIntegrity.as_str(),
        ),
    ];

    /// The policy spelling: an exhaustive `match`, so a new tolerance cannot lack one
    /// (a table lookup fell back to "?" before).
    pub const fn as_str(self) -> &'static str {
        match self {
            Tolerance::DebugMode => "debug-mode",
            Tolerance::OutdatedTcb => "outdated-tcb",
            Tolerance::SoftwareHardeningNeeded => "software-hardening-needed",
            Tolerance::Hyperthreading => "hyperthreading",
            Tolerance::InsecureIgpu => "insecure-igpu",
            Tolerance::AepicLeak => "aepic-leak",
            Tolerance::InsecureConfiguration => "insecure-configuration",
            Tolerance::Simulation => "simulation",
            Tolerance::DynamicPlatform => "dynamic-platform",
            Tolerance::CachedKeys => "cached-keys",
            Tolerance::ScalableSgxWithoutIntegrity => "scalable-sgx-without-integrity",
        }
    }
}

/// `security.attestation.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttestationMode {
    /// Attest (the default).
    #[default]
    Hardware,
    /// No attestation: quotes cannot be evaluated against such a policy.
    None,
}

/// 32 bytes written as 64 hex characters (either case).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
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

/// A `platforms` entry that does not parse ([`PlatformEntry::parse`]); `entry` is the
/// text given, shortened to 80 characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PlatformEntryError {
    /// A SCONE secret reference inside a longer entry.
    #[error(
        "`{entry}` is not a platform entry: a SCONE secret reference is a whole entry `$$SCONE::NAME$$` in the policy, resolved through the session's imported secret NAME (docs/policy.md)"
    )]
    SconeRef {
        /// The entry.
        entry: String,
    },
    /// `INTEL_QE_ID:` followed by something that is not 32 hex digits.
    #[error("`{entry}`: {source}")]
    QeId {
        /// The entry.
        entry: String,
        /// What is wrong with the QE ID.
        source: las_core::tcb::QeIdError,
    },
    /// A prefix other than `INTEL_QE_ID:`.
    #[error(
        "`{entry}` has the unknown prefix `{prefix}:`; a platform entry is a LAS key (64 hex characters) or `INTEL_QE_ID:` and 32 hex digits"
    )]
    UnknownPrefix {
        /// The entry.
        entry: String,
        /// The prefix before `:`.
        prefix: String,
    },
    /// Neither a LAS key nor a QE ID entry.
    #[error(
        "expected 64 hex characters (a LAS key) or `INTEL_QE_ID:` and 32 hex digits, got `{entry}`"
    )]
    NotAnEntry {
        /// The entry.
        entry: String,
    },
}

/// One `services[].platforms` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PlatformEntry {
    /// A LAS public key (64 hex): one LAS build on one platform at one CPUSVN.
    LasKey(PlatformId),
    /// `INTEL_QE_ID:<32 hex>` (SCONE 7): a machine, whatever LAS build runs on it. It
    /// matches only the QE ID of verified identity evidence of the LAS that signed the
    /// quote.
    QeId(QeId),
}

impl PlatformEntry {
    /// Parses an entry: 64 hex characters, or `INTEL_QE_ID:` and 32 hex digits (either
    /// case). The error names what is wrong (length, non-hex, unknown prefix, no value).
    pub fn parse(s: &str) -> Result<Self, PlatformEntryError> {
        let shown = || s.chars().take(80).collect::<String>();
        if s.contains(SCONE_REF) {
            return Err(PlatformEntryError::SconeRef { entry: shown() });
        }
        if let Some(rest) = s.strip_prefix(las_core::tcb::QE_ID_PREFIX) {
            return QeId::parse_hex(rest)
                .map(PlatformEntry::QeId)
                .map_err(|source| PlatformEntryError::QeId {
                    entry: shown(),
                    source,
                });
        }
        if let Some((prefix, _)) = s.split_once(':') {
            return Err(PlatformEntryError::UnknownPrefix {
                entry: shown(),
                prefix: prefix.chars().take(80).collect(),
            });
        }
        las_core::hexfmt::decode_fixed::<32>("value", s)
            .map(|b| PlatformEntry::LasKey(PlatformId(b)))
            .map_err(|_| PlatformEntryError::NotAnEntry { entry: shown() })
    }

    /// Whether this entry admits the LAS with key `las_key` whose verified identity
    /// evidence carries `qe_id` (`None`: no verified QE ID, which no QE-ID entry matches).
    pub fn matches(&self, las_key: &PlatformId, qe_id: Option<QeId>) -> bool {
        match self {
            PlatformEntry::LasKey(k) => k == las_key,
            PlatformEntry::QeId(q) => qe_id == Some(*q),
        }
    }
}

impl std::fmt::Display for PlatformEntry {
    /// As an operator writes it: a LAS key in upper-case hex, a QE ID as
    /// `INTEL_QE_ID:<lower-case hex>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlatformEntry::LasKey(k) => write!(f, "{k}"),
            PlatformEntry::QeId(q) => f.write_str(&q.entry()),
        }
    }
}

/// Marks a SCONE secret reference.
pub(crate) const SCONE_REF: &str = "$$SCONE::";

/// A trusted LAS build (`security.attestation.trusted_las`, an extension of v0.3). An
/// entry matches only when every field it gives matches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustedLas {
    /// Accepted LAS MRENCLAVE values (any one; empty = not checked).
    pub mrenclave: Vec<Hex32>,
    /// Required LAS signer (MRSIGNER).
    pub mrsigner: Option<Hex32>,
    /// Required ISVPRODID with `mrsigner`.
    pub isvprodid: Option<u16>,
    /// Minimum ISVSVN with `mrsigner`.
    pub isvsvn_min: Option<u16>,
}

/// `security.attestation`.
#[derive(Debug, Clone, Default)]
pub struct Attestation {
    /// `hardware` (default) or `none`.
    pub mode: AttestationMode,
    /// Tolerated weaknesses.
    pub tolerate: Vec<Tolerance>,
    /// Intel security advisories to ignore (DCAP evidence).
    pub ignore_advisories: Vec<String>,
    /// `ignore_advisories: "*"`: every advisory is ignored (only with `debug-mode`
    /// tolerated, as in SCONE).
    pub ignore_all_advisories: bool,
    /// Pinned LAS keys: trusted without identity evidence.
    pub trusted_scone_qe_pubkeys: Vec<PlatformId>,
    /// Trusted LAS builds, for identity evidence.
    pub trusted_las: Vec<TrustedLas>,
    /// Lowest accepted TCB evaluation data number of the DCAP collateral (the lower of TCB
    /// info's and QE identity's `tcbEvaluationDataNumber`). Raising it after an Intel TCB
    /// recovery makes platforms still judged by older collateral fail with
    /// `tcb-eval-data-number-too-low`. Absent: no minimum; `null` is an error (it would
    /// silently mean no minimum).
    pub min_tcb_eval_data_number: Option<u32>,
}

/// `services[].attestation[].signer`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// Required MRSIGNER.
    pub mrsigner: Hex32,
    /// Required ISVPRODID.
    pub isvprodid: Option<u16>,
    /// Exactly this ISVSVN (not together with the range).
    pub isvsvn: Option<u16>,
    /// Lowest accepted ISVSVN.
    pub isvsvn_min: Option<u16>,
    /// Highest accepted ISVSVN.
    pub isvsvn_max: Option<u16>,
}

/// One attestation alternative: every field given must match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alternative {
    /// Accepted MRENCLAVE values (any one; empty = not checked, then `signer` is given).
    pub mrenclave: Vec<Hex32>,
    /// Required signer.
    pub signer: Option<Signer>,
    /// Read from the deprecated service-level `mrenclaves: [...]`.
    pub legacy_mrenclaves: bool,
}

/// A service's attestation alternatives (one must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Alternatives(pub Vec<Alternative>);

/// `services[]`.
#[derive(Debug, Clone)]
pub struct Service {
    /// Service name.
    pub name: String,
    /// Attestation alternatives (one must match), from `attestation` or the deprecated
    /// `mrenclaves`.
    pub attestation: Option<Alternatives>,
    /// Allowed platforms (LAS keys and QE IDs); absent = any platform (null or empty is
    /// an error).
    pub platforms: Option<Vec<PlatformEntry>>,
    /// `las_dns_names` (our extension): the DNS names the verification service puts into
    /// the service's workload certificates (docs/workload-certificates.md); absent = none.
    /// Each is a lowercase host name (checked when the policy is read).
    pub las_dns_names: Vec<String>,
}

/// A known SCONE key that this verifier does not evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredKey {
    /// Where, e.g. `services[0].command`.
    pub path: String,
    /// Its line (1-based), found by a scan of the text in document order; `None` when the
    /// scan did not find it (e.g. an unusual flow style).
    pub line: Option<usize>,
    /// Why it is not evaluated.
    pub reason: &'static str,
}

/// A parsed, validated policy.
///
/// Only validated policies exist: one is read from YAML ([`Policy::from_yaml`],
/// [`Policy::from_file`]) or built with [`Policy::new`], and every way in runs the same
/// checks (a service named twice, an empty name, `isvsvn_min` above `isvsvn_max`, the
/// `ignore_advisories: "*"` wildcard without `debug-mode`). The fields are private, so a
/// checked policy cannot be changed afterwards; [`Policy::with_attestation`] checks the
/// changed policy again. [`Policy::default`] is the empty policy: no services, nothing
/// tolerated.
///
/// Neither a struct literal nor a change of a field compiles outside this crate:
///
/// ```compile_fail,E0451
/// let p = las_verifier::Policy {
///     attestation: Default::default(),
///     services: Vec::new(),
///     version: None,
///     ignored: Vec::new(),
/// };
/// ```
///
/// ```compile_fail,E0616
/// let mut p = las_verifier::Policy::default();
/// p.attestation.ignore_all_advisories = true; // a wildcard without debug-mode
/// ```
///
/// ```
/// use las_verifier::policy::{Attestation, Policy};
/// let wildcard = Attestation { ignore_all_advisories: true, ..Attestation::default() };
/// let err = Policy::new(wildcard, Vec::new()).unwrap_err();
/// assert!(err.to_string().contains("ignore_advisories"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Policy {
    attestation: Attestation,
    services: Vec<Service>,
    version: Option<String>,
    ignored: Vec<IgnoredKey>,
}

/// An imported session file read while loading a policy: its path and bytes.
pub type ImportedFile = (std::path::PathBuf, Vec<u8>);

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
    /// A policy from its parts, checked like one read from YAML (no `version`, no ignored
    /// keys): the error names the field path of the first check that fails.
    pub fn new(attestation: Attestation, services: Vec<Service>) -> Result<Self, PolicyError> {
        let p = Policy {
            attestation,
            services,
            version: None,
            ignored: Vec::new(),
        };
        p.validate()?;
        Ok(p)
    }

    /// This policy with `security.attestation` changed by `change` (e.g. a command-line
    /// flag that adds a tolerance or a trusted LAS), checked again.
    pub fn with_attestation(
        mut self,
        change: impl FnOnce(&mut Attestation),
    ) -> Result<Self, PolicyError> {
        change(&mut self.attestation);
        self.validate()?;
        Ok(self)
    }

    /// `security.attestation` (defaults when absent).
    pub fn attestation(&self) -> &Attestation {
        &self.attestation
    }

    /// `services`.
    pub fn services(&self) -> &[Service] {
        &self.services
    }

    /// `version`, as written (`0.3` unquoted reads as "0.3").
    pub fn version(&self) -> Option<&str> {
        self.version.as_deref()
    }

    /// Keys read but deliberately not evaluated, in document order.
    pub fn ignored(&self) -> &[IgnoredKey] {
        &self.ignored
    }

    /// Reads a policy file, resolving `$$SCONE::NAME$$` platform entries through the
    /// sessions it imports (`S.yaml` beside the file). Returns the policy and every
    /// imported session file read, with its bytes (a reload watches them too).
    pub fn from_file(path: &std::path::Path) -> Result<(Self, Vec<ImportedFile>), PolicyError> {
        let bytes = import::read_limited(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."));
        Self::from_yaml_with_imports(&bytes, dir)
    }

    /// [`Policy::from_file`] for policy bytes already read (the verification service reads
    /// its file once, with the file's identity): `$$SCONE::NAME$$` entries are resolved
    /// through the sessions in `dir`, the policy file's folder. Returns the policy and
    /// every imported session file read, with its bytes.
    pub fn from_yaml_with_imports(
        bytes: &[u8],
        dir: &std::path::Path,
    ) -> Result<(Self, Vec<ImportedFile>), PolicyError> {
        let mut files = Vec::new();
        let p = Self::parse(bytes, Some((dir, &mut files)))?;
        Ok((p, files))
    }

    /// Parses a policy from YAML bytes (JSON is YAML too). `$$SCONE::NAME$$` platform
    /// entries need the policy's folder: use [`Policy::from_file`].
    pub fn from_yaml(bytes: &[u8]) -> Result<Self, PolicyError> {
        Self::parse(bytes, None)
    }

    fn parse(
        bytes: &[u8],
        imports: Option<(&std::path::Path, &mut Vec<ImportedFile>)>,
    ) -> Result<Self, PolicyError> {
        if bytes.len() > MAX_POLICY_SIZE {
            return Err(PolicyError::TooLarge(bytes.len()));
        }
        let text = std::str::from_utf8(bytes).map_err(PolicyError::NotUtf8)?;
        if flow_work(bytes) > MAX_FLOW_WORK {
            let openers = bytes.iter().filter(|&&b| b == b'[' || b == b'{').count();
            return Err(PolicyError::FlowWork {
                openers,
                size: bytes.len(),
            });
        }
        let raw: parse::RawTop = serde_norway::from_str(text).map_err(PolicyError::Yaml)?;
        let walk = locate::key_walk(&raw);
        let lines = locate::locate(text, &walk);
        let ignored = walk
            .iter()
            .zip(lines)
            .filter_map(|((path, _, reason), line)| {
                reason.map(|reason| IgnoredKey {
                    path: path.clone(),
                    line,
                    reason,
                })
            })
            .collect();
        let attestation = match raw.security.and_then(|s| s.attestation) {
            None => Attestation::default(),
            Some(a) => Attestation {
                mode: a.mode.unwrap_or_default(),
                tolerate: a.tolerate,
                ignore_advisories: a.ignore_advisories,
                ignore_all_advisories: a.ignore_all_advisories,
                trusted_scone_qe_pubkeys: a
                    .trusted_scone_qe_pubkeys
                    .into_iter()
                    .map(|h| PlatformId(h.0))
                    .collect(),
                trusted_las: a.trusted_las,
                min_tcb_eval_data_number: a.min_tcb_eval_data_number,
            },
        };
        let mut resolver = imports.map(|(dir, files)| import::Resolver::new(dir, text, files));
        let mut services = Vec::new();
        for (i, s) in raw.services.unwrap_or_default().into_iter().enumerate() {
            let platforms = match s.platforms {
                None => None,
                Some(raw) => {
                    let mut out = Vec::with_capacity(raw.len());
                    for (j, p) in raw.into_iter().enumerate() {
                        out.push(match p {
                            parse::RawPlatform::Entry(e) => e,
                            parse::RawPlatform::Ref(name) => {
                                let path = format!("services[{i}].platforms[{j}]");
                                match resolver.as_mut() {
                                    Some(r) => r.resolve(&name).map_err(|message| {
                                        PolicyError::Invalid { path, message }
                                    })?,
                                    None => {
                                        return Err(PolicyError::Invalid {
                                            path,
                                            message: format!(
                                                "`$$SCONE::{name}$$` is resolved through the session's imports, read beside the policy file: load the policy from its file"
                                            ),
                                        });
                                    }
                                }
                            }
                        });
                    }
                    Some(out)
                }
            };
            services.push(Service {
                name: s.name,
                attestation: s.attestation.map(Alternatives),
                platforms,
                las_dns_names: s.las_dns_names.unwrap_or_default(),
            });
        }
        let p = Policy {
            attestation,
            services,
            version: raw.version,
            ignored,
        };
        p.validate()?;
        Ok(p)
    }

    fn validate(&self) -> Result<(), PolicyError> {
        let invalid = |path: String, message: &str| PolicyError::Invalid {
            path,
            message: message.to_owned(),
        };
        if self.attestation.ignore_all_advisories && !self.tolerates(Tolerance::DebugMode) {
            return Err(invalid(
                "security.attestation.ignore_advisories".into(),
                "`\"*\"` ignores every Intel advisory, also those published after the policy was written; SCONE allows the wildcard only in debug mode (with `debug-mode` tolerated) and so does this verifier: list the advisories you assessed instead, or tolerate `debug-mode` for a test setup",
            ));
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
                for (j, a) in alts.0.iter().enumerate() {
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
    pub fn service(&self, name: Option<&str>) -> Result<&Service, ServiceError> {
        match name {
            Some(n) => {
                self.services
                    .iter()
                    .find(|s| s.name == n)
                    .ok_or_else(|| ServiceError::Unknown {
                        name: n.to_owned(),
                        known: self.service_names(),
                    })
            }
            None => match self.services.as_slice() {
                [only] => Ok(only),
                [] => Err(ServiceError::NoServices),
                _ => Err(ServiceError::Ambiguous {
                    known: self.service_names(),
                }),
            },
        }
    }

    fn service_names(&self) -> Vec<String> {
        self.services.iter().map(|s| s.name.clone()).collect()
    }

    /// The pinned LAS keys.
    pub fn pinned_las_keys(&self) -> impl Iterator<Item = PlatformId> + '_ {
        self.attestation.trusted_scone_qe_pubkeys.iter().copied()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests;
