//! Test binaries that re-execute themselves as child processes: the roles a child can
//! play are one enum per binary ([`child_roles!`](crate::child_roles)), named in one
//! env var ([`ROLE_VAR`]); [`child_command`] starts a child, [`role`] tells a process
//! which role it was started for.
//!
//! ```no_run
//! // tests/workers.rs
//! ipc_core::child_roles! {
//!     /// What a re-executed child of this test binary does.
//!     enum Role { Echo, Crash }
//! }
//!
//! /// The children's entry point: does nothing in the parent's test run.
//! #[test]
//! fn child() {
//!     let Some(role) = ipc_core::testkit::role::<Role>() else { return };
//!     std::process::exit(match role {
//!         Role::Echo => 0,
//!         Role::Crash => 3,
//!     });
//! }
//!
//! #[test]
//! fn a_crash_is_reported() {
//!     let status = ipc_core::testkit::child_command(Role::Crash).status().unwrap();
//!     assert_eq!(status.code(), Some(3));
//! }
//! ```

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::Command;

use super::ROLE_VAR;

/// The name of the `#[test]` function a re-executed child runs in a test binary with
/// libtest's harness (`--exact child`): it must check [`role`] first. Binaries with
/// `harness = false` check [`role`] at the top of `main` and ignore the arguments.
pub const CHILD_TEST: &str = "child";

/// The roles the re-executed children of one test binary play; declare the enum with
/// [`child_roles!`](crate::child_roles), which implements this trait.
///
/// ```
/// ipc_core::child_roles! { enum Role { Echo, Crash } }
/// use ipc_core::testkit::ChildRole;
/// assert_eq!(Role::Crash.name(), "Crash");
/// assert_eq!(Role::from_name("Echo"), Some(Role::Echo));
/// assert_eq!(Role::from_name("echo"), None);
/// ```
pub trait ChildRole: Copy + std::fmt::Debug + Sized + 'static {
    /// Every role.
    const ALL: &'static [Self];

    /// The role's name, as carried in [`ROLE_VAR`].
    fn name(self) -> &'static str;

    /// The role called `name`.
    fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|role| role.name() == name)
    }
}

/// Declare the enum of roles a test binary's re-executed children play, implementing
/// [`ChildRole`](crate::testkit::ChildRole): each variant's name is its identifier.
/// The enum derives `Debug`, `Clone`, `Copy`, `PartialEq` and `Eq`.
///
/// ```
/// ipc_core::child_roles! {
///     /// What a child does.
///     pub enum Role {
///         /// Echo every frame.
///         Echo,
///         Crash,
///     }
/// }
/// assert_eq!(<Role as ipc_core::testkit::ChildRole>::ALL, &[Role::Echo, Role::Crash]);
/// ```
#[macro_export]
macro_rules! child_roles {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $crate::testkit::ChildRole for $name {
            const ALL: &'static [Self] = &[$(Self::$variant),+];

            fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }
        }
    };
}

/// The role this process was started to play; `None` when it is not a re-executed
/// child (the variable is unset).
///
/// # Panics
///
/// When [`ROLE_VAR`] names no role of `R`: the parent and the child disagree, which is
/// a bug in the test binary.
///
/// ```
/// ipc_core::child_roles! { enum Role { Echo } }
/// if std::env::var_os(ipc_core::testkit::ROLE_VAR).is_none() {
///     assert_eq!(ipc_core::testkit::role::<Role>(), None);
/// }
/// ```
pub fn role<R: ChildRole>() -> Option<R> {
    role_from_env::<R>().map(|found| found.unwrap_or_else(|e| panic!("{e}")))
}

/// Like [`role`], with an unknown name as an error message.
pub(crate) fn role_from_env<R: ChildRole>() -> Option<Result<R, String>> {
    let name = std::env::var(ROLE_VAR).ok()?;
    Some(R::from_name(&name).ok_or_else(|| {
        let known: Vec<&str> = R::ALL.iter().map(|r| r.name()).collect();
        format!("{ROLE_VAR}={name:?} names no child role of this binary (known: {known:?})")
    }))
}

/// This test binary, as a command that starts it as a child playing `role` (with
/// [`CHILD_TEST`] selected, alone, for binaries with libtest's harness).
///
/// ```no_run
/// ipc_core::child_roles! { enum Role { Echo } }
/// let mut command = ipc_core::testkit::child_command(Role::Echo);
/// command.env("EXTRA", "1");
/// ```
pub fn child_command<R: ChildRole>(role: R) -> Command {
    command_for(this_executable(), role)
}

/// A built example of the package under test, `target/<profile>/examples/NAME`, for an
/// integration test that runs it (`cargo test` builds a package's examples next to its
/// test binaries). Panics, saying how to build it, if it is not there.
///
/// ```no_run
/// let fork_ping = ipc_core::testkit::built_example("fork_ping");
/// let out = std::process::Command::new(fork_ping).arg("--list").output().unwrap();
/// # let _ = out;
/// ```
pub fn built_example(name: &str) -> PathBuf {
    let mut dir = this_executable();
    dir.pop(); // the test binary
    if dir.ends_with("deps") {
        dir.pop();
    }
    let path = dir.join("examples").join(name);
    assert!(
        path.exists(),
        "{} not built: run the tests through `cargo test`, which builds the examples",
        path.display()
    );
    path
}

/// `program` as a command that starts it as a child playing `role`.
pub(crate) fn command_for<R: ChildRole>(program: impl AsRef<OsStr>, role: R) -> Command {
    let mut command = Command::new(program);
    command
        .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads=1"])
        .env(ROLE_VAR, role.name());
    command
}

/// The running executable.
pub(crate) fn this_executable() -> PathBuf {
    std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"))
}
