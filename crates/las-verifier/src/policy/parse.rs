//! Reading a session file key by key: every key is evaluated, known and deliberately
//! ignored (a whole subtree at a time), or an error that names it and suggests the
//! nearest known key. serde's derive would either refuse every SCONE key we do not
//! evaluate (`deny_unknown_fields`) or silently drop typos (the default); neither fails
//! closed, so each map this verifier evaluates has its own visitor below, driven by the
//! key tables in [`super::keys`].

use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::keys::{self, Level};
use super::{Alternative, AttestationMode, Hex32, PlatformEntry, Signer, Tolerance, TrustedLas};

fn custom<E: de::Error>(m: impl fmt::Display) -> E {
    E::custom(m)
}

/// Keys of one map in document order (duplicates are refused).
#[derive(Debug, Default, Clone)]
pub(super) struct Order(pub Vec<String>);

/// Reads the next key of a map of `level`: refused (with the key's line, since the error
/// is raised while the key itself is deserialized) when it is a merge key, a repeated key,
/// or a key the level neither evaluates nor ignores.
fn next_key<'de, A: MapAccess<'de>>(
    m: &mut A,
    level: &'static Level,
    order: &mut Order,
) -> Result<Option<String>, A::Error> {
    struct Seed<'o> {
        level: &'static Level,
        order: &'o Order,
    }
    impl<'de> de::DeserializeSeed<'de> for Seed<'_> {
        type Value = String;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
            // The check runs inside the key's own deserialization, so the YAML reader
            // attaches the key's line to the error.
            d.deserialize_str(self)
        }
    }
    impl<'de> Visitor<'de> for Seed<'_> {
        type Value = String;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a key of {}", self.level.path)
        }
        fn visit_str<E: de::Error>(self, key: &str) -> Result<String, E> {
            let level = self.level;
            if key == "<<" {
                return Err(custom(format!(
                    "a YAML merge key (`<<: *anchor`) in {}: this verifier does not apply merge keys (its YAML reader keeps `<<` as a plain key, so the merged keys would be lost), so it refuses them; write the keys out (aliases of whole values, `key: *anchor`, work)",
                    level.path
                )));
            }
            if self.order.0.iter().any(|k| k == key) {
                return Err(custom(format!(
                    "`{key}` appears twice in {}: YAML readers disagree on which one counts, so a policy may not repeat a key",
                    level.path
                )));
            }
            let known =
                level.evaluated.contains(&key) || level.ignored.iter().any(|(k, _)| *k == key);
            if !known {
                return Err(custom(keys::unknown_key_message(level, key)));
            }
            Ok(key.to_owned())
        }
    }
    let k = m.next_key_seed(Seed {
        level,
        order: &*order,
    })?;
    if let Some(k) = &k {
        order.0.push(k.clone());
    }
    Ok(k)
}

/// Skips the value of a key the level ignores (the key was checked by [`next_key`]).
fn other<'de, A: MapAccess<'de>>(m: &mut A) -> Result<(), A::Error> {
    m.next_value::<IgnoredAny>().map(|_| ())
}

/// A value that must not be null (`key:` with nothing, `~`, `null`); the error is raised
/// while the value is deserialized, so it carries the value's path and line.
struct NonNull<T>(&'static str, std::marker::PhantomData<T>);

impl<'de, T: Deserialize<'de>> de::DeserializeSeed<'de> for NonNull<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: Deserialize<'de>> Visitor<'de> for NonNull<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a value for `{}`", self.0)
    }
    fn visit_none<E: de::Error>(self) -> Result<T, E> {
        Err(custom(format!(
            "`{}` has no value (null): give a value or delete the key",
            self.0
        )))
    }
    fn visit_unit<E: de::Error>(self) -> Result<T, E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        T::deserialize(d)
    }
}

fn required<'de, T: Deserialize<'de>, A: MapAccess<'de>>(
    m: &mut A,
    _level: &Level,
    key: &str,
) -> Result<T, A::Error> {
    let name: &'static str = keys::ALL
        .iter()
        .flat_map(|l| l.evaluated.iter())
        .find(|k| **k == key)
        .copied()
        .unwrap_or("value");
    m.next_value_seed(NonNull(name, std::marker::PhantomData))
}

use super::SCONE_REF;

fn hex32<E: de::Error>(what: &str, s: &str) -> Result<Hex32, E> {
    if s.contains(SCONE_REF) {
        return Err(custom(format!(
            "{what} is a SCONE secret reference (`{}`): this verifier has no CAS and no secrets to resolve it with; write the 64 hex characters themselves",
            s.chars().take(80).collect::<String>()
        )));
    }
    las_core::hexfmt::decode_fixed::<32>("value", s)
        .map(Hex32)
        .map_err(|_| {
            custom(format!(
                "{what}: expected 64 hex characters, got `{}`",
                s.chars().take(80).collect::<String>()
            ))
        })
}

/// What a list entry parses into: a hex value, or a platform entry (LAS key or QE ID).
trait ListItem: Sized {
    /// Parses one entry; `what` names it (`` `platforms[2]` ``).
    fn parse<E: de::Error>(what: &str, s: &str) -> Result<Self, E>;
}

impl ListItem for Hex32 {
    fn parse<E: de::Error>(what: &str, s: &str) -> Result<Self, E> {
        hex32(what, s)
    }
}

/// A `platforms` entry as written: an entry, or a whole-value SCONE secret reference
/// `$$SCONE::NAME$$`, resolved after parsing through the session's imports
/// ([`super::import`]).
#[derive(Debug, Clone)]
pub(super) enum RawPlatform {
    /// A LAS key or a QE ID.
    Entry(PlatformEntry),
    /// `$$SCONE::NAME$$`: the secret NAME.
    Ref(String),
}

impl ListItem for RawPlatform {
    fn parse<E: de::Error>(what: &str, s: &str) -> Result<Self, E> {
        if let Some(name) = super::import::reference(s) {
            return Ok(RawPlatform::Ref(name.to_owned()));
        }
        PlatformEntry::parse(s)
            .map(RawPlatform::Entry)
            .map_err(|m| custom(format!("{what}: {m}")))
    }
}

/// One list entry, checked inside its own deserialization (so errors carry its line).
struct HexStr<T> {
    key: &'static str,
    index: Option<usize>,
    item: PhantomData<T>,
}

impl<T> HexStr<T> {
    fn new(key: &'static str, index: Option<usize>) -> Self {
        Self {
            key,
            index,
            item: PhantomData,
        }
    }
}

impl<'de, T: ListItem> de::DeserializeSeed<'de> for HexStr<T> {
    type Value = T;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<T, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de, T: ListItem> Visitor<'de> for HexStr<T> {
    type Value = T;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.key == "platforms" {
            write!(
                f,
                "a platform entry (64 hex characters, or INTEL_QE_ID: and 32 hex digits)"
            )
        } else {
            write!(f, "64 hex characters for `{}`", self.key)
        }
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<T, E> {
        let what = match self.index {
            Some(i) => format!("`{}[{i}]`", self.key),
            None => format!("`{}`", self.key),
        };
        T::parse(&what, s)
    }
}

/// The non-null value of a hex list: one string (where allowed) or a sequence.
struct HexItems<T>(HexList<T>);

impl<'de, T: ListItem> Visitor<'de> for HexItems<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of 64-hex-character values for `{}`", self.0.key)
    }
    fn visit_str<E: de::Error>(self, s: &str) -> Result<Vec<T>, E> {
        if !self.0.allow_one {
            return Err(custom(format!(
                "`{}` must be a list (`[ID, ...]` or `- ID` lines), not one string",
                self.0.key
            )));
        }
        HexStr::<T>::new(self.0.key, None)
            .visit_str(s)
            .map(|h| vec![h])
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut s: A) -> Result<Vec<T>, A::Error> {
        let key = self.0.key;
        let mut out = Vec::new();
        while let Some(h) = s.next_element_seed(HexStr::<T>::new(key, Some(out.len())))? {
            out.push(h);
        }
        if out.is_empty() && !self.0.allow_empty {
            return Err(custom(if key == "platforms" {
                "`platforms` is an empty list, which allows no platform (every quote would be rejected): list the allowed platform IDs (`las platform-ids` prints them); only if any platform may run this service, delete the `platforms` key".to_owned()
            } else {
                format!(
                    "`{key}` is an empty list: it would match nothing and is almost always a list not filled in yet; give at least one value, or delete the key"
                )
            }));
        }
        Ok(out)
    }
}

/// A list of hex values (`mrenclave`, `mrenclaves`, `trusted_scone_qe_pubkeys`) or of
/// platform entries (`platforms`): null and (unless allowed) empty are refused, each entry
/// must parse. The checks run while the value is deserialized, so errors carry its path
/// and line.
struct HexList<T> {
    key: &'static str,
    allow_empty: bool,
    allow_one: bool,
    item: PhantomData<T>,
}

impl<T> HexList<T> {
    fn null_message(&self) -> String {
        if self.key == "platforms" {
            "`platforms` has no value (null; a comment under the key is not a value). A missing list would allow every platform, so this is refused rather than guessed: list the allowed platform IDs (`las platform-ids` prints them); only if any platform may run this service, delete the `platforms` key".to_owned()
        } else {
            format!(
                "`{}` has no value (null): give a value or delete the key",
                self.key
            )
        }
    }
}

impl<'de, T: ListItem> de::DeserializeSeed<'de> for HexList<T> {
    type Value = Vec<T>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_option(self)
    }
}

impl<'de, T: ListItem> Visitor<'de> for HexList<T> {
    type Value = Vec<T>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of 64-hex-character values for `{}`", self.key)
    }
    fn visit_none<E: de::Error>(self) -> Result<Vec<T>, E> {
        Err(custom(self.null_message()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Vec<T>, E> {
        self.visit_none()
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Vec<T>, D::Error> {
        d.deserialize_any(HexItems(self))
    }
}

fn hex_list<'de, T: ListItem, A: MapAccess<'de>>(
    m: &mut A,
    key: &'static str,
) -> Result<Vec<T>, A::Error> {
    m.next_value_seed(HexList {
        key,
        allow_empty: key == "trusted_scone_qe_pubkeys",
        allow_one: key != "platforms",
        item: PhantomData,
    })
}

/// One hex value (`mrsigner`), checked while deserialized.
struct HexOne(&'static str);

impl<'de> de::DeserializeSeed<'de> for HexOne {
    type Value = Hex32;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Hex32, D::Error> {
        de::DeserializeSeed::deserialize(NonNull::<HexValue>(self.0, std::marker::PhantomData), d)
            .map(|h| h.0)
    }
}

struct HexValue(Hex32);

impl<'de> Deserialize<'de> for HexValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de::DeserializeSeed::deserialize(HexStr::<Hex32>::new("mrsigner", None), d).map(HexValue)
    }
}

// ---------------------------------------------------------------- services[].attestation

impl<'de> Deserialize<'de> for Signer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Signer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a signer: {mrsigner, isvprodid, isvsvn | isvsvn_min/isvsvn_max}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Signer, A::Error> {
                let l = &keys::SIGNER;
                let mut order = Order::default();
                let mut mrsigner = None;
                let mut s = Signer {
                    mrsigner: Hex32([0; 32]),
                    isvprodid: None,
                    isvsvn: None,
                    isvsvn_min: None,
                    isvsvn_max: None,
                };
                while let Some(k) = next_key(&mut m, l, &mut order)? {
                    match k.as_str() {
                        "mrsigner" => {
                            mrsigner = Some(m.next_value_seed(HexOne("mrsigner"))?);
                        }
                        "isvprodid" => s.isvprodid = Some(required(&mut m, l, &k)?),
                        "isvsvn" => s.isvsvn = Some(required(&mut m, l, &k)?),
                        "isvsvn_min" => s.isvsvn_min = Some(required(&mut m, l, &k)?),
                        "isvsvn_max" => s.isvsvn_max = Some(required(&mut m, l, &k)?),
                        _ => other(&mut m)?,
                    }
                }
                s.mrsigner = mrsigner.ok_or_else(|| custom("a signer needs `mrsigner`"))?;
                if s.isvsvn.is_some() && (s.isvsvn_min.is_some() || s.isvsvn_max.is_some()) {
                    return Err(custom(
                        "a signer gives `isvsvn` (one exact version) together with `isvsvn_min`/`isvsvn_max` (a range); SCONE refuses this combination, and so does this verifier: keep one",
                    ));
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

impl<'de> Deserialize<'de> for Alternative {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Alternative;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attestation alternative: {mrenclave, signer}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Alternative, A::Error> {
                let l = &keys::ALTERNATIVE;
                let mut order = Order::default();
                let mut a = Alternative {
                    mrenclave: Vec::new(),
                    signer: None,
                    legacy_mrenclaves: false,
                };
                while let Some(k) = next_key(&mut m, l, &mut order)? {
                    match k.as_str() {
                        "mrenclave" => a.mrenclave = hex_list(&mut m, "mrenclave")?,
                        "signer" => a.signer = Some(required(&mut m, l, &k)?),
                        _ => other(&mut m)?,
                    }
                }
                if a.mrenclave.is_empty() && a.signer.is_none() {
                    return Err(custom(
                        "an attestation alternative needs `mrenclave` or `signer`; an empty one would match every enclave",
                    ));
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

/// `attestation:` as one alternative or a list of them.
struct AltList(Vec<Alternative>);

impl<'de> Deserialize<'de> for AltList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = AltList;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an attestation object or a list of them")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                Alternative::deserialize(de::value::MapAccessDeserializer::new(m))
                    .map(|a| AltList(vec![a]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                let v = Vec::<Alternative>::deserialize(de::value::SeqAccessDeserializer::new(s))?;
                if v.is_empty() {
                    return Err(custom(
                        "`attestation` is an empty list, which accepts nothing; give at least one alternative",
                    ));
                }
                Ok(AltList(v))
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------- services[]

/// One service as read, with its keys in order.
#[derive(Debug)]
pub(super) struct RawService {
    pub name: String,
    pub attestation: Option<Vec<Alternative>>,
    pub platforms: Option<Vec<RawPlatform>>,
    pub las_dns_names: Option<Vec<String>>,
    pub order: Order,
}

impl<'de> Deserialize<'de> for RawService {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawService;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a service: {name, attestation, platforms, ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawService, A::Error> {
                let l = &keys::SERVICE;
                let mut order = Order::default();
                let mut name = None;
                let mut attestation = None;
                let mut legacy = None;
                let mut plat = None;
                let mut dns = None;
                while let Some(k) = next_key(&mut m, l, &mut order)? {
                    match k.as_str() {
                        "name" => name = Some(required::<String, _>(&mut m, l, &k)?),
                        "attestation" => {
                            attestation = Some(required::<AltList, _>(&mut m, l, &k)?.0)
                        }
                        "mrenclaves" => legacy = Some(hex_list(&mut m, "mrenclaves")?),
                        "platforms" => plat = Some(hex_list(&mut m, "platforms")?),
                        "las_dns_names" => {
                            let names = required::<Vec<String>, _>(&mut m, l, &k)?;
                            dns = Some(dns_names(names).map_err(custom)?);
                        }
                        _ => other(&mut m)?,
                    }
                }
                let name = name.ok_or_else(|| custom("a service needs a `name`"))?;
                let attestation = match (attestation, legacy) {
                    (Some(_), Some(_)) => {
                        return Err(custom(format!(
                            "service `{name}` has both `attestation` and the deprecated `mrenclaves`. SCONE documents `mrenclaves: [...]` as equivalent to `attestation: {{mrenclave: [...]}}` and not how the two combine, so this verifier refuses to guess: move the MRENCLAVEs into `attestation` (as one more alternative, `- mrenclave: [...]`, if either may match)"
                        )));
                    }
                    (Some(a), None) => Some(a),
                    (None, Some(mrenclave)) => Some(vec![Alternative {
                        mrenclave,
                        signer: None,
                        legacy_mrenclaves: true,
                    }]),
                    (None, None) => None,
                };
                Ok(RawService {
                    name,
                    attestation,
                    platforms: plat,
                    las_dns_names: dns,
                    order,
                })
            }
        }
        d.deserialize_map(V)
    }
}

/// Checks `las_dns_names`: a non-empty list of host names (RFC 1123 labels of letters,
/// digits and hyphens, at most 63 characters each, 253 in all, no wildcard), lowercased.
/// They become DNS SANs of workload certificates, so anything else is refused here.
fn dns_names(names: Vec<String>) -> Result<Vec<String>, String> {
    if names.is_empty() {
        return Err(
            "`las_dns_names` is an empty list: give at least one DNS name, or delete the key"
                .into(),
        );
    }
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, n) in names.into_iter().enumerate() {
        let n = n.to_ascii_lowercase();
        let label_ok = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        };
        if n.len() > 253 || !n.split('.').all(label_ok) {
            return Err(format!(
                "`las_dns_names[{i}]` {n:?} is not a DNS host name (letters, digits, hyphens and dots; no wildcard, no trailing dot)"
            ));
        }
        if !out.contains(&n) {
            out.push(n);
        }
    }
    Ok(out)
}

// ------------------------------------------------------------------ security.attestation

impl<'de> Deserialize<'de> for TrustedLas {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TrustedLas;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a trusted LAS build: {mrenclave, mrsigner, isvprodid, isvsvn_min}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<TrustedLas, A::Error> {
                let l = &keys::TRUSTED_LAS;
                let mut order = Order::default();
                let mut t = TrustedLas {
                    mrenclave: Vec::new(),
                    mrsigner: None,
                    isvprodid: None,
                    isvsvn_min: None,
                };
                while let Some(k) = next_key(&mut m, l, &mut order)? {
                    match k.as_str() {
                        "mrenclave" => t.mrenclave = hex_list(&mut m, "mrenclave")?,
                        "mrsigner" => {
                            t.mrsigner = Some(m.next_value_seed(HexOne("mrsigner"))?);
                        }
                        "isvprodid" => t.isvprodid = Some(required(&mut m, l, &k)?),
                        "isvsvn_min" => t.isvsvn_min = Some(required(&mut m, l, &k)?),
                        _ => other(&mut m)?,
                    }
                }
                if t.mrenclave.is_empty() && t.mrsigner.is_none() {
                    return Err(custom(
                        "a trusted_las entry needs `mrenclave` or `mrsigner`",
                    ));
                }
                if t.mrsigner.is_none() && (t.isvprodid.is_some() || t.isvsvn_min.is_some()) {
                    return Err(custom(
                        "in a trusted_las entry, `isvprodid` and `isvsvn_min` need `mrsigner`",
                    ));
                }
                Ok(t)
            }
        }
        d.deserialize_map(V)
    }
}

/// `ignore_advisories`: a list of IDs, or `"*"`.
pub(super) enum Advisories {
    List(Vec<String>),
    All,
}

impl<'de> Deserialize<'de> for Advisories {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Advisories;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of Intel advisory IDs, or \"*\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Advisories, E> {
                if s == "*" {
                    Ok(Advisories::All)
                } else {
                    Err(custom(format!(
                        "`ignore_advisories: {s}`: expected a list of advisory IDs (`[INTEL-SA-00289]`) or \"*\""
                    )))
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Advisories, A::Error> {
                let v = Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(s))?;
                if v.iter().any(|a| a.contains('*')) {
                    return Err(custom(
                        "`*` inside the `ignore_advisories` list: to ignore every advisory write `ignore_advisories: \"*\"` (not a list), which SCONE allows only with `debug-mode` tolerated",
                    ));
                }
                Ok(Advisories::List(v))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for AttestationMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        match s.as_str() {
            "hardware" => Ok(AttestationMode::Hardware),
            "none" => Ok(AttestationMode::None),
            "maa" => Err(custom(
                "`mode: maa` asks for Microsoft Azure Attestation, which this verifier does not do: it verifies LAS quotes itself, and the LAS's own DCAP quote against Intel's collateral. Use `mode: hardware` (the default) with `trusted_las` or `trusted_scone_qe_pubkeys`, and `platforms`",
            )),
            _ => Err(custom(format!(
                "unknown `mode: {s}`; expected `hardware` (the default) or `none`"
            ))),
        }
    }
}

/// `security.attestation` as read.
#[derive(Debug, Default)]
pub(super) struct RawAttestation {
    pub mode: Option<AttestationMode>,
    pub tolerate: Vec<Tolerance>,
    pub ignore_advisories: Vec<String>,
    pub ignore_all_advisories: bool,
    pub trusted_scone_qe_pubkeys: Vec<Hex32>,
    pub trusted_las: Vec<TrustedLas>,
    pub min_tcb_eval_data_number: Option<u32>,
    pub order: Order,
}

impl<'de> Deserialize<'de> for RawAttestation {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawAttestation;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("security.attestation: {mode, tolerate, ignore_advisories, ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawAttestation, A::Error> {
                let l = &keys::ATTESTATION;
                let mut a = RawAttestation::default();
                while let Some(k) = next_key(&mut m, l, &mut a.order)? {
                    match k.as_str() {
                        "mode" => a.mode = Some(required(&mut m, l, &k)?),
                        "tolerate" => a.tolerate = required(&mut m, l, &k)?,
                        "ignore_advisories" => match required(&mut m, l, &k)? {
                            Advisories::All => a.ignore_all_advisories = true,
                            Advisories::List(v) => a.ignore_advisories = v,
                        },
                        "trusted_scone_qe_pubkeys" => {
                            a.trusted_scone_qe_pubkeys =
                                hex_list(&mut m, "trusted_scone_qe_pubkeys")?
                        }
                        "trusted_las" => a.trusted_las = required(&mut m, l, &k)?,
                        "min_tcb_eval_data_number" => {
                            a.min_tcb_eval_data_number = Some(required(&mut m, l, &k)?)
                        }
                        _ => other(&mut m)?,
                    }
                }
                Ok(a)
            }
        }
        d.deserialize_map(V)
    }
}

/// `security` as read.
#[derive(Debug, Default)]
pub(super) struct RawSecurity {
    pub attestation: Option<RawAttestation>,
    pub order: Order,
}

impl<'de> Deserialize<'de> for RawSecurity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawSecurity;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("security: {attestation, ...}")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawSecurity, A::Error> {
                let l = &keys::SECURITY;
                let mut s = RawSecurity::default();
                while let Some(k) = next_key(&mut m, l, &mut s.order)? {
                    match k.as_str() {
                        "attestation" => s.attestation = Some(required(&mut m, l, &k)?),
                        _ => other(&mut m)?,
                    }
                }
                Ok(s)
            }
        }
        d.deserialize_map(V)
    }
}

// ---------------------------------------------------------------------------- top level

/// `version`: `"0.3"`, `0.3` (a YAML float) or `"0.3.N"`.
struct Version(String);

impl<'de> Deserialize<'de> for Version {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn check<E: de::Error>(s: String) -> Result<Version, E> {
            let ok = s == "0.3"
                || s.strip_prefix("0.3.")
                    .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
            if ok {
                Ok(Version(s))
            } else {
                Err(custom(format!(
                    "`version: {s}`: this verifier reads session language 0.3 (`\"0.3\"` to `\"0.3.N\"`); earlier versions mean other things"
                )))
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = Version;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session language version such as \"0.3\" or \"0.3.10\"")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Version, E> {
                check(s.to_owned())
            }
            fn visit_f64<E: de::Error>(self, f: f64) -> Result<Version, E> {
                // `version: 0.3` unquoted is a YAML float.
                if f == 0.3 {
                    Ok(Version("0.3".into()))
                } else {
                    check(f.to_string())
                }
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Version, E> {
                check(n.to_string())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Version, E> {
                check(n.to_string())
            }
        }
        d.deserialize_any(V)
    }
}

/// The whole file as read.
#[derive(Debug, Default)]
pub(super) struct RawTop {
    pub version: Option<String>,
    pub security: Option<RawSecurity>,
    pub services: Option<Vec<RawService>>,
    pub order: Order,
}

impl<'de> Deserialize<'de> for RawTop {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawTop;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a session file: a map with `services`, `security`, ...")
            }
            fn visit_unit<E: de::Error>(self) -> Result<RawTop, E> {
                Ok(RawTop::default())
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<RawTop, A::Error> {
                let l = &keys::TOP;
                let mut t = RawTop::default();
                while let Some(k) = next_key(&mut m, l, &mut t.order)? {
                    match k.as_str() {
                        "version" => t.version = Some(required::<Version, _>(&mut m, l, &k)?.0),
                        "security" => t.security = Some(required(&mut m, l, &k)?),
                        "services" => t.services = Some(required(&mut m, l, &k)?),
                        _ => other(&mut m)?,
                    }
                }
                Ok(t)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Tolerance {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if let Some(t) = Tolerance::ALL
            .iter()
            .find(|(_, n)| *n == s)
            .map(|(t, _)| *t)
        {
            return Ok(t);
        }
        if s == "maa-managed-tcb" {
            return Err(custom(
                "`maa-managed-tcb` belongs to `mode: maa` (Microsoft Azure Attestation), which this verifier does not do",
            ));
        }
        let names: Vec<&str> = Tolerance::ALL.iter().map(|(_, n)| *n).collect();
        let hint = keys::nearest(&s, &names)
            .map(|n| format!("did you mean `{n}`? "))
            .unwrap_or_default();
        Err(custom(format!(
            "unknown tolerance `{s}`; {hint}expected one of: {}",
            names.join(", ")
        )))
    }
}
