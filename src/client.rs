//! Pooled HTTP clients, one per distinct network configuration.
//!
//! A `reqwest::Client` owns a connection pool, so reusing one across
//! completions keeps connections alive (and lets HTTP/2 multiplex). Settings
//! arrive with every request, so clients are cached by what changes how they
//! connect: proxy, extra TLS roots and the connect timeout.
//!
//! Clients are built off the async workers (reading `caCertificates` and the
//! platform's roots is blocking file I/O), without holding the cache's lock
//! across the build, and at most [`MAX_CLIENTS`] are kept, least recently
//! used first out.
//!
//! Every client: no whole-request timeout (it would kill long generations;
//! the engine times phases itself), 307/308 redirects followed with the body
//! only within the same origin (scheme, host and port: the credential headers
//! and the prompt never go to another server, and never from https to http),
//! every other redirect returned as it is (turning a POST into a GET would
//! lose the prompt), gzip and brotli decoded, `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`
//! honoured; a `proxy` setting replaces the first two (`NO_PROXY` still
//! applies) and `"none"` connects directly; each connect is reported to the
//! request that made it ([`MarkConnectLayer`]), so the first-byte limit
//! starts when the connection is ready.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Client, redirect};

use crate::engine::connect::MarkConnectLayer;
use crate::settings::{NetworkConfig, Proxy};

/// The cache of clients.
#[derive(Debug, Default)]
pub struct Clients {
    cache: Mutex<Cache>,
    /// One lock per configuration being built, held during its build, so a
    /// burst of first requests builds the client once instead of once per
    /// request (each build reads every root certificate of the platform:
    /// milliseconds of CPU), while other configurations are not held up.
    building: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

#[derive(Debug, Default)]
struct Cache {
    clients: HashMap<Key, Cached>,
    /// Counts uses, to find the least recently used client.
    tick: u64,
}

#[derive(Debug)]
struct Cached {
    client: Client,
    last_used: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    network: NetworkConfig,
    connect_timeout: Duration,
}

/// A client that could not be built from the settings.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot read caCertificates file {path}: {source}")]
    CaFile {
        path: String,
        source: std::io::Error,
    },
    #[error("caCertificates file {path} holds no usable PEM certificate: {detail}")]
    CaPem { path: String, detail: String },
    #[error("invalid proxy: {0}")]
    Proxy(String),
    #[error("cannot create the HTTP client: {0}")]
    Build(String),
}

impl ClientError {
    /// The settings key the error is about.
    pub fn field(&self) -> &'static str {
        match self {
            ClientError::CaFile { .. } | ClientError::CaPem { .. } => "caCertificates",
            ClientError::Proxy(_) => "proxy",
            ClientError::Build(_) => "settings",
        }
    }
}

/// Idle connections kept per host: enough for an IDE's parallel requests,
/// without holding hundreds of sockets after a burst.
const MAX_IDLE_PER_HOST: usize = 32;

/// How many redirects are followed at most.
const MAX_REDIRECTS: usize = 10;

/// How many distinct configurations keep a client (and its pool).
pub const MAX_CLIENTS: usize = 16;

impl Clients {
    /// The client for this configuration, built on first use.
    pub async fn get(
        &self,
        network: &NetworkConfig,
        connect_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let key = Key {
            network: network.clone(),
            connect_timeout,
        };
        if let Some(client) = self.lock().lookup(&key) {
            return Ok(client);
        }
        let building = self
            .building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(key.clone())
            .or_default()
            .clone();
        let _building = building.lock().await;
        if let Some(client) = self.lock().lookup(&key) {
            return Ok(client);
        }
        let build_key = key.clone();
        let built = tokio::task::spawn_blocking(move || {
            build(&build_key.network, build_key.connect_timeout)
        })
        .await
        .map_err(|e| ClientError::Build(e.to_string()));
        self.building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&key);
        // Another request may have built the same client meanwhile: keep one.
        Ok(self.lock().insert(key, built??))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Cache> {
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Cache {
    fn lookup(&mut self, key: &Key) -> Option<Client> {
        self.tick += 1;
        let cached = self.clients.get_mut(key)?;
        cached.last_used = self.tick;
        Some(cached.client.clone())
    }

    fn insert(&mut self, key: Key, client: Client) -> Client {
        if let Some(existing) = self.lookup(&key) {
            return existing;
        }
        if self.clients.len() >= MAX_CLIENTS
            && let Some(oldest) = self
                .clients
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(k, _)| k.clone())
        {
            self.clients.remove(&oldest);
        }
        self.clients.insert(
            key,
            Cached {
                client: client.clone(),
                last_used: self.tick,
            },
        );
        client
    }
}

/// Scheme, host and port are the same.
fn same_origin(a: &reqwest::Url, b: &reqwest::Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

fn build(network: &NetworkConfig, connect_timeout: Duration) -> Result<Client, ClientError> {
    let policy = redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
        let from = attempt.previous().last();
        let same_origin = from.is_some_and(|from| same_origin(from, attempt.url()));
        if keeps_body && same_origin && attempt.previous().len() < MAX_REDIRECTS {
            attempt.follow()
        } else {
            attempt.stop()
        }
    });
    let mut builder = Client::builder()
        .connect_timeout(connect_timeout)
        .redirect(policy)
        .tcp_nodelay(true)
        .pool_idle_timeout(Duration::from_secs(90))
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST)
        .connector_layer(MarkConnectLayer);
    match &network.proxy {
        Proxy::FromEnvironment => {}
        Proxy::Direct => builder = builder.no_proxy(),
        Proxy::Url(url) => {
            let proxy = reqwest::Proxy::all(url)
                .map_err(|e| ClientError::Proxy(e.to_string()))?
                .no_proxy(reqwest::NoProxy::from_env());
            builder = builder.proxy(proxy);
        }
    }
    if let Some(path) = &network.ca_certificates {
        let shown = path.display().to_string();
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile {
            path: shown.clone(),
            source,
        })?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ClientError::CaPem {
                path: shown.clone(),
                detail: e.to_string(),
            })?;
        if certs.is_empty() {
            return Err(ClientError::CaPem {
                path: shown,
                detail: "no certificate found".into(),
            });
        }
        builder = builder.tls_certs_merge(certs);
    }
    builder
        .build()
        .map_err(|e| ClientError::Build(e.to_string()))
}
