//! Per-instance log files (pm2's names): each line instance `I` of app `NAME` writes
//! to stdout or stderr is stored with a timestamp in `logs/NAME-out-I.log` /
//! `logs/NAME-error-I.log`, each file rotated by size on its own (`NAME-out-I.log.1`
//! is the newest rotated file), and passed on to `logs --follow`.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::io::AsyncBufReadExt;
use tokio::sync::broadcast;

use crate::proto::LogLine;

/// How a log file rotates.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Rotation {
    /// Rotate once the live file is larger (bytes).
    pub(crate) max_size: u64,
    /// Rotated files kept besides the live one.
    pub(crate) files: usize,
}

/// A log file that rotates itself.
#[derive(Debug)]
pub(crate) struct LogFile {
    path: PathBuf,
    file: std::fs::File,
    size: u64,
    rotation: Rotation,
}

impl LogFile {
    /// Open (append) `path`.
    pub(crate) fn open(path: PathBuf, rotation: Rotation) -> io::Result<LogFile> {
        let file = open_append(&path)?;
        let size = file.metadata()?.len();
        Ok(LogFile {
            path,
            file,
            size,
            rotation,
        })
    }

    /// Append one line (a newline is added), rotating first when the file is full.
    pub(crate) fn write_line(&mut self, line: &str) -> io::Result<()> {
        if self.size > 0 && self.size + line.len() as u64 + 1 > self.rotation.max_size {
            self.rotate()?;
        }
        self.file.write_all(line.as_bytes())?;
        self.file.write_all(b"\n")?;
        self.size += line.len() as u64 + 1;
        Ok(())
    }

    fn rotate(&mut self) -> io::Result<()> {
        let keep = self.rotation.files;
        let _ = std::fs::remove_file(rotated(&self.path, keep));
        for n in (1..keep).rev() {
            let from = rotated(&self.path, n);
            if from.exists() {
                std::fs::rename(&from, rotated(&self.path, n + 1))?;
            }
        }
        if keep == 0 {
            std::fs::remove_file(&self.path)?;
        } else {
            std::fs::rename(&self.path, rotated(&self.path, 1))?;
        }
        self.file = open_append(&self.path)?;
        self.size = 0;
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("could not open log {}: {e}", path.display()),
            )
        })
}

/// `path.N`.
pub(crate) fn rotated(path: &Path, n: usize) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// `2026-01-02T03:04:05.678Z line`.
pub(crate) fn stamp(line: &str) -> String {
    format!(
        "{} {line}",
        humantime::format_rfc3339_millis(SystemTime::now())
    )
}

/// The log files of one instance, and the pipes its processes write to.
#[derive(Debug)]
pub(crate) struct InstanceLogs {
    /// The write end its stdout gets.
    pub(crate) out: Arc<OwnedFd>,
    /// The write end its stderr gets.
    pub(crate) err: Arc<OwnedFd>,
    pub(crate) out_log: PathBuf,
    pub(crate) err_log: PathBuf,
    pumps: [tokio::task::JoinHandle<()>; 2],
}

impl Drop for InstanceLogs {
    fn drop(&mut self) {
        for pump in &self.pumps {
            pump.abort();
        }
    }
}

/// An app's logs: a pair of files per instance index, made when the index first
/// starts, and the lines to follow.
#[derive(Debug)]
pub(crate) struct AppLogs {
    dir: PathBuf,
    app: String,
    instances: Mutex<Vec<Arc<InstanceLogs>>>,
    follow: broadcast::Sender<LogLine>,
}

impl AppLogs {
    /// The logs of `app` under `dir` (no file opened yet).
    pub(crate) fn new(dir: &Path, app: &str) -> AppLogs {
        AppLogs {
            dir: dir.to_path_buf(),
            app: app.to_string(),
            instances: Mutex::new(Vec::new()),
            follow: broadcast::channel(1024).0,
        }
    }

    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<InstanceLogs>>> {
        self.instances.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The logs of instances `0..count` (opening the missing ones, rotated with
    /// `rotation`), and of any other index opened before.
    pub(crate) fn open(
        &self,
        count: usize,
        rotation: Rotation,
    ) -> Result<Vec<Arc<InstanceLogs>>, String> {
        let mut list = self.list();
        while list.len() < count {
            let index = list.len();
            list.push(Arc::new(self.open_instance(index, rotation)?));
        }
        Ok(list.clone())
    }

    fn open_instance(&self, index: usize, rotation: Rotation) -> Result<InstanceLogs, String> {
        let app = &self.app;
        let out_log = self.dir.join(format!("{app}-out-{index}.log"));
        let err_log = self.dir.join(format!("{app}-error-{index}.log"));
        let pipe = |path: &PathBuf, stream: &'static str| {
            let (read, write) = nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
                .map_err(|e| format!("{app}: could not make a pipe for its output: {e}"))?;
            let file = LogFile::open(path.clone(), rotation).map_err(|e| format!("{app}: {e}"))?;
            let pump = spawn_pump(read, file, app.clone(), index, stream, self.follow.clone())
                .map_err(|e| format!("{app}: log pipe: {e}"))?;
            Ok::<_, String>((Arc::new(write), pump))
        };
        let (out, out_pump) = pipe(&out_log, "out")?;
        let (err, err_pump) = pipe(&err_log, "err")?;
        Ok(InstanceLogs {
            out,
            err,
            out_log,
            err_log,
            pumps: [out_pump, err_pump],
        })
    }

    /// The log files of every instance that has some, by index.
    pub(crate) fn files(&self) -> Vec<(PathBuf, PathBuf)> {
        self.list()
            .iter()
            .map(|i| (i.out_log.clone(), i.err_log.clone()))
            .collect()
    }

    /// The last `n` lines of each of its files, merged in time order.
    pub(crate) fn tail(&self, n: usize) -> Vec<LogLine> {
        let mut lines = Vec::new();
        for (instance, (out, err)) in self.files().into_iter().enumerate() {
            for (stream, path) in [("out", out), ("err", err)] {
                lines.extend(tail(&path, n).into_iter().map(|line| LogLine {
                    app: self.app.clone(),
                    instance,
                    stream: stream.to_string(),
                    line,
                }));
            }
        }
        merge_by_time(&mut lines);
        lines
    }

    /// The lines written from now on.
    pub(crate) fn subscribe(&self) -> broadcast::Receiver<LogLine> {
        self.follow.subscribe()
    }
}

/// Order lines by their timestamps (stable: lines of one file keep their order).
pub(crate) fn merge_by_time(lines: &mut [LogLine]) {
    lines.sort_by(|a, b| stamp_of(&a.line).cmp(stamp_of(&b.line)));
}

/// The timestamp a stored line starts with (RFC 3339, UTC: sorts as text).
fn stamp_of(line: &str) -> &str {
    line.split(' ').next().unwrap_or("")
}

/// Copy what arrives on the pipe `read` into `file`, line by line with a timestamp,
/// and pass each line to `follow`. Ends when every writer closed the pipe.
pub(crate) fn spawn_pump(
    read: OwnedFd,
    mut file: LogFile,
    app: String,
    instance: usize,
    stream: &'static str,
    follow: broadcast::Sender<LogLine>,
) -> io::Result<tokio::task::JoinHandle<()>> {
    let pipe = tokio::net::unix::pipe::Receiver::from_owned_fd(read)?;
    Ok(tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(pipe).lines();
        loop {
            match lines.next_line().await {
                Ok(Some(line)) => {
                    let line = stamp(&line);
                    if let Err(e) = file.write_line(&line) {
                        tracing::warn!("{app}: could not write its {stream} log: {e}");
                    }
                    let _ = follow.send(LogLine {
                        app: app.clone(),
                        instance,
                        stream: stream.to_string(),
                        line,
                    });
                }
                Ok(None) => return,
                Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                    tracing::debug!("{app}: {stream} is not UTF-8 text: {e}");
                }
                Err(e) => {
                    tracing::warn!("{app}: reading its {stream}: {e}");
                    return;
                }
            }
        }
    }))
}

/// The last `n` lines of the log at `path` (its newest rotated file too when the live
/// one has fewer).
pub(crate) fn tail(path: &Path, n: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for file in [rotated(path, 1), path.to_path_buf()] {
        if let Ok(text) = std::fs::read_to_string(&file) {
            lines.extend(text.lines().map(str::to_string));
        }
    }
    let skip = lines.len().saturating_sub(n);
    lines.split_off(skip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_configured_number_of_files() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("app-out.log");
        let rotation = Rotation {
            max_size: 100,
            files: 3,
        };
        let mut log = LogFile::open(path.clone(), rotation).expect("open");
        for i in 0..200 {
            log.write_line(&format!("line {i:04} of the test output"))
                .expect("write");
        }
        let mut names: Vec<String> = std::fs::read_dir(dir.path())
            .expect("read dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(
            names,
            [
                "app-out.log",
                "app-out.log.1",
                "app-out.log.2",
                "app-out.log.3"
            ]
        );
        let last = tail(&path, 1);
        assert_eq!(last, ["line 0199 of the test output"]);
    }
}
