//! The key tables of the session language (v0.3) as this verifier reads it: for each map
//! it evaluates, the keys it evaluates and the SCONE keys it deliberately ignores (each
//! ignored key's whole value is skipped), with the reason. docs/policy.md holds the same
//! table for users; a test checks that every key here appears there.

/// One map of the session file.
#[derive(Debug)]
pub struct Level {
    /// Where the map is, as printed in messages.
    pub path: &'static str,
    /// Keys this verifier evaluates.
    pub evaluated: &'static [&'static str],
    /// Known SCONE keys this verifier skips, with the reason.
    pub ignored: &'static [(&'static str, &'static str)],
}

const CAS_CONFIG: &str =
    "configuration CAS hands to the service after attestation; a quote says nothing about it";

/// The top level of a session file.
pub const TOP: Level = Level {
    path: "the top level",
    evaluated: &["version", "security", "services"],
    ignored: &[
        (
            "name",
            "the session's name in CAS; a verifier checks quotes, not sessions",
        ),
        (
            "predecessor",
            "CAS's update chain of a session (hash of the previous version)",
        ),
        (
            "access_policy",
            "who may read or update the session in CAS (read/update/create_sessions)",
        ),
        ("creator", "CAS bookkeeping of who created the session"),
        (
            "secrets",
            "secrets CAS provisions after attestation (kinds, import/export, x509 fields); none is needed to check a quote",
        ),
        (
            "images",
            "file-system regions, injection files and volumes of a container image; CAS configuration",
        ),
        (
            "volumes",
            "encrypted volumes CAS manages; CAS configuration",
        ),
    ],
};

/// `security`.
pub const SECURITY: Level = Level {
    path: "security",
    evaluated: &["attestation"],
    ignored: &[
        (
            "singleton_enclaves",
            "a freshness protocol between CAS and the enclave; a LAS quote carries no singleton proof, so this verifier cannot enforce it (NOT checked)",
        ),
        (
            "service_access_token",
            "a second factor the service presents to CAS; not part of a quote",
        ),
    ],
};

/// `security.attestation`.
pub const ATTESTATION: Level = Level {
    path: "security.attestation",
    evaluated: &[
        "mode",
        "tolerate",
        "ignore_advisories",
        "trusted_scone_qe_pubkeys",
        "trusted_las",
        "min_tcb_eval_data_number",
    ],
    ignored: &[
        (
            "one_time_password_shared_secret",
            "a TOTP second factor checked by CAS at start-up; not part of a quote",
        ),
        (
            "url",
            "the Microsoft Azure Attestation provider (only used with `mode: maa`, which is refused)",
        ),
        (
            "certificates",
            "CA certificates of the MAA provider (only used with `mode: maa`, which is refused)",
        ),
        (
            "min_rsa_signing_key_size",
            "MAA token key size (only used with `mode: maa`; deprecated in SCONE 5.8)",
        ),
    ],
};

/// `security.attestation.trusted_las[]` (our extension).
pub const TRUSTED_LAS: Level = Level {
    path: "security.attestation.trusted_las[]",
    evaluated: &["mrenclave", "mrsigner", "isvprodid", "isvsvn_min"],
    ignored: &[],
};

/// `services[]`.
pub const SERVICE: Level = Level {
    path: "services[]",
    evaluated: &[
        "name",
        "attestation",
        "platforms",
        "mrenclaves",
        "las_dns_names",
    ],
    ignored: &[
        ("command", CAS_CONFIG),
        ("environment", CAS_CONFIG),
        ("pwd", CAS_CONFIG),
        ("image_name", CAS_CONFIG),
        ("fspf_path", CAS_CONFIG),
        ("fspf_key", CAS_CONFIG),
        ("fspf_tag", CAS_CONFIG),
        ("fspf_update_policy", CAS_CONFIG),
        ("persistency", CAS_CONFIG),
    ],
};

/// `services[].attestation[]`.
pub const ALTERNATIVE: Level = Level {
    path: "services[].attestation",
    evaluated: &["mrenclave", "signer"],
    ignored: &[],
};

/// `services[].attestation[].signer`.
pub const SIGNER: Level = Level {
    path: "services[].attestation.signer",
    evaluated: &[
        "mrsigner",
        "isvprodid",
        "isvsvn",
        "isvsvn_min",
        "isvsvn_max",
    ],
    ignored: &[],
};

/// Every level, for documentation checks and `--explain`.
pub const ALL: [&Level; 7] = [
    &TOP,
    &SECURITY,
    &ATTESTATION,
    &TRUSTED_LAS,
    &SERVICE,
    &ALTERNATIVE,
    &SIGNER,
];

/// Keys that users put at the wrong level, and where they belong.
const MISPLACED: &[(&str, &str, &str)] = &[
    (
        "security.attestation",
        "platforms",
        "`platforms` is not a key of security.attestation: it belongs to each service (`services[].platforms`); written here it would restrict nothing",
    ),
    (
        "security.attestation",
        "mrenclave",
        "`mrenclave` belongs under `services[].attestation`, not security.attestation",
    ),
    (
        "security.attestation",
        "mrenclaves",
        "`mrenclaves` belongs under a service (`services[].mrenclaves`), not security.attestation",
    ),
    (
        "security.attestation",
        "signer",
        "`signer` belongs under `services[].attestation`, not security.attestation",
    ),
    (
        "security",
        "platforms",
        "`platforms` belongs to each service (`services[].platforms`), not to security",
    ),
    (
        "the top level",
        "platforms",
        "`platforms` at the top level restricts nothing: it belongs to each service (`services[].platforms`)",
    ),
    (
        "the top level",
        "attestation",
        "`attestation` at the top level: tolerances and trust go under `security.attestation`, measurements under `services[].attestation`",
    ),
    (
        "services[]",
        "tolerate",
        "`tolerate` belongs under security.attestation, not a service",
    ),
    (
        "services[]",
        "ignore_advisories",
        "`ignore_advisories` belongs under security.attestation, not a service",
    ),
    (
        "services[]",
        "mrenclave",
        "`mrenclave` directly under a service: write `attestation: {mrenclave: [...]}` (or the deprecated `mrenclaves: [...]`)",
    ),
    (
        "services[]",
        "signer",
        "`signer` directly under a service: write `attestation: {signer: {...}}`",
    ),
    (
        "services[].attestation",
        "platforms",
        "`platforms` belongs to the service (`services[].platforms`), beside `attestation`, not inside it",
    ),
];

/// The closest of `candidates` to `key` (case-insensitive equality, or a small edit
/// distance), if one is close enough to be a likely typo.
pub fn nearest<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let k = key.to_ascii_lowercase();
    let limit = if k.chars().count() > 8 { 3 } else { 2 };
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&k, c), *c))
        .filter(|(d, c)| *d <= limit || k.replace(['-', ' '], "_") == *c)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// The error for a key that `level` neither evaluates nor knows.
pub fn unknown_key_message(level: &Level, key: &str) -> String {
    let shown: String = key.chars().take(80).collect();
    if let Some((_, _, m)) = MISPLACED
        .iter()
        .find(|(p, k, _)| *p == level.path && *k == key)
    {
        return m.to_string();
    }
    let mut all: Vec<&str> = level.evaluated.to_vec();
    all.extend(level.ignored.iter().map(|(k, _)| *k));
    let head = format!("unknown key `{shown}` in {}", level.path);
    match nearest(key, &all) {
        Some(n) => format!("{head}; did you mean `{n}`?"),
        None => format!("{head}; known keys here: {}", all.join(", ")),
    }
}

/// The reason a key of `level` is ignored, if it is.
pub fn ignored_reason(level: &Level, key: &str) -> Option<&'static str> {
    level
        .ignored
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, r)| *r)
}
