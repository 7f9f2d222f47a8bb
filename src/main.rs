//! The `webapp` binary: for now a health check and a placeholder page on our HTTP layer.
//!
//! `main` calls `run`, prints any error and picks the exit code (0 never: the server only
//! returns by failing; 2 for configuration errors, 1 otherwise). Configuration is read once from
//! the environment through a lookup function:
//!
//! | variable    | meaning                                   | default     |
//! |-------------|-------------------------------------------|-------------|
//! | `BIND`      | IP address to listen on                   | `127.0.0.1` |
//! | `PORT`      | TCP port (`0` picks a free one)           | `8080`      |
//! | `LOG_LEVEL` | `off`, `error`, `warn`, `info`, `debug`, `trace` | `info` |
//!
//! The bound address is logged as `listening on http://ADDR`. No signal handling: the platform
//! stops the process, and nothing here needs a clean flush.

use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use ocivision::http::{Limits, Request, Response, Server};
use ocivision::{logger, Error};

/// The binary's configuration, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Config {
    addr: SocketAddr,
    log_level: log::LevelFilter,
}

impl Config {
    fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Config, Error> {
        let ip: IpAddr = match get("BIND") {
            None => IpAddr::from([127, 0, 0, 1]),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("BIND={v:?} is not an IP address")))?,
        };
        let port: u16 = match get("PORT") {
            None => 8080,
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| Error::Config(format!("PORT={v:?} is not a port number")))?,
        };
        let log_level = logger::parse_level(get("LOG_LEVEL").as_deref())?;
        Ok(Config {
            addr: SocketAddr::new(ip, port),
            log_level,
        })
    }
}

const PLACEHOLDER: &str = "<!doctype html>\n<html lang=\"en\">\n<head><meta charset=\"utf-8\">\
<title>ocivision</title></head>\n<body>\n<h1>ocivision</h1>\n\
<p>Image analysis on Oracle Cloud. The pipeline UI is coming soon.</p>\n</body>\n</html>\n";

fn route(req: &Request) -> ocivision::Result<Response> {
    Ok(match (req.method(), req.path()) {
        ("GET" | "HEAD", "/healthz") => Response::new(200),
        ("GET" | "HEAD", "/") => Response::html(200, PLACEHOLDER),
        (_, "/healthz" | "/") => Response::error(405, None).with_header("Allow", "GET, HEAD"),
        _ => Response::error(404, None),
    })
}

fn run() -> Result<(), Error> {
    let config = Config::from_lookup(|k| std::env::var(k).ok())?;
    logger::init(config.log_level);
    let server = Server::bind_tcp(config.addr, Limits::public(), route)?;
    if let Some(addr) = server.tcp_addr() {
        log::info!(target: "webapp", "listening on http://{addr}");
    }
    server.wait();
    Err(Error::Config("the server stopped".into()))
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("webapp: {e}");
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                eprintln!("  caused by: {s}");
                source = s.source();
            }
            match e {
                Error::Config(_) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_and_errors_name_the_variable() {
        let c = config(&[]).unwrap();
        assert_eq!(c.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.log_level, log::LevelFilter::Info);
        let c = config(&[("BIND", "0.0.0.0"), ("PORT", "0")]).unwrap();
        assert_eq!(c.addr, "0.0.0.0:0".parse().unwrap());
        assert!(config(&[("PORT", "http")])
            .unwrap_err()
            .to_string()
            .contains("PORT"));
        assert!(config(&[("BIND", "x")])
            .unwrap_err()
            .to_string()
            .contains("BIND"));
        assert!(config(&[("LOG_LEVEL", "x")])
            .unwrap_err()
            .to_string()
            .contains("LOG_LEVEL"));
    }

    #[test]
    fn routes_health_placeholder_and_404() {
        let r = route(&Request::fake("GET", "/healthz", &[], b"")).unwrap();
        assert_eq!((r.status(), r.body_bytes()), (200, Some(&b""[..])));
        let r = route(&Request::fake("GET", "/", &[], b"")).unwrap();
        assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
        assert!(String::from_utf8_lossy(r.body_bytes().unwrap()).contains("coming"));
        let r = route(&Request::fake("GET", "/nope", &[], b"")).unwrap();
        assert_eq!(r.status(), 404);
        let r = route(&Request::fake("POST", "/", &[], b"x")).unwrap();
        assert_eq!(r.status(), 405);
    }
}
