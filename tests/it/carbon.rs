//! `cardfill co2` (the calculator), `cardfill regions`, and the carbon facts of `inspect`:
//! estimates from flags, live intensity from an Electricity Maps look-alike and cloud detection
//! from metadata look-alikes, both real HTTP servers on 127.0.0.1.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::Output;
use std::sync::mpsc;
use std::thread;

use serde_json::Value;

use crate::util::{RunDir, cardfill, json_stdout, stderr, stdout};

fn run(args: &[&str]) -> Output {
    cardfill().args(args).output().expect("run cardfill")
}

/// Runs `cardfill ARGS`, asserts it refused them (exit status 2) and returns its stderr.
fn refused(args: &[&str]) -> String {
    let out = run(args);
    assert_eq!(out.status.code(), Some(2));
    stderr(&out)
}

/// An HTTP server on 127.0.0.1 answering every request with `answer(request line)`; the request
/// lines it saw arrive on the receiver.
fn serve(
    answer: impl Fn(&str) -> (u16, String) + Send + 'static,
) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let Ok(clone) = stream.try_clone() else {
                return;
            };
            let mut reader = BufReader::new(clone);
            let mut line = String::new();
            let _ = reader.read_line(&mut line);
            let mut length = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h.trim_end().is_empty() {
                    break;
                }
                if let Some((k, v)) = h.split_once(':')
                    && k.eq_ignore_ascii_case("content-length")
                {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let line = line.trim_end().to_owned();
            let (status, body) = answer(&line);
            let _ = tx.send(line);
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, rx)
}

#[test]
fn co2_calculator_prints_energy_pue_intensity_and_sources() {
    let out = run(&[
        "co2",
        "--hardware",
        "A100 PCIe 40GB",
        "--count",
        "8",
        "--hours",
        "100",
        "--region",
        "aws:us-east-1",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    // 8 × 250 W × 100 h = 200 kWh; × AWS PUE 1.15 = 230 kWh × 244.8 g/kWh (eGRID2023 Virginia
    // CO2e) = 56.3 kg.
    assert!(text.contains("200 kWh"), "{text}");
    assert!(text.contains("1.15"), "{text}");
    assert!(text.contains("230 kWh"), "{text}");
    assert!(text.contains("244.8 g CO2eq/kWh"), "{text}");
    assert!(text.contains("56.3 kg CO2eq"), "{text}");
    assert!(text.contains("eGRID2023"), "{text}");
    assert!(text.contains("CO2e combustion"), "{text}");
    assert!(text.contains("Ashburn, Virginia, United States"), "{text}");
    assert!(
        text.contains("8 × NVIDIA A100 PCIe 40GB at 250 W maximum board power"),
        "{text}"
    );
}

#[test]
fn co2_json_uses_the_carbon_paths_and_flags_override_the_table() {
    let json = json_stdout(&run(&[
        "co2",
        "--hardware",
        "8x A100 PCIe 40GB",
        "--hours",
        "100",
        "--region",
        "AWS:US-EAST-1",
        "--pue",
        "1.1",
        "--intensity",
        "300",
        "--format",
        "json",
    ]));
    let c = &json["carbon"];
    assert_eq!(c["energy_kwh"], 200.0);
    assert_eq!(c["pue"], 1.1);
    assert_eq!(c["intensity_g_per_kwh"], 300.0);
    assert_eq!(c["co2_grams"], 66000.0);
    assert_eq!(c["region"], "aws:us-east-1");
    assert_eq!(c["provider"], "AWS");
    assert!(
        c["method"].as_str().unwrap().starts_with(
            "estimated: 8 × NVIDIA A100 PCIe 40GB at 250 W maximum board power × 100 h"
        )
    );
    assert_eq!(json["sources"]["carbon.pue"], "flag --pue");
    assert_eq!(
        json["sources"]["carbon.intensity_g_per_kwh"],
        "flag --intensity"
    );
    assert!(c.get("training_type").is_none());

    // The issue's worked example: 37.5 kWh × PUE 1.10 × 274 g/kWh = 11.3 kg.
    let out = run(&[
        "co2",
        "--energy-kwh",
        "37.5",
        "--pue",
        "1.10",
        "--intensity",
        "274",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(stdout(&out).contains("11.3 kg CO2eq"), "{}", stdout(&out));
    // Without a region the PUE is the printed default, named as such.
    assert!(stdout(&out).contains("1.10"));
    let json = json_stdout(&run(&[
        "co2",
        "--energy-kwh",
        "10",
        "--intensity",
        "100",
        "--format",
        "json",
    ]));
    assert_eq!(json["carbon"]["pue"], 1.56);
    assert!(
        json["sources"]["carbon.pue"]
            .as_str()
            .unwrap()
            .starts_with("default: PUE 1.56 (Uptime Institute")
    );
}

#[test]
fn co2_errors_are_one_line() {
    let err = refused(&[
        "co2",
        "--hardware",
        "V100",
        "--hours",
        "1",
        "--region",
        "aws:us-east-9",
    ]);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("unknown region `aws:us-east-9`") && err.contains("aws:us-east-1"),
        "{err}"
    );

    let err = refused(&["co2", "--hardware", "V100 SXM2 32GB", "--hours", "1"]);
    assert!(err.contains("--region"), "{err}");
    assert_eq!(err.lines().count(), 1);

    let err = refused(&[
        "co2",
        "--hardware",
        "Voodoo 5",
        "--hours",
        "1",
        "--region",
        "FR",
    ]);
    assert!(
        err.contains("hardware `Voodoo 5` refused: not in the power table"),
        "{err}"
    );
}

#[test]
fn regions_lists_searches_and_suggests() {
    let out = run(&["regions"]);
    assert!(out.status.success());
    let text = stdout(&out);
    assert!(text.lines().count() > 400, "{}", text.lines().count());
    let header = text.lines().next().unwrap();
    assert!(header.starts_with("REGION") && header.contains("G/KWH") && header.contains("SOURCE"));
    // Columns are aligned: every G/KWH value ends where the header's does.
    let end = header.find("G/KWH").unwrap() + "G/KWH".len();
    for line in text.lines().skip(1).take(20) {
        assert!(
            line[..end].ends_with(|c: char| c.is_ascii_digit()),
            "{line}"
        );
    }

    let text = stdout(&run(&["regions", "quebec"]));
    assert!(
        text.contains("CA-QC") && text.contains("Quebec, Canada"),
        "{text}"
    );
    assert!(text.contains("aws:ca-central-1"), "{text}");

    let json = json_stdout(&run(&["regions", "westeurope", "--format", "json"]));
    let rows = json.as_array().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["key"], "azure:westeurope");
    assert_eq!(rows[0]["pue"], 1.18);
    assert_eq!(rows[0]["grid"], "NL");
    assert!(rows[0]["year"].as_u64().unwrap() >= 2016);

    let err = refused(&["regions", "us-eats-1"]);
    assert!(err.contains("aws:us-east-1"), "{err}");
}

#[test]
fn inspect_estimates_from_flags_and_notes_a_missing_region() {
    let dir = RunDir::new();
    let json = json_stdout(&dir.run(&[
        "inspect",
        ".",
        "--format",
        "json",
        "--hardware",
        "NVIDIA H100 80GB HBM3",
        "--count",
        "2",
        "--hours",
        "5",
        "--region",
        "gcp:europe-west4",
        "--training-type",
        "fine-tuning",
    ]));
    let c = &json["carbon"];
    // 2 × 700 W × 5 h = 7 kWh × Google PUE 1.10 × 236 g/kWh = 1817.2 g.
    assert_eq!(c["energy_kwh"], 7.0);
    assert_eq!(c["pue"], 1.1);
    assert_eq!(c["co2_grams"], 1817.2);
    assert_eq!(c["location"], "Eemshaven, Netherlands");
    assert_eq!(
        c["intensity_source"],
        "Google Cloud region carbon data, 2023"
    );
    assert_eq!(c["training_type"], "fine-tuning");

    let json = json_stdout(&dir.run(&[
        "inspect",
        ".",
        "--format",
        "json",
        "--hardware",
        "A100",
        "--hours",
        "2",
    ]));
    assert_eq!(json["carbon"]["energy_kwh"], 0.8);
    assert!(json["carbon"].get("co2_grams").is_none());
    let codes: Vec<&str> = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|w| w["code"].as_str())
        .collect();
    assert!(codes.contains(&"carbon-region-missing"), "{codes:?}");
}

#[test]
fn electricitymaps_intensity_with_fallback_to_the_table() {
    let (url, seen) = serve(|line| {
        if line.contains("zone=FR") {
            (
                200,
                r#"{"zone":"FR","carbonIntensity":21,"datetime":"2026-11-27T08:00:00.000Z"}"#
                    .into(),
            )
        } else {
            (404, r#"{"error":"Zone not found"}"#.into())
        }
    });
    let dir = RunDir::new();
    let live = |region: &str, offline: Option<&str>| {
        let mut cmd = cardfill();
        cmd.current_dir(dir.path())
            .args([
                "inspect",
                ".",
                "--format",
                "json",
                "--hardware",
                "A100",
                "--hours",
                "10",
            ])
            .args([
                "--region",
                region,
                "--intensity-source",
                "electricitymaps",
                "--online",
            ])
            .env("CARDFILL_ELECTRICITYMAPS_URL", &url)
            .env("ELECTRICITYMAPS_TOKEN", "test-token")
            .env("HF_ENDPOINT", "http://127.0.0.1:9");
        match offline {
            Some(v) => cmd.env("HF_HUB_OFFLINE", v),
            None => cmd.env_remove("HF_HUB_OFFLINE"),
        };
        json_stdout(&cmd.output().expect("run cardfill"))
    };
    let json = live("FR", None);
    assert_eq!(json["carbon"]["intensity_g_per_kwh"], 21.0);
    assert!(
        json["carbon"]["intensity_source"]
            .as_str()
            .unwrap()
            .starts_with("Electricity Maps zone FR")
    );
    assert!(
        seen.recv()
            .unwrap()
            .starts_with("GET /carbon-intensity/latest?zone=FR")
    );

    // The API errors: the table's figure, and a warning that says why.
    let json = live("DE", None);
    assert_eq!(json["carbon"]["intensity_g_per_kwh"], 380.9);
    let w = json["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["code"] == "carbon-live-intensity-unavailable")
        .expect("warning");
    assert!(
        w["message"].as_str().unwrap().contains("Zone not found"),
        "{w}"
    );
    assert!(seen.recv().unwrap().contains("zone=DE"));

    // HF_HUB_OFFLINE forbids the network: nothing is asked.
    let json = live("FR", Some("1"));
    assert_eq!(json["carbon"]["intensity_g_per_kwh"], 56.0);
    assert!(seen.try_recv().is_err());
}

#[test]
fn detect_cloud_reads_the_aws_metadata_service() {
    let (aws, seen) = serve(|line| match line {
        l if l.starts_with("PUT /latest/api/token") => (200, "tok".into()),
        l if l.starts_with("GET /latest/meta-data/placement/region") => (200, "eu-west-3".into()),
        _ => (404, String::new()),
    });
    let dir = RunDir::new();
    let out = cardfill()
        .current_dir(dir.path())
        .args([
            "inspect",
            ".",
            "--format",
            "json",
            "--detect-cloud",
            "--hardware",
            "T4",
            "--hours",
            "10",
        ])
        .env("CARDFILL_AWS_IMDS_URL", &aws)
        .env("CARDFILL_GCP_METADATA_URL", "http://127.0.0.1:9")
        .env("CARDFILL_AZURE_IMDS_URL", "http://127.0.0.1:9")
        .output()
        .expect("run cardfill");
    let json = json_stdout(&out);
    assert_eq!(json["carbon"]["region"], "aws:eu-west-3");
    assert_eq!(json["carbon"]["provider"], "AWS");
    // 70 W × 10 h = 0.7 kWh × 1.15 × France 56 g/kWh.
    assert_eq!(json["carbon"]["co2_grams"], 45.1);
    assert!(seen.recv().unwrap().starts_with("PUT /latest/api/token"));
}

#[test]
fn fill_writes_environmental_impact_and_co2_eq_emissions_for_an_estimate() {
    let dir = RunDir::new();
    let out = dir.run(&[
        "fill",
        ".",
        "--dry-run",
        "--hardware",
        "A100 PCIe 40GB",
        "--count",
        "8",
        "--hours",
        "100",
        "--region",
        "aws:us-east-1",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let card = stdout(&out);
    // 8 × 250 W × 100 h × AWS PUE 1.15 × 244.8 g/kWh (eGRID2023 Virginia) = 56,304 g.
    assert!(card.contains("co2_eq_emissions:"), "{card}");
    assert!(card.contains("emissions: 56304"), "{card}");
    // Extra keys: facility and IT energy, PUE, the intensity with its source and year.
    for key in [
        "energy_consumed: 230",
        "energy_consumed_it: 200",
        "pue: 1.15",
        "grid_intensity: 244.8",
        "grid_intensity_year: 2023",
        "grid_intensity_source: US EPA eGRID2023",
    ] {
        assert!(card.contains(key), "{key}: {card}");
    }
    assert!(
        card.contains("geographical_location: Ashburn, Virginia, United States"),
        "{card}"
    );
    assert!(card.contains("training_type: pre-training"), "{card}");
    let line = card
        .lines()
        .find(|l| l.contains("Carbon Emitted"))
        .expect("Carbon Emitted line");
    assert!(
        line.contains("56.3 kg CO2eq")
            && line.contains("200 kWh IT × PUE 1.15 = 230 kWh facility × 245 g/kWh"),
        "{line}"
    );
    assert!(
        line.contains("eGRID2023") && line.contains("2023"),
        "{line}"
    );
    assert!(!card.contains("market-based"), "{card}");
}

/// A run record as `cardfill run` writes it: 4 GPUs whose NVML energy counters moved by
/// 1.8 MJ each (0.5 kWh), over 2 hours.
fn wrapped_run_record() -> String {
    let gpus: Vec<Value> = (0..4)
        .map(|i| {
            serde_json::json!({
                "index": i, "uuid": format!("GPU-0000000{i}"), "name": "NVIDIA H100 80GB HBM3",
                "memory_bytes": 85_520_809_984u64, "power_limit_w": 700.0,
                "energy": {"method": "counter", "joules": 1_800_000.0,
                           "counter_start_mj": 1_000u64, "counter_end_mj": 1_800_001_000u64}
            })
        })
        .collect();
    serde_json::json!({
        "format": "cardfill-run-record", "version": 1, "kind": "run",
        "cardfill_version": "0.1.0", "node": "node1", "run_key": "lone-1",
        "start": "2026-11-27T06:00:00.000Z", "end": "2026-11-27T08:00:00.000Z", "wall_s": 7200.0,
        "command": "python", "exit_code": 0,
        "host": {}, "nvml": {"status": "ok"}, "gpus": gpus, "energy_j": 7_200_000.0,
        "processes": 1
    })
    .to_string()
}

#[test]
fn measured_energy_of_a_wrapped_run_wins_over_the_estimate_flags() {
    let dir = RunDir::new().file(".cardfill/node1_lone-1.json", wrapped_run_record());
    let json = json_stdout(&dir.run(&[
        "inspect",
        ".",
        "--format",
        "json",
        "--region",
        "FR",
        "--hardware",
        "8x H100",
    ]));
    let c = &json["carbon"];
    assert_eq!(json["run"]["energy_method"], "measured", "{json}");
    // 4 × 1.8 MJ = 2 kWh measured; FR 56 g/kWh × the default PUE 1.56.
    assert_eq!(c["energy_kwh"], 2.0);
    assert!(c["method"].as_str().unwrap().starts_with("measured"), "{c}");
    assert_eq!(c["co2_grams"], 174.7);

    let out = dir.run(&["fill", ".", "--dry-run", "--region", "FR"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let card = stdout(&out);
    assert!(card.contains("emissions: 174.7"), "{card}");
    let line = card
        .lines()
        .find(|l| l.contains("Carbon Emitted"))
        .expect("Carbon Emitted line");
    assert!(
        line.contains("174.7 g CO2eq") || line.contains("175 g CO2eq"),
        "{line}"
    );
    assert!(line.contains("measured"), "{line}");
}

#[test]
fn co2_explain_prints_the_working_line_by_line() {
    let out = run(&[
        "co2",
        "--hardware",
        "8 16GB V100",
        "--hours",
        "168",
        "--region",
        "azure:eastus",
        "--market-intensity",
        "0",
        "--embodied",
        "--explain",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 7, "{text}");
    assert!(
        lines[0]
            .starts_with("1. IT energy: 403.2 kWh, estimated: 8 × NVIDIA V100 SXM2 16GB at 300 W"),
        "{text}"
    );
    assert!(lines[0].contains("NVIDIA V100 datasheet"), "{text}");
    assert!(
        lines[1].starts_with("2. PUE: 1.18") && lines[1].contains("Microsoft"),
        "{text}"
    );
    assert!(
        lines[2].contains("403.2 kWh × PUE 1.18 = 475.776 kWh"),
        "{text}"
    );
    assert!(
        lines[3].contains("244.8 g CO2eq/kWh for azure:eastus") && lines[3].contains("eGRID2023"),
        "{text}"
    );
    assert!(
        lines[4].contains("475.776 kWh × 244.8 g/kWh = 116470 g = 116.5 kg CO2eq"),
        "{text}"
    );
    assert!(
        lines[5].starts_with("6. market-based") && lines[5].contains("= 0 g"),
        "{text}"
    );
    assert!(
        lines[6].starts_with("7. embodied") && lines[6].contains("150 kg CO2eq per GPU"),
        "{text}"
    );
    // The provider's PUE was used: no default warning.
    assert!(
        !stderr(&out).contains("carbon-pue-default"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn energy_scope_and_the_default_pue_warning() {
    // IT energy in a place without a provider PUE: the default is applied, and said so.
    let out = run(&["co2", "--energy-kwh", "100", "--region", "FR"]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("[carbon-pue-default]"),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("156 kWh"), "{}", stdout(&out));
    // Facility energy: no PUE on top, no warning. 100 kWh × 56 g/kWh = 5.6 kg.
    let out = run(&[
        "co2",
        "--energy-kwh",
        "100",
        "--region",
        "FR",
        "--energy-scope",
        "facility",
        "--format",
        "json",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        !stderr(&out).contains("carbon-pue-default"),
        "{}",
        stderr(&out)
    );
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["carbon"]["co2_grams"], 5600.0);
    assert_eq!(json["carbon"]["facility_energy_kwh"], 100.0);
    assert_eq!(json["carbon"]["energy_scope"], "facility");
    assert!(json["carbon"].get("pue").is_none());
    // Facility scope describes --energy-kwh only.
    let err = refused(&[
        "co2",
        "--hardware",
        "T4",
        "--hours",
        "1",
        "--region",
        "FR",
        "--energy-scope",
        "facility",
    ]);
    assert!(err.contains("--energy-scope facility"), "{err}");
}

#[test]
fn fill_writes_market_based_and_embodied_lines_and_warns_on_the_default_pue() {
    let dir = RunDir::new();
    let out = dir.run(&[
        "fill",
        ".",
        "--dry-run",
        "--hardware",
        "H100 SXM5 80GB",
        "--count",
        "8",
        "--hours",
        "10",
        "--region",
        "DE",
        "--market-intensity",
        "0",
        "--embodied",
    ]);
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    assert!(
        stderr(&out).contains("carbon-pue-default"),
        "{}",
        stderr(&out)
    );
    let card = stdout(&out);
    let line = card
        .lines()
        .find(|l| l.contains("**Carbon Emitted:**"))
        .unwrap();
    assert!(line.contains("PUE 1.56 (default)"), "{line}");
    let market = card
        .lines()
        .find(|l| l.contains("**Carbon Emitted (market-based):**"))
        .expect("market-based line");
    assert!(market.contains("0 g CO2eq"), "{market}");
    assert!(card.contains("**Embodied Emissions:**"), "{card}");
    assert!(card.contains("emissions_market_based: 0"), "{card}");
    // 8 × 10 h ÷ (6 × 8760 × 0.85) × 150 kg = 268.6 g.
    assert!(card.contains("emissions_embodied: 268.6"), "{card}");
    // validate accepts the extra keys.
    let card_path = dir.path().join("README.md");
    std::fs::write(&card_path, &card).unwrap();
    let out = dir.run(&["validate", "README.md"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
}

#[test]
fn regions_print_source_year_and_method() {
    let text = stdout(&run(&["regions", "CN-"]));
    let header = text.lines().next().unwrap();
    assert!(
        header.contains("METHOD") && header.contains("SOURCE, YEAR"),
        "{header}"
    );
    let nx = text
        .lines()
        .find(|l| l.starts_with("CN-NX "))
        .expect("CN-NX row");
    assert!(
        nx.contains("618.7")
            && nx.contains("CO2 only")
            && nx.contains("MEE/NBS")
            && nx.contains("2023"),
        "{nx}"
    );
}

/// A fake powercap zone: `name`, `energy_uj`, `max_energy_range_uj`.
fn powercap_zone(root: &std::path::Path, id: &str, name: &str, uj: u64, max: u64) {
    let dir = root.join(id);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("name"), format!("{name}\n")).unwrap();
    std::fs::write(dir.join("energy_uj"), format!("{uj}\n")).unwrap();
    std::fs::write(dir.join("max_energy_range_uj"), format!("{max}\n")).unwrap();
}

#[test]
fn run_reads_rapl_counters_and_co2_sums_gpu_cpu_and_ram_apart() {
    let power = tempfile::tempdir().unwrap();
    let root = power.path();
    // The package counter wraps during the run: 143,328,850 µJ to the top, then 3,456,671,150.
    powercap_zone(
        root,
        "intel-rapl:0",
        "package-0",
        262_000_000_000,
        262_143_328_850,
    );
    powercap_zone(root, "intel-rapl:0:0", "core", 5, 262_143_328_850);
    powercap_zone(root, "intel-rapl:0:2", "dram", 1_000_000, 65_712_999_613);
    powercap_zone(root, "intel-rapl:1", "psys", 7, 262_143_328_850);
    let script = format!(
        "printf 3456671150 > '{0}/intel-rapl:0/energy_uj'; printf 7201000000 > '{0}/intel-rapl:0:2/energy_uj'; printf 99999 > '{0}/intel-rapl:0:0/energy_uj'",
        root.display()
    );
    let dir = RunDir::new();
    let out = cardfill()
        .current_dir(dir.path())
        .env("CARDFILL_POWERCAP_ROOT", root)
        .env("CARDFILL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
        .env_remove("SLURM_JOB_ID")
        .env_remove("LOCAL_RANK")
        .env_remove("TORCHELASTIC_RUN_ID")
        .args(["run", "--record", ".", "--", "sh", "-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let records: Vec<_> = std::fs::read_dir(dir.path().join(".cardfill"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let record: Value = serde_json::from_slice(&std::fs::read(&records[0]).unwrap()).unwrap();
    let cpu = &record["cpu_energy"];
    assert_eq!(cpu["method"], "rapl", "{record}");
    assert_eq!(cpu["cpu_joules"], 3600.0);
    assert_eq!(cpu["dram_joules"], 7200.0);
    assert_eq!(cpu["wraps"], 1);
    assert_eq!(
        cpu["zones"],
        serde_json::json!(["intel-rapl:0", "intel-rapl:0:2"])
    );

    // GPU estimated from the flags (T4, 70 W × 1 h = 0.07 kWh), CPU 0.001 kWh and RAM 0.002 kWh
    // measured: each apart with its source, summed, × PUE 1.56 × 56 g/kWh.
    let json = json_stdout(&dir.run(&[
        "inspect",
        ".",
        "--format",
        "json",
        "--hardware",
        "Tesla T4",
        "--count",
        "1",
        "--hours",
        "1",
        "--region",
        "FR",
    ]));
    let c = &json["carbon"];
    assert_eq!(c["energy_gpu_kwh"], 0.07, "{json}");
    assert_eq!(c["energy_cpu_kwh"], 0.001);
    assert_eq!(c["energy_ram_kwh"], 0.002);
    assert_eq!(c["energy_kwh"], 0.073);
    assert_eq!(c["co2_grams"], 6.4);
    let sources = &json["sources"];
    assert!(
        sources["carbon.energy_cpu_kwh"]
            .as_str()
            .unwrap()
            .contains("RAPL package"),
        "{sources}"
    );
    assert!(
        sources["carbon.energy_ram_kwh"]
            .as_str()
            .unwrap()
            .contains("RAPL DRAM"),
        "{sources}"
    );
    assert!(
        sources["carbon.energy_gpu_kwh"]
            .as_str()
            .unwrap()
            .contains("maximum board power"),
        "{sources}"
    );
    assert!(
        c["method"]
            .as_str()
            .unwrap()
            .contains("CPU measured (RAPL)"),
        "{c}"
    );
}

#[test]
fn run_records_amd_gpus_through_amd_smi_and_counts_dual_die_packages() {
    let build = tempfile::tempdir().unwrap();
    let lib = build.path().join("libamd_smi.so");
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("crates/cardfill-hardware/tests/amdsmi-stub/stub.c");
    let status = std::process::Command::new("gcc")
        .args(["-shared", "-fPIC", "-O1", "-o"])
        .arg(&lib)
        .arg(&source)
        .status()
        .expect("gcc runs");
    assert!(status.success());
    let dir = RunDir::new();
    let out = cardfill()
        .current_dir(dir.path())
        .env("CARDFILL_AMDSMI_LIBRARY", &lib)
        .env_remove("ROCR_VISIBLE_DEVICES")
        .env_remove("HIP_VISIBLE_DEVICES")
        .env("CARDFILL_NVML_LIBRARY", "/nonexistent/libnvidia-ml.so.1")
        .env("CARDFILL_POWERCAP_ROOT", "/nonexistent")
        .env_remove("SLURM_JOB_ID")
        .env_remove("LOCAL_RANK")
        .env_remove("TORCHELASTIC_RUN_ID")
        .args(["run", "--record", ".", "--", "true"])
        .output()
        .unwrap();
    assert!(out.status.success(), "stderr: {}", stderr(&out));
    let json = json_stdout(&dir.run(&["inspect", ".", "--format", "json", "--region", "FR"]));
    // Eight GCDs (four MI250X packages); the counters sit on the first die of each package:
    // 4 × 1530 J between the two reads.
    assert_eq!(json["hardware"]["gpu_count"], 8, "{json}");
    assert_eq!(json["hardware"]["gpus"][0]["name"], "AMD Instinct MI250X");
    assert_eq!(json["run"]["energy_method"], "measured");
    let kwh = json["run"]["energy_kwh"].as_f64().unwrap();
    assert!((kwh - 4.0 * 1530.0 / 3.6e6).abs() < 1e-5, "{kwh}");

    // Without measured energy the estimate counts packages, not dies: 4 × 560 W.
    let json = json_stdout(&run(&[
        "co2",
        "--hardware",
        "AMD Instinct MI250X",
        "--count",
        "4",
        "--hours",
        "1",
        "--intensity",
        "100",
        "--pue",
        "1",
        "--format",
        "json",
    ]));
    assert_eq!(json["carbon"]["energy_kwh"], 2.24);
}
