//! Opt-in network lookups: live grid intensity from Electricity Maps, and the cloud instance
//! metadata services (AWS IMDSv2, Google, Azure). Short timeouts; every failure is an error the
//! caller turns into a warning and a fallback.

use std::time::Duration;

use serde::Deserialize;

/// Default Electricity Maps API base.
pub const ELECTRICITYMAPS_URL: &str = "https://api.electricitymaps.com/v3";
/// Environment variable holding the Electricity Maps token.
pub const ELECTRICITYMAPS_TOKEN_VAR: &str = "ELECTRICITYMAPS_TOKEN";
/// Environment variable overriding the Electricity Maps base URL (tests).
pub const ELECTRICITYMAPS_URL_VAR: &str = "CARDFILL_ELECTRICITYMAPS_URL";
/// Environment variable overriding the AWS metadata base URL.
pub const AWS_IMDS_URL_VAR: &str = "CARDFILL_AWS_IMDS_URL";
/// Environment variable overriding the Google metadata base URL.
pub const GCP_METADATA_URL_VAR: &str = "CARDFILL_GCP_METADATA_URL";
/// Environment variable overriding the Azure metadata base URL.
pub const AZURE_IMDS_URL_VAR: &str = "CARDFILL_AZURE_IMDS_URL";

/// [`electricitymaps`]'s signature.
pub type ElectricityMapsFn =
    fn(&str, &str, &str, Option<(&str, &str)>, Duration) -> Result<LiveIntensity, LiveError>;

/// [`detect_cloud`]'s signature.
pub type DetectCloudFn = fn(&MetadataEndpoints, Duration) -> Result<CloudPlacement, Vec<LiveError>>;

/// The lookups of this module as plain function pointers. A binary that names [`LIVE`] links
/// the HTTP client; one that passes `None` in [`crate::CarbonOptions::live`] does not.
#[derive(Clone, Copy, Debug)]
pub struct Live {
    /// [`electricitymaps`].
    pub electricitymaps: ElectricityMapsFn,
    /// [`detect_cloud`].
    pub detect_cloud: DetectCloudFn,
}

/// The real lookups.
pub const LIVE: Live = Live {
    electricitymaps,
    detect_cloud,
};

/// Why a lookup was not made by a binary built without the HTTP client.
pub const NOT_LINKED: &str =
    "this binary has no network client (the `cardfill-online` helper has; run through `cardfill`)";

/// Why a network lookup gave nothing.
#[derive(Debug, thiserror::Error)]
pub enum LiveError {
    /// The HTTP client could not be built.
    #[error("cannot build an HTTP client: {0}")]
    Client(String),
    /// The request failed or timed out.
    #[error("`{url}`: {message}")]
    Request {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The answer had no usable value.
    #[error("`{url}`: {message}")]
    Answer {
        /// The URL asked.
        url: String,
        /// What was wrong with the answer.
        message: String,
    },
}

fn client(timeout: Duration) -> Result<reqwest::blocking::Client, LiveError> {
    reqwest::blocking::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .user_agent(concat!("cardfill/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| LiveError::Client(e.to_string()))
}

fn request_error(url: &str, err: &reqwest::Error) -> LiveError {
    let message = if err.is_timeout() {
        "timed out".to_owned()
    } else if err.is_connect() {
        // The innermost cause says why (refused, no route): the rest repeats the URL.
        let mut inner: &dyn std::error::Error = err;
        while let Some(s) = inner.source() {
            inner = s;
        }
        format!("could not connect ({inner})")
    } else {
        // reqwest errors nest the useful part; keep it on one line.
        let mut text = err.to_string();
        let mut source = std::error::Error::source(err);
        while let Some(s) = source {
            text = format!("{text}: {s}");
            source = s.source();
        }
        text
    };
    LiveError::Request {
        url: url.to_owned(),
        message,
    }
}

/// A live intensity: the mean over the answer's data points.
#[derive(Clone, Debug, PartialEq)]
pub struct LiveIntensity {
    /// Mean intensity, g CO2eq/kWh.
    pub g_per_kwh: f64,
    /// How many hourly points were averaged.
    pub points: usize,
    /// The URL asked (without the token).
    pub url: String,
}

#[derive(Deserialize)]
struct Point {
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
}

#[derive(Deserialize)]
struct Range {
    #[serde(default)]
    data: Vec<Point>,
    #[serde(default)]
    history: Vec<Point>,
    #[serde(rename = "carbonIntensity")]
    carbon_intensity: Option<f64>,
}

#[derive(Deserialize)]
struct ApiError {
    error: Option<String>,
    message: Option<String>,
}

/// Asks Electricity Maps for `zone`'s intensity: the mean over `past-range` between `start`
/// and `end` (RFC 3339) when both are known, else the `latest` value.
pub fn electricitymaps(
    base: &str,
    token: &str,
    zone: &str,
    window: Option<(&str, &str)>,
    timeout: Duration,
) -> Result<LiveIntensity, LiveError> {
    let base = base.trim_end_matches('/');
    let (url, query): (String, Vec<(&str, &str)>) = match window {
        Some((start, end)) => (
            format!("{base}/carbon-intensity/past-range"),
            vec![("zone", zone), ("start", start), ("end", end)],
        ),
        None => (
            format!("{base}/carbon-intensity/latest"),
            vec![("zone", zone)],
        ),
    };
    let full = reqwest::Url::parse_with_params(&url, &query).map_err(|e| LiveError::Request {
        url: url.clone(),
        message: e.to_string(),
    })?;
    let response = client(timeout)?
        .get(full)
        .header("auth-token", token)
        .send()
        .map_err(|e| request_error(&url, &e))?;
    let status = response.status();
    let body = response.text().map_err(|e| request_error(&url, &e))?;
    if !status.is_success() {
        let detail = serde_json::from_str::<ApiError>(&body)
            .ok()
            .and_then(|e| e.error.or(e.message))
            .unwrap_or_default();
        return Err(LiveError::Answer {
            url,
            message: format!("HTTP {status} {detail}").trim_end().to_owned(),
        });
    }
    let parsed: Range = serde_json::from_str(&body).map_err(|e| LiveError::Answer {
        url: url.clone(),
        message: format!("not an Electricity Maps answer: {e}"),
    })?;
    let values: Vec<f64> = parsed
        .data
        .iter()
        .chain(&parsed.history)
        .filter_map(|p| p.carbon_intensity)
        .chain(parsed.carbon_intensity)
        .filter(|v| v.is_finite() && *v >= 0.0)
        .collect();
    if values.is_empty() {
        return Err(LiveError::Answer {
            url,
            message: format!("no carbonIntensity for zone `{zone}`"),
        });
    }
    Ok(LiveIntensity {
        g_per_kwh: values.iter().sum::<f64>() / values.len() as f64,
        points: values.len(),
        url,
    })
}

/// A cloud provider and region named by an instance metadata service.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CloudPlacement {
    /// `aws`, `gcp` or `azure`.
    pub provider: &'static str,
    /// The provider's region name (`us-east-1`, `europe-west4`, `westeurope`).
    pub region: String,
    /// The metadata URL that answered.
    pub url: String,
}

impl CloudPlacement {
    /// The table key, `provider:region`.
    pub fn key(&self) -> String {
        format!("{}:{}", self.provider, self.region)
    }
}

/// Sends a metadata request and returns its answer: one short word, or an error.
fn text_of(request: reqwest::blocking::RequestBuilder, url: &str) -> Result<String, LiveError> {
    let response = request.send().map_err(|e| request_error(url, &e))?;
    if !response.status().is_success() {
        return Err(LiveError::Answer {
            url: url.to_owned(),
            message: format!("HTTP {}", response.status()),
        });
    }
    let text = response.text().map_err(|e| request_error(url, &e))?;
    let text = text.trim().to_owned();
    if text.is_empty() || text.len() > 200 || text.contains(char::is_whitespace) {
        return Err(LiveError::Answer {
            url: url.to_owned(),
            message: "unexpected answer".to_owned(),
        });
    }
    Ok(text)
}

fn aws(client: &reqwest::blocking::Client, base: &str) -> Result<CloudPlacement, LiveError> {
    let token_url = format!("{base}/latest/api/token");
    let token = text_of(
        client
            .put(&token_url)
            .header("X-aws-ec2-metadata-token-ttl-seconds", "60"),
        &token_url,
    )?;
    let url = format!("{base}/latest/meta-data/placement/region");
    let answer = client.get(&url).header("X-aws-ec2-metadata-token", token);
    Ok(CloudPlacement {
        provider: "aws",
        region: text_of(answer, &url)?,
        url,
    })
}

fn gcp(client: &reqwest::blocking::Client, base: &str) -> Result<CloudPlacement, LiveError> {
    let url = format!("{base}/computeMetadata/v1/instance/zone");
    let answer = client.get(&url).header("Metadata-Flavor", "Google");
    // `projects/123/zones/us-central1-a` → `us-central1`.
    let zone = text_of(answer, &url)?;
    let zone = zone.rsplit('/').next().unwrap_or(&zone);
    let region = match zone.rsplit_once('-') {
        Some((region, suffix)) if suffix.len() == 1 => region.to_owned(),
        _ => zone.to_owned(),
    };
    Ok(CloudPlacement {
        provider: "gcp",
        region,
        url,
    })
}

fn azure(client: &reqwest::blocking::Client, base: &str) -> Result<CloudPlacement, LiveError> {
    let url =
        format!("{base}/metadata/instance/compute/location?api-version=2021-02-01&format=text");
    let answer = client.get(&url).header("Metadata", "true");
    Ok(CloudPlacement {
        provider: "azure",
        region: text_of(answer, &url)?.to_ascii_lowercase(),
        url,
    })
}

/// Base URLs of the metadata services (overridable through the `CARDFILL_*_URL` variables).
#[derive(Clone, Debug)]
pub struct MetadataEndpoints {
    /// AWS IMDS base.
    pub aws: String,
    /// Google metadata base.
    pub gcp: String,
    /// Azure IMDS base.
    pub azure: String,
}

impl MetadataEndpoints {
    /// The real endpoints, or those named in the environment.
    pub fn from_env() -> Self {
        let var = |name: &str, default: &str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_owned())
                .trim_end_matches('/')
                .to_owned()
        };
        Self {
            aws: var(AWS_IMDS_URL_VAR, "http://169.254.169.254"),
            gcp: var(GCP_METADATA_URL_VAR, "http://metadata.google.internal"),
            azure: var(AZURE_IMDS_URL_VAR, "http://169.254.169.254"),
        }
    }
}

/// Asks AWS, then Google, then Azure where this machine runs; the first answer wins.
/// Returns the errors of every service when none answered.
pub fn detect_cloud(
    endpoints: &MetadataEndpoints,
    timeout: Duration,
) -> Result<CloudPlacement, Vec<LiveError>> {
    let client = client(timeout).map_err(|e| vec![e])?;
    type Probe = fn(&reqwest::blocking::Client, &str) -> Result<CloudPlacement, LiveError>;
    let probes: [(Probe, &str); 3] = [
        (aws, &endpoints.aws),
        (gcp, &endpoints.gcp),
        (azure, &endpoints.azure),
    ];
    let mut errors = Vec::new();
    for (probe, base) in probes {
        match probe(&client, base) {
            Ok(found) => return Ok(found),
            Err(e) => errors.push(e),
        }
    }
    Err(errors)
}
