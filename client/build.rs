//! Generates the pulsebus and EduPulse messages and the EventBus client from the
//! repository's `proto/`, without a system `protoc` (protox parses the files).

const PROTOS: &[&str] = &[
    "../proto/pulsebus/v1/pulsebus.proto",
    "../proto/edupulse/events/v1/events.proto",
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    println!("cargo:rerun-if-changed=../proto");
    let fds = protox::compile(PROTOS, ["../proto"])?;
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(false)
        .compile_fds(fds)?;
    Ok(())
}
