//! A transport written outside the toolkit, through its public API only: an in-process
//! `mem:NAME` transport (a `tokio::io::duplex` pipe framed by the toolkit's
//! `LengthCodec`) implements `Backend`, is registered next to the facade's transports,
//! and is then parsed, listened on and connected to through the `Registry` like any
//! built-in one.

use std::io;
use std::sync::Mutex;
use std::time::Duration;

use ipc::backend::{Backend, BackendListener};
use ipc::frame::LengthCodec;
use ipc::prelude::*;
use ipc::stream::StreamChannel;
use ipc::{
    Capabilities, ChannelInfo, ConnectError, Endpoint, Error, ListenError, Options, Registry,
    SpawnError,
};
use tokio::io::{DuplexStream, ReadHalf, WriteHalf};
use tokio::sync::mpsc;

/// Guard against hangs only; nothing here waits on time.
const GUARD: Duration = Duration::from_secs(20);

type MemChannel = StreamChannel<ReadHalf<DuplexStream>, WriteHalf<DuplexStream>, LengthCodec>;

/// The listeners of this process, by name: where a `connect` hands the server's end.
static LISTENERS: Mutex<Vec<(String, mpsc::UnboundedSender<MemChannel>)>> = Mutex::new(Vec::new());

const FORMS: &[&str] = &["mem:NAME"];

/// The typed address of the toy transport: `mem:NAME`, NAME of letters, digits, `-`, `_`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct MemAddress {
    name: String,
}

impl TryFrom<&Endpoint> for MemAddress {
    type Error = Error;

    fn try_from(endpoint: &Endpoint) -> Result<Self, Error> {
        let name = endpoint.address();
        if endpoint.scheme() != "mem" {
            return Err(endpoint.invalid("mem", FORMS, "not a mem: endpoint"));
        }
        if name.is_empty() {
            return Err(endpoint.invalid("mem", FORMS, "the name is empty"));
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            return Err(endpoint.invalid(
                "mem",
                FORMS,
                "a name has only letters, digits, '-' and '_'",
            ));
        }
        Ok(MemAddress {
            name: name.to_string(),
        })
    }
}

impl From<MemAddress> for Endpoint {
    fn from(address: MemAddress) -> Endpoint {
        Endpoint::new("mem", address.name)
    }
}

/// Two connected channels over an in-memory pipe.
fn pair(options: &Options) -> (MemChannel, MemChannel) {
    let (a, b) = tokio::io::duplex(64 * 1024);
    let codec = LengthCodec::new(options.frame_config());
    let (ar, aw) = tokio::io::split(a);
    let (br, bw) = tokio::io::split(b);
    (
        ipc::stream::channel(ar, aw, codec.clone(), ChannelInfo::new("mem")),
        ipc::stream::channel(br, bw, codec, ChannelInfo::new("mem")),
    )
}

struct MemTransport;

impl Backend for MemTransport {
    const NAME: &'static str = "mem";
    const SCHEMES: &'static [&'static str] = &["mem"];
    const FORMS: &'static [&'static str] = FORMS;
    type Channel = MemChannel;
    type Listener = MemListener;

    fn capabilities(&self) -> Capabilities {
        Capabilities::NONE
            .with_binary_frames(true)
            .with_listen(true)
    }

    fn check_endpoint(&self, endpoint: &Endpoint) -> ipc::Result<()> {
        MemAddress::try_from(endpoint).map(drop)
    }

    fn example_endpoint(&self) -> Option<Endpoint> {
        Some(
            MemAddress {
                name: "example".into(),
            }
            .into(),
        )
    }

    async fn connect(
        &self,
        endpoint: &Endpoint,
        options: &Options,
    ) -> Result<MemChannel, ConnectError> {
        let MemAddress { name } = MemAddress::try_from(endpoint)?;
        let not_listening = || {
            ConnectError::NotListening(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "connect to {endpoint}: nobody listens on this name: is the server running?"
                ),
            ))
        };
        let server = LISTENERS
            .lock()
            .expect("listeners")
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, server)| server.clone())
            .ok_or_else(not_listening)?;
        let (ours, theirs) = pair(options);
        server.send(theirs).map_err(|_| not_listening())?;
        Ok(ours)
    }

    async fn listen(
        &self,
        endpoint: &Endpoint,
        _options: &Options,
    ) -> Result<MemListener, ListenError> {
        let MemAddress { name } = MemAddress::try_from(endpoint)?;
        let mut listeners = LISTENERS.lock().expect("listeners");
        listeners.retain(|(_, server)| !server.is_closed());
        if listeners.iter().any(|(known, _)| *known == name) {
            return Err(ListenError::InUse(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("listen on {endpoint}: a listener of this process holds it"),
            )));
        }
        let (server, incoming) = mpsc::unbounded_channel();
        listeners.push((name, server));
        Ok(MemListener {
            endpoint: endpoint.clone(),
            incoming,
        })
    }
}

struct MemListener {
    endpoint: Endpoint,
    incoming: mpsc::UnboundedReceiver<MemChannel>,
}

impl BackendListener for MemListener {
    type Channel = MemChannel;

    async fn accept(&mut self) -> ipc::Result<MemChannel> {
        self.incoming.recv().await.ok_or(Error::Closed)
    }

    fn endpoint(&self) -> Endpoint {
        self.endpoint.clone()
    }
}

/// The facade's transports, and `mem`.
fn registry() -> Registry {
    let mut registry = ipc::registry().clone();
    registry.register(MemTransport);
    registry
}

async fn guarded<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GUARD, future)
        .await
        .unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn registered_next_to_the_facade_transports_it_listens_connects_and_carries_frames() {
    let registry = registry();
    assert!(registry.names().contains(&"mem"));
    #[cfg(feature = "uds")]
    assert!(registry.names().contains(&"uds"));

    let endpoint = registry.endpoint("mem:frames").expect("a mem endpoint");
    assert_eq!((endpoint.scheme(), endpoint.address()), ("mem", "frames"));
    let transport = registry.for_endpoint(&endpoint).expect("mem serves it");
    assert_eq!(transport.name(), "mem");
    assert!(transport.capabilities().listen && !transport.capabilities().spawn);

    let opts = Options::default();
    let mut listener = registry.listen(&endpoint, &opts).await.expect("listen");
    assert_eq!(listener.endpoint(), endpoint);
    let mut client = guarded("connect", registry.connect(&endpoint, &opts))
        .await
        .expect("connect");
    let mut server = guarded("accept", listener.accept()).await.expect("accept");
    assert_eq!(server.info().transport, "mem");

    client.send("ping".into()).await.expect("send");
    let got = guarded("recv", server.recv()).await.expect("recv");
    assert_eq!(got.as_deref(), Some(&b"ping"[..]));
    // A batch through the Sink: feed several, flush once.
    for n in 0..10 {
        server.feed(n.to_string().into()).await.expect("feed");
    }
    server.flush().await.expect("flush");
    for n in 0..10 {
        let got = guarded("recv", client.recv()).await.expect("recv");
        assert_eq!(got.as_deref(), Some(n.to_string().as_bytes()));
    }
    client.close().await.expect("close");
    assert_eq!(guarded("end", server.recv()).await.expect("end"), None);
}

#[tokio::test]
async fn the_static_backend_gives_its_own_channel_type() {
    let endpoint: Endpoint = MemAddress {
        name: "typed".into(),
    }
    .into();
    let opts = Options::default();
    let mut listener = Backend::listen(&MemTransport, &endpoint, &opts)
        .await
        .expect("listen");
    let mut client: MemChannel = Backend::connect(&MemTransport, &endpoint, &opts)
        .await
        .expect("connect");
    let mut server: MemChannel = guarded("accept", BackendListener::accept(&mut listener))
        .await
        .expect("accept");
    server.send("typed".into()).await.expect("send");
    let got = guarded("recv", client.recv()).await.expect("recv");
    assert_eq!(got.as_deref(), Some(&b"typed"[..]));
}

#[tokio::test]
async fn a_bad_mem_address_says_which_form_it_takes() {
    let registry = registry();
    for bad in ["mem:", "mem:two words"] {
        let err = registry.endpoint(bad).expect_err(bad);
        assert!(matches!(err, Error::BadEndpoint { .. }), "{err}");
        let msg = err.to_string();
        assert!(
            msg.contains("the mem transport takes mem:NAME"),
            "{bad}: {msg}"
        );
        let endpoint: Endpoint = bad.parse().expect("the syntax is fine");
        match registry.connect(&endpoint, &Options::default()).await {
            Err(ConnectError::BadEndpoint { reason, .. }) => {
                assert!(reason.contains("mem:NAME"), "{reason}")
            }
            other => panic!("{bad}: {:?}", other.map(|_| "a channel")),
        }
    }
}

#[tokio::test]
async fn an_unknown_scheme_lists_mem_among_the_schemes_and_forms() {
    let err = registry()
        .endpoint("carrier-pigeon:coop-7")
        .expect_err("nobody serves carrier-pigeon");
    let msg = err.to_string();
    assert!(
        msg.contains("no transport serves the scheme \"carrier-pigeon\""),
        "{msg}"
    );
    assert!(msg.contains("mem") && msg.contains("mem:NAME"), "{msg}");
    #[cfg(feature = "uds")]
    assert!(msg.contains("unix:/PATH"), "{msg}");
}

#[tokio::test]
async fn connect_without_a_listener_and_listen_twice_fail_with_their_arms() {
    let registry = registry();
    let endpoint = registry.endpoint("mem:nobody").expect("endpoint");
    match registry.connect(&endpoint, &Options::default()).await {
        Err(ConnectError::NotListening(e)) => {
            assert!(e.to_string().contains("is the server running?"), "{e}")
        }
        other => panic!("{:?}", other.map(|_| "a channel")),
    }

    let endpoint = registry.endpoint("mem:twice").expect("endpoint");
    let _first = registry
        .listen(&endpoint, &Options::default())
        .await
        .expect("listen");
    assert!(matches!(
        registry.listen(&endpoint, &Options::default()).await,
        Err(ListenError::InUse(_))
    ));
}

#[tokio::test]
async fn spawning_is_refused_by_the_default_and_capabilities_say_so() {
    let registry = registry();
    let needs = Capabilities::NONE.with_spawn(true);
    assert!(!registry.names_with(needs).contains(&"mem"));
    let transport = registry.get("mem").expect("mem");
    match transport
        .spawn(std::process::Command::new("true"), &Options::default())
        .await
    {
        Err(SpawnError::Unsupported { transport, .. }) => assert_eq!(transport, "mem"),
        other => panic!("{:?}", other.map(|_| "a child")),
    }
}
