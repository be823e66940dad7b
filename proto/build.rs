//! Compiles `ipsr.proto` with prost, using the `protoc` binary vendored by
//! `protoc-bin-vendored` so that a fresh machine builds offline.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=ipsr.proto");
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = prost_build::Config::new();
    config.protoc_executable(protoc);
    config.bytes(["."]);
    config.compile_protos(&["ipsr.proto"], &["."])?;
    Ok(())
}
