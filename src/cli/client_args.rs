//! The clap types of the commands that talk to a server or wrap a job: `run`, `push`,
//! `monitor`, `channel`, `key`, `events`, `export`, and the helpers `completions`, `man` and
//! `copy-binary` (`docs/cli.md`). Values stay as the user wrote them, except
//! durations and choices clap can check; `client` resolves the server, the token and
//! the config file from flags, `PUSHMON_*` variables and the file.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};

/// The commands besides `serve` and `check`, flattened into `pushmon`'s own list.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Run a command and report its start, exit status and output to a monitor.
    ///
    /// Sends a start with a fresh run id, runs the command with its input and output
    /// passed through, then sends its exit status (or the signal that killed it) with
    /// the end of its output, and exits with the command's own status (128+N for a
    /// signal, 124 after --timeout). An unreachable server never changes the outcome:
    /// pushes are retried, then given up with a warning on standard error.
    Run(RunArgs),
    /// Send one heartbeat (for scripts and containers without curl).
    Push(PushArgs),
    /// List, show, create, change, pause, resume, mute, unmute, re-token and delete monitors.
    Monitor(MonitorArgs),
    /// List, create, test and delete alert channels.
    Channel(ChannelArgs),
    /// List, create and revoke API keys (needs the admin token).
    Key(KeyArgs),
    /// Show a monitor's history, newest first.
    Events(EventsArgs),
    /// Print every monitor and channel as a monitors file (YAML).
    Export(ExportArgs),
    /// Print a shell completion script.
    Completions(CompletionsArgs),
    /// Print the manual page, or write one page per command into a directory.
    Man(ManArgs),
    /// Copy this binary into a directory (for a Kubernetes init container).
    CopyBinary(CopyBinaryArgs),
}

/// Where `run` and `push` find the server when they are given a token, not a URL.
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Server")]
pub struct ServerArgs {
    /// Base URL of the pushmon server, e.g. https://pushmon.example.com [env:
    /// PUSHMON_URL] [default: the config file's `server`, else http://127.0.0.1:8080]
    #[arg(long, value_name = "URL")]
    pub server: Option<String>,
    /// The command line's config file [env: PUSHMON_CONFIG] [default:
    /// ~/.config/pushmon/cli.toml if it exists]
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `pushmon run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The monitor's ping URL: `<server>/ping/<token>`, a slug URL, or its push URL
    /// `<server>/api/push/<token>` [env: PUSHMON_PING_URL]
    #[arg(long, value_name = "URL", conflicts_with_all = ["token", "server"])]
    pub url: Option<String>,
    /// The monitor's push token; the URL is `<server>/ping/<token>` [env:
    /// PUSHMON_PUSH_TOKEN]
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Stop the command after this long (SIGTERM, then SIGKILL after --kill-after) and
    /// report a failure, e.g. 90s, 30m, 2h [default: no limit]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// After --timeout's SIGTERM, wait this long before SIGKILL
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "10s")]
    pub kill_after: Duration,
    /// Bytes of the end of the command's combined output sent with its outcome; never
    /// more than the server's Ping-Body-Limit
    #[arg(long, value_name = "BYTES", default_value_t = 10_000)]
    pub tail_bytes: usize,
    /// How long each report may be retried while the server is unreachable
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub retry_for: Duration,
    /// The instance of a fleet monitor this run is (its host or pod name, say), sent
    /// as `instance=` with every report
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// The command and its arguments, after `--`
    #[arg(
        required = true,
        num_args = 1..,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "COMMAND"
    )]
    pub command: Vec<String>,
}

/// A heartbeat's status (`docs/push.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PushStatus {
    Up,
    Down,
}

impl PushStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Down => "down",
        }
    }
}

/// Flags of `pushmon push`.
#[derive(Debug, Args)]
pub struct PushArgs {
    /// The monitor's push URL, or its push token (then the URL is
    /// `<server>/api/push/<token>`)
    #[arg(value_name = "URL_OR_TOKEN")]
    pub target: String,
    #[command(flatten)]
    pub server: ServerArgs,
    /// `down` marks the monitor down at once [default: up]
    #[arg(long, value_enum)]
    pub status: Option<PushStatus>,
    /// A message kept with the heartbeat (at most 1024 bytes are kept)
    #[arg(long, value_name = "TEXT")]
    pub msg: Option<String>,
    /// A number to track (duration, row count, free disk…)
    #[arg(long, value_name = "NUMBER", allow_hyphen_values = true)]
    pub value: Option<f64>,
    /// The instance of a fleet monitor the heartbeat comes from (its host or pod name,
    /// say)
    #[arg(long, value_name = "NAME")]
    pub instance: Option<String>,
    /// How long the push may be retried while the server is unreachable
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, default_value = "60s")]
    pub retry_for: Duration,
}

/// How the management commands print answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// Tables and `field: value` lines
    #[default]
    Human,
    /// The server's JSON, as it answered
    Json,
}

/// The server, credentials and output format of the management commands; accepted
/// before or after the subcommand (`pushmon monitor -o json list`).
#[derive(Debug, Default, Args)]
#[command(next_help_heading = "Server and output")]
pub struct ApiArgs {
    /// Base URL of the pushmon server, e.g. https://pushmon.example.com [env:
    /// PUSHMON_URL] [default: the config file's `server`, else http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    pub server: Option<String>,
    /// The admin token or an API key; prefer --token-file or PUSHMON_TOKEN, since
    /// other users can see a process's flags [env: PUSHMON_TOKEN]
    #[arg(long, global = true, value_name = "SECRET")]
    pub token: Option<String>,
    /// A file holding the admin token or an API key [env: PUSHMON_TOKEN_FILE]
    #[arg(long, global = true, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The command line's config file [env: PUSHMON_CONFIG] [default:
    /// ~/.config/pushmon/cli.toml if it exists]
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// `json` prints the server's answer as it is, for scripts
    #[arg(long, short = 'o', global = true, value_enum, default_value_t)]
    pub output: OutputFormat,
}

/// `pushmon monitor …`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: MonitorCommand,
}

/// A monitor's id, or its name when exactly one monitor has it.
pub type MonitorRef = String;

#[derive(Debug, Subcommand)]
pub enum MonitorCommand {
    /// List monitors: every one, or those the filters find.
    List(MonitorListArgs),
    /// Show one monitor, with its push URL.
    Show {
        /// The monitor's id or name
        #[arg(value_name = "MONITOR")]
        monitor: MonitorRef,
    },
    /// Create a monitor; prints it with its push URL.
    Create(MonitorCreateArgs),
    /// Change a monitor's name, timeout, interval, channels or tags.
    Update(MonitorUpdateArgs),
    /// Change every monitor a label selector finds at once, all or none; prints what
    /// changed (or, with --dry-run, what would).
    Bulk(MonitorBulkArgs),
    /// Pause a monitor: it neither goes down nor alerts until resumed.
    Pause {
        /// The monitor's id or name
        #[arg(value_name = "MONITOR")]
        monitor: MonitorRef,
    },
    /// Resume a paused monitor (it becomes pending).
    Resume {
        /// The monitor's id or name
        #[arg(value_name = "MONITOR")]
        monitor: MonitorRef,
    },
    /// Mute a monitor, or every monitor a selector finds: its state is still tracked
    /// and shown, but nothing is sent.
    Mute {
        /// The monitor's id or name
        #[arg(
            value_name = "MONITOR",
            required_unless_present = "selector",
            conflicts_with = "selector"
        )]
        monitor: Option<MonitorRef>,
        /// Every monitor this label selector finds instead, e.g. 'team=payments'
        /// ('' for all)
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
        /// Until this time (RFC 3339, such as 2026-12-01T08:00:00Z)
        #[arg(
            long,
            value_name = "TIME",
            conflicts_with = "until_recovery",
            required_unless_present = "until_recovery"
        )]
        until: Option<String>,
        /// Until the monitor's next recovery ("acknowledged")
        #[arg(long)]
        until_recovery: bool,
    },
    /// End a monitor's mute, or that of every monitor a selector finds.
    Unmute {
        /// The monitor's id or name
        #[arg(
            value_name = "MONITOR",
            required_unless_present = "selector",
            conflicts_with = "selector"
        )]
        monitor: Option<MonitorRef>,
        /// Every monitor this label selector finds instead ('' for all)
        #[arg(long, short = 'l', value_name = "SELECTOR")]
        selector: Option<String>,
    },
    /// Give a monitor a new push token; the old one stops working at once.
    RotateToken {
        /// The monitor's id or name
        #[arg(value_name = "MONITOR")]
        monitor: MonitorRef,
    },
    /// Delete a monitor.
    Delete {
        /// The monitor's id or name
        #[arg(value_name = "MONITOR")]
        monitor: MonitorRef,
    },
}

/// Flags of `pushmon monitor list`: each given filter must hold.
#[derive(Debug, Args)]
pub struct MonitorListArgs {
    /// A label selector, e.g. 'team=payments,env!=dev' or 'env in (prod,staging)'
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: Option<String>,
    /// A state (pending, up, down, paused); repeat, or separate with commas, for any of several
    #[arg(long = "status", value_name = "STATUS")]
    pub statuses: Vec<String>,
    /// Text the name contains, whatever its case
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// A tag the monitor has; repeat for all of several
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
}

/// What `pushmon monitor bulk` does to each monitor it finds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BulkAction {
    Pause,
    Resume,
    Mute,
    Unmute,
    SetChannels,
    AddChannels,
    RemoveChannels,
    Delete,
}

impl BulkAction {
    /// The API's name of the action.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Mute => "mute",
            Self::Unmute => "unmute",
            Self::SetChannels => "set_channels",
            Self::AddChannels => "add_channels",
            Self::RemoveChannels => "remove_channels",
            Self::Delete => "delete",
        }
    }
}

/// Flags of `pushmon monitor bulk`.
#[derive(Debug, Args)]
pub struct MonitorBulkArgs {
    /// What to do to each monitor found
    #[arg(value_name = "ACTION")]
    pub action: BulkAction,
    /// The label selector that finds the monitors, e.g. 'team=payments' ('' for all)
    #[arg(long, short = 'l', value_name = "SELECTOR")]
    pub selector: String,
    /// For the channel actions: a channel by id or name; repeat for several
    #[arg(long = "channel", value_name = "CHANNEL")]
    pub channels: Vec<String>,
    /// For mute: until this time (RFC 3339)
    #[arg(long, value_name = "TIME", conflicts_with = "until_recovery")]
    pub until: Option<String>,
    /// For mute: until each monitor's next recovery
    #[arg(long)]
    pub until_recovery: bool,
    /// Show what would change, and change nothing
    #[arg(long)]
    pub dry_run: bool,
}

/// Flags of `pushmon monitor create`.
#[derive(Debug, Args)]
pub struct MonitorCreateArgs {
    /// The monitor's name
    pub name: String,
    /// Down when no heartbeat comes for this long, e.g. 90, 90s, 25h (whole seconds)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Duration,
    /// How often the job runs (informational) [default: the timeout]
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// A channel to alert, by id or name; repeat for several
    #[arg(long = "channel", value_name = "CHANNEL")]
    pub channels: Vec<String>,
    /// A tag; repeat for several
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// A label, e.g. team=payments; repeat for several
    #[arg(long = "label", value_name = "KEY=VALUE", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// How grave the monitor's alerts are [default: critical]
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<Severity>,
    /// Take pushes only from this address or CIDR range; repeat for several
    #[arg(long = "allowed-source", value_name = "CIDR")]
    pub allowed_sources: Vec<String>,
    /// Take only pushes signed with the secret in this file (16 to 256 characters)
    #[arg(long, value_name = "FILE")]
    pub signing_secret_file: Option<std::path::PathBuf>,
}

/// Flags of `pushmon monitor update`: only what is given changes.
#[derive(Debug, Args)]
pub struct MonitorUpdateArgs {
    /// The monitor's id or name
    #[arg(value_name = "MONITOR")]
    pub monitor: MonitorRef,
    /// A new name
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// A new timeout (whole seconds)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,
    /// A new interval (whole seconds)
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub interval: Option<Duration>,
    /// Replace the channels with these, by id or name; repeat for several
    #[arg(
        long = "channel",
        value_name = "CHANNEL",
        conflicts_with = "no_channels"
    )]
    pub channels: Vec<String>,
    /// Remove every channel
    #[arg(long)]
    pub no_channels: bool,
    /// Replace the tags with these; repeat for several
    #[arg(long = "tag", value_name = "TAG", conflicts_with = "no_tags")]
    pub tags: Vec<String>,
    /// Remove every tag
    #[arg(long)]
    pub no_tags: bool,
    /// Replace the labels with these, e.g. team=payments; repeat for several
    #[arg(
        long = "label",
        value_name = "KEY=VALUE",
        value_parser = parse_label,
        conflicts_with = "no_labels"
    )]
    pub labels: Vec<(String, String)>,
    /// Remove every label
    #[arg(long)]
    pub no_labels: bool,
    /// A new severity
    #[arg(long, value_name = "SEVERITY")]
    pub severity: Option<Severity>,
    /// Replace the allowed sources with these addresses or CIDR ranges; repeat for
    /// several
    #[arg(
        long = "allowed-source",
        value_name = "CIDR",
        conflicts_with = "any_source"
    )]
    pub allowed_sources: Vec<String>,
    /// Take pushes from any source again
    #[arg(long)]
    pub any_source: bool,
    /// Require pushes signed with the secret in this file (16 to 256 characters)
    #[arg(long, value_name = "FILE", conflicts_with = "no_signing_secret")]
    pub signing_secret_file: Option<std::path::PathBuf>,
    /// Stop requiring signed pushes
    #[arg(long)]
    pub no_signing_secret: bool,
}

/// How grave a monitor's alerts are (`docs/alerts.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Severity {
    Critical,
    Warning,
    Info,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Critical => "critical",
            Self::Warning => "warning",
            Self::Info => "info",
        }
    }
}

/// `KEY=VALUE`, split at the first `=`; the server checks the key and the value.
pub fn parse_label(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

/// `pushmon channel …`.
#[derive(Debug, Args)]
pub struct ChannelArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: ChannelCommand,
}

/// A channel kind (`docs/alerts.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ChannelKind {
    Webhook,
    Slack,
    Discord,
    Email,
    Alertmanager,
    Template,
    Teams,
    Telegram,
    Pagerduty,
    Opsgenie,
    Ntfy,
    Gotify,
    Pushover,
    Matrix,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Slack => "slack",
            Self::Discord => "discord",
            Self::Email => "email",
            Self::Alertmanager => "alertmanager",
            Self::Template => "template",
            Self::Teams => "teams",
            Self::Telegram => "telegram",
            Self::Pagerduty => "pagerduty",
            Self::Opsgenie => "opsgenie",
            Self::Ntfy => "ntfy",
            Self::Gotify => "gotify",
            Self::Pushover => "pushover",
            Self::Matrix => "matrix",
        }
    }
}

/// Which alerts a channel is told about (`docs/alerts.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum SendOn {
    Both,
    Down,
    Up,
}

impl SendOn {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Both => "both",
            Self::Down => "down",
            Self::Up => "up",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum ChannelCommand {
    /// List every channel.
    List,
    /// Create a channel.
    Create(Box<ChannelCreateArgs>),
    /// Send a test message through a channel now.
    Test {
        /// The channel's id or name
        #[arg(value_name = "CHANNEL")]
        channel: String,
    },
    /// Delete a channel (it is also taken off every monitor).
    Delete {
        /// The channel's id or name
        #[arg(value_name = "CHANNEL")]
        channel: String,
    },
}

/// Flags of `pushmon channel create`; which apply depends on `--kind`.
#[derive(Debug, Args)]
pub struct ChannelCreateArgs {
    /// The channel's name
    pub name: String,
    #[arg(long, value_enum)]
    pub kind: ChannelKind,
    /// Which alerts it is told about: both (the default), down or up
    #[arg(long, value_enum, value_name = "WHICH")]
    pub send_on: Option<SendOn>,
    /// Where to post (webhook, slack, discord, template, teams; alertmanager, gotify,
    /// matrix: the server's base URL; ntfy: the topic's URL)
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Signs each webhook body
    #[arg(long, value_name = "SECRET")]
    pub secret: Option<String>,
    /// email: smtp://host:port, smtps://user:pass@host …
    #[arg(long, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// email: the sender's address
    #[arg(long, value_name = "ADDRESS")]
    pub from: Option<String>,
    /// email: a recipient; repeat for several
    #[arg(long, value_name = "ADDRESS")]
    pub to: Vec<String>,
    /// template: POST (the default), PUT, PATCH or GET
    #[arg(long, value_name = "METHOD")]
    pub method: Option<String>,
    /// template: a header, `Name: value`; repeat for several
    #[arg(long = "header", value_name = "HEADER")]
    pub headers: Vec<String>,
    /// template: the body template ({{event}}, {{monitor.name}} …)
    #[arg(long, value_name = "TEMPLATE")]
    pub body: Option<String>,
    /// telegram: the bot's token
    #[arg(long, value_name = "TOKEN")]
    pub bot_token: Option<String>,
    /// telegram: the chat's id or a channel's @username
    #[arg(long, value_name = "CHAT", allow_negative_numbers = true)]
    pub chat_id: Option<String>,
    /// telegram, pagerduty, opsgenie, pushover: the service's API elsewhere
    #[arg(long, value_name = "URL")]
    pub api_url: Option<String>,
    /// pagerduty: an Events API v2 integration's key
    #[arg(long, value_name = "KEY")]
    pub routing_key: Option<String>,
    /// opsgenie: an API integration's key
    #[arg(long, value_name = "KEY")]
    pub api_key: Option<String>,
    /// opsgenie (P1 … P5), ntfy, gotify, pushover: a down's priority
    #[arg(long, value_name = "PRIORITY", allow_negative_numbers = true)]
    pub priority: Option<String>,
    /// ntfy: an access token
    #[arg(long, value_name = "TOKEN")]
    pub token: Option<String>,
    /// gotify, pushover: the application's token
    #[arg(long, value_name = "TOKEN")]
    pub app_token: Option<String>,
    /// pushover: the user's or group's key
    #[arg(long, value_name = "KEY")]
    pub user_key: Option<String>,
    /// matrix: the posting account's access token
    #[arg(long, value_name = "TOKEN")]
    pub access_token: Option<String>,
    /// matrix: the room's id, !…:server
    #[arg(long, value_name = "ROOM")]
    pub room_id: Option<String>,
}

/// `pushmon key …`.
#[derive(Debug, Args)]
pub struct KeyArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    #[command(subcommand)]
    pub command: KeyCommand,
}

/// An API key's scope (`docs/api.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KeyScope {
    Read,
    Write,
}

impl KeyScope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List every API key (without secrets).
    List,
    /// Create an API key; its secret is shown this once.
    Create {
        /// The key's name
        name: String,
        /// `read` may only read; `write` may change monitors and channels
        #[arg(long, value_enum, default_value = "read")]
        scope: KeyScope,
    },
    /// Revoke an API key.
    Revoke {
        /// The key's id or name
        #[arg(value_name = "KEY")]
        key: String,
    },
}

/// Flags of `pushmon events`.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The monitor's id or name
    #[arg(value_name = "MONITOR")]
    pub monitor: MonitorRef,
    /// How many events, 1 to 1000 [default: the server's, 100]
    #[arg(long, value_name = "N")]
    pub limit: Option<u32>,
    /// Only events older than this seq (the next page)
    #[arg(long, value_name = "SEQ")]
    pub before: Option<u64>,
}

/// Flags of `pushmon export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// Include push tokens and channel credentials (needs the admin token)
    #[arg(long)]
    pub secrets: bool,
}

/// Flags of `pushmon completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Flags of `pushmon man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write pushmon.1 and one page per command (pushmon-monitor-list.1 …) into this
    /// directory instead of printing pushmon.1
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Flags of `pushmon copy-binary`.
#[derive(Debug, Args)]
pub struct CopyBinaryArgs {
    /// The directory to copy the binary into, as `<DIR>/pushmon`
    #[arg(value_name = "DIR")]
    pub dir: PathBuf,
}

/// A duration: a whole number of seconds (`90`), or with units (`90s`, `30m`, `2h`,
/// `1h 30m`, `500ms`).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(seconds) = text.parse::<u64>() {
        return Ok(Duration::from_secs(seconds));
    }
    humantime::parse_duration(text)
        .map_err(|error| format!("{text:?} is not a duration such as 90, 90s, 30m or 2h ({error})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_seconds_or_have_units() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("-5").is_err());
        assert!(parse_duration("").is_err());
    }
}
