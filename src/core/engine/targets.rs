//! Which containers pytune changes, which port each serves, and which profile each gets.

use k8s_openapi::api::core::v1::{Container, Pod};

use super::directives::{Directives, PortRef, annotations};
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
    let ports = resolve_ports(&chosen, &detections, directives, planner);
    let job_reason = job_evidence(pod);
    chosen
        .into_iter()
        .zip(ports)
        .zip(detections)
        .map(|(((index, container), port), detection)| {
            let (profile, profile_reason) = profile_of(directives, &job_reason, port, &detection);
            Target {
                index_text: index.to_string(),
                container,
                port,
                info: TargetContainer {
                    name: container.name.clone(),
                    profile,
                    profile_reason,
                    detection,
                },
            }
        })
        .collect()
}

/// The profile from the strongest evidence: annotation, then run-to-completion, then the server,
/// then whether a port is served.
fn profile_of(
    directives: &Directives,
    job_reason: &Option<String>,
    port: Option<i32>,
    detection: &detect::Detection,
) -> (WorkloadProfile, String) {
    let server = detection.server;
    if let Some(profile) = directives.profile {
        return (profile, format!("annotation {}", annotations::PROFILE));
    }
    if let Some(reason) = job_reason {
        return (WorkloadProfile::Job, reason.clone());
    }
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
    directives: &Directives,
    planner: &mut Planner,
) -> Vec<Option<i32>> {
    // A declared containerPort first; else the port the server's own flags name.
    let mut ports: Vec<Option<i32>> = chosen
        .iter()
        .zip(detections)
        .map(|((_, c), detection)| {
            declared_port(c).or(detection
                .flags
                .port
                .filter(|_| detection.server.serves_http()))
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
