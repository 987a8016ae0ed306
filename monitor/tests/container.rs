//! The daemon as the README's container run line has it: in a mount and
//! pid namespace of its own, in a root file system holding only what the
//! image holds (the binary, the C library, the default configuration), with
//! exactly the host paths that run line shares bind-mounted in. It must
//! still see an exec on the host and alert on it, in the host's journal.
//!
//! No container engine runs on the test machines, so this builds the
//! namespaces itself with unshare(1). `--pid=host` in the run line gives
//! the container the host's `/proc`; here the host's `/proc` is mounted
//! into the new root for it, while the daemon itself runs as pid 1 of a
//! new pid namespace (so it depends on nothing but that `/proc`).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use support::{BINARY, Daemon, ensure_journald, journal_entries, privileged, run};

const README: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md");
const DEFAULT_CONFIG: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/monitor.toml");
/// Where the image puts the daemon.
const IMAGE_BINARY: &str = "/usr/local/bin/monitor";

/// What the README's `podman run` line asks of the host.
#[derive(Debug)]
struct RunLine {
    flags: Vec<String>,
    /// Host path, container path, read-only.
    volumes: Vec<(PathBuf, PathBuf, bool)>,
}

impl RunLine {
    fn from_readme() -> RunLine {
        let readme = std::fs::read_to_string(README).expect("read the README");
        let start = readme
            .find("podman run ")
            .expect("the README has no `podman run` line");
        let mut words = Vec::new();
        for line in readme[start..].lines() {
            let continued = line.trim_end().ends_with('\\');
            words.extend(
                line.trim_end()
                    .trim_end_matches('\\')
                    .split_whitespace()
                    .map(str::to_owned),
            );
            if !continued {
                break;
            }
        }
        let mut flags = Vec::new();
        let mut volumes = Vec::new();
        let mut words = words.into_iter().skip(2);
        while let Some(word) = words.next() {
            if word == "-v" || word == "--volume" {
                let spec = words.next().expect("a volume after -v");
                let parts: Vec<&str> = spec.split(':').collect();
                let read_only = parts
                    .get(2)
                    .is_some_and(|o| o.split(',').any(|o| o == "ro"));
                volumes.push((parts[0].into(), parts[1].into(), read_only));
            } else if word.starts_with('-') {
                flags.push(word);
            }
        }
        RunLine { flags, volumes }
    }
}

/// The shared libraries `ldd` names for `binary`, the loader included.
fn libraries(binary: &str) -> Vec<PathBuf> {
    let out = Command::new("ldd").arg(binary).output().expect("run ldd");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect()
}

/// Copies `from` to the same path under `root`.
fn copy_in(root: &Path, from: &Path, to: &Path) {
    let dest = root.join(to.strip_prefix("/").unwrap());
    std::fs::create_dir_all(dest.parent().unwrap()).expect("mkdir");
    std::fs::copy(from, &dest).unwrap_or_else(|e| panic!("copy {}: {e}", from.display()));
}

/// The image's file system: the daemon, its libraries, the default
/// configuration with an empty rules folder.
fn image_root(root: &Path) {
    copy_in(root, Path::new(BINARY), Path::new(IMAGE_BINARY));
    for library in libraries(BINARY) {
        copy_in(root, &library, &library);
    }
    copy_in(
        root,
        Path::new(DEFAULT_CONFIG),
        Path::new("/etc/monitor/monitor.toml"),
    );
    for dir in ["etc/monitor/rules.d", "proc", "sys", "dev", "tmp"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
}

/// The mounts, then the daemon under chroot. The host's `/proc` comes in
/// with `--pid=host`; a sysfs of its own and `/dev/null` are what every
/// privileged container has.
fn launcher(root: &Path, line: &RunLine) -> String {
    let root = root.display();
    let mut script = String::from("set -eu\nmount --make-rprivate /\n");
    script.push_str(&format!("mount --rbind /proc {root}/proc\n"));
    script.push_str(&format!("mount -t sysfs sysfs {root}/sys\n"));
    script.push_str(&format!(
        "touch {root}/dev/null && mount --bind /dev/null {root}/dev/null\n"
    ));
    for (host, inside, read_only) in &line.volumes {
        let target = format!("{root}{}", inside.display());
        let make = if host.is_dir() {
            format!("mkdir -p {target}")
        } else {
            format!("mkdir -p $(dirname {target}) && touch {target}")
        };
        script.push_str(&format!(
            "{make}\nmount --bind {} {target}\n",
            host.display()
        ));
        if *read_only {
            script.push_str(&format!("mount -o remount,bind,ro {target}\n"));
        }
    }
    script.push_str(&format!("exec chroot {root} {IMAGE_BINARY} \"$@\"\n"));
    script
}

#[test]
fn in_its_own_namespaces_with_only_the_shared_host_paths_it_sees_a_host_dmesg_c() {
    if !privileged() {
        return;
    }
    ensure_journald();
    let line = RunLine::from_readme();
    for flag in ["--privileged", "--pid=host"] {
        assert!(line.flags.iter().any(|f| f == flag), "{flag}: {line:?}");
    }
    let shared: Vec<&Path> = line.volumes.iter().map(|v| v.0.as_path()).collect();
    for needed in ["/sys/kernel/btf", "/run/systemd/journal"] {
        assert!(shared.contains(&Path::new(needed)), "{needed}: {line:?}");
    }

    let work = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    let root = work.path().join("root");
    image_root(&root);
    let script = launcher(&root, &line);
    let command = [
        "unshare",
        "--mount",
        "--pid",
        "--fork",
        "--kill-child=SIGTERM",
        "--",
        "/bin/sh",
        "-c",
        &script,
        "container",
    ];
    let args = [
        "--config",
        "/etc/monitor/monitor.toml",
        "--output",
        "journald",
    ];
    let daemon = Daemon::start_wrapped(&command, &args, &[]);

    // The daemon runs as pid 1 of a pid namespace of its own, in its root.
    let unshare = daemon.pid().as_raw();
    let children = std::fs::read_to_string(format!("/proc/{unshare}/task/{unshare}/children"))
        .expect("unshare's children");
    let inner: u32 = children.split_whitespace().next().unwrap().parse().unwrap();
    let ns = |pid: String| std::fs::read_link(format!("/proc/{pid}/ns/pid")).unwrap();
    assert_ne!(ns(inner.to_string()), ns("self".into()));
    let status = std::fs::read_to_string(format!("/proc/{inner}/status")).unwrap();
    let nspid = status
        .lines()
        .find(|l| l.starts_with("NSpid:"))
        .expect("NSpid");
    assert!(
        nspid.ends_with("\t1"),
        "not pid 1 in its namespace: {nspid}"
    );

    let (dmesg, _) = run(&["dmesg", "-c"]);
    let alert = daemon
        .wait_alert(dmesg, Duration::from_secs(10))
        .unwrap_or_else(|| panic!("no alert for a host dmesg -c:\n{}", daemon.stderr()));
    assert_eq!(alert["process"]["executable"], "/usr/bin/dmesg");
    assert_eq!(alert["process"]["parent"]["pid"], std::process::id());
    assert_eq!(alert["user"]["name"], "root", "the host's user names");
    let hostname = nix::unistd::gethostname().unwrap();
    assert_eq!(alert["host"]["name"], hostname.to_str().unwrap());
    let machine_id = std::fs::read_to_string("/etc/machine-id").unwrap();
    assert_eq!(alert["host"]["id"], machine_id.trim());
    let matches = format!("PROCESS_ENTITY_ID={}", support::entity_of(&alert));
    let entries = journal_entries(&[matches.as_str()], Duration::from_secs(10));
    assert!(
        entries.iter().any(|e| e["RULE_NAME"].is_string()),
        "no alert in the host's journal: {entries:#?}"
    );

    // unshare(1) does not pass SIGTERM on: the daemon gets it directly.
    let (_, log) = daemon.stop_through(Pid::from_raw(inner as i32), Signal::SIGTERM);
    assert!(!log.contains("ERROR"), "{log}");
    assert!(
        log.contains("program detached; exiting"),
        "no clean stop:\n{log}"
    );
}
