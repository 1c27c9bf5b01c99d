//! Which catalog entry a container matches, and on what evidence.

use k8s_openapi::api::core::v1::Container;
use serde::Serialize;

use super::{Catalog, Entry, Matcher};
use crate::core::detect;

/// The entry a container matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppMatch {
    pub entry: Entry,
    /// The family (catalog file) of the entry; `policy` for the policy's own.
    pub family: String,
    /// The conditions that matched, in words: `image apache/airflow`, `words airflow api-server`.
    pub evidence: Evidence,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Evidence(pub Vec<String>);

impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0.join(", "))
    }
}

/// The most specific entry matching `container`: `own` (the policy's) before `catalog`.
/// An entry of the policy replaces the embedded entry of the same name.
pub fn find(container: &Container, own: &[Entry], catalog: &Catalog) -> Option<AppMatch> {
    let facts = Facts::of(container);
    let mut best: Option<(usize, &Entry, &Matcher, &str)> = None;
    let own_names: Vec<&str> = own.iter().map(|entry| entry.name.as_str()).collect();
    let candidates = own.iter().map(|entry| (entry, "policy")).chain(
        catalog
            .entries()
            .filter(|(_, entry)| !own_names.contains(&entry.name.as_str()))
            .map(|(family, entry)| (entry, family.family.as_str())),
    );
    for (entry, family) in candidates {
        for matcher in &entry.matchers {
            let weight = matcher.weight();
            if best.is_some_and(|(best_weight, ..)| best_weight >= weight) {
                continue;
            }
            if facts.satisfy(matcher) {
                best = Some((weight, entry, matcher, family));
            }
        }
    }
    best.map(|(_, entry, matcher, family)| AppMatch {
        entry: entry.clone(),
        family: family.to_string(),
        evidence: Evidence(describe(matcher)),
    })
}

fn describe(matcher: &Matcher) -> Vec<String> {
    let mut evidence = Vec::new();
    if let Some(image) = &matcher.image {
        evidence.push(format!("image {image}"));
    }
    if !matcher.words.is_empty() {
        evidence.push(format!("command {}", matcher.words.join(" ")));
    }
    for (name, value) in &matcher.env {
        evidence.push(match value.as_str() {
            "*" => format!("env {name}"),
            value => format!("env {name}={value}"),
        });
    }
    if matcher.no_command {
        evidence.push("the image's own command".to_string());
    }
    evidence
}

/// What matching reads from one container.
struct Facts<'c> {
    repository: String,
    words: Vec<String>,
    container: &'c Container,
    has_command: bool,
}

impl<'c> Facts<'c> {
    fn of(container: &'c Container) -> Facts<'c> {
        Facts {
            repository: image_repository(container.image.as_deref().unwrap_or("")),
            words: detect::launch_words(container),
            container,
            has_command: container.command.as_ref().is_some_and(|c| !c.is_empty())
                || container.args.as_ref().is_some_and(|a| !a.is_empty()),
        }
    }

    fn satisfy(&self, matcher: &Matcher) -> bool {
        if matcher.no_command && self.has_command {
            return false;
        }
        if let Some(pattern) = &matcher.image
            && !image_matches(pattern, &self.repository)
        {
            return false;
        }
        if !words_in_order(&matcher.words, &self.words) {
            return false;
        }
        matcher.env.iter().all(|(name, value)| {
            self.container
                .env
                .iter()
                .flatten()
                .find(|var| var.name == *name)
                .is_some_and(|var| value == "*" || var.value.as_deref() == Some(value))
        })
    }
}

/// A pattern is read like an image reference: a registry host, tag or digest in it is ignored.
fn image_matches(pattern: &str, repository: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => repository.starts_with(&image_repository(prefix)),
        None => repository == image_repository(pattern),
    }
}

/// Whether `wanted` appear in `words` in order; a word matches itself or a path ending in it.
fn words_in_order(wanted: &[String], words: &[String]) -> bool {
    let mut words = words.iter();
    wanted.iter().all(|want| {
        words.any(|word| word == want || word.rsplit('/').next() == Some(want.as_str()))
    })
}

/// An image reference's repository without registry host, tag or digest: `apache/airflow` for
/// `docker.io/apache/airflow:3.0.2`; Docker Hub's official images are bare (`python`).
pub fn image_repository(image: &str) -> String {
    let image = image.trim().to_ascii_lowercase();
    let without_digest = image.split('@').next().unwrap_or("");
    // A tag follows the last colon after the last slash (a colon before it is a registry port).
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let without_tag = match without_digest[last_slash..].find(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    let mut parts: Vec<&str> = without_tag.split('/').collect();
    if parts.len() > 1 {
        let first = parts[0];
        if first.contains('.') || first.contains(':') || first == "localhost" {
            parts.remove(0);
        }
    }
    if parts.len() == 2 && parts[0] == "library" {
        parts.remove(0);
    }
    parts.join("/")
}
