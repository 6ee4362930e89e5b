//! `las id`.

use std::process::ExitCode;

use crate::cli::IdArgs;

pub fn run(a: IdArgs) -> anyhow::Result<ExitCode> {
    let cfg = super::platform::config(&a.platform)?;
    let p = las_platform::open(&cfg)?;
    for note in p.startup_notes() {
        tracing::warn!(target: "las", "{note}");
    }
    if a.json {
        let las = p.las_enclave();
        let j = serde_json::json!({
            "platform_id": p.platform_id().to_string(),
            "mode": p.mode().as_str(),
            "cpusvn": hex::encode(p.cpusvn()),
            "las_mrenclave": hex::encode(las.mrenclave),
            "las_mrsigner": hex::encode(las.mrsigner),
            "state_dir": cfg.state_dir,
        });
        outln!("{j}")?;
    } else {
        outln!("{}", p.platform_id())?;
    }
    Ok(ExitCode::SUCCESS)
}
