//! Per-app log files: each line an app writes to stdout or stderr is stored with a
//! timestamp in `logs/NAME-out.log` / `logs/NAME-err.log`, rotated by size
//! (`NAME-out.log.1` is the newest rotated file), and passed on to `logs --follow`.

use std::io::{self, Write};
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
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

/// Copy what arrives on the pipe `read` into `file`, line by line with a timestamp,
/// and pass each line to `follow`. Ends when every writer closed the pipe.
pub(crate) fn spawn_pump(
    read: OwnedFd,
    mut file: LogFile,
    app: String,
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
