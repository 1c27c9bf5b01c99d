//! The cluster facts of one review, looked up before planning when enabled: the keys of the
//! Pod's `envFrom` sources and its workload's learned defaults. Both run at once, within a share
//! of the review's deadline; what is not known by then stays unknown, and the engine plans as it
//! does without the lookup.

use std::time::Duration;

use crate::core::engine::Context;
use crate::core::policy::Policy;
use crate::webhook::env_from;
use crate::webhook::http::AppState;
use crate::webhook::review::Parsed;

/// The longest the lookups of one review take: a third of its deadline, at most
/// [`env_from::MAX_LOOKUP_TIME`].
pub fn budget(deadline: Duration) -> Duration {
    (deadline / 3).min(env_from::MAX_LOOKUP_TIME)
}

/// The context to plan `parsed` with: the server's, plus what the enabled lookups found. `None`
/// when nothing was looked up (the server's context applies as it is).
pub async fn context(
    state: &AppState,
    parsed: &Parsed,
    policy: &Policy,
    within: Duration,
) -> Option<Context> {
    let namespace = parsed.namespace()?;
    let env_from = async {
        let resolver = state.env_from.as_ref()?;
        let names = parsed.env_from_names();
        if names.config_maps.is_empty() && names.secrets.is_empty() {
            return None;
        }
        Some(resolver.keys(namespace, &names, within).await)
    };
    let learned = async {
        let learned = state.learned.as_ref()?;
        let containers = parsed.container_names();
        if containers.is_empty() {
            return None;
        }
        let found = learned
            .for_pod(
                namespace,
                parsed.owner_references(),
                &containers,
                policy.learned.max_age_seconds(),
                within,
            )
            .await;
        (!found.is_empty()).then_some(found)
    };
    let (keys, learned) = tokio::join!(env_from, learned);
    if keys.is_none() && learned.is_none() {
        return None;
    }
    let mut context = state.context.clone();
    if let Some(keys) = keys {
        context.config_map_keys = keys.config_maps;
        context.secret_keys = keys.secrets;
    }
    if let Some(learned) = learned {
        context.learned = learned;
    }
    Some(context)
}
