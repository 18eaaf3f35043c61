// Generates Rust for every .proto in one place, with a vendored protoc so a fresh machine needs none.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let out = std::path::PathBuf::from(std::env::var("OUT_DIR")?);
    let well_known = protoc_bin_vendored::include_path()?;
    let protos = [
        "recobro/v1/common.proto",
        "recobro/v1/events.proto",
        "recobro/v1/accounts.proto",
        "recobro/v1/scheduling.proto",
        "recobro/v1/channels.proto",
    ];
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc_bin_vendored::protoc_bin_path()?);
    tonic_prost_build::configure()
        .file_descriptor_set_path(out.join("recobro_descriptor.bin"))
        .compile_with_config(
            config,
            &protos.map(std::path::PathBuf::from),
            &[std::path::PathBuf::from("."), well_known],
        )?;
    Ok(())
}
