//! docs/PROTOCOL.md, sentence by sentence: each test speaks the wire from a Python
//! script (standard library only, no `ipc_peer`) against the real Rust programs, doing
//! what the document tells a stranger to do. Skipped (with a printed reason) only when
//! python3 is missing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{ipc_cat, python, run, start_listener, workspace_example};

/// Framing helpers every script below starts with (PROTOCOL.md §1 and §2).
const WIRE: &str = r#"
import os, socket, struct, sys
def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf
def handshake(sock, token):
    sock.sendall(b"IPCT\x01" + bytes([len(token)]) + token)
    reply = recv_exact(sock, 6)
    assert reply is not None and reply[:5] == b"IPCT\x01", reply
    return reply[5]
def write_frame(sock, payload):
    sock.sendall(struct.pack(">I", len(payload)) + payload)
def read_frame(sock):
    head = recv_exact(sock, 4)
    assert head is not None, "peer lost"
    (n,) = struct.unpack(">I", head)
    return None if n == 0xFFFFFFFF else recv_exact(sock, n)
"#;

/// `python3 -c WIRE+script ARGS...`.
fn py(python: &str, script: &str) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(format!("{WIRE}\n{script}"));
    cmd
}

/// "host:port" of a `tcp://host:port` endpoint.
fn host_port(endpoint: &str) -> (String, String) {
    let rest = endpoint.strip_prefix("tcp://").expect("a tcp endpoint");
    let (host, port) = rest.rsplit_once(':').expect("host:port");
    (host.to_string(), port.to_string())
}

/// §2: a listener started with `IPC_TOKEN=T` accepts the token bytes `T` as ASCII text
/// (here `00ff`, which is not the bytes 00 ff), refuses anything else with status 1;
/// without `IPC_TOKEN` only the empty token is accepted.
#[test]
fn tcp_token_is_the_ascii_text_of_ipc_token() {
    let Some(python) = python() else { return };
    for (server_token, tries) in [
        (
            Some("00ff"),
            vec![("b'00ff'", 0), ("bytes.fromhex('00ff')", 1), ("b''", 1)],
        ),
        (None, vec![("b''", 0), ("b'x'", 1)]),
    ] {
        let mut cmd = Command::new(workspace_example("echo"));
        cmd.args(["--listen", "tcp://127.0.0.1:0"]);
        match server_token {
            Some(t) => cmd.env("IPC_TOKEN", t),
            None => cmd.env_remove("IPC_TOKEN"),
        };
        let (_server, endpoint) = start_listener(&mut cmd, true);
        let (host, port) = host_port(&endpoint);
        for (token, status) in tries {
            let script = format!(
                r#"
sock = socket.create_connection(("{host}", {port}))
status = handshake(sock, {token})
assert status == {status}, status
if status == 0:
    write_frame(sock, b"hi")
    assert read_frame(sock) == b"hi"
else:
    assert sock.recv(1) == b"", "the server closes after a refusal"
print("ok")
"#
            );
            let out = run(&mut py(python, &script), b"");
            out.expect_code(0, &format!("token {token} against {server_token:?}"));
            assert_eq!(out.stdout_text(), "ok\n");
        }
    }
}

/// §3: a tcp child finds `IPC_ENDPOINT=tcp://127.0.0.1:PORT` and `IPC_TOKEN` (64 hex
/// digits) and presents the token's ASCII text in the handshake.
#[test]
fn a_tcp_child_presents_ipc_token_as_text() {
    let Some(python) = python() else { return };
    let script = r#"
ep = os.environ["IPC_ENDPOINT"]
token = os.environ["IPC_TOKEN"]
assert len(token) == 64 and all(c in "0123456789abcdef" for c in token), token
host, port = ep[len("tcp://"):].rsplit(":", 1)
assert host == "127.0.0.1", ep
sock = socket.create_connection((host, int(port)))
assert handshake(sock, token.encode("ascii")) == 0
write_frame(sock, b"token ok")
sock.sendall(b"\xff\xff\xff\xff")
sock.shutdown(socket.SHUT_WR)
while read_frame(sock) is not None:
    pass
"#;
    let mut cmd = ipc_cat();
    cmd.args(["--spawn", "tcp", "--"])
        .arg(python)
        .arg("-c")
        .arg(format!("{WIRE}\n{script}"));
    let out = run(&mut cmd, b"");
    out.expect_code(0, "tcp child");
    assert_eq!(out.stdout_text(), "token ok\n");
}

/// §4 (listeners print their endpoint): the echo example prints `listening on
/// ENDPOINT` as its first stdout line, with the real port when asked for port 0;
/// ipc-cat prints `ipc-cat: listening on ENDPOINT` on stderr. A client can connect to
/// what was printed.
#[test]
fn listeners_print_the_real_endpoint() {
    let Some(python) = python() else { return };
    let mut echo = Command::new(workspace_example("echo"));
    echo.args(["--listen", "tcp://127.0.0.1:0"])
        .env_remove("IPC_TOKEN");
    let (_echo, from_echo) = start_listener(&mut echo, true);
    let mut cat = ipc_cat();
    cat.args(["--listen", "tcp://127.0.0.1:0"])
        .env_remove("IPC_TOKEN");
    let (cat, from_cat) = start_listener(&mut cat, false);
    for endpoint in [&from_echo, &from_cat] {
        let (host, port) = host_port(endpoint);
        assert_eq!(host, "127.0.0.1");
        assert_ne!(port.parse::<u16>().expect("a port"), 0, "{endpoint}");
        let script = format!(
            r#"
sock = socket.create_connection(("{host}", {port}))
assert handshake(sock, b"") == 0
write_frame(sock, b"hi")
sock.sendall(b"\xff\xff\xff\xff")
sock.shutdown(socket.SHUT_WR)
print("connected")
"#
        );
        let out = run(&mut py(python, &script), b"");
        out.expect_code(0, endpoint);
    }
    // ipc-cat serves one client: it printed the frame the script sent.
    let out = cat.finish(b"");
    assert_eq!(out.stdout_text(), "hi\n");
}

/// The Python block that follows `marker` in docs/PROTOCOL.md.
fn sample_after(marker: &str) -> String {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/PROTOCOL.md"))
            .expect("read docs/PROTOCOL.md");
    let after = &doc[doc
        .find(marker)
        .unwrap_or_else(|| panic!("{marker:?} in PROTOCOL.md"))..];
    let start = after.find("```python\n").expect("a python block") + "```python\n".len();
    let len = after[start..].find("```").expect("end of the block");
    after[start..start + len].to_string()
}

/// §3's sample, extracted from the document and run as it stands: a Python child of a
/// Rust parent (ipc-cat) over uds. It defines every helper it calls, says goodbye, and
/// its fd 3 is close-on-exec (a grandchild does not inherit it).
#[test]
fn the_python_child_sample_runs_as_written() {
    let Some(python) = python() else { return };
    let sample = sample_after("A Python child of a Rust parent over uds:");
    let check = r#"
import subprocess
grandchild = subprocess.run(["sh", "-c", "test -e /proc/self/fd/3 && echo inherited || echo not"],
                            close_fds=False, capture_output=True, text=True)
print("fd 3 in a grandchild:", grandchild.stdout.strip(), file=sys.stderr)
"#;
    let mut cmd = ipc_cat();
    cmd.args(["--spawn", "uds", "--"])
        .arg(python)
        .arg("-c")
        .arg(format!("{sample}\nimport sys\n{check}"));
    let out = run(&mut cmd, b"");
    out.expect_code(0, "the §3 sample");
    assert_eq!(out.stdout_text(), "hello from python\n");
    assert!(
        out.stderr.contains("fd 3 in a grandchild: not"),
        "{}",
        out.stderr
    );
}

/// §1's reader, extracted from the document and used by a uds child that echoes every
/// frame back, then closes with the document's `close`.
#[test]
fn the_python_reader_sample_runs_as_written() {
    let Some(python) = python() else { return };
    let sample = sample_after("A Python reader, for reference:");
    let driver = r#"
import os
sock = socket.socket(fileno=int(os.environ["IPC_ENDPOINT"][len("uds:fd="):]))
while True:
    frame = read_frame(sock)
    if frame is None:
        break
    write_frame(sock, frame.upper())
close(sock)
"#;
    let mut cmd = ipc_cat();
    cmd.args(["--spawn", "uds", "--"])
        .arg(python)
        .arg("-c")
        .arg(format!("{sample}\n{driver}"));
    let out = run(&mut cmd, b"one\n\ntwo\n");
    out.expect_code(0, "the §1 sample");
    assert_eq!(out.stdout_text(), "ONE\n\nTWO\n");
}

/// §11: `node:fd=N` is Node's channel: one JSON text per `\n`-terminated line on a
/// Unix stream socket, no length prefix, no goodbye line; a line that is not JSON is
/// refused, the next one read. Here a Python script holds the other end of a
/// socketpair and a Rust process (ipc-cat) opens `node:fd=N`.
#[test]
fn node_fd_is_one_json_text_per_line() {
    let Some(python) = python() else { return };
    let script = format!(
        r#"
import subprocess
ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
cat = subprocess.Popen([{cat:?}, "--json", "node:fd=%d" % theirs.fileno()],
                       pass_fds=[theirs.fileno()], stdin=subprocess.PIPE,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE)
theirs.close()
ours.sendall(b'{{"a":1}}\nnot json\n"two"\r\n')
print("got", cat.stdout.readline().decode().strip())
print("got", cat.stdout.readline().decode().strip())
cat.stdin.write(b'{{"b":2}}\n')
cat.stdin.flush()
f = ours.makefile("rb")
print("wire", repr(f.readline()))
cat.stdin.close()
rest = f.read()
print("after stdin ended", repr(rest))
f.close()
ours.close()
print("exit", cat.wait())
sys.stderr.write(cat.stderr.read().decode())
"#,
        cat = env!("CARGO_BIN_EXE_ipc-cat")
    );
    let out = run(&mut py(python, &script), b"");
    out.expect_code(0, "node:fd");
    assert_eq!(
        out.stdout_text(),
        "got {\"a\":1}\ngot \"two\"\nwire b'{\"b\":2}\\n'\nafter stdin ended b''\nexit 0\n"
    );
    assert!(out.stderr.contains("not json"), "{}", out.stderr);
}

/// A Python FIFO listener, written from §8's "listener's side" steps; `LOCK` says
/// whether it creates `DIR/lock` (step 2).
const FIFO_LISTENER: &str = r#"
import select, shutil, subprocess, tempfile
LOCK = LOCK_SETTING
d = tempfile.mkdtemp()                                        # (1) DIR, mode 0700
if LOCK:
    fd = os.open(d + "/lock", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)   # (2)
    os.write(fd, b"%d\n" % os.getpid()); os.close(fd)
def fifo_pair():                                              # (3)
    for name in ("c2s", "s2c"):
        os.mkfifo(d + "/" + name + ".new", 0o600)
    rx = os.open(d + "/c2s.new", os.O_RDONLY | os.O_NONBLOCK)
    placeholder = os.open(d + "/s2c.new", os.O_RDONLY | os.O_NONBLOCK)
    tx = os.open(d + "/s2c.new", os.O_WRONLY | os.O_NONBLOCK)
    os.close(placeholder)
    os.rename(d + "/c2s.new", d + "/c2s"); os.rename(d + "/s2c.new", d + "/s2c")
    return rx, tx
rx, tx = fifo_pair()
client = subprocess.Popen([CAT, "fifo:" + d], stdin=subprocess.PIPE,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
client.stdin.write(b"ping\n"); client.stdin.close()
p = select.poll(); p.register(rx, select.POLLIN)
while not p.poll(100):                                        # (4) wait for the hello
    if client.poll() is not None:
        print("client exited", client.returncode, client.stderr.read().decode().strip())
        shutil.rmtree(d)
        sys.exit(0)
os.set_blocking(rx, True); os.set_blocking(tx, True)
class Fd:
    def __init__(self, fd): self.fd = fd
    def recv(self, n): return os.read(self.fd, n)
    def sendall(self, b): os.write(self.fd, b)
hello = read_frame(Fd(rx))
assert hello == b"ipc-fifo/1 pid=%d" % client.pid, hello
assert sorted(os.listdir(d)) == ["lock"], os.listdir(d)      # the client claimed the pair
fifo_pair()                                                   # (5) the next client's pair
print("frame", read_frame(Fd(rx)))                           # (6) frames
write_frame(Fd(tx), b"pong")
print("goodbye", read_frame(Fd(rx)) is None)
os.write(tx, b"\xff\xff\xff\xff"); os.close(tx)
print("client", client.wait(), client.stdout.read())
shutil.rmtree(d)
"#;

fn fifo_listener(python: &str, lock: bool) -> String {
    let script = FIFO_LISTENER
        .replace("LOCK_SETTING", if lock { "True" } else { "False" })
        .replace("CAT", &format!("{:?}", env!("CARGO_BIN_EXE_ipc-cat")));
    let out = run(&mut py(python, &script), b"");
    out.expect_code(0, "the Python fifo listener");
    out.stdout_text()
}

/// §8, the listener's side: a Python listener that follows the steps serves a Rust
/// client (ipc-cat `fifo:DIR`): hello with the client's pid, a frame each way, the
/// goodbye both ways.
#[test]
fn a_fifo_listener_written_from_the_document_serves_a_rust_client() {
    let Some(python) = python() else { return };
    assert_eq!(
        fifo_listener(python, true),
        "frame b'ping'\ngoodbye True\nclient 0 b'pong\\n'\n"
    );
}

/// §8: without `DIR/lock` a client refuses to connect ("no fifo listener").
#[test]
fn a_fifo_directory_without_the_lock_file_has_no_listener() {
    let Some(python) = python() else { return };
    let out = fifo_listener(python, false);
    assert!(out.starts_with("client exited"), "{out}");
    assert!(out.contains("no fifo listener"), "{out}");
}
