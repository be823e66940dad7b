//! `ipsr-node`: not runnable yet; the library holds the store.

fn main() {
    eprintln!("ipsr-node: the daemon is not implemented yet (see the ipsr-node issue)");
    std::process::exit(2);
}
