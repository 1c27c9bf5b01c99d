//! The `pytune.io/injected` record: which values pytune added to a Pod, compact and bounded.
//!
//! The reasons do not go on the Pod: every byte of it is decoded, validated, stored and sent back
//! by the API server on each read, and one sentence per change made the record most of the patch
//! (a Pod with 200 containers would pass the API server's 256 KiB limit on annotations and be
//! rejected). The record names the fields, one line per container, and `pytune explain` gives the
//! reasons from the same engine. A container's line names the catalog entry it matched in
//! brackets, and `learned:DATE` there when values came from learned defaults, which only the
//! webhook has. Over its budget it falls back to counts per feature, then to one
//! line of totals.
//!
//! ```text
//! web[gunicorn]: resources.requests(cpu,memory) resources.limits(memory) startupProbe lifecycle(preStop) env(PYTHONUNBUFFERED,WEB_CONCURRENCY)
//! pod: terminationGracePeriodSeconds
//! ```
//!
//! Records written before this format (one `container field: reason` line per value) are still
//! read.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::core::engine::{Change, Feature, annotations};

/// The most the record may take, whatever the Pod: far below the API server's annotation limit.
pub const RECORD_BUDGET: usize = 1024;

/// The API server rejects a Pod whose annotations (keys and values) total more than this.
pub const TOTAL_ANNOTATIONS_LIMIT: usize = 256 * 1024;

/// The owner written for Pod-level fields, where a container name stands otherwise.
pub const POD: &str = "pod";

/// How much a record says, from most to least.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    /// Every field added, by container.
    Fields,
    /// How many values each feature added, by container.
    Features,
    /// Totals only.
    Totals,
}

impl Detail {
    pub const ALL: [Detail; 3] = [Detail::Fields, Detail::Features, Detail::Totals];
}

/// The record of `changes` (pytune's own record changes are left out) at one level of detail;
/// `labels` gives the bracket after a container's name: the catalog entry it matched, and
/// `learned:DATE` when its workload's learned defaults were used.
pub fn render(changes: &[Change], detail: Detail, labels: &[(String, String)]) -> String {
    let owners = by_owner(changes);
    let label = |owner: &str| match labels.iter().find(|(name, _)| name == owner) {
        Some((_, entry)) => format!("{owner}[{entry}]"),
        None => owner.to_string(),
    };
    match detail {
        Detail::Fields => owners
            .iter()
            .map(|(owner, changes)| format!("{}: {}", label(owner), grouped_fields(changes)))
            .collect::<Vec<_>>()
            .join("\n"),
        Detail::Features => owners
            .iter()
            .map(|(owner, changes)| format!("{}: {}", label(owner), feature_counts(changes)))
            .collect::<Vec<_>>()
            .join("\n"),
        Detail::Totals => {
            let values: usize = owners.iter().map(|(_, changes)| changes.len()).sum();
            let containers = owners.iter().filter(|(owner, _)| *owner != POD).count();
            format!("{values} values in {containers} containers; pytune explain lists them")
        }
    }
}

/// The changes of each owner (container, or [`POD`]), containers in plan order, the Pod last.
fn by_owner(changes: &[Change]) -> Vec<(&str, Vec<&Change>)> {
    let mut owners: Vec<(&str, Vec<&Change>)> = Vec::new();
    let mut pod_level = Vec::new();
    for change in changes.iter().filter(|c| c.feature != Feature::Record) {
        let Some(container) = change.container.as_deref() else {
            pod_level.push(change);
            continue;
        };
        match owners.iter_mut().find(|(owner, _)| *owner == container) {
            Some((_, list)) => list.push(change),
            None => owners.push((container, vec![change])),
        }
    }
    if !pod_level.is_empty() {
        owners.push((POD, pod_level));
    }
    owners
}

/// Splits a field into the group it belongs to and its own name: `resources.requests.cpu` →
/// (`resources.requests`, `cpu`), `env.A.B` → (`env`, `A.B`), `startupProbe` → (``, `startupProbe`).
fn group_of(field: &str) -> (&str, &str) {
    if let Some(name) = field.strip_prefix("env.") {
        return ("env", name);
    }
    field.rsplit_once('.').unwrap_or(("", field))
}

/// `resources.requests(cpu,memory) startupProbe env(A,B)`: fields of one group together, in the
/// order the plan added them.
fn grouped_fields(changes: &[&Change]) -> String {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for change in changes {
        let (group, name) = group_of(&change.field);
        match groups
            .iter_mut()
            .find(|(g, _)| !g.is_empty() && *g == group)
        {
            // A variable and the references after it that may replace its value: one name.
            Some((_, names)) if names.contains(&name) => {}
            Some((_, names)) => names.push(name),
            None => groups.push((group, vec![name])),
        }
    }
    groups
        .iter()
        .map(|(group, names)| {
            if group.is_empty() {
                names.join(" ")
            } else {
                format!("{group}({})", names.join(","))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// `resources=3 probes=2 env=10`.
fn feature_counts(changes: &[&Change]) -> String {
    let mut counts: BTreeMap<Feature, usize> = BTreeMap::new();
    for change in changes {
        *counts.entry(change.feature).or_default() += 1;
    }
    counts
        .iter()
        .map(|(feature, count)| format!("{}={count}", feature.name()))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The record to write: the earlier one (if the Pod came with one) followed by this one, at the
/// most detail that fits in [`RECORD_BUDGET`]. When even totals do not fit beside the earlier
/// record, the earlier record is dropped.
pub fn compose(earlier: Option<&str>, changes: &[Change], labels: &[(String, String)]) -> String {
    let earlier = earlier.map(str::trim).filter(|text| !text.is_empty());
    for detail in Detail::ALL {
        let text = render(changes, detail, labels);
        let text = match earlier {
            Some(earlier) => format!("{earlier}\n{text}"),
            None => text,
        };
        if text.len() <= RECORD_BUDGET {
            return text;
        }
    }
    render(changes, Detail::Totals, labels)
}

/// What a record says pytune added.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Recorded {
    /// `(owner, field)`: the owner is a container name or [`POD`]; fields as the plan names them
    /// (`resources.requests.cpu`, `env.PYTHONUNBUFFERED`).
    pub fields: Vec<(String, String)>,
    /// False when (part of) the record gives counts or totals instead of fields.
    pub complete: bool,
}

/// Reads a record, in this format or the earlier one-line-per-value format.
pub fn parse(text: &str) -> Recorded {
    let mut recorded = Recorded {
        fields: Vec::new(),
        complete: true,
    };
    for line in text.lines().map(str::trim).filter(|line| !line.is_empty()) {
        let Some((head, rest)) = line.split_once(' ') else {
            recorded.complete = false;
            continue;
        };
        if let Some(owner) = head.strip_suffix(':') {
            // `web[gunicorn]`: the bracket names the catalog entry.
            let owner = owner.split('[').next().unwrap_or(owner);
            // This format: `owner: item item…`. Container names cannot hold a colon.
            for item in rest.split_whitespace() {
                if !read_item(owner, item, &mut recorded.fields) {
                    recorded.complete = false;
                }
            }
        } else if let Some((field, _reason)) = rest.split_once(": ") {
            // The earlier format: `owner field: reason`.
            recorded
                .fields
                .push((head.to_string(), field.trim().to_string()));
        } else {
            recorded.complete = false;
        }
    }
    recorded
}

/// Reads `group(a,b)` or `field` into fields; false for a count (`env=10`).
fn read_item(owner: &str, item: &str, fields: &mut Vec<(String, String)>) -> bool {
    if item.contains('=') {
        return false;
    }
    match item.split_once('(') {
        Some((group, names)) => {
            let names = names.strip_suffix(')').unwrap_or(names);
            for name in names.split(',').filter(|name| !name.is_empty()) {
                fields.push((owner.to_string(), format!("{group}.{name}")));
            }
        }
        None => fields.push((owner.to_string(), item.to_string())),
    }
    true
}

/// The Pod as it was before pytune added the fields `recorded` names, so the engine can plan them
/// again and say why: the record annotations go too. Fields of containers the Pod no longer has
/// are ignored.
pub fn without_recorded(pod: &Value, recorded: &Recorded) -> Value {
    let mut pod = pod.clone();
    if let Some(values) = pod
        .pointer_mut("/metadata/annotations")
        .and_then(Value::as_object_mut)
    {
        values.remove(annotations::INJECTED);
        values.remove(annotations::POLICY_REVISION);
    }
    for (owner, field) in &recorded.fields {
        let container = pod
            .pointer_mut("/spec/containers")
            .and_then(Value::as_array_mut)
            .and_then(|containers| {
                containers
                    .iter_mut()
                    .find(|container| container["name"].as_str() == Some(owner))
            });
        match container {
            Some(container) => remove_field(container, field),
            None if owner == POD => {
                if let Some(spec) = pod.get_mut("spec") {
                    remove_field(spec, field);
                }
            }
            None => {}
        }
    }
    pod
}

/// Removes `field` (`env.NAME`, or dotted members like `resources.requests.cpu`) from `object`.
fn remove_field(object: &mut Value, field: &str) {
    if let Some(name) = field.strip_prefix("env.") {
        if let Some(env) = object.get_mut("env").and_then(Value::as_array_mut) {
            env.retain(|entry| entry["name"].as_str() != Some(name));
            if env.is_empty()
                && let Some(object) = object.as_object_mut()
            {
                object.remove("env");
            }
        }
        return;
    }
    let mut tokens: Vec<&str> = field.split('.').collect();
    let Some(last) = tokens.pop() else {
        return;
    };
    let mut parent = object;
    for token in tokens {
        match parent.get_mut(token) {
            Some(next) => parent = next,
            None => return,
        }
    }
    if let Some(parent) = parent.as_object_mut() {
        parent.remove(last);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::PatchValue;

    fn change(container: Option<&str>, feature: Feature, field: &str) -> Change {
        Change {
            container: container.map(str::to_string),
            feature,
            field: field.to_string(),
            path: String::new(),
            value: PatchValue::from("x"),
            reason: "because".to_string(),
        }
    }

    fn web_changes() -> Vec<Change> {
        vec![
            change(Some("web"), Feature::Resources, "resources.requests.cpu"),
            change(Some("web"), Feature::Resources, "resources.requests.memory"),
            change(Some("web"), Feature::Resources, "resources.limits.memory"),
            change(Some("web"), Feature::Probes, "startupProbe"),
            change(Some("web"), Feature::Probes, "readinessProbe"),
            change(Some("web"), Feature::Lifecycle, "lifecycle.preStop"),
            change(Some("web"), Feature::Env, "env.PYTHONUNBUFFERED"),
            change(Some("web"), Feature::Env, "env.WEB_CONCURRENCY"),
            change(Some("worker"), Feature::Env, "env.PYTHONUNBUFFERED"),
            change(None, Feature::Lifecycle, "terminationGracePeriodSeconds"),
        ]
    }

    #[test]
    fn a_container_line_names_its_catalog_entry_and_reads_back() {
        let apps = vec![("web".to_string(), "gunicorn".to_string())];
        let text = render(&web_changes(), Detail::Fields, &apps);
        assert!(
            text.starts_with("web[gunicorn]: resources.requests(cpu,memory)"),
            "{text}"
        );
        assert!(text.contains("\nworker: env(PYTHONUNBUFFERED)"), "{text}");
        let recorded = parse(&text);
        assert!(
            recorded
                .fields
                .iter()
                .all(|(owner, _)| !owner.contains('['))
        );
        assert_eq!(recorded.fields.len(), web_changes().len());
    }

    #[test]
    fn fields_are_grouped_one_line_per_container_and_the_pod_last() {
        assert_eq!(
            render(&web_changes(), Detail::Fields, &[]),
            "web: resources.requests(cpu,memory) resources.limits(memory) startupProbe \
             readinessProbe lifecycle(preStop) env(PYTHONUNBUFFERED,WEB_CONCURRENCY)\n\
             worker: env(PYTHONUNBUFFERED)\n\
             pod: terminationGracePeriodSeconds"
        );
    }

    #[test]
    fn coarser_forms_count_features_then_totals() {
        assert_eq!(
            render(&web_changes(), Detail::Features, &[]),
            "web: resources=3 probes=2 lifecycle=1 env=2\nworker: env=1\npod: lifecycle=1"
        );
        assert_eq!(
            render(&web_changes(), Detail::Totals, &[]),
            "10 values in 2 containers; pytune explain lists them"
        );
    }

    #[test]
    fn the_record_itself_is_not_recorded() {
        let changes = vec![
            change(Some("web"), Feature::Env, "env.A"),
            change(None, Feature::Record, "annotations.pytune.io/injected"),
        ];
        assert_eq!(render(&changes, Detail::Fields, &[]), "web: env(A)");
    }

    #[test]
    fn fields_read_back_as_written() {
        let changes = web_changes();
        let recorded = parse(&render(&changes, Detail::Fields, &[]));
        assert!(recorded.complete);
        let expected: Vec<(String, String)> = changes
            .iter()
            .map(|c| {
                (
                    c.container.clone().unwrap_or_else(|| POD.to_string()),
                    c.field.clone(),
                )
            })
            .collect();
        let mut got = recorded.fields.clone();
        got.sort();
        let mut want = expected;
        want.sort();
        assert_eq!(got, want);
    }

    #[test]
    fn counts_and_totals_read_as_incomplete() {
        assert!(!parse(&render(&web_changes(), Detail::Features, &[])).complete);
        assert!(!parse(&render(&web_changes(), Detail::Totals, &[])).complete);
    }

    #[test]
    fn records_of_the_earlier_format_are_read() {
        let old = "web resources.requests.cpu: no CPU request: the scheduler would count it\n\
                   web env.PYTHONUNBUFFERED: logs reach kubectl logs at once\n\
                   pod terminationGracePeriodSeconds: the default 30s is shorter";
        let recorded = parse(old);
        assert!(recorded.complete);
        assert_eq!(
            recorded.fields,
            vec![
                ("web".to_string(), "resources.requests.cpu".to_string()),
                ("web".to_string(), "env.PYTHONUNBUFFERED".to_string()),
                (
                    "pod".to_string(),
                    "terminationGracePeriodSeconds".to_string()
                ),
            ]
        );
    }

    #[test]
    fn the_record_stays_within_budget_whatever_the_pod() {
        let many: Vec<Change> = (0..200)
            .flat_map(|i| {
                let name = format!("container-with-a-long-name-{i}");
                (0..12).map(move |j| {
                    change(
                        Some(&name),
                        Feature::Env,
                        &format!("env.SETTING_NUMBER_{j}"),
                    )
                })
            })
            .collect();
        let text = compose(None, &many, &[]);
        assert!(text.len() <= RECORD_BUDGET, "{} bytes", text.len());
        assert_eq!(
            text,
            "2400 values in 200 containers; pytune explain lists them"
        );
    }

    #[test]
    fn an_earlier_record_is_kept_when_both_fit_and_dropped_when_not() {
        let changes = vec![change(Some("web"), Feature::Env, "env.A")];
        assert_eq!(
            compose(Some("web: env(B)\n"), &changes, &[]),
            "web: env(B)\nweb: env(A)"
        );
        let huge = "x ".repeat(RECORD_BUDGET);
        assert_eq!(
            compose(Some(&huge), &changes, &[]),
            render(&changes, Detail::Totals, &[])
        );
    }

    #[test]
    fn a_pod_without_its_recorded_fields_is_the_pod_before_pytune() {
        let before = serde_json::json!({
            "metadata": {"name": "p", "annotations": {"team": "a"}},
            "spec": {"containers": [
                {"name": "web", "env": [{"name": "MINE", "value": "1"}],
                 "resources": {"requests": {"cpu": "1"}}},
                {"name": "side"}
            ]}
        });
        let after = serde_json::json!({
            "metadata": {"name": "p", "annotations": {
                "team": "a",
                "pytune.io/injected": "web: resources.requests(memory) env(PYTHONUNBUFFERED) startupProbe\nside: env(A)\ngone: env(B)\npod: terminationGracePeriodSeconds",
                "pytune.io/policy-revision": "r1"}},
            "spec": {"terminationGracePeriodSeconds": 40, "containers": [
                {"name": "web", "env": [{"name": "MINE", "value": "1"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
                 "resources": {"requests": {"cpu": "1", "memory": "256Mi"}},
                 "startupProbe": {"tcpSocket": {"port": 8000}}},
                {"name": "side", "env": [{"name": "A", "value": "1"}]}
            ]}
        });
        let text = after["metadata"]["annotations"]["pytune.io/injected"]
            .as_str()
            .unwrap_or_default();
        assert_eq!(without_recorded(&after, &parse(text)), before);
    }
}
