//! Compiles the etcd v3 wire protocol and kvorum's internal messages with protox (pure Rust,
//! so building needs no protoc), plus protojson serde impls for etcd's JSON gateway (pbjson,
//! proto field names as etcd's gateway emits them).

use prost::Message as _;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let files = [
        "proto/etcd/kv.proto",
        "proto/etcd/rpc.proto",
        "proto/etcd/v3election.proto",
        "proto/etcd/v3lock.proto",
        "proto/kvorum/internal.proto",
    ];
    for f in &files {
        println!("cargo:rerun-if-changed={f}");
    }
    let fds = protox::compile(files, ["proto"])?;
    let descriptors = fds.encode_to_vec();
    tonic_prost_build::configure()
        .bytes(".")
        .build_client(true)
        .build_server(true)
        .compile_fds(fds)?;
    pbjson_build::Builder::new()
        .register_descriptors(&descriptors)?
        .preserve_proto_field_names()
        .build(&[".mvccpb", ".etcdserverpb", ".v3electionpb", ".v3lockpb"])?;
    Ok(())
}
