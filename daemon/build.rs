// The `pm` binary is linked as a fixed-address executable (as Go links its binaries by default):
// a position-independent one makes the loader patch ~49,000 pointers in 1.4 MB of tables at every
// start, each page copied, so `pm --version` and an idle daemon paid for them. Stack, heap and
// libraries are still placed at random.
fn main() {
    println!("cargo:rustc-link-arg-bins=-no-pie");
}
