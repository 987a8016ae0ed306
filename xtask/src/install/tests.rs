//! Install and uninstall into a temporary stage, as a packager would.

use std::fs;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use super::*;

/// A directory under the system's temporary directory, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let dir =
            std::env::temp_dir().join(format!("xtask-{name}-{}-{nanos:x}", std::process::id()));
        fs::create_dir_all(&dir).expect("create scratch directory");
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_owned()
}

/// The workspace's own unit, drop-in and configuration, with a stand-in
/// for the binary (so that the test needs no release build).
fn sources(scratch: &Scratch) -> Sources {
    let binary = scratch.0.join("monitor-binary");
    fs::write(&binary, b"\x7fELF stand-in").expect("write stand-in binary");
    Sources::in_workspace(&workspace_root(), binary)
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn install_twice_keeps_the_configuration_and_uninstall_removes_the_rest() {
    let scratch = Scratch::new("install");
    let sources = sources(&scratch);
    let stage = scratch.0.join("stage");
    let layout = Layout::new(Path::new("/opt/mon"), Some(&stage)).expect("layout");

    let first = install(&sources, &layout).expect("first install");
    let binary = stage.join("opt/mon/bin/monitor");
    let unit = stage.join("opt/mon/lib/systemd/system/monitor.service");
    let drop_in = stage.join("opt/mon/share/doc/monitor/metrics.conf");
    let config = stage.join("etc/monitor/monitor.toml");
    let rules = stage.join("etc/monitor/rules.d");
    assert_eq!(mode(&binary), 0o755);
    assert_eq!(mode(&unit), 0o644);
    assert_eq!(mode(&drop_in), 0o644);
    assert_eq!(mode(&config), 0o644);
    assert_eq!(mode(&rules), 0o755);
    assert!(rules.is_dir());
    assert_eq!(
        fs::read(&binary).unwrap(),
        fs::read(&sources.binary).unwrap()
    );
    assert_eq!(
        fs::read(&config).unwrap(),
        fs::read(&sources.config).unwrap()
    );
    assert!(
        first.iter().all(|l| !l.starts_with("unchanged")),
        "{first:#?}"
    );

    // The unit names the installed binary by its path on the target
    // system, not in the stage.
    let text = fs::read_to_string(&unit).unwrap();
    let exec_start: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("ExecStart="))
        .collect();
    assert_eq!(
        exec_start,
        ["ExecStart=/opt/mon/bin/monitor --config /etc/monitor/monitor.toml"]
    );
    assert!(!text.contains(&stage.display().to_string()));

    // An administrator edits the configuration and adds a rule; a second
    // install keeps both and changes nothing else.
    fs::write(&config, "builtin_rules = false\n").unwrap();
    fs::write(rules.join("local.toml"), "# a local rule\n").unwrap();
    let second = install(&sources, &layout).expect("second install");
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "builtin_rules = false\n"
    );
    assert!(rules.join("local.toml").exists());
    let kept = second.iter().find(|l| l.contains("monitor.toml")).unwrap();
    assert!(kept.starts_with("kept"), "{second:#?}");
    for path in [&binary, &unit, &drop_in] {
        let line = second
            .iter()
            .find(|l| l.contains(&path.display().to_string()))
            .unwrap_or_else(|| panic!("no line for {}: {second:#?}", path.display()));
        assert!(line.starts_with("unchanged"), "{line}");
    }

    // A changed binary is replaced, and its mode put right.
    fs::write(&sources.binary, b"\x7fELF newer").unwrap();
    fs::set_permissions(&binary, fs::Permissions::from_mode(0o700)).unwrap();
    install(&sources, &layout).expect("third install");
    assert_eq!(fs::read(&binary).unwrap(), b"\x7fELF newer");
    assert_eq!(mode(&binary), 0o755);

    // The drop-in as the README has the administrator enable it.
    let enabled = stage.join("etc/systemd/system/monitor.service.d/metrics.conf");
    fs::create_dir_all(enabled.parent().unwrap()).unwrap();
    fs::copy(&drop_in, &enabled).unwrap();

    let removed = uninstall(&layout, false).expect("uninstall");
    assert!(!enabled.exists(), "the enabled drop-in stays: {removed:#?}");
    assert!(!enabled.parent().unwrap().exists());
    for path in [&binary, &unit, &drop_in] {
        assert!(!path.exists(), "{} left behind", path.display());
    }
    assert!(!stage.join("opt/mon/share/doc/monitor").exists());
    assert!(config.exists(), "the configuration stays without --purge");
    assert!(
        removed.iter().any(|l| l.starts_with("kept")),
        "{removed:#?}"
    );

    // Again: nothing left to remove, and no error.
    let again = uninstall(&layout, false).expect("second uninstall");
    assert!(
        again.iter().take(3).all(|l| l.starts_with("absent")),
        "{again:#?}"
    );

    uninstall(&layout, true).expect("purge");
    assert!(!stage.join("etc/monitor").exists());
    uninstall(&layout, true).expect("purge again");
}

#[test]
fn the_unit_has_the_placeholder_and_it_is_replaced_outside_comments() {
    let template = fs::read_to_string(workspace_root().join("systemd/monitor.service")).unwrap();
    let rendered = render_unit(&template, Path::new("/usr/bin")).expect("render");
    for line in rendered.lines() {
        let comment = line.trim_start().starts_with('#');
        assert!(
            comment || !line.contains("@BINDIR@"),
            "placeholder left in {line:?}"
        );
    }
    assert!(rendered.contains("\nExecStart=/usr/bin/monitor "));
    assert!(render_unit("[Service]\nExecStart=/usr/bin/monitor\n", Path::new("/x")).is_err());
}

#[test]
fn layouts() {
    let live = Layout::new(Path::new("/usr/local"), None).unwrap();
    assert!(live.is_live());
    assert_eq!(live.binary(), Path::new("/usr/local/bin/monitor"));
    assert_eq!(
        live.unit(),
        Path::new("/usr/local/lib/systemd/system/monitor.service")
    );
    assert_eq!(live.config(), Path::new("/etc/monitor/monitor.toml"));
    let staged = Layout::new(Path::new("/usr"), Some(Path::new("/tmp/pkg"))).unwrap();
    assert!(!staged.is_live());
    assert_eq!(staged.binary(), Path::new("/tmp/pkg/usr/bin/monitor"));
    assert_eq!(staged.bindir(), Path::new("/usr/bin"));
    assert_eq!(
        staged.rules_dir(),
        Path::new("/tmp/pkg/etc/monitor/rules.d")
    );
    assert!(
        systemctl(&staged, &["daemon-reload"])
            .unwrap()
            .starts_with("skipped")
    );
    assert!(Layout::new(Path::new("usr"), None).is_err());
    assert!(Layout::new(Path::new("/opt/my monitor"), None).is_err());
}
