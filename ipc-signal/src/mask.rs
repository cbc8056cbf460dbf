//! The two real-time signals of the data channel and the thread signal mask that keeps
//! them queued for the signalfd instead of delivered (whose default action would kill
//! the process).

use std::io;
use std::mem::MaybeUninit;

use ipc_core::{Error, Result};

/// The real-time signal carrying frames: headers and 8-byte payload chunks.
///
/// Kernel signal number 37, which is `SIGRTMIN+3` with glibc (`SIGRTMIN` = 34) and
/// `SIGRTMIN+2` with musl (`SIGRTMIN` = 35). The number is fixed, not computed from the
/// C library's `SIGRTMIN`, so peers built against different C libraries (or written in
/// other languages) agree on the wire.
///
/// ```
/// assert_eq!(ipc_signal::DATA_SIGNAL, 37);
/// assert!(ipc_signal::DATA_SIGNAL >= libc::SIGRTMIN());
/// ```
pub const DATA_SIGNAL: libc::c_int = 37;

/// The real-time signal carrying control words: hello, acknowledgements, gone.
///
/// Kernel signal number 38 (`SIGRTMIN+4` with glibc). See [`DATA_SIGNAL`].
///
/// ```
/// assert_eq!(ipc_signal::CONTROL_SIGNAL, ipc_signal::DATA_SIGNAL + 1);
/// ```
pub const CONTROL_SIGNAL: libc::c_int = 38;

/// The set {[`DATA_SIGNAL`], [`CONTROL_SIGNAL`]}.
pub(crate) fn transport_sigset() -> libc::sigset_t {
    let mut set = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: sigemptyset initialises the set; sigaddset only writes into it. Both
    // signal numbers are valid (checked against SIGRTMAX in `check_signal_range`, and
    // far below the 64 signals a sigset_t holds on Linux).
    unsafe {
        libc::sigemptyset(set.as_mut_ptr());
        libc::sigaddset(set.as_mut_ptr(), DATA_SIGNAL);
        libc::sigaddset(set.as_mut_ptr(), CONTROL_SIGNAL);
        set.assume_init()
    }
}

/// The C library must not reserve our signal numbers for itself.
pub(crate) fn check_signal_range() -> Result<()> {
    if libc::SIGRTMIN() > DATA_SIGNAL || libc::SIGRTMAX() < CONTROL_SIGNAL {
        return Err(Error::unsupported(
            "signal",
            format!(
                "a C library whose real-time signals SIGRTMIN..SIGRTMAX = {}..{} do not \
                 include the transport's signals {DATA_SIGNAL} and {CONTROL_SIGNAL}",
                libc::SIGRTMIN(),
                libc::SIGRTMAX()
            ),
        ));
    }
    Ok(())
}

/// Block both transport signals in the calling thread.
pub(crate) fn block_in_this_thread() -> Result<()> {
    check_signal_range()?;
    let set = transport_sigset();
    // SAFETY: `set` is an initialised sigset_t; a null old-set pointer is allowed.
    let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) };
    if rc != 0 {
        return Err(Error::Io(io::Error::from_raw_os_error(rc)));
    }
    Ok(())
}

/// Whether both transport signals are blocked in the calling thread.
pub(crate) fn blocked_in_this_thread() -> bool {
    let mut current = MaybeUninit::<libc::sigset_t>::uninit();
    // SAFETY: with a null new-set pointer pthread_sigmask only writes the current mask
    // into `current`; `how` is ignored.
    let rc =
        unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, std::ptr::null(), current.as_mut_ptr()) };
    if rc != 0 {
        return false;
    }
    // SAFETY: pthread_sigmask succeeded, so `current` is initialised.
    let current = unsafe { current.assume_init() };
    // SAFETY: `current` is an initialised sigset_t and the numbers are valid.
    unsafe {
        libc::sigismember(&current, DATA_SIGNAL) == 1
            && libc::sigismember(&current, CONTROL_SIGNAL) == 1
    }
}

/// Threads of this process that do not block both transport signals, as
/// `"name" (tid N)`, read from `/proc/self/task/*/status` (`SigBlk`).
pub(crate) fn unblocked_threads() -> io::Result<Vec<String>> {
    let wanted: u64 = (1 << (DATA_SIGNAL - 1)) | (1 << (CONTROL_SIGNAL - 1));
    let mut offenders = Vec::new();
    for entry in std::fs::read_dir("/proc/self/task")? {
        let entry = entry?;
        // A thread that exits between the listing and the read is not an offender.
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::trim)
                .unwrap_or("")
                .to_string()
        };
        let blocked = u64::from_str_radix(&field("SigBlk:"), 16).unwrap_or(0);
        if blocked & wanted != wanted {
            offenders.push(format!(
                "{:?} (tid {})",
                field("Name:"),
                entry.file_name().to_string_lossy()
            ));
        }
    }
    Ok(offenders)
}

/// The error for a process where the transport signals could be delivered normally
/// (and kill it) instead of queueing for the signalfd.
fn not_blocked(where_: String) -> Error {
    Error::unsupported(
        "signal",
        format!(
            "channels while real-time signals {DATA_SIGNAL} and {CONTROL_SIGNAL} are not \
             blocked in {where_}: an arriving frame would kill the process. Call \
             ipc_signal::block_transport_signals() first thing in main, before any thread \
             or tokio runtime starts (or run main's future through ipc_signal::run, or \
             ipc::run in the ipc-kit facade)"
        ),
    )
}

/// Refuse to open a channel unless the calling thread, and every other thread of the
/// process, blocks both transport signals.
pub(crate) fn ensure_blocked() -> Result<()> {
    check_signal_range()?;
    if !blocked_in_this_thread() {
        let name = std::thread::current()
            .name()
            .map_or_else(|| "an unnamed thread".to_string(), |n| format!("{n:?}"));
        return Err(not_blocked(format!("the calling thread {name}")));
    }
    let offenders = unblocked_threads()?;
    if !offenders.is_empty() {
        return Err(not_blocked(format!(
            "thread(s) {} of this process",
            offenders.join(", ")
        )));
    }
    Ok(())
}
