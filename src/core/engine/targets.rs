//! Which containers pytune changes, which port each serves, and which profile each gets.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::directives::{Directives, PortRef, annotations};
use super::launch::{AppRef, Launch};
use super::{Feature, Planner, Target, TargetContainer, Warning, WorkloadProfile};
use crate::core::detect;

/// The app containers in `spec.containers`, in order. Init containers (including native sidecars,
/// which live in `initContainers`) are never targets; named mesh/agent sidecars are skipped unless
/// the `pytune.io/containers` annotation names them.
pub fn select<'p>(pod: &'p Pod, directives: &Directives, planner: &mut Planner) -> Vec<Target<'p>> {
    let containers: &[Container] = pod.spec.as_ref().map_or(&[], |spec| &spec.containers);
    let chosen: Vec<(usize, &Container)> = match &directives.containers {
        Some(names) => {
            for name in names {
                if !containers.iter().any(|c| &c.name == name) {
                    planner.warn(Warning::pod(format!(
                        "{} names {name:?}, which is not in spec.containers",
                        annotations::CONTAINERS
                    )));
                }
            }
            containers
                .iter()
                .enumerate()
                .filter(|(_, c)| names.contains(&c.name))
                .collect()
        }
        None => containers
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                let sidecar = planner.policy.sidecars.contains(&c.name);
                if sidecar {
                    planner.note(
                        Some(&c.name),
                        Feature::Record,
                        "left alone: a known sidecar (policy sidecars)",
                    );
                }
                !sidecar
            })
            .collect(),
    };
    if chosen.is_empty() {
        planner.note(None, Feature::Record, "no target container");
    }

    let detections: Vec<detect::Detection> =
        chosen.iter().map(|(_, c)| detect::detect(c)).collect();
    let launches: Vec<(Launch, Option<AppRef>)> = chosen
        .iter()
        .zip(&detections)
        .map(|((_, c), detection)| Launch::of(c, detection, planner.policy))
        .collect();
    let ports = resolve_ports(&chosen, &detections, &launches, directives, planner);
    let job_reason = job_evidence(pod);
    let daemon_reason = daemon_evidence(pod, planner.ctx.workload_kind.as_deref());
    chosen
        .into_iter()
        .zip(ports)
        .zip(detections)
        .zip(launches)
        .map(|((((index, container), port), detection), (launch, app))| {
            let evidence = Evidence {
                job: &job_reason,
                daemon: &daemon_reason,
                port,
                detection: &detection,
                launch: &launch,
                app: app.as_ref(),
            };
            let (profile, profile_reason) = profile_of(directives, &evidence);
            Target {
                index_text: index.to_string(),
                container,
                port,
                launch,
                info: TargetContainer {
                    name: container.name.clone(),
                    profile,
                    profile_reason,
                    app,
                    detection,
                },
            }
        })
        .collect()
}

/// What the profile is chosen from.
struct Evidence<'e> {
    job: &'e Option<String>,
    daemon: &'e Option<String>,
    port: Option<i32>,
    detection: &'e detect::Detection,
    launch: &'e Launch,
    app: Option<&'e AppRef>,
}

/// The profile from the strongest evidence: not Python at all, then the annotation, then
/// run-to-completion, then running on every node, then the catalog entry, then the server, then
/// whether a port is served.
fn profile_of(directives: &Directives, evidence: &Evidence) -> (WorkloadProfile, String) {
    let server = evidence.detection.server;
    let entry = evidence.app.map(|app| app.entry.as_str()).unwrap_or("");
    if evidence.launch.python() == Some(false) {
        return (
            WorkloadProfile::Helper,
            format!("not Python (catalog {entry})"),
        );
    }
    if let Some(profile) = directives.profile {
        return (profile, format!("annotation {}", annotations::PROFILE));
    }
    if let Some(reason) = evidence.job {
        return (WorkloadProfile::Job, reason.clone());
    }
    if let Some(reason) = evidence.daemon {
        return (WorkloadProfile::Daemon, reason.clone());
    }
    if let Some(profile) = evidence
        .launch
        .entry
        .as_ref()
        .and_then(|entry| entry.profile)
    {
        let how = evidence
            .app
            .map(|app| app.evidence.join(", "))
            .unwrap_or_default();
        return (profile, format!("catalog {entry}: {how}"));
    }
    let port = evidence.port;
    if server.is_queue_worker() {
        return (WorkloadProfile::Worker, format!("runs {}", server.name()));
    }
    if server.serves_http() {
        return (WorkloadProfile::Web, format!("runs {}", server.name()));
    }
    match port {
        Some(port) => (WorkloadProfile::Web, format!("serves port {port}")),
        None => (
            WorkloadProfile::Worker,
            "long-running and serves no port".to_string(),
        ),
    }
}

/// Why the Pod runs on every node, if it does.
fn daemon_evidence(pod: &Pod, workload_kind: Option<&str>) -> Option<String> {
    if workload_kind == Some("DaemonSet") {
        return Some("a DaemonSet's pod template".to_string());
    }
    pod.metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.kind == "DaemonSet")
        .map(|owner| format!("owned by DaemonSet {}", owner.name))
}

/// Why the Pod runs to completion, if it does.
fn job_evidence(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|owner| owner.kind == "Job" || owner.kind == "CronJob");
    if let Some(owner) = owner {
        return Some(format!("owned by {} {}", owner.kind, owner.name));
    }
    match pod.spec.as_ref()?.restart_policy.as_deref()? {
        policy @ ("Never" | "OnFailure") => Some(format!("restartPolicy {policy}")),
        _ => None,
    }
}

/// The port a container declares for serving: one named http/web first, else the first TCP one.
fn declared_port(container: &Container) -> Option<i32> {
    let ports = container.ports.as_deref()?;
    let tcp = |p: &&k8s_openapi::api::core::v1::ContainerPort| {
        p.protocol.as_deref().is_none_or(|proto| proto == "TCP")
    };
    ports
        .iter()
        .filter(tcp)
        .find(|p| matches!(p.name.as_deref(), Some("http" | "web")))
        .or_else(|| ports.iter().find(tcp))
        .map(|p| p.container_port)
}

fn declares_port(container: &Container, number: i32) -> bool {
    container
        .ports
        .iter()
        .flatten()
        .any(|p| p.container_port == number)
}

/// The serving port of each chosen container, with the `pytune.io/port` annotation applied.
fn resolve_ports(
    chosen: &[(usize, &Container)],
    detections: &[detect::Detection],
    launches: &[(Launch, Option<AppRef>)],
    directives: &Directives,
    planner: &mut Planner,
) -> Vec<Option<i32>> {
    // What the server's own flags name first, then the catalog's port, then a declared one; none
    // when the catalog says the launch path serves nothing (charts copy ports into workers).
    let mut ports: Vec<Option<i32>> = chosen
        .iter()
        .zip(detections)
        .zip(launches)
        .map(|(((_, c), detection), (launch, _))| {
            if launch.serves() == Some(false) {
                return None;
            }
            let flagged = detection
                .flags
                .port
                .filter(|_| detection.server.serves_http());
            let declared = declared_port(c);
            // The port the catalog says serves traffic, when the container declares it (charts
            // declare metrics and log ports too).
            let catalogued = launch
                .port(declared)
                .filter(|port| declared.is_none() || declares_port(c, *port));
            flagged
                .filter(|port| declared.is_none() || declares_port(c, *port))
                .or(catalogued)
                .or(declared)
        })
        .collect();
    match &directives.port {
        None => {}
        Some(PortRef::Name(name)) => {
            let mut found = false;
            for (slot, (_, container)) in ports.iter_mut().zip(chosen) {
                if let Some(port) = container
                    .ports
                    .iter()
                    .flatten()
                    .find(|p| p.name.as_deref() == Some(name))
                {
                    *slot = Some(port.container_port);
                    found = true;
                }
            }
            if !found && !chosen.is_empty() {
                planner.warn(Warning::pod(format!(
                    "{}={name}: no target container declares a port of that name",
                    annotations::PORT
                )));
            }
        }
        Some(PortRef::Number(number)) => {
            let declaring = chosen.iter().position(|(_, c)| declares_port(c, *number));
            let portless = chosen
                .iter()
                .position(|(_, c)| c.ports.as_ref().is_none_or(Vec::is_empty));
            let owner = declaring.or(portless).or((chosen.len() == 1).then_some(0));
            match owner {
                Some(i) => ports[i] = Some(*number),
                None if chosen.is_empty() => {}
                None => planner.warn(Warning::pod(format!(
                    "{}={number}: cannot tell which container serves it; ignored",
                    annotations::PORT
                ))),
            }
        }
    }
    ports
}
