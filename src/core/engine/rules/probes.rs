//! Startup, readiness and liveness probes for web containers, each added only when missing.

use crate::core::catalog::ServerKind;
use crate::core::engine::directives::{Directives, annotations};
use crate::core::engine::listen::Listening;
use crate::core::engine::{Feature, PatchValue, Planner, Target, WorkloadProfile};
use crate::core::policy::ProbeTiming;

#[derive(Clone, Copy)]
enum Kind {
    Startup,
    Readiness,
    Liveness,
}

impl Kind {
    fn field(self) -> &'static str {
        match self {
            Kind::Startup => "startupProbe",
            Kind::Readiness => "readinessProbe",
            Kind::Liveness => "livenessProbe",
        }
    }
}

pub fn plan(
    target: &Target,
    directives: &Directives,
    listening: &Listening,
    planner: &mut Planner,
) {
    if target.info.profile != WorkloadProfile::Web {
        return;
    }
    if let Listening::LoopbackOnly(why) = listening {
        planner.note(
            Some(target.name()),
            Feature::Probes,
            format!("no probes: {why}, so they would fail"),
        );
        return;
    }
    let port = match target.serving_port(directives) {
        Ok(port) => port,
        Err(why) => {
            planner.note(
                Some(target.name()),
                Feature::Probes,
                format!("no probes: {why}"),
            );
            return;
        }
    };
    // The app's own health endpoint, when the catalog knows one on this port.
    let catalog_health = target
        .launch
        .health()
        .filter(|health| target.launch.port_of(health.port, port) == port);
    // Several programs behind one port (supervisord: nginx in front of the app): the port accepts
    // before the app answers, so only the app's own health endpoint says anything.
    if target.launch.entry.as_ref().and_then(|entry| entry.server) == Some(ServerKind::Supervisord)
        && catalog_health.is_none()
        && directives.health_path.is_none()
    {
        planner.note(
            Some(target.name()),
            Feature::Probes,
            format!(
                "no probes: port {port} is a front for several programs, and no health endpoint is known (set {})",
                annotations::HEALTH_PATH
            ),
        );
        return;
    }
    let container = target.container;
    let timings = &planner.policy.probes;
    let existing = [
        (
            Kind::Startup,
            container.startup_probe.is_some(),
            timings.startup,
        ),
        (
            Kind::Readiness,
            container.readiness_probe.is_some(),
            timings.readiness,
        ),
        (
            Kind::Liveness,
            container.liveness_probe.is_some(),
            timings.liveness,
        ),
    ];
    for (kind, present, timing) in existing {
        if present {
            continue;
        }
        // Liveness stays TCP even with a health path: a dependency outage behind an HTTP check would
        // restart every replica at once, which only makes the outage worse.
        let http = match (kind, directives.health_path.as_deref(), catalog_health) {
            (Kind::Liveness, _, _) => None,
            (_, Some(path), _) => Some((path, None)),
            (_, None, Some(health)) => Some((health.path.as_str(), health.host.as_deref())),
            (_, None, None) => None,
        };
        let probe = probe(port, http, timing);
        let check = match http {
            Some((path, Some(host))) => format!("HTTP GET {path} on port {port} as host {host}"),
            Some((path, None)) => format!("HTTP GET {path} on port {port}"),
            None => format!("TCP connect to port {port}"),
        };
        let reason = match kind {
            Kind::Startup => format!(
                "no startupProbe: {check} allows {}s for slow imports before liveness starts",
                timing.period_seconds * timing.failure_threshold
            ),
            Kind::Readiness => {
                format!("no readinessProbe: {check} keeps traffic away until the server accepts it")
            }
            Kind::Liveness => format!(
                "no livenessProbe: {check}; restarts only after {}s of a dead socket",
                timing.period_seconds * timing.failure_threshold
            ),
        };
        let path = planner
            .builder
            .set(&target.tokens(&[kind.field()]), probe.clone());
        planner.change(
            Some(target.name()),
            Feature::Probes,
            kind.field(),
            path,
            probe,
            reason,
        );
    }
}

/// A probe on `port`: HTTP GET of a path (with a `Host` header when given), else a TCP connect.
fn probe(port: i32, http: Option<(&str, Option<&str>)>, timing: ProbeTiming) -> PatchValue {
    let handler = match http {
        Some((path, None)) => (
            "httpGet",
            PatchValue::object([("path", path.into()), ("port", port.into())]),
        ),
        Some((path, Some(host))) => (
            "httpGet",
            PatchValue::object([
                ("path", path.into()),
                ("port", port.into()),
                (
                    "httpHeaders",
                    PatchValue::Array(vec![PatchValue::object([
                        ("name", "Host".into()),
                        ("value", host.into()),
                    ])]),
                ),
            ]),
        ),
        None => ("tcpSocket", PatchValue::object([("port", port.into())])),
    };
    PatchValue::object([
        handler,
        ("periodSeconds", timing.period_seconds.into()),
        ("timeoutSeconds", timing.timeout_seconds.into()),
        ("failureThreshold", timing.failure_threshold.into()),
    ])
}
