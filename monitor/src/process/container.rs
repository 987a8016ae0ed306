//! Tells which container a process runs in from its cgroup path.
//!
//! Container engines put each container in a cgroup named after the
//! container's 64-hex-digit id. The shape of that name depends on the
//! engine and on who manages the cgroup tree: with the "cgroupfs" driver
//! the engine writes a bare id (`/docker/<id>`), with the systemd driver it
//! asks systemd for a scope unit (`docker-<id>.scope`). The path is read
//! from the leaf upwards, because some engines add a child below the
//! container's own cgroup (podman's `.../libpod-<id>.scope/container`), and
//! nested engines (docker in docker) put the innermost container last.
//!
//! The first component that carries an id in a known shape decides: a
//! container, or one of the monitor processes (`conmon`) that podman and
//! cri-o run beside each container, which is not itself a container.
//!
//! Not done yet: the container's name and image (those need the engine's
//! API or state files), and engines that leave no id in the cgroup path,
//! such as LXC and systemd-nspawn.

/// How many hex digits a container id has.
const ID_LEN: usize = 64;

/// Unit name prefixes, as in `<prefix>-<id>.scope`, and what each means.
const PREFIXES: &[(&str, Shape)] = &[
    ("docker", Shape::Container(Some("docker"))),
    ("cri-containerd", Shape::Container(Some("containerd"))),
    ("nerdctl", Shape::Container(Some("containerd"))),
    ("crio", Shape::Container(Some("cri-o"))),
    ("libpod", Shape::Container(Some("podman"))),
    ("crio-conmon", Shape::Monitor),
    ("libpod-conmon", Shape::Monitor),
];

/// A container a process runs in, recognised from its cgroup path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Container {
    /// The container's id: 64 hex digits, lowercase.
    pub id: String,
    /// The engine that runs it, when the path tells (`docker`,
    /// `containerd`, `cri-o`, `podman`).
    pub runtime: Option<&'static str>,
}

/// What a component holding an id stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// A container, with its runtime when the name tells it.
    Container(Option<&'static str>),
    /// An engine's per-container monitor process, not a container.
    Monitor,
}

/// Finds the container id in a cgroup path such as
/// `/system.slice/docker-<64 hex>.scope`.
///
/// Returns `None` for paths outside any container, and for the cgroups of
/// container monitors (`crio-conmon-<id>.scope`, `libpod-conmon-<id>.scope`).
pub fn from_cgroup_path(path: &str) -> Option<Container> {
    let mut components = path.rsplit('/').filter(|c| !c.is_empty()).peekable();
    while let Some(component) = components.next() {
        let parent = components.peek().copied();
        if let Some((shape, id)) = classify(component, parent) {
            return match shape {
                Shape::Container(runtime) => Some(Container {
                    id: id.to_ascii_lowercase(),
                    runtime,
                }),
                Shape::Monitor => None,
            };
        }
    }
    None
}

/// Reads one path component: a bare id, or `<prefix>-<id>` with an
/// optional `.scope`, for a prefix we know. Returns the shape and the id.
fn classify<'a>(component: &'a str, parent: Option<&str>) -> Option<(Shape, &'a str)> {
    if is_id(component) {
        // A bare id: docker's cgroupfs driver puts it under `/docker`;
        // kubelet's cgroupfs layout and containerd's namespaces
        // (`/default/<id>`) do not say which engine made it.
        let runtime = (parent == Some("docker")).then_some("docker");
        return Some((Shape::Container(runtime), component));
    }
    let stem = component.strip_suffix(".scope").unwrap_or(component);
    let bytes = stem.as_bytes();
    // The id is the last 64 bytes, after a dash. Checking bytes first keeps
    // the slicing below on character boundaries: both cuts fall just
    // before an ASCII byte.
    if bytes.len() <= ID_LEN + 1 || bytes[bytes.len() - ID_LEN - 1] != b'-' {
        return None;
    }
    let id = &stem[stem.len() - ID_LEN..];
    if !is_id(id) {
        return None;
    }
    let prefix = &stem[..stem.len() - ID_LEN - 1];
    PREFIXES
        .iter()
        .find(|(known, _)| *known == prefix)
        .map(|&(_, shape)| (shape, id))
}

/// True when `s` is exactly one container id: 64 hex digits.
fn is_id(s: &str) -> bool {
    s.len() == ID_LEN && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f4e5d6c7b8a99887766554433221100aabbccddeeff00112233445566778899";
    const POD: &str = "5b1f2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d";
    const POD_UNIT: &str = "5b1f2c3d_4e5f_6a7b_8c9d_0e1f2a3b4c5d";

    fn found(path: &str) -> Option<Container> {
        from_cgroup_path(path)
    }

    fn container(runtime: Option<&'static str>) -> Option<Container> {
        Some(Container {
            id: ID.to_owned(),
            runtime,
        })
    }

    #[test]
    fn docker_with_either_cgroup_driver() {
        assert_eq!(found(&format!("/docker/{ID}")), container(Some("docker")));
        assert_eq!(
            found(&format!("/system.slice/docker-{ID}.scope")),
            container(Some("docker"))
        );
    }

    #[test]
    fn containerd_under_kubernetes() {
        let cgroupfs = format!("/kubepods/besteffort/pod{POD}/{ID}");
        assert_eq!(found(&cgroupfs), container(None));
        let systemd = format!(
            "/kubepods.slice/kubepods-besteffort.slice/\
             kubepods-besteffort-pod{POD_UNIT}.slice/cri-containerd-{ID}.scope"
        );
        assert_eq!(found(&systemd), container(Some("containerd")));
    }

    #[test]
    fn cri_o_and_its_monitor() {
        let pod = format!(
            "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod{POD_UNIT}.slice"
        );
        assert_eq!(
            found(&format!("{pod}/crio-{ID}.scope")),
            container(Some("cri-o"))
        );
        assert_eq!(found(&format!("{pod}/crio-conmon-{ID}.scope")), None);
    }

    #[test]
    fn podman_rootful_rootless_and_its_monitor() {
        for path in [
            format!("/machine.slice/libpod-{ID}.scope"),
            format!("/machine.slice/libpod-{ID}.scope/container"),
            format!(
                "/user.slice/user-1000.slice/user@1000.service/user.slice/\
                 libpod-{ID}.scope/container"
            ),
        ] {
            assert_eq!(found(&path), container(Some("podman")), "{path}");
        }
        assert_eq!(
            found(&format!("/machine.slice/libpod-conmon-{ID}.scope")),
            None
        );
    }

    #[test]
    fn nerdctl_and_plain_containerd() {
        assert_eq!(
            found(&format!("/system.slice/nerdctl-{ID}.scope")),
            container(Some("containerd"))
        );
        assert_eq!(found(&format!("/default/{ID}")), container(None));
    }

    #[test]
    fn docker_under_kubernetes() {
        assert_eq!(
            found(&format!("/kubepods/burstable/pod{POD}/docker-{ID}.scope")),
            container(Some("docker"))
        );
        let systemd = format!(
            "/kubepods.slice/kubepods-burstable.slice/\
             kubepods-burstable-pod{POD_UNIT}.slice/docker-{ID}.scope"
        );
        assert_eq!(found(&systemd), container(Some("docker")));
    }

    #[test]
    fn innermost_container_wins() {
        let outer = "0".repeat(64);
        assert_eq!(
            found(&format!("/docker/{outer}/docker/{ID}")),
            container(Some("docker"))
        );
    }

    #[test]
    fn id_is_lowercased() {
        let path = format!("/docker/{}", ID.to_ascii_uppercase());
        assert_eq!(found(&path), container(Some("docker")));
    }

    #[test]
    fn host_paths_are_not_containers() {
        for path in [
            "",
            "/",
            "/user.slice/user-1000.slice/session-3.scope",
            "/system.slice/ssh.service",
            "/init.scope",
            // A 32-digit name, as some sandboxes use.
            "/process_api/ffab08590ae2e785486866cc0b52e437",
        ] {
            assert_eq!(found(path), None, "{path:?}");
        }
    }

    #[test]
    fn ids_of_the_wrong_length_do_not_count() {
        let short = &ID[..63];
        let long = format!("{ID}a");
        for id in [short, long.as_str()] {
            for path in [
                format!("/docker/{id}"),
                format!("/system.slice/docker-{id}.scope"),
                format!("/kubepods/besteffort/pod{POD}/{id}"),
            ] {
                assert_eq!(found(&path), None, "{path}");
            }
        }
    }

    #[test]
    fn unknown_prefixes_and_odd_bytes_are_ignored() {
        assert_eq!(found(&format!("/system.slice/foo-{ID}.scope")), None);
        assert_eq!(found(&format!("/system.slice/dockér-{ID}.scope")), None);
        assert_eq!(found(&format!("/é{}", &ID[..63])), None);
        assert_eq!(found(&format!("/docker/é{}", &ID[1..])), None);
        // An unknown shape below a known one does not hide it.
        assert_eq!(
            found(&format!("/docker/{ID}/foo-{ID}.scope")),
            container(Some("docker"))
        );
    }
}
