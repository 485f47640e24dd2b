//! Command-line arguments (clap derive). Doc comments here are the help text.

use std::ffi::OsString;
use std::path::PathBuf;

use clap::{Args as ClapArgs, Parser, Subcommand, ValueEnum};

/// Fill a Hugging Face model card from the evidence a training run leaves behind.
#[derive(Debug, Parser)]
#[command(name = "cardfill", version, about, max_term_width = 100)]
pub struct Args {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

impl Args {
    /// Parses `argv` building only the subcommand it names: clap would otherwise build every
    /// subcommand's arguments (and drop them) on every run, a fifth of a small run's
    /// instructions. `None` for anything but a clean parse (help, a mistake, no or an unknown
    /// subcommand): the caller parses again with the whole command line, so help and errors
    /// read exactly as before.
    pub fn try_parse_narrow(argv: &[OsString]) -> Option<Self> {
        fn one<A: clap::Args + clap::FromArgMatches>(
            name: &'static str,
            argv: &[OsString],
        ) -> Option<A> {
            let only = clap::Command::new("cardfill")
                .subcommand(A::augment_args(clap::Command::new(name)))
                .subcommand_required(true);
            let matches = only.try_get_matches_from(argv).ok()?;
            A::from_arg_matches(matches.subcommand_matches(name)?).ok()
        }
        let command = match argv.get(1)?.to_str()? {
            "inspect" => Command::Inspect(one("inspect", argv)?),
            "fill" => Command::Fill(one("fill", argv)?),
            "run" => Command::Run(one("run", argv)?),
            "probe" => Command::Probe(one("probe", argv)?),
            "co2" => Command::Co2(one("co2", argv)?),
            "regions" => Command::Regions(one("regions", argv)?),
            "push" => Command::Push(one("push", argv)?),
            "validate" => Command::Validate(one("validate", argv)?),
            _ => return None,
        };
        Some(Self { command })
    }

    /// Whether the command prints JSON on stdout (then a fatal error is a JSON object too).
    pub fn json_output(&self) -> bool {
        match &self.command {
            Command::Inspect(a) => a.format == Format::Json,
            Command::Co2(a) => a.format == Format::Json,
            Command::Regions(a) => a.format == Format::Json,
            Command::Probe(a) => a.format == Some(Format::Json),
            Command::Push(a) => a.format == Format::Json,
            Command::Fill(_) | Command::Run(_) | Command::Validate(_) => false,
        }
    }

    /// Whether the command sends requests: such a command line runs in `cardfill-online`
    /// (see `network`). `HF_HUB_OFFLINE` is left for that executable to honour.
    pub fn needs_network(&self) -> bool {
        match &self.command {
            Command::Inspect(a) => a.hub.from_hub.is_some() || a.evidence.needs_network(),
            Command::Fill(a) => a.hub.from_hub.is_some() || a.evidence.needs_network(),
            Command::Push(a) => !a.dry_run,
            Command::Validate(a) => a.online,
            Command::Run(_) | Command::Probe(_) | Command::Co2(_) | Command::Regions(_) => false,
        }
    }
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the facts found in a checkpoint directory, each with where it came from.
    #[command(
        after_help = "Examples:\n  cardfill inspect ./checkpoint\n  cardfill inspect ./checkpoint --format json\n  cardfill inspect ./checkpoint --hardware \"A100 PCIe 40GB\" --count 8 --hours 10 --region FR"
    )]
    Inspect(InspectArgs),
    /// Write the model card, or merge the facts into the existing one.
    #[command(
        after_help = "Examples:\n  cardfill fill ./checkpoint --dry-run\n  cardfill fill ./checkpoint --hours 12 --region aws:us-east-1\n  cardfill fill --from-hub org/model --out ./model-card"
    )]
    Fill(FillArgs),
    /// Run a training command and record its hardware, times and energy.
    #[command(
        after_help = "Examples:\n  cardfill run --record ./checkpoint -- python train.py --epochs 3\n  srun cardfill run --record ./checkpoint -- torchrun train.py"
    )]
    Run(RunArgs),
    /// Record this node's hardware and the job so far (one record per node, e.g. under srun).
    #[command(
        after_help = "Examples:\n  cardfill probe --record ./checkpoint\n  srun --ntasks-per-node=1 cardfill probe --record ./checkpoint --format json"
    )]
    Probe(ProbeArgs),
    /// Estimate CO2 emissions from hardware, hours and region.
    #[command(
        after_help = "Examples:\n  cardfill co2 --hardware \"A100 PCIe 40GB\" --count 8 --hours 100 --region aws:us-east-1\n  cardfill co2 --energy-kwh 37.5 --region FR --format json\n  cardfill co2 --hardware \"8x V100\" --hours 24 --intensity 300 --pue 1.2"
    )]
    Co2(Co2Args),
    /// List the grid intensity table, or the rows matching QUERY.
    #[command(
        after_help = "Examples:\n  cardfill regions\n  cardfill regions us-east\n  cardfill regions Quebec --format json"
    )]
    Regions(RegionsArgs),
    /// Upload a card and the files it links to (the training figure) to the Hub, in one commit.
    #[command(
        after_help = "Examples:\n  cardfill push ./checkpoint --repo org/model --dry-run\n  cardfill push ./checkpoint --repo org/model\n  cardfill fill --from-hub org/model --out ./card && cardfill push ./card --repo org/model --create-pr"
    )]
    Push(PushArgs),
    /// Check a model card's metadata as the Hub does.
    #[command(
        after_help = "Examples:\n  cardfill validate ./checkpoint/README.md\n  cardfill validate ./checkpoint/README.md --online"
    )]
    Validate(ValidateArgs),
}

/// Output format of commands that print facts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object on stdout.
    Json,
}

/// Where live grid intensity comes from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum IntensitySource {
    /// cardfill's embedded, sourced table (offline).
    #[default]
    Table,
    /// The Electricity Maps API (token in `ELECTRICITYMAPS_TOKEN`); falls back to the table.
    Electricitymaps,
}

/// The kind of training, for `co2_eq_emissions.training_type`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TrainingType {
    /// Trained from scratch.
    PreTraining,
    /// Trained from a base model.
    FineTuning,
}

/// Evidence about the run that files cannot give, and what cardfill may use to get more.
#[derive(Clone, Debug, Default, ClapArgs)]
pub struct EvidenceArgs {
    /// Wall-clock hours of the run (overrides every other evidence).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "HOURS",
        help_heading = "Run evidence"
    )]
    pub hours: Option<f64>,
    /// Start of the run, RFC 3339 (e.g. 2026-11-27T08:00:00Z).
    #[arg(long, value_name = "TIME", help_heading = "Run evidence")]
    pub start: Option<String>,
    /// End of the run, RFC 3339.
    #[arg(long, value_name = "TIME", help_heading = "Run evidence")]
    pub end: Option<String>,
    /// Hardware used, free text such as "A100 PCIe 40GB" (for runs that left no record).
    #[arg(long, value_name = "NAME", help_heading = "Run evidence")]
    pub hardware: Option<String>,
    /// Number of devices of --hardware.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "N",
        help_heading = "Run evidence"
    )]
    pub count: Option<u32>,
    /// Region of the grid: aws:us-east-1, gcp:europe-west4, azure:westeurope, FR, US-CA.
    #[arg(
        long,
        value_name = "REGION",
        env = "CARDFILL_REGION",
        help_heading = "Carbon"
    )]
    pub region: Option<String>,
    /// Power usage effectiveness of the data centre.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "PUE",
        help_heading = "Carbon"
    )]
    pub pue: Option<f64>,
    /// Grid intensity in g CO2eq/kWh (overrides the table).
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "G",
        help_heading = "Carbon"
    )]
    pub intensity: Option<f64>,
    /// Where grid intensity comes from.
    #[arg(long, value_enum, default_value_t, help_heading = "Carbon")]
    pub intensity_source: IntensitySource,
    /// Fraction of the power limit drawn, for estimates without measured energy.
    #[arg(
        long,
        allow_negative_numbers = true,
        value_name = "FRACTION",
        help_heading = "Carbon"
    )]
    pub utilization: Option<f64>,
    /// Market-based intensity in g CO2eq/kWh (supplier factor; 0 for matched renewables),
    /// reported beside the location-based figure.
    #[arg(long, value_name = "G", help_heading = "Carbon")]
    pub market_intensity: Option<f64>,
    /// Also report the GPUs' embodied emissions (manufacture, amortised), under their own key.
    #[arg(long, help_heading = "Carbon")]
    pub embodied: bool,
    /// Ask the cloud instance metadata services (AWS, Google, Azure) for provider and region.
    #[arg(long, help_heading = "Carbon")]
    pub detect_cloud: bool,
    /// Override the training type written in co2_eq_emissions.
    #[arg(long, value_enum, help_heading = "Carbon")]
    pub training_type: Option<TrainingType>,
    /// Allow network use (the Hub, live intensity). `HF_HUB_OFFLINE=1` always forbids it.
    #[arg(long, env = "CARDFILL_ONLINE", help_heading = "Network")]
    pub online: bool,
}

impl EvidenceArgs {
    /// `--online` (the Hub, live intensity) or `--detect-cloud` (instance metadata services).
    pub fn needs_network(&self) -> bool {
        self.online || self.detect_cloud
    }
}

/// A model already on the Hub, in place of a checkpoint directory (`inspect`, `fill`).
#[derive(Debug, Default, ClapArgs)]
pub struct HubSource {
    /// A model already on the Hub (ORG/NAME), read without downloading its weights: README,
    /// configs and weight headers by range requests. Implies --online; `fill` needs --out.
    #[arg(long, value_name = "ORG/NAME", help_heading = "From the Hub")]
    pub from_hub: Option<String>,
    /// The revision (branch, tag or commit) to read with --from-hub [default: main].
    #[arg(
        long,
        value_name = "REV",
        requires = "from_hub",
        help_heading = "From the Hub"
    )]
    pub revision: Option<String>,
}

/// `cardfill inspect`.
#[derive(Debug, ClapArgs)]
pub struct InspectArgs {
    /// The checkpoint directory.
    #[arg(required_unless_present = "from_hub", conflicts_with = "from_hub")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub hub: HubSource,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
    /// Exit 1 when any collector warned.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// `cardfill fill`.
#[derive(Debug, ClapArgs)]
pub struct FillArgs {
    /// The checkpoint directory.
    #[arg(required_unless_present = "from_hub", conflicts_with = "from_hub")]
    pub dir: Option<PathBuf>,
    #[command(flatten)]
    pub hub: HubSource,
    /// Where --from-hub writes the card (DIR/README.md) and its figure; created if missing.
    #[arg(
        long,
        value_name = "DIR",
        requires = "from_hub",
        help_heading = "From the Hub"
    )]
    pub out: Option<PathBuf>,
    /// The card to write or merge into [default: DIR/README.md].
    #[arg(long, value_name = "PATH")]
    pub card: Option<PathBuf>,
    /// A Jinja template (huggingface_hub's variable names) instead of cardfill's own.
    #[arg(long, value_name = "PATH")]
    pub template: Option<PathBuf>,
    /// Print the resulting card on stdout and write nothing.
    #[arg(long, conflicts_with = "check")]
    pub dry_run: bool,
    /// Write nothing; exit 1 if the card is out of date.
    #[arg(long)]
    pub check: bool,
    /// Replace values a person wrote, listing what was replaced.
    #[arg(long)]
    pub force: bool,
    /// Do not keep the previous card as `README.md.bak`.
    #[arg(long)]
    pub no_backup: bool,
    /// Exit 1 when any collector warned (the card is still written).
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub evidence: EvidenceArgs,
}

/// `cardfill run`.
#[derive(Debug, ClapArgs)]
pub struct RunArgs {
    /// The checkpoint directory; the run record goes into its `.cardfill/` (a directory named
    /// `.cardfill` is used as is) [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Seconds members of the command's process group still running when it exits get
    /// between SIGTERM and SIGKILL.
    #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
    pub grace_period: f64,
    /// The command to run, after `--`.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    pub command: Vec<OsString>,
}

/// `cardfill probe`.
#[derive(Debug, ClapArgs)]
pub struct ProbeArgs {
    /// The checkpoint directory; the node's record goes into its `.cardfill/` (a directory named
    /// `.cardfill` is used as is) [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub record: Option<PathBuf>,
    /// Print the record on stdout too.
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Open this node's training record (train begin; used by the Python integrations).
    #[arg(long, conflicts_with = "end")]
    pub begin: bool,
    /// Close this node's training record (train end), found by `CARDFILL_RUN_KEY`, the Slurm
    /// job or the torchelastic run.
    #[arg(long)]
    pub end: bool,
    /// What the training process knows, a JSON object (`-`: standard input): with --end, the
    /// record closes with it; alone, it replaces the facts of the node's training record.
    #[arg(long, value_name = "FILE", conflicts_with = "begin")]
    pub training: Option<PathBuf>,
}

/// `cardfill co2`.
#[derive(Debug, ClapArgs)]
pub struct Co2Args {
    /// Hardware, free text such as "A100 PCIe 40GB" or "8x V100".
    #[arg(long, value_name = "NAME")]
    pub hardware: Option<String>,
    /// Number of devices.
    #[arg(long, allow_negative_numbers = true, value_name = "N")]
    pub count: Option<u32>,
    /// Hours used.
    #[arg(long, allow_negative_numbers = true, value_name = "HOURS")]
    pub hours: Option<f64>,
    /// Measured energy in kWh, instead of hardware × hours.
    #[arg(long, allow_negative_numbers = true, value_name = "KWH")]
    pub energy_kwh: Option<f64>,
    /// Region of the grid.
    #[arg(long, value_name = "REGION", env = "CARDFILL_REGION")]
    pub region: Option<String>,
    /// Power usage effectiveness.
    #[arg(long, allow_negative_numbers = true)]
    pub pue: Option<f64>,
    /// Grid intensity in g CO2eq/kWh (overrides the table).
    #[arg(long, allow_negative_numbers = true, value_name = "G")]
    pub intensity: Option<f64>,
    /// Fraction of the power limit drawn.
    #[arg(long, allow_negative_numbers = true, value_name = "FRACTION")]
    pub utilization: Option<f64>,
    /// What --energy-kwh covers: `it` (the devices; PUE applied) or `facility` (the data centre
    /// already included; no PUE).
    #[arg(long, value_enum, default_value_t)]
    pub energy_scope: EnergyScope,
    /// Market-based intensity in g CO2eq/kWh (supplier factor; 0 for matched renewables),
    /// reported beside the location-based figure.
    #[arg(long, value_name = "G")]
    pub market_intensity: Option<f64>,
    /// Also report the GPUs' embodied emissions (manufacture, amortised), never added to the
    /// headline figure.
    #[arg(long)]
    pub embodied: bool,
    /// Print the working, line by line: every input, its source, and each step.
    #[arg(long)]
    pub explain: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// What an energy figure covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EnergyScope {
    /// The devices only: the PUE is applied on top.
    #[default]
    It,
    /// The whole data centre already: no PUE on top.
    Facility,
}

/// `cardfill regions`.
#[derive(Debug, ClapArgs)]
pub struct RegionsArgs {
    /// Part of a region key or name (`us-east`, `FR`, `Quebec`).
    pub query: Option<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

/// `cardfill validate`.
#[derive(Debug, ClapArgs)]
pub struct ValidateArgs {
    /// The model card.
    pub card: PathBuf,
    /// Also ask the Hub's validation endpoint.
    #[arg(long, env = "CARDFILL_ONLINE")]
    pub online: bool,
}

/// `cardfill push`.
#[derive(Debug, ClapArgs)]
pub struct PushArgs {
    /// The directory holding the card (README.md) and the files it links to.
    pub dir: PathBuf,
    /// The model repository on the Hub.
    #[arg(long, value_name = "ORG/NAME")]
    pub repo: String,
    /// The branch to commit to, or the base of the pull request [default: main].
    #[arg(long, value_name = "REV")]
    pub revision: Option<String>,
    /// Open a pull request instead of committing to the branch; prints its URL.
    #[arg(long)]
    pub create_pr: bool,
    /// The commit's title [default: "Update the model card with cardfill"].
    #[arg(long, value_name = "TEXT")]
    pub message: Option<String>,
    /// List what would be committed, and the message; send nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send a card the Hub's rules reject.
    #[arg(long)]
    pub force: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t)]
    pub format: Format,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::Args;

    fn argv(line: &str) -> Vec<std::ffi::OsString> {
        line.split(' ').map(Into::into).collect()
    }

    #[test]
    fn the_narrow_parse_gives_what_the_whole_command_line_gives() {
        for line in [
            "cardfill inspect ./ck",
            "cardfill inspect ./ck --format json --hours 3 --region FR --online",
            "cardfill inspect --from-hub org/m --revision v1",
            "cardfill fill ./ck --dry-run --hardware 8x_V100 --count 8 --pue 1.1",
            "cardfill fill --from-hub org/m --out card --check",
            "cardfill run --record ./ck -- python train.py --epochs 3",
            "cardfill probe --record ./ck --format json",
            "cardfill co2 --energy-kwh 37.5 --region FR --format json --explain",
            "cardfill regions us-east",
            "cardfill push ./card --repo org/m --create-pr --message hi",
            "cardfill validate ./ck/README.md --online",
        ] {
            let narrow = Args::try_parse_narrow(&argv(line)).expect(line);
            let whole = Args::try_parse_from(argv(line)).expect(line);
            assert_eq!(format!("{narrow:?}"), format!("{whole:?}"), "{line}");
        }
    }

    #[test]
    fn help_mistakes_and_unknown_subcommands_go_to_the_whole_parse() {
        for line in [
            "cardfill",
            "cardfill --help",
            "cardfill inspect --help",
            "cardfill inspect ./ck --format yaml",
            "cardfill inspect",
            "cardfill inspekt ./ck",
            "cardfill fill ./ck --from-hub org/m",
            "cardfill push ./card",
        ] {
            assert!(Args::try_parse_narrow(&argv(line)).is_none(), "{line}");
        }
    }
}
