//! Pooled HTTP clients, one per distinct network configuration.
//!
//! A `reqwest::Client` owns a connection pool, so reusing one across
//! completions keeps connections alive (and lets HTTP/2 multiplex). Settings
//! arrive with every request, so clients are cached by what changes how they
//! connect: proxy, extra TLS roots and the connect timeout.
//!
//! Every client: no whole-request timeout (it would kill long generations;
//! the engine times phases itself), 307/308 redirects followed with the body,
//! other redirects returned as they are (turning a POST into a GET would lose
//! the prompt), gzip and brotli decoded, `HTTPS_PROXY`/`HTTP_PROXY`/`NO_PROXY`
//! honoured; a `proxy` setting replaces the first two (`NO_PROXY` still
//! applies) and `"none"` connects directly.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use reqwest::{Client, redirect};

use crate::settings::{NetworkConfig, Proxy};

/// The cache of clients.
#[derive(Debug, Default)]
pub struct Clients {
    cache: Mutex<HashMap<Key, Client>>,
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

impl Clients {
    /// The client for this configuration, built on first use.
    pub fn get(
        &self,
        network: &NetworkConfig,
        connect_timeout: Duration,
    ) -> Result<Client, ClientError> {
        let key = Key {
            network: network.clone(),
            connect_timeout,
        };
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(client) = cache.get(&key) {
            return Ok(client.clone());
        }
        let client = build(network, connect_timeout)?;
        cache.insert(key, client.clone());
        Ok(client)
    }
}

fn build(network: &NetworkConfig, connect_timeout: Duration) -> Result<Client, ClientError> {
    let policy = redirect::Policy::custom(|attempt| {
        let keeps_body = matches!(attempt.status().as_u16(), 307 | 308);
        if keeps_body && attempt.previous().len() < MAX_REDIRECTS {
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
        .pool_max_idle_per_host(MAX_IDLE_PER_HOST);
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
