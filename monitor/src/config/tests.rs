use std::io::Write as _;

use clap::Parser as _;

use super::*;

fn cli(args: &[&str]) -> Cli {
    Cli::try_parse_from(std::iter::once("monitor").chain(args.iter().copied())).expect("parse")
}

/// Writes `text` as a configuration file and loads it with `args`.
fn load_with(text: &str, args: &[&str]) -> Result<Settings, ConfigError> {
    let mut file = tempfile::NamedTempFile::new().expect("temp file");
    file.write_all(text.as_bytes()).expect("write");
    let path = file.path().to_str().expect("utf-8").to_owned();
    let mut all = vec!["--config", path.as_str()];
    all.extend_from_slice(args);
    load(&cli(&all))
}

fn error_of(text: &str) -> String {
    load_with(text, &[])
        .expect_err("the file must be rejected")
        .to_string()
}

#[test]
fn an_empty_file_gives_the_defaults() {
    let s = load_with("", &[]).expect("load");
    assert_eq!(
        Settings {
            source: None,
            ..s.clone()
        },
        Settings::default()
    );
    assert!(s.source.is_some(), "the file is named as the source");
    assert_eq!(s.outputs, vec![Output::Journald]);
    assert!(s.builtin_rules && s.syslog_watch && s.metrics_listen.is_none());
}

#[test]
fn every_key_is_read() {
    let text = r#"
output = ["stdout", "journald", "stdout"]
print_events = true
builtin_rules = true
rules = ["rules.d", "/abs/rule.toml"]
argv_limit = 4096
ring_buffer_size = 16777216
btf = "/tmp/vmlinux"
syslog_watch = false
max_processes = 2048
stats_interval = 5
metrics_listen = "127.0.0.1:9464"
"#;
    let s = load_with(text, &[]).expect("load");
    let dir = s.source.as_ref().unwrap().parent().unwrap().to_path_buf();
    assert_eq!(s.outputs, vec![Output::Stdout, Output::Journald]);
    assert!(s.print_events && s.builtin_rules && !s.syslog_watch);
    assert_eq!(
        s.rules,
        vec![dir.join("rules.d"), PathBuf::from("/abs/rule.toml")],
        "relative rule paths are read from the file's directory"
    );
    assert_eq!(
        (s.argv_limit, s.ring_buffer_size, s.max_processes),
        (4096, 16 << 20, 2048)
    );
    assert_eq!(s.stats_interval, 5);
    assert_eq!(s.btf, PathBuf::from("/tmp/vmlinux"));
    assert_eq!(s.metrics_listen, Some("127.0.0.1:9464".parse().unwrap()));
}

#[test]
fn flags_win_over_the_file() {
    let text = "argv_limit = 4096\noutput = [\"journald\"]\nrules = [\"/r\"]\n";
    let s = load_with(
        text,
        &[
            "--argv-limit",
            "8192",
            "--output",
            "stdout",
            "--no-syslog-watch",
            "--builtin-rules",
        ],
    )
    .expect("load");
    assert_eq!(s.argv_limit, 8192);
    assert_eq!(s.outputs, vec![Output::Stdout]);
    assert!(!s.syslog_watch);
    assert!(
        s.builtin_rules,
        "--builtin-rules adds them to the file's rules"
    );
    assert_eq!(s.rules, vec![PathBuf::from("/r")]);
}

#[test]
fn rule_files_replace_the_built_in_rules_unless_both_are_asked_for() {
    let s = load_with("rules = [\"/r\"]\n", &[]).expect("load");
    assert!(!s.builtin_rules);
    let s = load_with("rules = [\"/r\"]\nbuiltin_rules = true\n", &[]).expect("load");
    assert!(s.builtin_rules);
    let s = load_with("", &["--rules", "/x"]).expect("load");
    assert!(!s.builtin_rules && s.rules == vec![PathBuf::from("/x")]);
    let s = load_with("", &["--no-builtin-rules"]).expect("load");
    assert!(!s.builtin_rules);
}

#[test]
fn an_unknown_key_is_named_with_its_line() {
    let err = error_of("argv_limit = 4096\nargv_limt = 4096\n");
    assert!(err.contains(":2:1: "), "{err}");
    assert!(err.contains("unknown field `argv_limt`"), "{err}");
    assert!(
        err.contains("argv_limit"),
        "the expected keys are listed: {err}"
    );
}

#[test]
fn bad_values_are_named_with_their_place() {
    let cases = [
        (
            "argv_limit = 12\n",
            ":1:14: ",
            "out of range: 256 to 131072",
        ),
        ("\n\nmax_processes = 5\n", ":3:17: ", "out of range"),
        ("stats_interval = 0\n", ":1:18: ", "out of range"),
        ("ring_buffer_size = 1000\n", ":1:20: ", "not a power of two"),
        (
            "ring_buffer_size = 2147483648\n",
            ":1:20: ",
            "from 4096 bytes to 1 GiB",
        ),
        ("output = []\n", ":1:10: ", "alerts would go nowhere"),
        (
            "output = [\"syslog\"]\n",
            ":1:11: ",
            "unknown variant `syslog`",
        ),
        (
            "metrics_listen = \"localhost\"\n",
            ":1:18: ",
            "not an address",
        ),
        ("print_events = \"yes\"\n", ":1:16: ", "invalid type"),
        ("argv_limit = -1\n", ":1:14: ", ""),
        ("rules = \"/one\"\n", ":1:9: ", "invalid type"),
        ("argv_limit = \n", ":1:", ""),
    ];
    for (text, place, message) in cases {
        let err = error_of(text);
        assert!(err.contains(place), "{text:?}: {err}");
        assert!(err.contains(message), "{text:?}: {err}");
        assert!(err.starts_with('/'), "the file is named first: {err}");
    }
}

#[test]
fn a_missing_file_is_an_error_only_when_named() {
    let err = load(&cli(&["--config", "/nonexistent/monitor.toml"]))
        .expect_err("missing")
        .to_string();
    assert!(err.contains("/nonexistent/monitor.toml"), "{err}");
    assert!(err.contains("cannot read"), "{err}");
}

#[test]
fn the_shipped_file_loads_and_matches_the_defaults() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.toml");
    let s = load(&cli(&["--config", path])).expect("the shipped file loads");
    assert_eq!(
        Settings {
            rules: Vec::new(),
            source: None,
            ..s.clone()
        },
        Settings::default(),
        "the shipped file only adds the rules directory"
    );
    assert!(s.builtin_rules);
    assert_eq!(s.rules, vec![PathBuf::from("/etc/monitor/rules.d")]);
}

#[test]
fn restart_only_changes_are_listed() {
    let a = Settings::default();
    let b = Settings {
        argv_limit: 1024,
        rules: vec![PathBuf::from("/r")],
        metrics_listen: Some("127.0.0.1:1".parse().unwrap()),
        ..Settings::default()
    };
    assert_eq!(
        a.restart_only_changes(&b),
        vec!["argv_limit", "metrics_listen"]
    );
    assert!(a.restart_only_changes(&a).is_empty());
}

#[test]
fn printed_settings_read_back_the_same() {
    let s = load_with(
        "output = [\"stdout\"]\nrules = [\"/r\"]\nmetrics_listen = \"[::1]:9\"\n",
        &["--argv-limit", "1024"],
    )
    .expect("load");
    let text = toml::to_string(&s).expect("serialize");
    let again = load_with(&text, &[]).expect("the printed settings load");
    assert_eq!(
        Settings {
            source: None,
            ..again
        },
        Settings { source: None, ..s },
        "{text}"
    );
}

#[test]
fn columns_count_characters() {
    assert_eq!(line_and_column("ab\ncé x", 7), (2, 4));
    assert_eq!(line_and_column("", 0), (1, 1));
}
