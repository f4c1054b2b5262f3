//! Compiles our `.proto` files with protox (pure Rust, no system `protoc`) and generates
//! prost messages and the tonic service. The descriptor set is also written to `OUT_DIR` so
//! the crate can validate messages and speak the protobuf JSON mapping by reflection.

use std::{env, error::Error, fs, path::PathBuf};

use protox::prost::Message as _;

const PROTOS: &[&str] = &[
    "mesos/v1/mesos.proto",
    "mesos/v1/scheduler/scheduler.proto",
    "mesos/v1/executor/executor.proto",
    "fastdata/control/v1/control.proto",
];

fn main() -> Result<(), Box<dyn Error>> {
    for proto in PROTOS {
        println!("cargo:rerun-if-changed={proto}");
    }
    let descriptors = protox::compile(PROTOS, ["."])?;
    let out_dir = PathBuf::from(env::var("OUT_DIR")?);
    fs::write(out_dir.join("descriptors.bin"), descriptors.encode_to_vec())?;
    // Type names give every message its full protobuf name (`prost::Name`), which the
    // reflection-based validation and JSON code look up in the descriptor set.
    let mut config = prost_build::Config::new();
    config.enable_type_names();
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .compile_fds_with_config(descriptors, config)?;
    Ok(())
}
