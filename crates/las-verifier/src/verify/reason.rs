//! The stable reasons a quote is rejected for, and one failed check.

/// A stable reason for rejecting a quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The quote does not decode or is inconsistent.
    MalformedQuote,
    /// The quote's payload format version (`v`) is not one this verifier reads (1 and 2).
    UnsupportedQuoteFormat,
    /// The quote decodes but is not in the one encoding a LAS writes (indefinite
    /// lengths, long-form integers, keys repeated or out of order, bytes after the end).
    NonCanonicalQuote,
    /// The signature does not verify with the platform key.
    BadSignature,
    /// The LAS behind the key is not trusted (no or bad evidence, unknown measurement).
    UntrustedLas,
    /// The quote or the evidence comes from the simulated platform and the policy does not
    /// tolerate `simulation`.
    SimulationNotTolerated,
    /// The platform ID is not in the service's `platforms`.
    PlatformNotAllowed,
    /// No alternative's MRENCLAVE list contains the enclave's.
    MrenclaveMismatch,
    /// MRSIGNER or ISVPRODID differ.
    SignerMismatch,
    /// ISVSVN below `isvsvn_min`.
    IsvsvnTooLow,
    /// ISVSVN above `isvsvn_max`.
    IsvsvnTooHigh,
    /// The enclave is a debug enclave and `debug-mode` is not tolerated.
    DebugEnclave,
    /// REPORTDATA differs from the expected value.
    ReportDataMismatch,
    /// The quote's issue time is in the future.
    QuoteFromTheFuture,
    /// The quote was issued longer ago than the verifier's maximum age (`--max-age`).
    QuoteTooOld,
    /// The service has no attestation rule.
    NoAttestationPolicy,
    /// `sgx-dcap` evidence, but no collateral for the quote's platform (FMSPC) was given.
    DcapCollateralMissing,
    /// The DCAP collateral is outside its validity window at the verification time.
    DcapCollateralExpired,
    /// The LAS's DCAP quote does not verify: malformed, signature chain not to Intel's
    /// root, revoked, tampered collateral, or not an SGX enclave quote.
    DcapQuoteInvalid,
    /// The LAS's platform TCB is out of date and `outdated-tcb` is not tolerated.
    TcbOutOfDate,
    /// The platform needs a configuration change and `insecure-configuration` is not
    /// tolerated.
    TcbConfigurationNeeded,
    /// The platform needs software hardening and `software-hardening-needed` is not
    /// tolerated.
    TcbSoftwareHardeningNeeded,
    /// Intel advisories apply to the platform that `ignore_advisories` does not list
    /// (nor a tolerance covers).
    AdvisoryNotIgnored,
    /// The PCK certificate says hyper-threading is on and `hyperthreading` is not tolerated.
    HyperthreadingEnabled,
    /// The LAS enclave is a DEBUG enclave and `debug-mode` is not tolerated.
    DebugLas,
    /// The identity evidence's claims (LAS measurement, CPUSVN) differ from its DCAP quote.
    EvidenceInconsistent,
    /// The DCAP collateral's TCB evaluation data number is below the policy's
    /// `min_tcb_eval_data_number`: the platform was judged against out-of-date TCB data.
    TcbEvalDataNumberTooLow,
    /// The PCK certificate's dynamic-platform flag is set and `dynamic-platform` is not
    /// tolerated.
    DynamicPlatform,
    /// The PCK certificate's cached-keys flag is set and `cached-keys` is not tolerated.
    CachedKeys,
    /// The PCK certificate's SGX type is Scalable without memory integrity and
    /// `scalable-sgx-without-integrity` is not tolerated.
    SgxWithoutIntegrity,
}

impl Reason {
    /// The stable spelling printed by `las verify`.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::MalformedQuote => "malformed-quote",
            Reason::UnsupportedQuoteFormat => "unsupported-quote-format",
            Reason::NonCanonicalQuote => "non-canonical-quote",
            Reason::BadSignature => "bad-signature",
            Reason::UntrustedLas => "untrusted-las",
            Reason::SimulationNotTolerated => "simulation-not-tolerated",
            Reason::PlatformNotAllowed => "platform-not-allowed",
            Reason::MrenclaveMismatch => "mrenclave-mismatch",
            Reason::SignerMismatch => "signer-mismatch",
            Reason::IsvsvnTooLow => "isvsvn-too-low",
            Reason::IsvsvnTooHigh => "isvsvn-too-high",
            Reason::DebugEnclave => "debug-enclave",
            Reason::ReportDataMismatch => "report-data-mismatch",
            Reason::QuoteFromTheFuture => "quote-from-the-future",
            Reason::QuoteTooOld => "quote-too-old",
            Reason::NoAttestationPolicy => "no-attestation-policy",
            Reason::DcapCollateralMissing => "dcap-collateral-missing",
            Reason::DcapCollateralExpired => "dcap-collateral-expired",
            Reason::DcapQuoteInvalid => "dcap-quote-invalid",
            Reason::TcbOutOfDate => "tcb-out-of-date",
            Reason::TcbConfigurationNeeded => "tcb-configuration-needed",
            Reason::TcbSoftwareHardeningNeeded => "tcb-software-hardening-needed",
            Reason::AdvisoryNotIgnored => "advisory-not-ignored",
            Reason::HyperthreadingEnabled => "hyperthreading-enabled",
            Reason::DebugLas => "debug-las",
            Reason::EvidenceInconsistent => "evidence-inconsistent",
            Reason::TcbEvalDataNumberTooLow => "tcb-eval-data-number-too-low",
            Reason::DynamicPlatform => "dynamic-platform",
            Reason::CachedKeys => "cached-keys",
            Reason::SgxWithoutIntegrity => "sgx-without-integrity",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// Which check.
    pub reason: Reason,
    /// What exactly did not match.
    pub detail: String,
}
