//! Builds the raw shared-memory floor (`csrc/shm_floor.c`) with the system C compiler.

fn main() {
    println!("cargo:rerun-if-changed=csrc/shm_floor.c");
    cc::Build::new()
        .file("csrc/shm_floor.c")
        .opt_level(2)
        .warnings(true)
        .compile("ipc_bench_shm_floor");
}
