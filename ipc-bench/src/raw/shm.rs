//! `raw-shm`: the shared-memory floor, in C (`csrc/shm_floor.c`, built by `build.rs`
//! with the `cc` crate). Parent and child map one `memfd` and spin on atomic sequence
//! words; each message is copied into shared memory and out again, each way. Round
//! trips use one slot; streams use a ring of [`SLOTS`] slots, with the child's counter
//! telling the parent which slots are free.
//!
//! The C side does the hot loops (no runtime, no framing, no system call); this module
//! makes the `memfd`, starts the child with it as fd 3, and times the loops.

use std::ffi::c_void;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::process::Child;
use std::ptr::NonNull;
use std::time::Instant;

use anyhow::{anyhow, Context, Result};
use nix::sys::memfd::{memfd_create, MFdFlags};

use super::CHILD_IN_FD;
use crate::cli::Flavor;
use crate::roles::{child_command, Job, Role};
use crate::stats::{self, Measurement};
use crate::workload::{payload, Cell, Workload};

/// Message slots of a stream (round trips use one).
pub(crate) const SLOTS: usize = 16;
/// Tells the child the size of a slot (the cell's message size).
const SLOT_ENV: &str = "IPC_BENCH_SHM_SLOT";

extern "C" {
    fn ipc_bench_shm_len(slot: usize, slots: usize) -> usize;
    fn ipc_bench_shm_map(fd: RawFd, len: usize) -> *mut c_void;
    fn ipc_bench_shm_unmap(base: *mut c_void, len: usize);
    fn ipc_bench_shm_round_trip(
        base: *mut c_void,
        slot: usize,
        slots: usize,
        seq: u64,
        msg: *const u8,
        len: usize,
        out: *mut u8,
    );
    fn ipc_bench_shm_stream(
        base: *mut c_void,
        slot: usize,
        slots: usize,
        from: u64,
        to: u64,
        msg: *const u8,
        len: usize,
    );
    fn ipc_bench_shm_stop(base: *mut c_void);
    fn ipc_bench_shm_serve(
        base: *mut c_void,
        slot: usize,
        slots: usize,
        len: usize,
        echo: i32,
        scratch: *mut u8,
    ) -> u64;
}

/// The floor's shared mapping: `slot` bytes per message.
struct Mapping {
    base: NonNull<c_void>,
    len: usize,
    slot: usize,
}

impl Mapping {
    fn len_for(slot: usize) -> usize {
        // SAFETY: pure arithmetic in C, no pointers.
        unsafe { ipc_bench_shm_len(slot, SLOTS) }
    }

    /// Map `fd`, which holds at least `len_for(slot)` bytes.
    fn new(fd: &OwnedFd, slot: usize) -> Result<Mapping> {
        let len = Self::len_for(slot);
        // SAFETY: mmap of a file we hold, at an address the kernel picks; the C side
        // returns NULL on failure, checked below.
        let base = unsafe { ipc_bench_shm_map(fd.as_raw_fd(), len) };
        let base = NonNull::new(base).ok_or_else(|| {
            anyhow!(format!(
                "mmap of the shared-memory floor: {}",
                std::io::Error::last_os_error()
            ))
        })?;
        Ok(Mapping { base, len, slot })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, with its length; nothing uses it after.
        unsafe { ipc_bench_shm_unmap(self.base.as_ptr(), self.len) }
    }
}

/// Measure one cell of the floor.
pub(crate) fn run_cell(cell: &Cell, pin: Option<usize>) -> Result<Measurement> {
    let slot = cell.size;
    let memfd = memfd_create(c"ipc-bench-shm", MFdFlags::MFD_CLOEXEC).context("memfd_create")?;
    nix::unistd::ftruncate(&memfd, Mapping::len_for(slot) as i64).context("ftruncate")?;
    let map = Mapping::new(&memfd, slot)?;
    let job = crate::roles::job_for(cell);
    let mut cmd = child_command(
        Role::Raw(super::RawKind::Shm),
        &job,
        pin,
        Flavor::CurrentThread,
    )?;
    cmd.env(SLOT_ENV, slot.to_string());
    ipc::spawn::inherit_fds(&mut cmd, &[(&memfd, CHILD_IN_FD)]);
    let mut child = cmd.spawn().context("starting the raw-shm child")?;
    let measured = measure(&map, cell);
    // SAFETY: the mapping is live; the C side only stores a flag.
    unsafe { ipc_bench_shm_stop(map.base.as_ptr()) };
    let measured = measured?;
    finish(&mut child)?;
    Ok(measured)
}

fn measure(map: &Mapping, cell: &Cell) -> Result<Measurement> {
    let msg = payload(cell.size);
    let mut echo = vec![0u8; cell.size];
    let base = map.base.as_ptr();
    Ok(match cell.workload {
        Workload::RoundTrip { .. } => {
            let mut h = stats::histogram()?;
            for seq in 1..=cell.warmup + cell.count {
                let start = Instant::now();
                // SAFETY: `msg` and `echo` hold `cell.size` (= the slot) bytes each; the
                // mapping is live and sized for this slot; the child writes only the
                // echo slot and its counter.
                unsafe {
                    ipc_bench_shm_round_trip(
                        base,
                        map.slot,
                        SLOTS,
                        seq,
                        msg.as_ptr(),
                        msg.len(),
                        echo.as_mut_ptr(),
                    )
                };
                let took = start.elapsed();
                if echo != msg {
                    return Err(anyhow!("the raw-shm child answered with other bytes"));
                }
                if seq > cell.warmup {
                    stats::record(&mut h, took)?;
                }
            }
            Measurement::Latency(h)
        }
        // No system call per message to save: a batched stream is the same stream.
        Workload::Stream | Workload::StreamBatched => {
            let phases = cell.stream_phases();
            let mut sent = 0u64;
            let mut phase = |n: u64| {
                // SAFETY: as for round trips; the child frees slots by its counter.
                unsafe {
                    ipc_bench_shm_stream(
                        base,
                        map.slot,
                        SLOTS,
                        sent,
                        sent + n,
                        msg.as_ptr(),
                        msg.len(),
                    )
                };
                sent += n;
            };
            phase(phases[0]);
            let mut batches = Vec::new();
            for &n in &phases[1..] {
                let start = Instant::now();
                phase(n);
                batches.push(start.elapsed());
            }
            Measurement::Throughput {
                batch: phases[1],
                size: cell.size,
                batches,
            }
        }
    })
}

fn finish(child: &mut Child) -> Result<()> {
    let status = child.wait().context("waiting for the raw-shm child")?;
    if !status.success() {
        return Err(anyhow!(format!("the raw-shm child failed: {status}")));
    }
    Ok(())
}

/// The child: map the inherited `memfd` and echo or consume until the parent stops.
pub(crate) fn serve_child(job: &Job) -> Result<()> {
    let slot: usize = std::env::var(SLOT_ENV)
        .context(format!("{SLOT_ENV} is not set"))?
        .parse()
        .context(SLOT_ENV)?;
    // SAFETY: the parent placed the memfd at CHILD_IN_FD with `inherit_fds` before
    // exec; nothing else in this process uses it, and it is taken once, here.
    let memfd = unsafe { OwnedFd::from_raw_fd(CHILD_IN_FD) };
    let map = Mapping::new(&memfd, slot)?;
    let mut scratch = vec![0u8; slot];
    let echo = i32::from(matches!(job, Job::Echo));
    // SAFETY: the mapping is live and sized for `slot`; `scratch` holds `slot` bytes.
    unsafe {
        ipc_bench_shm_serve(
            map.base.as_ptr(),
            slot,
            SLOTS,
            slot,
            echo,
            scratch.as_mut_ptr(),
        )
    };
    Ok(())
}
