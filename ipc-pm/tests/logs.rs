//! `ipcm logs`: timestamped per-instance files, `--lines`, `--follow`, size rotation per file.

mod support;

use std::io::BufRead;
use std::process::Stdio;
use std::sync::mpsc;

use support::{Ipcm, GUARD};

#[test]
fn logs_are_timestamped_per_stream_and_follow_streams_new_lines() {
    let ipcm = Ipcm::new();
    ipcm.ok(&[
        "start",
        "--name",
        "talker",
        "sh",
        "-c",
        "trap 'echo ping' USR1; echo hello-out; echo hello-err >&2; while :; do sleep 0.05; done",
    ]);
    ipcm.wait_for("both lines logged", |i| {
        let logs = i.ok(&["logs", "talker", "--lines", "5"]);
        logs.contains("hello-out") && logs.contains("hello-err")
    });
    let logs = ipcm.ok(&["logs", "talker", "--lines", "5"]);
    let out = logs
        .lines()
        .find(|l| l.contains("hello-out"))
        .expect("out line");
    assert!(out.starts_with("talker[0] out | 20"), "{out}");
    assert!(out.contains('T') && out.contains("Z hello-out"), "{out}");
    assert!(
        logs.lines()
            .any(|l| l.starts_with("talker[0] err |") && l.ends_with("hello-err")),
        "{logs}"
    );

    let mut follow = ipcm
        .command(&["logs", "talker", "--lines", "0", "--follow"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("logs --follow");
    let (tx, rx) = mpsc::channel();
    let stdout = follow.stdout.take().expect("stdout");
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    // Each signal makes one new line; keep asking until the follower shows one (it
    // may subscribe after the first signal).
    let start = std::time::Instant::now();
    let mut seen = false;
    while !seen {
        assert!(start.elapsed() < GUARD, "no followed line");
        ipcm.ok(&["signal", "SIGUSR1", "talker"]);
        // The signal reaches the whole group: the shell's `sleep` may report it too.
        while let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(500)) {
            if line.contains("talker[0] out |") && line.ends_with("ping") {
                seen = true;
                break;
            }
        }
    }
    follow.kill().expect("kill follower");
    let _ = follow.wait();
    assert_eq!(
        ipcm.statuses("talker"),
        ["online"],
        "the follower's exit disturbs nothing"
    );
}

#[test]
fn each_instance_has_its_own_rotated_files_and_logs_merges_them() {
    let ipcm = Ipcm::new();
    ipcm.ok(&[
        "start",
        "--name",
        "chatty",
        "-i",
        "2",
        "--log-max-size",
        "1K",
        "--log-files",
        "2",
        "sh",
        "-c",
        "i=0; while [ $i -lt 300 ]; do echo line-$NODE_APP_INSTANCE-$i; i=$((i+1)); done; exec sleep 1000",
    ]);
    ipcm.wait_for("the last lines of both instances logged", |i| {
        let logs = i.ok(&["logs", "chatty", "--lines", "1"]);
        logs.contains("line-0-299") && logs.contains("line-1-299")
    });
    let logs = ipcm.ok(&["logs", "chatty", "--lines", "1"]);
    for index in 0..2 {
        assert!(
            logs.lines()
                .any(|l| l.starts_with(&format!("chatty[{index}] out | "))
                    && l.ends_with(&format!("line-{index}-299"))),
            "{logs}"
        );
    }
    let dir = ipcm.home().join("logs");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("logs dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("chatty-"))
        .collect();
    files.sort();
    assert_eq!(
        files,
        [
            "chatty-error-0.log",
            "chatty-error-1.log",
            "chatty-out-0.log",
            "chatty-out-0.log.1",
            "chatty-out-0.log.2",
            "chatty-out-1.log",
            "chatty-out-1.log.1",
            "chatty-out-1.log.2",
        ]
    );
    for f in &files {
        let size = std::fs::metadata(dir.join(f)).expect("meta").len();
        assert!(size <= 1024, "{f} is {size} bytes");
    }
    let described = ipcm.ok(&["describe", "chatty"]);
    assert!(described.contains("chatty-out-1.log"), "{described}");
}
