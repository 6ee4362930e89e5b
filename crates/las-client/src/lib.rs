//! Placeholder until the enclave-side client lands (next commit).
