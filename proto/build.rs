//! Compiles `psonet.v1` with protox (no system `protoc`) and tonic-prost-build, and writes the
//! descriptor set that the servers expose through gRPC reflection.

use prost::Message;
use std::path::PathBuf;

const FILES: &[&str] = &[
    "psonet/v1/common.proto",
    "psonet/v1/modules.proto",
    "psonet/v1/event.proto",
    "psonet/v1/reporting.proto",
    "psonet/v1/aggregate.proto",
    "psonet/v1/benchmark.proto",
    "psonet/v1/secure_aggregation.proto",
    "psonet/v1/links.proto",
    "psonet/v1/learning.proto",
    "psonet/v1/guidance.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let files: Vec<PathBuf> = FILES.iter().map(|f| root.join(f)).collect();
    for f in &files {
        println!("cargo:rerun-if-changed={}", f.display());
    }
    let fds = protox::compile(&files, [&root])?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(out.join("psonet_descriptor.bin"), fds.encode_to_vec())?;
    tonic_prost_build::configure().compile_fds(fds)?;
    Ok(())
}
