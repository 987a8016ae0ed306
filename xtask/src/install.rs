//! `cargo xtask install` and `uninstall`: put the release binary, the
//! systemd unit and the default configuration where a system expects them,
//! and take them away again.
//!
//! Both are idempotent and say what they did, file by file. `--destdir`
//! stages everything under another directory, for packagers; systemd is
//! then left alone. The configuration under `/etc/monitor` belongs to the
//! administrator once installed: install never overwrites it, and uninstall
//! keeps it unless asked to purge.
//!
//! Not done: a man page, and a system user (the unit uses a dynamic one).

use std::fs;
use std::io::{self, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, Result, bail};

/// The placeholder in the unit's `ExecStart=` for the binary's directory.
pub const BINDIR_PLACEHOLDER: &str = "/@BINDIR@";

/// The files install takes from the source tree.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The daemon, built in release mode.
    pub binary: PathBuf,
    /// The unit, with the placeholder in `ExecStart=`.
    pub unit: PathBuf,
    /// The example drop-in that opens the metrics listener.
    pub metrics_drop_in: PathBuf,
    /// The default configuration.
    pub config: PathBuf,
}

impl Sources {
    /// The files of the workspace at `root`, with the daemon built at
    /// `binary` (under the target directory, which may lie elsewhere).
    pub fn in_workspace(root: &Path, binary: PathBuf) -> Sources {
        Sources {
            binary,
            unit: root.join("systemd/monitor.service"),
            metrics_drop_in: root.join("systemd/metrics.conf"),
            config: root.join("monitor/monitor.toml"),
        }
    }
}

/// Where everything goes, as the installed system will see it (`prefix`)
/// and where it is written now (`destdir` in front of every path).
#[derive(Debug, Clone)]
pub struct Layout {
    prefix: PathBuf,
    destdir: Option<PathBuf>,
}

impl Layout {
    /// A layout under `prefix` (absolute, and plain enough for a unit's
    /// command line), staged under `destdir` when given.
    pub fn new(prefix: &Path, destdir: Option<&Path>) -> Result<Layout> {
        if !prefix.is_absolute() {
            bail!(
                "--prefix must be an absolute path, not {}",
                prefix.display()
            );
        }
        // ExecStart= would split the path there.
        let plain = prefix
            .to_str()
            .is_some_and(|p| !p.contains(|c: char| c.is_whitespace() || c == '"' || c == '\\'));
        if !plain {
            bail!(
                "--prefix {:?} holds white space, a quote or a backslash, which the unit's \
                 ExecStart= cannot take as they are",
                prefix.display()
            );
        }
        let destdir = destdir
            .filter(|d| !d.as_os_str().is_empty())
            .map(Path::to_owned);
        Ok(Layout {
            prefix: prefix.to_owned(),
            destdir,
        })
    }

    /// The binary's directory on the installed system.
    pub fn bindir(&self) -> PathBuf {
        self.prefix.join("bin")
    }

    pub fn binary(&self) -> PathBuf {
        self.staged(&self.bindir().join("monitor"))
    }

    pub fn unit(&self) -> PathBuf {
        self.staged(&self.prefix.join("lib/systemd/system/monitor.service"))
    }

    pub fn doc_dir(&self) -> PathBuf {
        self.staged(&self.prefix.join("share/doc/monitor"))
    }

    pub fn metrics_drop_in(&self) -> PathBuf {
        self.doc_dir().join("metrics.conf")
    }

    /// Where the README tells the administrator to copy the drop-in.
    pub fn enabled_drop_in(&self) -> PathBuf {
        self.staged(Path::new(
            "/etc/systemd/system/monitor.service.d/metrics.conf",
        ))
    }

    /// `/etc/monitor`, whatever the prefix: the unit reads its
    /// configuration from there.
    pub fn config_dir(&self) -> PathBuf {
        self.staged(Path::new("/etc/monitor"))
    }

    pub fn config(&self) -> PathBuf {
        self.config_dir().join("monitor.toml")
    }

    pub fn rules_dir(&self) -> PathBuf {
        self.config_dir().join("rules.d")
    }

    /// True when installing into the running system rather than a stage.
    pub fn is_live(&self) -> bool {
        self.destdir.is_none()
    }

    /// `path` (absolute) with the destdir in front.
    fn staged(&self, path: &Path) -> PathBuf {
        match &self.destdir {
            None => path.to_owned(),
            Some(destdir) => destdir.join(path.strip_prefix("/").unwrap_or(path)),
        }
    }
}

/// The unit as installed: the placeholder in every non-comment line
/// replaced by `bindir`.
pub fn render_unit(template: &str, bindir: &Path) -> Result<String> {
    if !template.contains(&format!("ExecStart={BINDIR_PLACEHOLDER}/")) {
        bail!("the unit's ExecStart= does not start with {BINDIR_PLACEHOLDER}/");
    }
    let bindir = bindir
        .to_str()
        .context("the binary's directory is not UTF-8")?;
    let mut out = String::with_capacity(template.len());
    for line in template.split_inclusive('\n') {
        let comment = line.trim_start().starts_with(['#', ';']);
        if comment {
            out.push_str(line);
        } else {
            out.push_str(&line.replace(BINDIR_PLACEHOLDER, bindir));
        }
    }
    Ok(out)
}

/// Installs everything; returns one line per file or directory saying
/// what was done.
pub fn install(sources: &Sources, layout: &Layout) -> Result<Vec<String>> {
    let mut report = Vec::new();
    let binary = fs::read(&sources.binary).with_context(|| {
        format!(
            "reading {} (build it with cargo build --release --package monitor)",
            sources.binary.display()
        )
    })?;
    report.push(place(&layout.binary(), &binary, 0o755)?);

    let template = read_text(&sources.unit)?;
    let unit = render_unit(&template, &layout.bindir())?;
    report.push(place(&layout.unit(), unit.as_bytes(), 0o644)?);

    let drop_in = fs::read(&sources.metrics_drop_in)
        .with_context(|| format!("reading {}", sources.metrics_drop_in.display()))?;
    report.push(place(&layout.metrics_drop_in(), &drop_in, 0o644)?);

    make_dir(&layout.config_dir(), 0o755, &mut report)?;
    let config = layout.config();
    if config.exists() {
        report.push(format!(
            "kept       {} (an existing configuration is never overwritten)",
            config.display()
        ));
    } else {
        let default = fs::read(&sources.config)
            .with_context(|| format!("reading {}", sources.config.display()))?;
        report.push(place(&config, &default, 0o644)?);
    }
    make_dir(&layout.rules_dir(), 0o755, &mut report)?;
    Ok(report)
}

/// Removes the binary, the unit and the example drop-in, and with `purge`
/// the whole of `/etc/monitor`; returns one line per path.
pub fn uninstall(layout: &Layout, purge: bool) -> Result<Vec<String>> {
    let mut report = Vec::new();
    // The drop-in in use goes too, if it is still the one shipped.
    let enabled = layout.enabled_drop_in();
    if let Ok(in_use) = fs::read(&enabled) {
        if fs::read(layout.metrics_drop_in()).is_ok_and(|shipped| shipped == in_use) {
            report.push(remove_file(&enabled)?);
            if let Some(dir) = enabled.parent()
                && fs::remove_dir(dir).is_ok()
            {
                report.push(format!("removed    {}", dir.display()));
            }
        } else {
            report.push(format!(
                "kept       {} (changed since it was installed)",
                enabled.display()
            ));
        }
    }
    for path in [layout.binary(), layout.unit(), layout.metrics_drop_in()] {
        report.push(remove_file(&path)?);
    }
    let doc_dir = layout.doc_dir();
    if fs::remove_dir(&doc_dir).is_ok() {
        report.push(format!("removed    {}", doc_dir.display()));
    }
    let config_dir = layout.config_dir();
    if !config_dir.exists() {
        report.push(format!("absent     {}", config_dir.display()));
    } else if purge {
        fs::remove_dir_all(&config_dir)
            .with_context(|| format!("removing {}", config_dir.display()))?;
        report.push(format!("removed    {} (--purge)", config_dir.display()));
    } else {
        report.push(format!(
            "kept       {} (the configuration; --purge removes it)",
            config_dir.display()
        ));
    }
    Ok(report)
}

/// Whether systemd is the running service manager.
pub fn systemd_running() -> bool {
    Path::new("/run/systemd/system").exists()
}

/// Runs `systemctl` with `args` when installing into the running system
/// and systemd runs it; otherwise says why not.
pub fn systemctl(layout: &Layout, args: &[&str]) -> Result<String> {
    let command = format!("systemctl {}", args.join(" "));
    if !layout.is_live() {
        return Ok(format!("skipped    {command} (staged under --destdir)"));
    }
    if !systemd_running() {
        return Ok(format!(
            "skipped    {command} (systemd is not running: no /run/systemd/system)"
        ));
    }
    let status = Command::new("systemctl")
        .args(args)
        .status()
        .with_context(|| format!("running {command}"))?;
    if !status.success() {
        bail!("{command} failed ({status})");
    }
    Ok(format!("ran        {command}"))
}

/// Writes `contents` to `path` with `mode`, through a temporary file and a
/// rename, so that a running binary is replaced rather than overwritten.
/// Does nothing when the file already holds exactly that.
fn place(path: &Path, contents: &[u8], mode: u32) -> Result<String> {
    let same = fs::read(path).is_ok_and(|old| old == contents)
        && fs::metadata(path).is_ok_and(|m| m.permissions().mode() & 0o7777 == mode);
    if same {
        return Ok(format!("unchanged  {} ({mode:04o})", path.display()));
    }
    let dir = path
        .parent()
        .context("a file to install has no directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let name = path.file_name().context("no file name")?.to_string_lossy();
    let temporary = dir.join(format!(".{name}.xtask-{}", std::process::id()));
    let written = write_new(&temporary, contents, mode).and_then(|()| fs::rename(&temporary, path));
    if let Err(e) = written {
        let _ = fs::remove_file(&temporary);
        return Err(e).with_context(|| format!("installing {}", path.display()));
    }
    Ok(format!("installed  {} ({mode:04o})", path.display()))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
    let mut file = fs::File::create(path)?;
    file.write_all(contents)?;
    // Set after writing, so that the umask does not decide the mode.
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

fn make_dir(path: &Path, mode: u32, report: &mut Vec<String>) -> Result<()> {
    if path.is_dir() {
        report.push(format!("exists     {}/", path.display()));
        return Ok(());
    }
    fs::create_dir_all(path).with_context(|| format!("creating {}", path.display()))?;
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting the mode of {}", path.display()))?;
    report.push(format!("created    {}/ ({mode:04o})", path.display()));
    Ok(())
}

fn remove_file(path: &Path) -> Result<String> {
    match fs::remove_file(path) {
        Ok(()) => Ok(format!("removed    {}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            Ok(format!("absent     {}", path.display()))
        }
        Err(e) => Err(e).with_context(|| format!("removing {}", path.display())),
    }
}

fn read_text(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

#[cfg(test)]
mod tests;
