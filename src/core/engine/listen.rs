//! Whether a container's server listens where the kubelet and Services reach it (the Pod IP).
//! Probes against a server bound to 127.0.0.1 would fail and restart a working Pod, so pytune adds
//! none there and says why.

use super::Target;
use crate::core::detect::Server;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Listening {
    /// Bound to all addresses (or the evidence does not say otherwise).
    Reachable,
    /// Bound to loopback only; the text says how pytune knows.
    LoopbackOnly(String),
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost" || host.starts_with("127.") || host == "::1"
}

/// The host part of a `host:port` bind address (`:8000` means all addresses).
fn bind_host(bind: &str) -> &str {
    match bind.rfind(':') {
        Some(i) => &bind[..i],
        None => bind,
    }
}

/// `port_env_added`: pytune adds `PORT`, which makes gunicorn bind 0.0.0.0.
pub fn listening(target: &Target, port_env_added: bool) -> Listening {
    let detection = &target.info.detection;
    let flags = &detection.flags;
    let defines = |name: &str| {
        target.env_entry(name).is_some()
            || target
                .container
                .env_from
                .as_ref()
                .is_some_and(|v| !v.is_empty())
    };
    let loopback = |what: String| Listening::LoopbackOnly(what);
    if target.launch.binds_itself() {
        return Listening::Reachable;
    }
    match detection.server {
        Server::Gunicorn => match &flags.bind {
            Some(bind) if is_loopback(bind_host(bind)) => {
                loopback(format!("gunicorn --bind {bind}"))
            }
            Some(_) => Listening::Reachable,
            None if port_env_added || defines("PORT") => Listening::Reachable,
            None => loopback("gunicorn without --bind or PORT binds 127.0.0.1:8000".to_string()),
        },
        Server::Uvicorn | Server::Granian | Server::FlaskRun => match &flags.host {
            Some(host) if is_loopback(host) => {
                loopback(format!("{} --host {host}", detection.server.name()))
            }
            Some(_) => Listening::Reachable,
            None if detection.server == Server::FlaskRun && defines("FLASK_RUN_HOST") => {
                Listening::Reachable
            }
            None if detection.server == Server::Granian && defines("GRANIAN_HOST") => {
                Listening::Reachable
            }
            None if detection.server == Server::Uvicorn && defines("UVICORN_HOST") => {
                Listening::Reachable
            }
            None => loopback(format!(
                "{} without --host listens on 127.0.0.1",
                detection.server.name()
            )),
        },
        Server::Hypercorn | Server::Daphne => match (&flags.bind, &flags.host) {
            (Some(bind), _) if detection.server == Server::Hypercorn => {
                if is_loopback(bind_host(bind)) {
                    loopback(format!("hypercorn --bind {bind}"))
                } else {
                    Listening::Reachable
                }
            }
            // daphne's -b is the host alone.
            (Some(host), _) | (None, Some(host)) => {
                if is_loopback(host) {
                    loopback(format!("{} binds {host}", detection.server.name()))
                } else {
                    Listening::Reachable
                }
            }
            (None, None) => loopback(format!(
                "{} without a bind address listens on 127.0.0.1",
                detection.server.name()
            )),
        },
        Server::DjangoRunserver => match flags.bind.as_deref() {
            // `0:8000` is Django's short form of 0.0.0.0; a bare port keeps 127.0.0.1.
            Some(addr) if addr.contains(':') && !is_loopback(bind_host(addr)) => {
                Listening::Reachable
            }
            Some(addr) => loopback(format!("manage.py runserver {addr} binds 127.0.0.1")),
            None => {
                loopback("manage.py runserver without an address binds 127.0.0.1:8000".to_string())
            }
        },
        _ => Listening::Reachable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(!is_loopback("0.0.0.0"));
        assert!(!is_loopback(""));
        assert_eq!(bind_host("0.0.0.0:8000"), "0.0.0.0");
        assert_eq!(bind_host(":8000"), "");
        assert_eq!(bind_host("[::1]:8000"), "[::1]");
    }
}
