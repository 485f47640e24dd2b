//! Electricity Maps and the instance metadata services, against real HTTP servers on 127.0.0.1.
#![allow(clippy::unwrap_used)] // test helpers

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use cardfill_carbon::live::{self, MetadataEndpoints};

/// A request as the server saw it: request line and lowercase headers.
#[derive(Debug)]
struct Seen {
    line: String,
    headers: Vec<(String, String)>,
}

impl Seen {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Serves each connection with `answer(request line) -> (status, body, delay)`.
fn serve(
    answer: impl Fn(&str) -> (u16, String, Duration) + Send + 'static,
) -> (String, mpsc::Receiver<Seen>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let mut headers = Vec::new();
            let mut length = 0;
            loop {
                let mut h = String::new();
                reader.read_line(&mut h).unwrap();
                let h = h.trim_end();
                if h.is_empty() {
                    break;
                }
                let (k, v) = h.split_once(':').unwrap();
                let (k, v) = (k.to_ascii_lowercase(), v.trim().to_owned());
                if k == "content-length" {
                    length = v.parse().unwrap();
                }
                headers.push((k, v));
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            let line = line.trim_end().to_owned();
            let (status, body, delay) = answer(&line);
            let _ = tx.send(Seen { line, headers });
            thread::sleep(delay);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, rx)
}

const SHORT: Duration = Duration::from_secs(5);

#[test]
fn electricitymaps_past_range_is_averaged() {
    let (url, seen) = serve(|_| {
        let body = r#"{"zone":"FR","data":[
            {"zone":"FR","carbonIntensity":40,"datetime":"2026-11-27T08:00:00.000Z","isEstimated":false},
            {"zone":"FR","carbonIntensity":60,"datetime":"2026-11-27T09:00:00.000Z","isEstimated":false},
            {"zone":"FR","carbonIntensity":null,"datetime":"2026-11-27T10:00:00.000Z"}]}"#;
        (200, body.to_owned(), Duration::ZERO)
    });
    let got = live::electricitymaps(
        &format!("{url}/v3/"),
        "secret",
        "FR",
        Some(("2026-11-27T08:00:00Z", "2026-11-27T10:00:00Z")),
        SHORT,
    )
    .unwrap();
    assert_eq!((got.g_per_kwh, got.points), (50.0, 2));
    let req = seen.recv().unwrap();
    assert!(
        req.line.starts_with(
            "GET /v3/carbon-intensity/past-range?zone=FR&start=2026-11-27T08%3A00%3A00Z&end="
        ),
        "{}",
        req.line
    );
    assert_eq!(req.header("auth-token"), Some("secret"));
    assert!(!got.url.contains("secret"));
}

#[test]
fn electricitymaps_latest_without_a_window() {
    let (url, seen) = serve(|_| {
        (200, r#"{"zone":"DE","carbonIntensity":312,"datetime":"2026-11-27T09:00:00.000Z","isEstimated":true}"#.into(), Duration::ZERO)
    });
    let got = live::electricitymaps(&url, "t", "DE", None, SHORT).unwrap();
    assert_eq!(got.g_per_kwh, 312.0);
    assert!(
        seen.recv()
            .unwrap()
            .line
            .starts_with("GET /carbon-intensity/latest?zone=DE ")
    );
}

#[test]
fn electricitymaps_errors_and_slow_answers_are_errors() {
    let (url, _seen) = serve(|_| {
        (
            401,
            r#"{"error":"Invalid auth-token"}"#.into(),
            Duration::ZERO,
        )
    });
    let err = live::electricitymaps(&url, "bad", "FR", None, SHORT)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("401") && err.contains("Invalid auth-token"),
        "{err}"
    );

    let (url, _seen) = serve(|_| {
        (
            200,
            r#"{"zone":"FR","carbonIntensity":null}"#.into(),
            Duration::ZERO,
        )
    });
    let err = live::electricitymaps(&url, "t", "FR", None, SHORT)
        .unwrap_err()
        .to_string();
    assert!(err.contains("no carbonIntensity"), "{err}");

    let (url, _seen) = serve(|_| (200, "<html>".into(), Duration::ZERO));
    assert!(live::electricitymaps(&url, "t", "FR", None, SHORT).is_err());

    let (url, _seen) = serve(|_| {
        (
            200,
            r#"{"carbonIntensity":50}"#.into(),
            Duration::from_secs(3),
        )
    });
    let err = live::electricitymaps(&url, "t", "FR", None, Duration::from_millis(300))
        .unwrap_err()
        .to_string();
    assert!(err.contains("timed out"), "{err}");
}

#[test]
fn detect_cloud_speaks_imdsv2_google_and_azure() {
    // AWS: token by PUT, then the region with the token.
    let (aws, seen) = serve(|line| match line {
        l if l.starts_with("PUT /latest/api/token") => (200, "TOKEN123".into(), Duration::ZERO),
        l if l.starts_with("GET /latest/meta-data/placement/region") => {
            (200, "eu-west-3".into(), Duration::ZERO)
        }
        _ => (404, String::new(), Duration::ZERO),
    });
    let nowhere = "http://127.0.0.1:9".to_owned();
    let found = live::detect_cloud(
        &MetadataEndpoints {
            aws,
            gcp: nowhere.clone(),
            azure: nowhere.clone(),
        },
        SHORT,
    )
    .unwrap();
    assert_eq!(found.key(), "aws:eu-west-3");
    let put = seen.recv().unwrap();
    assert!(put.header("x-aws-ec2-metadata-token-ttl-seconds").is_some());
    assert_eq!(
        seen.recv().unwrap().header("x-aws-ec2-metadata-token"),
        Some("TOKEN123")
    );

    // Google: the zone, with Metadata-Flavor.
    let (gcp, seen) = serve(|_| {
        (
            200,
            "projects/123456/zones/europe-west4-a".into(),
            Duration::ZERO,
        )
    });
    let found = live::detect_cloud(
        &MetadataEndpoints {
            aws: nowhere.clone(),
            gcp,
            azure: nowhere.clone(),
        },
        SHORT,
    )
    .unwrap();
    assert_eq!(found.key(), "gcp:europe-west4");
    assert_eq!(
        seen.recv().unwrap().header("metadata-flavor"),
        Some("Google")
    );

    // Azure: compute location as text, with Metadata: true.
    let (azure, seen) = serve(|_| (200, "westeurope".into(), Duration::ZERO));
    let found = live::detect_cloud(
        &MetadataEndpoints {
            aws: nowhere.clone(),
            gcp: nowhere.clone(),
            azure,
        },
        SHORT,
    )
    .unwrap();
    assert_eq!(found.key(), "azure:westeurope");
    assert_eq!(seen.recv().unwrap().header("metadata"), Some("true"));

    // Nothing answers: every service's error.
    let errors = live::detect_cloud(
        &MetadataEndpoints {
            aws: nowhere.clone(),
            gcp: nowhere.clone(),
            azure: nowhere,
        },
        Duration::from_millis(300),
    )
    .unwrap_err();
    assert_eq!(errors.len(), 3);
}
