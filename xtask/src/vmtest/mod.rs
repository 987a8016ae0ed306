//! `cargo xtask vm-test`: the same release binary on other kernels, under a
//! real systemd.
//!
//! Rust eBPF gets no CO-RE relocations: the daemon reads every structure
//! offset from the running kernel's BTF, and its start-up self-check refuses
//! a kernel those offsets do not fit. This proves both on Debian's own
//! kernels. For each kernel series asked for, it boots a virtual machine
//! under qemu (software emulation: this machine has no usable KVM) with
//! that Debian kernel and a small Debian root file system (debootstrap:
//! systemd, journald, util-linux, python3), installs the monitor the way a
//! packager's `cargo xtask install --destdir` stages it, and runs the
//! scenarios of `guest.py` under systemd: `systemctl start` returning once
//! the daemon is ready, the unit's restrictions read back with `systemctl
//! show`, `systemd-analyze security`, a reload with a new rule, `dmesg -c`,
//! a 300-argument exec, an exec's parent, the loss counters, `systemctl
//! stop`. The same scenarios run on the host kernel without systemd. The
//! report compares each kernel's event fields with the host's.
//!
//! Downloads, the root file system and its disk image are cached under
//! `~/.cache/monitor-vm-test` (or `$XDG_CACHE_HOME`); the guest boots from
//! the image in snapshot mode, so a run never changes it.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use serde_json::Value;

use crate::install;
use crate::setup;

mod container;

/// The kernel series the command knows: a name and the pattern of Debian
/// 12's package for it (the newest match is taken).
pub const KERNELS: [(&str, &str); 2] = [
    ("6.1", r"^linux-image-6\.1\.0-[0-9]+-amd64$"),
    ("6.12", r"^linux-image-6\.12\.[0-9]+\+deb12-amd64$"),
];

const GUEST_SCRIPT: &str = include_str!("guest.py");
const MIRROR: &str = "http://deb.debian.org/debian";
const SUITE: &str = "bookworm";
const GUEST_PACKAGES: &str =
    "systemd,systemd-sysv,udev,util-linux,python3,procps,kmod,initramfs-tools";
/// How long one guest may take, boot to power-off.
const GUEST_TIME: Duration = Duration::from_secs(20 * 60);
const IMAGE_SIZE: &str = "3G";
/// Differing fields listed per kernel in the report, at most.
const FIELDS_SHOWN: usize = 12;

/// One check and how it went.
struct Check {
    name: String,
    ok: bool,
    detail: String,
}

impl Check {
    fn new(name: &str, ok: bool, detail: impl Into<String>) -> Check {
        Check {
            name: name.to_owned(),
            ok,
            detail: detail.into(),
        }
    }
}

/// What one kernel's run found.
struct Outcome {
    /// The series asked for, "host", or "container".
    series: String,
    /// `uname -r` as the scenarios saw it.
    release: String,
    checks: Vec<Check>,
    /// The field paths of the scenarios' events; None where the scenarios
    /// differ (the container runs only `dmesg -c`).
    fields: Option<BTreeSet<String>>,
    exposure: Option<String>,
}

impl Outcome {
    fn passed(&self) -> usize {
        self.checks.iter().filter(|c| c.ok).count()
    }

    /// Whether every check passed and the fields match `host`'s.
    fn good(&self, host: &Outcome) -> bool {
        self.passed() == self.checks.len()
            && self
                .fields
                .as_ref()
                .is_none_or(|f| Some(f) == host.fields.as_ref())
    }
}

/// Runs the scenarios on the host and in a guest per kernel series in
/// `series`, with the release `binary` and the workspace at `root`, and
/// writes the report into `out`. Fails when any check failed or any
/// kernel's event fields differ from the host's.
pub fn run(
    series: &[String],
    with_container: bool,
    binary: &Path,
    root: &Path,
    out: &Path,
) -> Result<()> {
    for s in series {
        if !KERNELS.iter().any(|k| k.0 == s) {
            let known: Vec<_> = KERNELS.iter().map(|k| k.0).collect();
            bail!("no kernel series {s:?}; known: {}", known.join(", "));
        }
    }
    setup::ensure_debian_packages(
        &["qemu-system-x86", "debootstrap", "e2fsprogs", "python3"],
        "vm-test",
    )?;
    fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    let share = out.join("share");
    stage(binary, root, &share)?;

    let mut outcomes = vec![run_on_host(binary, &share, out)?];
    if !series.is_empty() {
        let cache = cache_dir()?;
        let rootfs = ensure_rootfs(&cache)?;
        for s in series {
            let release = ensure_kernel(&rootfs, s)?;
            let image = ensure_image(&cache, &rootfs)?;
            outcomes.push(boot(s, &release, &rootfs, &image, &share, out)?);
        }
        if with_container {
            eprintln!("vm-test: the image, in a privileged podman container on this host");
            setup::ensure_debian_packages(&["podman", "runc"], "vm-test's container")?;
            ensure_journald()?;
            outcomes.push(Outcome {
                series: "container".to_owned(),
                release: outcomes[0].release.clone(),
                checks: container::run(root, binary, &rootfs, out)?,
                fields: None,
                exposure: None,
            });
        }
    }
    let report = report(&outcomes);
    let path = out.join("vm-test.md");
    fs::write(&path, &report).with_context(|| format!("writing {}", path.display()))?;
    println!("{report}");
    println!("vm-test: report in {}", path.display());

    let failed: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.good(&outcomes[0]))
        .map(|o| o.series.as_str())
        .collect();
    if !failed.is_empty() {
        bail!("vm-test failed on: {}", failed.join(", "));
    }
    Ok(())
}

/// The folder shared with the guest: the scenarios, and the monitor
/// staged as `cargo xtask install --destdir` stages it for a package.
fn stage(binary: &Path, root: &Path, share: &Path) -> Result<()> {
    if share.exists() {
        fs::remove_dir_all(share).with_context(|| format!("clearing {}", share.display()))?;
    }
    fs::create_dir_all(share)?;
    fs::write(share.join("guest.py"), GUEST_SCRIPT)?;
    let layout = install::Layout::new(Path::new("/usr/local"), Some(&share.join("stage")))?;
    let sources = install::Sources::in_workspace(root, binary.to_owned());
    install::install(&sources, &layout)?;
    Ok(())
}

fn run_on_host(binary: &Path, share: &Path, out: &Path) -> Result<Outcome> {
    eprintln!("vm-test: the scenarios on this machine's kernel");
    let result = out.join("result-host.json");
    // In a session of its own, as the guest's service is: the scenarios'
    // processes then have a live session and group leader on both sides.
    let status = Command::new("setsid")
        .args(["--wait", "python3"])
        .arg(share.join("guest.py"))
        .arg("--host")
        .arg(binary)
        .arg(&result)
        .status()
        .context("running python3")?;
    if !status.success() {
        bail!("the host scenarios failed to run ({status})");
    }
    read_outcome("host", &result)
}

fn cache_dir() -> Result<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").context("HOME is not set")?).join(".cache"),
    };
    let dir = base.join("monitor-vm-test");
    fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}

/// The guest's root file system: debootstrap once, then configured to run
/// the scenarios at boot from the shared folder and power off.
fn ensure_rootfs(cache: &Path) -> Result<PathBuf> {
    let rootfs = cache.join("rootfs");
    if rootfs.join(".complete").exists() {
        return Ok(rootfs);
    }
    let partial = cache.join("rootfs.partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)?;
    }
    eprintln!("vm-test: building the guest's root file system (debootstrap, a few minutes)");
    setup::run(
        Command::new("debootstrap")
            .args([
                "--variant=minbase",
                &format!("--include={GUEST_PACKAGES}"),
                SUITE,
            ])
            .arg(&partial)
            .arg(MIRROR),
        "debootstrap",
    )?;
    let etc = partial.join("etc");
    fs::write(
        etc.join("fstab"),
        "/dev/vda / ext4 rw,errors=remount-ro 0 1\n",
    )?;
    fs::write(etc.join("hostname"), "vmtest\n")?;
    let units = etc.join("systemd/system");
    // Timers that would only slow a short boot down.
    for timer in ["apt-daily", "apt-daily-upgrade", "e2scrub_all", "fstrim"] {
        let _ = fs::remove_file(units.join(format!("{timer}.timer")));
        std::os::unix::fs::symlink("/dev/null", units.join(format!("{timer}.timer")))?;
    }
    fs::write(units.join("vm-test.service"), GUEST_UNIT)?;
    std::os::unix::fs::symlink(
        "/etc/systemd/system/vm-test.service",
        units.join("multi-user.target.wants/vm-test.service"),
    )?;
    setup::run(
        Command::new("chroot")
            .arg(&partial)
            .args(["passwd", "-d", "root"]),
        "passwd in the guest's root",
    )?;
    fs::write(partial.join(".complete"), "")?;
    fs::rename(&partial, &rootfs)?;
    Ok(rootfs)
}

/// The guest's unit: mount the shared folder, run the scenarios, power off.
const GUEST_UNIT: &str = "\
[Unit]
Description=The monitor's vm-test scenarios
After=multi-user.target

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'mkdir -p /mnt/work; mount -t 9p -o trans=virtio,version=9p2000.L work /mnt/work; python3 /mnt/work/guest.py; systemctl poweroff --no-block'
StandardOutput=journal+console
StandardError=journal+console

[Install]
WantedBy=multi-user.target
";

/// Installs the newest Debian 12 kernel of `series` into the root file
/// system (with its initramfs), once; returns its release name.
fn ensure_kernel(rootfs: &Path, series: &str) -> Result<String> {
    let marker = rootfs.join(format!(".kernel-{series}"));
    if let Ok(release) = fs::read_to_string(&marker) {
        return Ok(release.trim().to_owned());
    }
    let pattern = KERNELS.iter().find(|k| k.0 == series).expect("checked").1;
    eprintln!("vm-test: installing Debian's {series} kernel in the guest's root");
    // Debian 12 ships 6.1; its 6.12 comes from bookworm-backports.
    fs::write(
        rootfs.join("etc/apt/sources.list"),
        format!("deb {MIRROR} {SUITE} main\ndeb {MIRROR} {SUITE}-backports main\n"),
    )?;
    let _proc = Mounted::proc(rootfs)?;
    setup::run(
        Command::new("chroot")
            .arg(rootfs)
            .args(["apt-get", "update", "-q"]),
        "apt-get update in the guest's root",
    )?;
    let found = capture(Command::new("chroot").arg(rootfs).args([
        "apt-cache",
        "search",
        "--names-only",
        pattern,
    ]))?;
    let mut names: Vec<&str> = found
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    names.sort_by_key(|n| version_key(n));
    let Some(package) = names.last() else {
        bail!("no Debian package matches {pattern}");
    };
    setup::run(
        Command::new("chroot")
            .arg(rootfs)
            .args([
                "apt-get",
                "install",
                "-y",
                "-q",
                "--no-install-recommends",
                package,
            ])
            .env("DEBIAN_FRONTEND", "noninteractive"),
        "apt-get install in the guest's root",
    )?;
    let release = package.trim_start_matches("linux-image-").to_owned();
    fs::write(&marker, &release)?;
    fs::write(rootfs.join(".complete"), "")?;
    Ok(release)
}

/// The numbers in a package name, for ordering versions.
fn version_key(name: &str) -> Vec<u64> {
    name.split(|c: char| !c.is_ascii_digit())
        .filter(|p| !p.is_empty())
        .map(|p| p.parse().unwrap_or(0))
        .collect()
}

/// The disk image of the root file system, rebuilt when the root changed.
fn ensure_image(cache: &Path, rootfs: &Path) -> Result<PathBuf> {
    let image = cache.join("rootfs.img");
    let changed = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if changed(&image) >= changed(&rootfs.join(".complete")) && image.exists() {
        return Ok(image);
    }
    eprintln!("vm-test: writing the guest's disk image");
    // A /proc left mounted in the root would be copied into the image.
    unmount_all(&rootfs.join("proc"));
    setup::run(
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "root", "-d"])
            .arg(rootfs)
            .arg(&image)
            .arg(IMAGE_SIZE),
        "mkfs.ext4",
    )?;
    Ok(image)
}

/// Boots one kernel, waits for the guest to power off, reads its result.
fn boot(
    series: &str,
    release: &str,
    rootfs: &Path,
    image: &Path,
    share: &Path,
    out: &Path,
) -> Result<Outcome> {
    eprintln!("vm-test: booting Debian's {release} under qemu (software emulation)");
    let result = share.join("result.json");
    let _ = fs::remove_file(&result);
    let console = out.join(format!("console-{series}.log"));
    let log = fs::File::create(&console)?;
    let boot_dir = rootfs.join("boot");
    let mut drive = std::ffi::OsString::from("file=");
    drive.push(image);
    drive.push(",if=virtio,format=raw,snapshot=on");
    let mut virtfs = std::ffi::OsString::from("local,path=");
    virtfs.push(share);
    virtfs.push(",mount_tag=work,security_model=none");
    let mut qemu = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "tcg,thread=multi",
            "-cpu",
            "max",
            "-m",
            "2048",
            "-smp",
            "2",
        ])
        .args(["-nographic", "-no-reboot", "-nic", "none"])
        .arg("-kernel")
        .arg(boot_dir.join(format!("vmlinuz-{release}")))
        .arg("-initrd")
        .arg(boot_dir.join(format!("initrd.img-{release}")))
        .args(["-append", "root=/dev/vda rw console=ttyS0 panic=-1 quiet"])
        .arg("-drive")
        .arg(drive)
        .arg("-virtfs")
        .arg(virtfs)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .context("starting qemu-system-x86_64")?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = qemu.try_wait()? {
            break status;
        }
        if started.elapsed() > GUEST_TIME {
            let _ = qemu.kill();
            let _ = qemu.wait();
            bail!(
                "the {release} guest did not power off within {} min; its console is in {}",
                GUEST_TIME.as_secs() / 60,
                console.display()
            );
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    eprintln!(
        "vm-test: {release} done in {:.0} s ({status})",
        started.elapsed().as_secs_f64()
    );
    let kept = out.join(format!("result-{series}.json"));
    fs::copy(&result, &kept).with_context(|| {
        format!(
            "the {release} guest wrote no result; its console is in {}",
            console.display()
        )
    })?;
    read_outcome(series, &kept)
}

fn read_outcome(series: &str, path: &Path) -> Result<Outcome> {
    let text = fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let doc: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let checks = doc["checks"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|c| {
                    let text = |k: &str| c[k].as_str().unwrap_or_default();
                    Check::new(
                        text("name"),
                        c["ok"].as_bool().unwrap_or(false),
                        text("detail"),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let fields = doc["fields"].as_object().map(|scenarios| {
        scenarios
            .iter()
            .flat_map(|(scenario, paths)| {
                paths
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(move |p| format!("{scenario}: {p}"))
            })
            .collect()
    });
    Ok(Outcome {
        series: series.to_owned(),
        release: doc["kernel"].as_str().unwrap_or("?").to_owned(),
        checks,
        fields,
        exposure: doc["exposure"].as_str().map(str::to_owned),
    })
}

/// The Markdown report: one row per kernel, then every failed check and
/// every field that differs from the host's.
fn report(outcomes: &[Outcome]) -> String {
    let host = &outcomes[0];
    let mut text = String::from(
        "| kernel | where | checks passed | event fields as on the host | unit exposure |\n\
         |---|---|---|---|---|\n",
    );
    for o in outcomes {
        let same = match &o.fields {
            None => "-".to_owned(),
            Some(f) if Some(f) == host.fields.as_ref() => format!("yes ({})", f.len()),
            Some(_) => "no".to_owned(),
        };
        let place = match o.series.as_str() {
            "host" => "this machine, no systemd",
            "container" => "this machine, privileged podman container",
            _ => "qemu guest, systemd",
        };
        let _ = writeln!(
            text,
            "| {} | {place} | {}/{} | {same} | {} |",
            o.release,
            o.passed(),
            o.checks.len(),
            o.exposure.as_deref().unwrap_or("-")
        );
    }
    for o in outcomes {
        for check in o.checks.iter().filter(|c| !c.ok) {
            let _ = writeln!(
                text,
                "\n{} failed: {}: {}",
                o.release, check.name, check.detail
            );
        }
        let (Some(mine), Some(theirs)) = (&o.fields, &host.fields) else {
            continue;
        };
        // A guest whose scenarios failed lacks every field: a few name it.
        let differ: Vec<_> = mine.symmetric_difference(theirs).collect();
        for field in differ.iter().take(FIELDS_SHOWN) {
            let side = if mine.contains(*field) {
                "only here"
            } else {
                "missing here"
            };
            let _ = writeln!(text, "\n{}: {field}: {side}", o.release);
        }
        if differ.len() > FIELDS_SHOWN {
            let more = differ.len() - FIELDS_SHOWN;
            let _ = writeln!(text, "\n{}: and {more} more fields differ", o.release);
        }
    }
    text
}

/// Starts journald if nothing listens on its socket (this machine's PID 1
/// is not systemd), for the container's alerts.
fn ensure_journald() -> Result<()> {
    let socket = Path::new("/run/systemd/journal/socket");
    if std::os::unix::net::UnixDatagram::unbound()?
        .connect(socket)
        .is_ok()
    {
        return Ok(());
    }
    Command::new("/lib/systemd/systemd-journald")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .context("starting systemd-journald")?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if std::os::unix::net::UnixDatagram::unbound()?
            .connect(socket)
            .is_ok()
        {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("journald did not start")
}

/// A file system mounted into the root for as long as the value lives.
struct Mounted(PathBuf);

impl Mounted {
    fn proc(rootfs: &Path) -> Result<Mounted> {
        let target = rootfs.join("proc");
        // What an interrupted earlier run may have left mounted.
        unmount_all(&target);
        setup::run(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(&target),
            "mounting /proc in the guest's root",
        )?;
        Ok(Mounted(target))
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        unmount_all(&self.0);
    }
}

/// Unmounts everything mounted at `target`, however many times.
fn unmount_all(target: &Path) {
    while Command::new("mountpoint")
        .arg("-q")
        .arg(target)
        .status()
        .is_ok_and(|s| s.success())
    {
        if !Command::new("umount")
            .arg("-l")
            .arg(target)
            .status()
            .is_ok_and(|s| s.success())
        {
            break;
        }
    }
}

fn capture(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("running {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({})", out.status);
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_kernel_package_sorts_last() {
        let mut names = [
            "linux-image-6.12.95+deb12-amd64",
            "linux-image-6.12.100+deb12-amd64",
            "linux-image-6.12.9+deb12-amd64",
        ];
        names.sort_by_key(|n| version_key(n));
        assert_eq!(names.last(), Some(&"linux-image-6.12.100+deb12-amd64"));
    }

    #[test]
    fn a_kernel_whose_fields_differ_is_reported() {
        let outcome = |series: &str, fields: &[&str], ok: bool| Outcome {
            series: series.to_owned(),
            release: format!("{series}-release"),
            checks: vec![Check::new("start", ok, "detail")],
            fields: Some(fields.iter().map(|f| (*f).to_owned()).collect()),
            exposure: None,
        };
        let text = report(&[
            outcome("host", &["a", "b"], true),
            outcome("6.1", &["a", "b"], true),
            outcome("6.12", &["a", "c"], false),
        ]);
        assert!(
            text.contains("| 6.1-release | qemu guest, systemd | 1/1 | yes (2) |"),
            "{text}"
        );
        assert!(
            text.contains("| 6.12-release | qemu guest, systemd | 0/1 | no |"),
            "{text}"
        );
        assert!(
            text.contains("6.12-release failed: start: detail"),
            "{text}"
        );
        assert!(text.contains("6.12-release: b: missing here"), "{text}");
        assert!(text.contains("6.12-release: c: only here"), "{text}");
    }
}
