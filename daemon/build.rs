// The `pm` binary is linked as a fixed-address executable (as Go links its binaries by default):
// a position-independent one makes the loader patch ~49,000 pointers in 1.4 MB of tables at every
// start, each page copied, so `pm --version` and an idle daemon paid for them. Stack, heap and
// libraries are still placed at random.
//
// The OpenRPC document of the API (`rpc.discover`) is made here, once, and embedded as text:
// made at run time, the schema code of every API type was in the binary (a quarter of a MB).
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
    let version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let document = pm_protocol::openrpc::document(&version).to_string();
    std::fs::write(out.join("openrpc.json"), document).expect("cannot write OUT_DIR/openrpc.json");
}
