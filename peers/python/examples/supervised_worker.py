"""A Python worker under the Rust supervisor (`ipc::cluster::Supervisor` with
`WaitReady::Message` and `StopWith::Message`): it says "ready" on its control channel,
the message pm2's `wait_ready` and the supervisor wait for, then serves until the
supervisor's "shutdown" message (or the channel's end) and exits 0.

    PYTHONPATH=peers/python python3 peers/python/examples/supervised_worker.py
    (started by a supervisor, which sets IPC_ENDPOINT)
"""

import ipc_peer


def main() -> int:
    with ipc_peer.connect_from_env() as parent:
        parent.send_json("ready")
        for frame in parent:
            if frame == b'"shutdown"':
                break
            parent.send(frame)  # any other frame: echoed
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
