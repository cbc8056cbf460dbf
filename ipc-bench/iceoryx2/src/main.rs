//! `ipc-bench-iceoryx2`: one `ipc-bench` cell over iceoryx2's publish-subscribe, two
//! processes on one host, busy-polling as iceoryx2's own benchmark does.
//!
//! `ipc-bench --iceoryx2` builds this binary and runs it once per cell:
//!
//! ```text
//! ipc-bench-iceoryx2 round-trip --size 64 --warmup 2000 --count 20000 [--pin 0 --peer-pin 0]
//! ipc-bench-iceoryx2 stream --size 64 --phases 2000,100000,100000 [--pin 0 --peer-pin 1]
//! ```
//!
//! It starts itself again as the peer (`serve`), and prints one line per timed
//! measurement on stdout: the nanoseconds of each round trip, or of each stream
//! phase after the first (the warm-up). Everything else goes to stderr.
//!
//! Set-up, as `ipc-bench`'s `raw-shm` floor: two services, `a2b` and `b2a`, with `[u8]`
//! payloads of the cell's size, history 0; the payload is copied into the loaned
//! sample (`write_from_slice`) and, on the other side, out of the received sample, so
//! each message is copied in and out once like every other runner's. Round trips:
//! subscriber buffer 1, safe overflow. Streams: subscriber buffer [`STREAM_BUFFER`],
//! no overflow, the publisher retries until delivered; a zero-length sample ends a
//! phase and the peer answers it with a zero-length acknowledgement. A waiting side
//! spins with the CPU's pause hint and yields the CPU after [`SPIN_ALONE`] empty
//! looks, so the two processes pinned to one CPU still take turns.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use iceoryx2::prelude::*;
use iceoryx2::service::port_factory::publish_subscribe::PortFactory;
use iceoryx2::service::port_factory::PortFactory as _;

/// Empty looks at a subscriber before a waiting side also yields the CPU.
const SPIN_ALONE: u32 = 16;
/// Samples a stream's subscriber may hold unread.
const STREAM_BUFFER: usize = 256;
/// How long either side waits for the other to appear.
const STARTUP: Duration = Duration::from_secs(10);

#[derive(Parser, Debug)]
#[command(about = "One ipc-bench cell over iceoryx2 (see the crate docs)")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand, Debug, Clone)]
enum What {
    /// Time `count` round trips of `size` bytes after `warmup` untimed ones.
    RoundTrip {
        #[arg(long)]
        size: usize,
        #[arg(long)]
        warmup: u64,
        #[arg(long)]
        count: u64,
        /// Pin this process (and, without --peer-pin, the peer) to this CPU.
        #[arg(long)]
        pin: Option<usize>,
        /// Pin the peer to this CPU.
        #[arg(long)]
        peer_pin: Option<usize>,
    },
    /// Stream phases of `size`-byte messages one way, each acknowledged at its end.
    Stream {
        #[arg(long)]
        size: usize,
        /// Messages per phase; the first is the warm-up.
        #[arg(long, value_delimiter = ',')]
        phases: Vec<u64>,
        /// Pin this process (and, without --peer-pin, the peer) to this CPU.
        #[arg(long)]
        pin: Option<usize>,
        /// Pin the peer to this CPU.
        #[arg(long)]
        peer_pin: Option<usize>,
    },
    /// The peer: echo (round trips) or consume and acknowledge (streams).
    Serve {
        /// The services' name prefix.
        #[arg(long)]
        name: String,
        #[arg(long)]
        size: usize,
        #[arg(long)]
        stream: bool,
        /// Pin this process to this CPU.
        #[arg(long)]
        pin: Option<usize>,
    },
}

/// One direction's service.
type Service = PortFactory<ipc::Service, [u8], ()>;
/// `a2b` and `b2a`.
type Services = (Service, Service);

fn main() {
    set_log_level(LogLevel::Error);
    let args = Args::parse();
    let result = match args.what.clone() {
        What::RoundTrip {
            size,
            warmup,
            count,
            pin,
            peer_pin,
        } => lead(size, pin, peer_pin, false, |link| {
            link.round_trips(size, warmup, count)
        }),
        What::Stream {
            size,
            phases,
            pin,
            peer_pin,
        } => lead(size, pin, peer_pin, true, |link| link.stream(size, &phases)),
        What::Serve {
            name,
            size,
            stream,
            pin,
        } => serve(&name, size, stream, pin),
    };
    if let Err(e) = result {
        eprintln!("ipc-bench-iceoryx2: {e}");
        std::process::exit(1);
    }
}

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// The services `a2b` and `b2a` under `name`, created (`create`) or opened.
fn services(node: &Node<ipc::Service>, name: &str, stream: bool, create: bool) -> Res<Services> {
    let one = |dir: &str| -> Res<Service> {
        let service_name = ServiceName::new(&format!("{name}/{dir}"))?;
        let builder = node
            .service_builder(&service_name)
            .publish_subscribe::<[u8]>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(if stream { STREAM_BUFFER } else { 1 })
            .enable_safe_overflow(!stream);
        Ok(if create {
            builder.create()?
        } else {
            builder.open()?
        })
    };
    Ok((one("a2b")?, one("b2a")?))
}

/// One side's ports: it publishes on `tx`'s service and subscribes to `rx`'s.
struct Link {
    publisher: iceoryx2::port::publisher::Publisher<ipc::Service, [u8], ()>,
    subscriber: iceoryx2::port::subscriber::Subscriber<ipc::Service, [u8], ()>,
    scratch: Vec<u8>,
}

impl Link {
    fn new(
        tx: &PortFactory<ipc::Service, [u8], ()>,
        rx: &PortFactory<ipc::Service, [u8], ()>,
        size: usize,
    ) -> Res<Link> {
        let publisher = tx
            .publisher_builder()
            .initial_max_slice_len(size.max(1))
            .backpressure_strategy(BackpressureStrategy::RetryUntilDelivered)
            .create()?;
        let subscriber = rx.subscriber_builder().create()?;
        Ok(Link {
            publisher,
            subscriber,
            scratch: vec![0; size],
        })
    }

    fn send(&self, bytes: &[u8]) -> Res<()> {
        let sample = self.publisher.loan_slice_uninit(bytes.len())?;
        sample.write_from_slice(bytes).send()?;
        Ok(())
    }

    /// Wait for the next sample and copy it into `scratch`; its length.
    fn recv(&mut self, deadline: Option<Instant>) -> Res<usize> {
        let mut looks = 0u32;
        loop {
            if let Some(sample) = self.subscriber.receive()? {
                let payload = sample.payload();
                self.scratch.resize(payload.len(), 0);
                self.scratch.copy_from_slice(payload);
                return Ok(payload.len());
            }
            looks = looks.wrapping_add(1);
            if looks < SPIN_ALONE {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
                if deadline.is_some_and(|d| Instant::now() > d) {
                    return Err("the peer did not answer in time".into());
                }
            }
        }
    }

    /// Once the peer's ports exist, send it a zero-length hello and wait for its
    /// answer (a publisher connects to the subscribers that exist when it sends).
    fn greet(&mut self, a2b: &Service) -> Res<()> {
        let deadline = Instant::now() + STARTUP;
        while a2b.dynamic_config().number_of_subscribers() < 1 {
            if Instant::now() > deadline {
                return Err("the peer did not open the services in time".into());
            }
            std::thread::yield_now();
        }
        self.send(&[])?;
        match self.recv(Some(deadline))? {
            0 => Ok(()),
            _ => Err("the peer answered the hello with data".into()),
        }
    }

    fn round_trips(&mut self, size: usize, warmup: u64, count: u64) -> Res<()> {
        let msg = payload(size);
        let mut out = String::with_capacity(count as usize * 8);
        for i in 0..warmup + count {
            let start = Instant::now();
            self.send(&msg)?;
            let n = self.recv(None)?;
            let took = start.elapsed();
            if n != size || (i < warmup && self.scratch != msg) {
                return Err("the peer answered with other bytes".into());
            }
            if i >= warmup {
                out.push_str(&took.as_nanos().to_string());
                out.push('\n');
            }
        }
        print!("{out}");
        Ok(())
    }

    fn stream(&mut self, size: usize, phases: &[u64]) -> Res<()> {
        let msg = payload(size);
        for (i, &n) in phases.iter().enumerate() {
            let start = Instant::now();
            for _ in 0..n {
                self.send(&msg)?;
            }
            self.send(&[])?;
            if self.recv(None)? != 0 {
                return Err("the peer acknowledged with data".into());
            }
            if i > 0 {
                println!("{}", start.elapsed().as_nanos());
            }
        }
        Ok(())
    }
}

/// The payload `ipc-bench` uses: a JSON string of exactly `size` bytes.
fn payload(size: usize) -> Vec<u8> {
    let mut v = vec![b'x'; size];
    if size >= 2 {
        v[0] = b'"';
        v[size - 1] = b'"';
    }
    v
}

fn pin_to(cpu: usize) -> Res<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET writes inside it;
    // sched_setaffinity reads it (pid 0: this thread, inherited by the child).
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(cpu, &mut set);
        if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
            return Err(
                format!("pinning to CPU {cpu}: {}", std::io::Error::last_os_error()).into(),
            );
        }
    }
    Ok(())
}

/// The measuring side: create the services, start the peer, greet it, run `body`.
fn lead(
    size: usize,
    pin: Option<usize>,
    peer_pin: Option<usize>,
    stream: bool,
    body: impl FnOnce(&mut Link) -> Res<()>,
) -> Res<()> {
    if let Some(cpu) = pin {
        pin_to(cpu)?;
    }
    let name = format!("ipc-bench-{}", std::process::id());
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    let (a2b, b2a) = services(&node, &name, stream, true)?;
    let mut link = Link::new(&a2b, &b2a, size)?;
    let mut peer = Command::new(std::env::current_exe()?)
        .args(["serve", "--name", &name, "--size", &size.to_string()])
        .args(stream.then_some("--stream"))
        .args(peer_pin.map(|cpu| format!("--pin={cpu}")))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()?;
    let ran = link.greet(&a2b).and_then(|()| body(&mut link));
    // A zero-length sample outside a stream, or the end of a stream's phases, tells
    // the peer to stop: it answers nothing more.
    let stop = link.send(&[1]);
    let status = peer.wait()?;
    ran?;
    stop?;
    if !status.success() {
        return Err(format!("the peer failed: {status}").into());
    }
    Ok(())
}

/// The peer: open the services, answer the hello, then echo every sample (round
/// trips) or acknowledge every zero-length one (streams) until the 1-byte stop.
fn serve(name: &str, size: usize, stream: bool, pin: Option<usize>) -> Res<()> {
    if let Some(cpu) = pin {
        pin_to(cpu)?;
    }
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    let deadline = Instant::now() + STARTUP;
    let (a2b, b2a) = loop {
        match services(&node, name, stream, false) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::yield_now(),
            Err(e) => return Err(e),
        }
    };
    let mut link = Link::new(&b2a, &a2b, size)?;
    if link.recv(Some(deadline))? != 0 {
        return Err("the first sample was not the hello".into());
    }
    link.send(&[])?;
    loop {
        let n = link.recv(None)?;
        if n == 1 && size != 1 {
            return Ok(());
        } else if stream {
            if n == 0 {
                link.send(&[])?;
            }
        } else if n != 0 {
            let echo = std::mem::take(&mut link.scratch);
            link.send(&echo)?;
            link.scratch = echo;
        }
    }
}
