//! EAR (draft-ietf-rats-ear) attestation results as compact JWS (JWT) signed with ES256,
//! and their verification against a JWKS.
//!
//! The JWS is assembled here rather than with `jsonwebtoken`: the whole format is
//! `b64url(header) . b64url(claims) . b64url(r ‖ s)`, the P-256 key and signature come from
//! `p256` anyway, and doing it here keeps the verifying side strict — exactly one
//! algorithm (ES256) is accepted, whatever the header says, so there is no algorithm
//! confusion (`none`, HS256 with the public key) to configure away.
//!
//! Keys are `p256` types (PEM files, JWK coordinates, verification); signing goes through
//! `ring` (`ECDSA_P256_SHA256_FIXED_SIGNING`, the same key), which takes a quarter of the
//! time of `p256`'s signer on the service's hot path (`las-bench verifier`).

use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use las_core::api::verifier::{EarStatus, Jwk, Jwks};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The EAR profile of draft-ietf-rats-ear-04 (underscore claim names): the default.
pub const EAR_PROFILE: &str = "tag:ietf.org,2026:rats/ear#04";
/// The legacy Veraison profile (dotted claim names) that Veraison's Go services and
/// Trustee read.
pub const EAR_PROFILE_VERAISON: &str = "tag:github.com,2023:veraison/ear";

/// The two forms of EAR the service can emit (`las verifier serve --ear-profile`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum EarProfile {
    /// draft-ietf-rats-ear-04: `ear_status`, `ear_trustworthiness_vector`,
    /// `ear_appraisal_policy_ids` (an array), `ear_verifier_id`.
    #[default]
    Ietf,
    /// The legacy Veraison form: `ear.status`, `ear.trustworthiness-vector`,
    /// `ear.appraisal-policy-id`, `ear.verifier-id`.
    Veraison,
}

impl EarProfile {
    /// The `eat_profile` value.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Ietf => EAR_PROFILE,
            Self::Veraison => EAR_PROFILE_VERAISON,
        }
    }
    /// The profile whose `eat_profile` is `tag`.
    pub fn from_tag(tag: &str) -> Option<Self> {
        [Self::Ietf, Self::Veraison]
            .into_iter()
            .find(|p| p.tag() == tag)
    }
    /// The claim name of an appraisal's status.
    pub fn status_claim(self) -> &'static str {
        match self {
            Self::Ietf => "ear_status",
            Self::Veraison => "ear.status",
        }
    }
    /// The claim name of an appraisal's AR4SI trustworthiness vector.
    pub fn trust_vector_claim(self) -> &'static str {
        match self {
            Self::Ietf => "ear_trustworthiness_vector",
            Self::Veraison => "ear.trustworthiness-vector",
        }
    }
    /// The claim name of the verifier identity.
    pub fn verifier_id_claim(self) -> &'static str {
        match self {
            Self::Ietf => "ear_verifier_id",
            Self::Veraison => "ear.verifier-id",
        }
    }
    /// The name on the command line (`ietf`, `veraison`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Ietf => "ietf",
            Self::Veraison => "veraison",
        }
    }
}
/// The JWS algorithm.
pub const ALG: &str = "ES256";

/// An EAR could not be verified.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EarError {
    /// Not three dot-separated parts (compact JWS).
    #[error("malformed token: not three dot-separated parts")]
    Parts,
    /// A part (`header`, `claims`, `signature`) is not base64url.
    #[error("malformed token: {part}: not base64url: {source}")]
    Base64 {
        /// Which part.
        part: &'static str,
        /// The decoder's error.
        #[source]
        source: base64::DecodeError,
    },
    /// The header or the claims are not JSON, or the claims not of the EAR claims' types.
    #[error("malformed token: {part}: {source}")]
    Json {
        /// `header` or `claims`.
        part: &'static str,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// The signature is not 64 bytes (r ‖ s).
    #[error("malformed token: signature: not 64 bytes r ‖ s")]
    SignatureLength,
    /// `exp` is missing or not a number: the token would never expire.
    #[error("malformed token: exp missing or not a number: the token would never expire")]
    NoExpiry,
    /// A claim every EAR has is missing or of the wrong type.
    #[error("malformed token: {claim} missing or not {expected}")]
    Claim {
        /// The claim (`iat`, `submods`).
        claim: &'static str,
        /// What it must be (`a number`, `an object`).
        expected: &'static str,
    },
    /// The header names another algorithm than ES256.
    #[error("the token's algorithm is {alg:?}; only ES256 is accepted")]
    Algorithm {
        /// The header's `alg`, as sent.
        alg: String,
    },
    /// The JWKS has no P-256 key (with the token's `kid`, when it names one).
    #[error(
        "JWKS: no P-256 key{}",
        .kid.as_ref().map(|k| format!(" with kid {k}")).unwrap_or_default()
    )]
    NoKey {
        /// The token's `kid`.
        kid: Option<String>,
    },
    /// A coordinate of a JWKS key is missing, not base64url, or not 32 bytes.
    #[error("JWKS: `{coordinate}` {problem}")]
    KeyCoordinate {
        /// `x` or `y`.
        coordinate: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// A JWKS key's coordinates are not a point on P-256.
    #[error("JWKS: the key is not a point on P-256")]
    KeyPoint,
    /// No key of the JWKS verifies the signature.
    #[error(
        "the signature does not verify with any key of the JWKS{}",
        .kid.as_ref().map(|k| format!(" (kid {k})")).unwrap_or_default()
    )]
    Signature {
        /// The token's `kid`.
        kid: Option<String>,
    },
    /// `eat_profile` is neither [`EAR_PROFILE`] nor [`EAR_PROFILE_VERAISON`].
    #[error("eat_profile is {profile:?}, expected {EAR_PROFILE:?} or {EAR_PROFILE_VERAISON:?}")]
    Profile {
        /// The token's `eat_profile`, as sent.
        profile: String,
    },
    /// The header lists extensions that must be understood (`crit`, as in the header);
    /// none is.
    #[error("the token's header lists critical extensions {0}; none is understood")]
    Critical(Value),
    /// `exp` has passed (beyond the skew).
    #[error("the token is not valid now: expired at {exp}, now {now}")]
    Expired {
        /// The token's `exp`.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// A submodule lacks the status claim of the token's profile (`ear_status` for
    /// `ietf`, `ear.status` for `veraison`): names of the other form are not read.
    #[error("malformed token: submod {submod:?}: no {claim} (profile {profile})")]
    NoStatus {
        /// The submodule.
        submod: String,
        /// The status claim its profile names.
        claim: &'static str,
        /// The profile (`ietf`, `veraison`).
        profile: &'static str,
    },
    /// `iat` lies in the future (beyond the skew).
    #[error("the token is not valid now: issued at {iat}, in the future (now {now})")]
    IssuedInFuture {
        /// The token's `iat`.
        iat: u64,
        /// The time of the check.
        now: u64,
    },
}

/// The claims of an EAR as the service signs them and `verify_ear` returns them. The
/// registered claims a relying party checks are typed; every other claim is kept in
/// `other` (so the claim set prints back as signed).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EarClaims {
    /// `eat_profile`.
    pub eat_profile: String,
    /// Issue time, Unix seconds.
    pub iat: u64,
    /// Expiry, Unix seconds (required).
    pub exp: u64,
    /// The nonce of the exchange (base64url, as issued).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eat_nonce: Option<String>,
    /// One appraisal per service name.
    pub submods: std::collections::BTreeMap<String, EarSubmod>,
    /// Every other claim (`ear.verifier-id`, ...).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

/// One service's appraisal in [`EarClaims::submods`], in either profile's names (read
/// and written back in the names it came with: `form`).
#[derive(Debug, Clone, PartialEq)]
pub struct EarSubmod {
    /// `ear_status` (`ear.status`).
    pub status: EarStatus,
    /// `ear_trustworthiness_vector` (`ear.trustworthiness-vector`): AR4SI tier name to
    /// value.
    pub trust_vector: std::collections::BTreeMap<String, i64>,
    /// `ear_appraisal_policy_ids` (the legacy form has one `ear.appraisal-policy-id`).
    pub policy_ids: Vec<String>,
    /// Every other claim of the submodule (`las.facts`, `las.reasons`, `las.notes`).
    pub other: serde_json::Map<String, serde_json::Value>,
    /// The names it is written in.
    pub form: EarProfile,
}

type TrustVector = std::collections::BTreeMap<String, i64>;

#[derive(serde::Serialize, serde::Deserialize)]
struct IetfSubmod {
    ear_status: EarStatus,
    #[serde(default, skip_serializing_if = "TrustVector::is_empty")]
    ear_trustworthiness_vector: TrustVector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    ear_appraisal_policy_ids: Vec<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct VeraisonSubmod {
    #[serde(rename = "ear.status")]
    status: EarStatus,
    #[serde(
        rename = "ear.trustworthiness-vector",
        default,
        skip_serializing_if = "TrustVector::is_empty"
    )]
    trust_vector: TrustVector,
    #[serde(
        rename = "ear.appraisal-policy-id",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    policy_id: Option<String>,
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl serde::Serialize for EarSubmod {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        match self.form {
            EarProfile::Ietf => IetfSubmod {
                ear_status: self.status,
                ear_trustworthiness_vector: self.trust_vector.clone(),
                ear_appraisal_policy_ids: self.policy_ids.clone(),
                other: self.other.clone(),
            }
            .serialize(ser),
            EarProfile::Veraison => {
                let mut other = self.other.clone();
                // More than one policy ID has no legacy name of its own: the rest are kept
                // under the draft's name rather than dropped.
                let policy_id = self.policy_ids.first().cloned();
                if self.policy_ids.len() > 1 {
                    other.insert(
                        "ear_appraisal_policy_ids".into(),
                        self.policy_ids.clone().into(),
                    );
                }
                VeraisonSubmod {
                    status: self.status,
                    trust_vector: self.trust_vector.clone(),
                    policy_id,
                    other,
                }
                .serialize(ser)
            }
        }
    }
}

impl<'de> serde::Deserialize<'de> for EarSubmod {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let map = serde_json::Map::<String, Value>::deserialize(de)?;
        if map.contains_key("ear_status") {
            let s: IetfSubmod =
                serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
            Ok(Self {
                status: s.ear_status,
                trust_vector: s.ear_trustworthiness_vector,
                policy_ids: s.ear_appraisal_policy_ids,
                other: s.other,
                form: EarProfile::Ietf,
            })
        } else if map.contains_key("ear.status") {
            let s: VeraisonSubmod =
                serde_json::from_value(Value::Object(map)).map_err(D::Error::custom)?;
            Ok(Self {
                status: s.status,
                trust_vector: s.trust_vector,
                policy_ids: s.policy_id.into_iter().collect(),
                other: s.other,
                form: EarProfile::Veraison,
            })
        } else {
            Err(D::Error::missing_field("ear_status"))
        }
    }
}

/// Signs EAR claim sets; knows its JWK.
#[derive(Clone)]
pub struct EarSigner {
    key: SigningKey,
    fast: Option<Arc<ring::signature::EcdsaKeyPair>>,
    kid: String,
}

impl std::fmt::Debug for EarSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EarSigner")
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

fn coords(vk: &VerifyingKey) -> (String, String) {
    let p = vk.to_encoded_point(false);
    let x = p.x().map(|x| URL_SAFE_NO_PAD.encode(x)).unwrap_or_default();
    let y = p.y().map(|y| URL_SAFE_NO_PAD.encode(y)).unwrap_or_default();
    (x, y)
}

/// RFC 7638 JWK thumbprint (SHA-256, base64url) of a P-256 public key.
pub fn thumbprint(vk: &VerifyingKey) -> String {
    let (x, y) = coords(vk);
    // Members in lexicographic order, no whitespace (RFC 7638 §3.2).
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

impl EarSigner {
    /// A signer with `key`; its `kid` is the key's RFC 7638 thumbprint.
    pub fn new(key: SigningKey) -> Self {
        let kid = thumbprint(key.verifying_key());
        let public = key.verifying_key().to_encoded_point(false);
        let mut scalar = key.to_bytes();
        let fast = ring::signature::EcdsaKeyPair::from_private_key_and_public_key(
            &ring::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            public.as_bytes(),
            &ring::rand::SystemRandom::new(),
        )
        .ok()
        .map(Arc::new);
        zeroize::Zeroize::zeroize(scalar.as_mut_slice());
        Self { key, fast, kid }
    }

    /// The key ID.
    pub fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWK.
    pub fn jwk(&self) -> Jwk {
        let (x, y) = coords(self.key.verifying_key());
        Jwk {
            kty: "EC".into(),
            crv: Some("P-256".into()),
            x: Some(x),
            y: Some(y),
            use_: Some("sig".into()),
            alg: Some(ALG.into()),
            kid: Some(self.kid.clone()),
        }
    }

    /// The JWKS document (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> Jwks {
        Jwks {
            keys: vec![self.jwk()],
        }
    }

    /// Signs `claims` as a compact JWS.
    pub fn sign(&self, claims: &Value) -> String {
        let header = json!({"alg": ALG, "typ": "JWT", "kid": self.kid});
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let fast = self.fast.as_ref().and_then(|k| {
            k.sign(&ring::rand::SystemRandom::new(), input.as_bytes())
                .ok()
        });
        let sig = match fast {
            Some(sig) => URL_SAFE_NO_PAD.encode(sig.as_ref()),
            None => {
                let sig: Signature = self.key.sign(input.as_bytes());
                URL_SAFE_NO_PAD.encode(sig.to_bytes())
            }
        };
        input.push('.');
        input.push_str(&sig);
        input
    }
}

/// Allowed clock skew when checking `iat`/`exp` (seconds).
pub const MAX_SKEW: u64 = 60;

/// Verifies an EAR `token` against the keys of `jwks` (a JWKS document) at time `now`:
/// ES256 signature (by the key whose `kid` matches, or any P-256 key when the token names
/// none), no `crit` header (this verifier understands no JWS extension, so any listed one
/// is refused as RFC 7515 §4.1.11 requires), `eat_profile` (either form, [`EarProfile`]),
/// `exp` (required: a token without it would never expire), `iat`, and a status claim of
/// that form in every submodule. Returns the claims.
pub fn verify_ear(token: &str, jwks: &Jwks, now: u64) -> Result<EarClaims, EarError> {
    let token = token.trim();
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(EarError::Parts);
    };
    let json_part = |part: &'static str, b64: &str| -> Result<Value, EarError> {
        let raw = URL_SAFE_NO_PAD
            .decode(b64)
            .map_err(|source| EarError::Base64 { part, source })?;
        serde_json::from_slice(&raw).map_err(|source| EarError::Json { part, source })
    };
    let header = json_part("header", h)?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    if alg != ALG {
        return Err(EarError::Algorithm {
            alg: alg.to_owned(),
        });
    }
    if let Some(crit) = header.get("crit") {
        return Err(EarError::Critical(crit.clone()));
    }
    let sig_bytes = URL_SAFE_NO_PAD
        .decode(s)
        .map_err(|source| EarError::Base64 {
            part: "signature",
            source,
        })?;
    let sig = Signature::from_slice(&sig_bytes).map_err(|_| EarError::SignatureLength)?;
    let kid = header.get("kid").and_then(Value::as_str);
    let mut candidates = Vec::new();
    for k in &jwks.keys {
        if k.kty != "EC" || k.crv.as_deref() != Some("P-256") {
            continue;
        }
        if let (Some(want), Some(have)) = (kid, k.kid.as_deref())
            && want != have
        {
            continue;
        }
        candidates.push(jwk_key(k)?);
    }
    if candidates.is_empty() {
        return Err(EarError::NoKey {
            kid: kid.map(str::to_owned),
        });
    }
    let signed = token
        .rsplit_once('.')
        .map(|(a, _)| a)
        .unwrap_or_default()
        .as_bytes();
    if !candidates.iter().any(|vk| vk.verify(signed, &sig).is_ok()) {
        return Err(EarError::Signature {
            kid: kid.map(str::to_owned),
        });
    }
    let claims = json_part("claims", p)?;
    let profile = claims
        .get("eat_profile")
        .and_then(Value::as_str)
        .unwrap_or("");
    let Some(form) = EarProfile::from_tag(profile) else {
        return Err(EarError::Profile {
            profile: profile.to_owned(),
        });
    };
    let exp = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(EarError::NoExpiry)?;
    if now >= exp.saturating_add(MAX_SKEW) {
        return Err(EarError::Expired { exp, now });
    }
    let iat = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(EarError::Claim {
            claim: "iat",
            expected: "a number",
        })?;
    if iat > now.saturating_add(MAX_SKEW) {
        return Err(EarError::IssuedInFuture { iat, now });
    }
    let Some(submods) = claims.get("submods").and_then(Value::as_object) else {
        return Err(EarError::Claim {
            claim: "submods",
            expected: "an object",
        });
    };
    for (name, appraisal) in submods {
        if !appraisal
            .get(form.status_claim())
            .is_some_and(Value::is_string)
        {
            return Err(EarError::NoStatus {
                submod: name.clone(),
                claim: form.status_claim(),
                profile: form.name(),
            });
        }
    }
    let claims: EarClaims = serde_json::from_value(claims).map_err(|source| EarError::Json {
        part: "claims",
        source,
    })?;
    // A submodule with both forms' status names is read in its profile's form or refused.
    if let Some((name, _)) = claims.submods.iter().find(|(_, a)| a.form != form) {
        return Err(EarError::NoStatus {
            submod: name.clone(),
            claim: form.status_claim(),
            profile: form.name(),
        });
    }
    Ok(claims)
}

fn jwk_key(k: &Jwk) -> Result<VerifyingKey, EarError> {
    let coord = |coordinate: &'static str, v: &Option<String>| -> Result<[u8; 32], EarError> {
        let bad = |problem| EarError::KeyCoordinate {
            coordinate,
            problem,
        };
        let s = v.as_deref().ok_or(bad("is missing from an EC key"))?;
        let b = URL_SAFE_NO_PAD
            .decode(s)
            .map_err(|_| bad("is not base64url"))?;
        b.try_into().map_err(|_| bad("is not 32 bytes"))
    };
    let (x, y) = (coord("x", &k.x)?, coord("y", &k.y)?);
    let point = p256::EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    VerifyingKey::from_encoded_point(&point).map_err(|_| EarError::KeyPoint)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signer() -> EarSigner {
        EarSigner::new(SigningKey::from_slice(&[5u8; 32]).unwrap())
    }

    #[test]
    fn sign_verify_and_tamper() {
        let s = signer();
        let claims = json!({"eat_profile": EAR_PROFILE, "iat": 100, "exp": 200,
            "submods": {"app": {"ear_status": "warning", "las.notes": ["n"]}}, "x": 1});
        let t = s.sign(&claims);
        let got = verify_ear(&t, &s.jwks(), 150).unwrap();
        assert_eq!(got.submods["app"].status, EarStatus::Warning);
        assert_eq!((got.iat, got.exp), (100, 200));
        assert_eq!(serde_json::to_value(&got).unwrap(), claims);
        assert!(matches!(
            verify_ear(&t, &s.jwks(), 300),
            Err(EarError::Expired { exp: 200, now: 300 })
        ));
        // One changed signature character.
        let mut bad = t.clone().into_bytes();
        let i = bad.len() - 5;
        bad[i] = if bad[i] == b'A' { b'B' } else { b'A' };
        let bad = String::from_utf8(bad).unwrap();
        assert!(matches!(
            verify_ear(&bad, &s.jwks(), 150),
            Err(EarError::Signature { kid: Some(_) })
        ));
        // Another key.
        let other = EarSigner::new(SigningKey::from_slice(&[6u8; 32]).unwrap());
        assert!(verify_ear(&t, &other.jwks(), 150).is_err());
        // alg none.
        let (_, rest) = t.split_once('.').unwrap();
        let none = format!("{}.{rest}", URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#));
        assert!(matches!(
            verify_ear(&none, &s.jwks(), 150),
            Err(EarError::Algorithm { .. })
        ));
    }

    #[test]
    fn ring_signer_is_used_and_verifies_with_p256() {
        let s = signer();
        assert!(s.fast.is_some(), "ring did not take the p256 key");
        let claims = json!({"eat_profile": EAR_PROFILE, "iat": 1, "exp": 100, "submods": {}});
        for _ in 0..20 {
            verify_ear(&s.sign(&claims), &s.jwks(), 2).unwrap();
        }
    }

    #[test]
    fn both_profiles_each_with_its_own_names() {
        let s = signer();
        for (profile, good, wrong) in [
            (EAR_PROFILE, "ear_status", "ear.status"),
            (EAR_PROFILE_VERAISON, "ear.status", "ear_status"),
        ] {
            let ok = json!({"eat_profile": profile, "iat": 1, "exp": 100,
                "submods": {"app": {good: "warning", "las.notes": ["n"]}}});
            let got = verify_ear(&s.sign(&ok), &s.jwks(), 2).unwrap();
            assert_eq!(got.submods["app"].status, EarStatus::Warning);
            // Read and printed back in the names it was signed with.
            assert_eq!(serde_json::to_value(&got).unwrap(), ok);
            // The other form's names under this profile: refused, naming the claim.
            let mixed = json!({"eat_profile": profile, "iat": 1, "exp": 100,
                "submods": {"app": {wrong: "warning"}}});
            let e = verify_ear(&s.sign(&mixed), &s.jwks(), 2).unwrap_err();
            assert!(e.to_string().contains(good), "{e}");
        }
        let other =
            json!({"eat_profile": "tag:example.com,2020:x", "iat": 1, "exp": 100, "submods": {}});
        assert!(matches!(
            verify_ear(&s.sign(&other), &s.jwks(), 2),
            Err(EarError::Profile { .. })
        ));
    }

    #[test]
    fn thumbprint_matches_rfc7638_shape() {
        let s = signer();
        assert_eq!(s.kid().len(), 43);
        assert_eq!(s.jwk().kid.as_deref(), Some(s.kid()));
    }

    /// Each refusal names the part or claim, with the decoder's error as its source.
    #[test]
    fn malformed_tokens_name_the_part_and_keep_the_cause() {
        use std::error::Error as _;
        let s = signer();
        let jwks = s.jwks();
        assert!(matches!(verify_ear("a.b", &jwks, 1), Err(EarError::Parts)));
        let e = verify_ear("!!.e30.AA", &jwks, 1).unwrap_err();
        assert!(matches!(e, EarError::Base64 { part: "header", .. }), "{e}");
        assert!(e.source().is_some_and(|c| c.is::<base64::DecodeError>()));
        let not_json = format!("{}.e30.AA", URL_SAFE_NO_PAD.encode("{"));
        let e = verify_ear(&not_json, &jwks, 1).unwrap_err();
        assert!(matches!(e, EarError::Json { part: "header", .. }), "{e}");
        assert!(e.source().is_some_and(|c| c.is::<serde_json::Error>()));
        let h = json!({"alg": ALG, "kid": "other"});
        let t = signed_with(&s, &h, &json!({}));
        let e = verify_ear(&t, &jwks, 1).unwrap_err();
        assert!(
            matches!(&e, EarError::NoKey { kid: Some(k) } if k == "other"),
            "{e}"
        );
        assert_eq!(e.to_string(), "JWKS: no P-256 key with kid other");
    }

    /// A signed token with `header` and `claims` (a forger holding the key).
    fn signed_with(s: &EarSigner, header: &Value, claims: &Value) -> String {
        let mut input = URL_SAFE_NO_PAD.encode(header.to_string());
        input.push('.');
        input.push_str(&URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig: Signature = s.key.sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    /// Issue 23: a token without `exp` never expires, and an unknown `crit` extension
    /// changes what the token means; both are refused although the signature holds.
    #[test]
    fn a_token_without_exp_or_with_crit_is_refused() {
        let s = signer();
        let h = json!({"alg": ALG, "typ": "JWT", "kid": s.kid()});
        let good = json!({"eat_profile": EAR_PROFILE, "iat": 100, "exp": 200, "submods": {}});
        verify_ear(&signed_with(&s, &h, &good), &s.jwks(), 150).unwrap();
        let no_exp = json!({"eat_profile": EAR_PROFILE, "iat": 100, "submods": {}});
        let e = verify_ear(&signed_with(&s, &h, &no_exp), &s.jwks(), 150).unwrap_err();
        assert!(
            matches!(&e, EarError::NoExpiry) && e.to_string().contains("exp missing"),
            "{e}"
        );
        let crit = json!({"alg": ALG, "kid": s.kid(), "crit": ["exp-ext"], "exp-ext": 1});
        let e = verify_ear(&signed_with(&s, &crit, &good), &s.jwks(), 150).unwrap_err();
        assert!(matches!(e, EarError::Critical(_)), "{e}");
    }
}
