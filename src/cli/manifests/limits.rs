//! How much work one YAML document may cost. The limits stop inputs that are small on disk but
//! huge once parsed (alias bombs) or nested deep enough to exhaust the stack; they must never stop
//! a manifest Kubernetes itself would take.
//!
//! What Kubernetes takes: the API server decodes request bodies of up to 3 MiB
//! (`MaxRequestBodyBytes: 3 * 1024 * 1024` in k8s.io/apiserver/pkg/server/config.go, twice etcd's
//! default `--max-request-bytes` of 1.5 MiB), so one object is at most a few MiB; a `List` is not
//! an object but a file of them, which kubectl sends one item at a time, so it may hold thousands.
//! Hence the counts of nodes and events scale with the document's size rather than being flat:
//! text holds at most a few of each per byte, so a count proportional to the bytes never refuses
//! what is written out, and only alias expansion can exceed it. Expansion has its own, flat bound.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Budget, Error, Options};

/// Nesting deeper than this is refused. Kubernetes objects are a few dozen levels deep (the
/// deepest are CRD schemas, two levels per nested field); 128 is also how deep serde_json reads,
/// so the webhook's reviews have the same bound. Deserializing recurses once per level, with
/// frames of some 20 KiB in a debug build: 128 levels fit an 8 MiB main thread, a few hundred
/// would not. (The API server's own YAML and JSON decoders stop at 10,000.)
pub const MAX_DEPTH: usize = 128;

/// Parser events that aliases may add to a document by expansion. A manifest sharing labels or
/// env lists through anchors replays thousands; a billion-laughs document replays billions.
pub const MAX_ALIAS_EVENTS: usize = 1_000_000;

/// Scalar bytes that aliases may add to a document by expansion.
const MAX_ALIAS_SCALAR_BYTES: usize = 64 * 1024 * 1024;

/// Parse options for a document of `bytes` bytes.
pub fn options(bytes: usize) -> Options {
    let mut budget = Budget::default();
    // Every node and event of the text itself fits (the densest YAML, `[:,:,...]`, has 1.5 nodes
    // and 2 events per byte), plus what aliases may replay: replayed events count here too.
    budget.max_nodes = bytes
        .saturating_mul(2)
        .saturating_add(MAX_ALIAS_EVENTS)
        .saturating_add(1024);
    budget.max_events = bytes
        .saturating_mul(3)
        .saturating_add(MAX_ALIAS_EVENTS.saturating_mul(2))
        .saturating_add(1024);
    budget.max_total_scalar_bytes = bytes.saturating_add(MAX_ALIAS_SCALAR_BYTES);
    // Each alias and anchor takes at least two bytes: counts of them alone refuse nothing real,
    // nor does a ratio of one to the other (one `&labels` used by every item of a List is fine).
    budget.max_aliases = bytes / 2 + 1024;
    budget.max_anchors = bytes / 2 + 1024;
    budget.enforce_alias_anchor_ratio = false;
    budget.max_depth = MAX_DEPTH;
    // The scanner reads up to a simple key's lookahead past what the budget has seen, opening
    // flow collections (`[[[...]]]`) as it goes: its own limit is that much further, so that the
    // budget's depth check, with its clear error, is the one that trips.
    budget.flow_nesting_limit = MAX_DEPTH + budget.simple_key_max_lookahead + 8;
    let mut options = Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_EVENTS;
    options
}

/// Why a document was refused, when a limit refused it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Deeper than [`MAX_DEPTH`].
    TooDeep,
    /// Its aliases expand past what the limits allow.
    AliasExpansion,
}

/// Which limit, if any, the error is about.
pub fn refusal(mut err: &Error) -> Option<Refusal> {
    // An error met while expanding an alias comes wrapped with where the alias and anchor are.
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = err {
        err = error;
    }
    match err {
        Error::Budget { breach, .. } => match breach {
            BudgetBreach::Depth { .. } => Some(Refusal::TooDeep),
            // Sized so that only expansion can reach them.
            BudgetBreach::Nodes { .. }
            | BudgetBreach::Events { .. }
            | BudgetBreach::ScalarBytes { .. }
            | BudgetBreach::Aliases { .. }
            | BudgetBreach::RecordedAnchorEvents { .. }
            | BudgetBreach::RecordedAnchorBytes { .. }
            | BudgetBreach::AliasAnchorRatio { .. } => Some(Refusal::AliasExpansion),
            _ => None,
        },
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => Some(Refusal::AliasExpansion),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use crate::cli::manifests::{ManifestError, split_documents};

    #[test]
    fn one_anchor_may_serve_thousands_of_aliases() {
        let mut text = String::from("labels: &labels {app: web, tier: frontend}\nitems:\n");
        for i in 0..5000 {
            text.push_str(&format!("- {{name: pod-{i}, labels: *labels}}\n"));
        }
        let docs = split_documents(&text);
        let value = docs[0].parsed.clone().expect("valid").expect("a value");
        assert_eq!(value["items"][4999]["labels"]["tier"], "frontend");
    }

    #[test]
    fn an_alias_bomb_is_refused_by_name_and_the_next_document_kept() {
        let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
            let aliases = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{aliases}]\n"));
        }
        text.push_str("---\nkind: ConfigMap\n");
        let docs = split_documents(&text);
        assert!(
            matches!(docs[0].parsed, Err(ManifestError::AliasBomb { .. })),
            "{:?}",
            docs[0].parsed
        );
        let message = docs[0].parsed.clone().expect_err("refused").to_string();
        assert!(message.contains("alias bomb"), "{message}");
        assert_eq!(
            docs[1].parsed,
            Ok(Some(serde_json::json!({"kind": "ConfigMap"})))
        );
    }
}
