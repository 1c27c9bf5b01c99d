//! The ConfigMaps and Secrets among the input documents. A chart rendered with `helm template`
//! holds the sources its workloads' `envFrom` names; their keys tell the engine which variables
//! those sources define, so it can add the ones they do not (an `env` entry would override a
//! variable a source defines, so without its keys pytune adds none it could define). Only key
//! names are kept, never values.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::cli::manifests::{Document, PodSite};
use crate::core::engine::Context;

type KeysByName = BTreeMap<String, BTreeSet<String>>;

#[derive(Debug, Default)]
struct Sources {
    config_maps: KeysByName,
    secrets: KeysByName,
}

/// Keys of the ConfigMaps and Secrets found, by namespace (`None`: the document names none).
#[derive(Debug, Default)]
pub struct EnvSources {
    by_namespace: BTreeMap<Option<String>, Sources>,
    /// Every namespace a document of the input names.
    named: BTreeSet<String>,
    /// The namespace documents that name none are taken to be in: the one namespace the input
    /// names, if it names exactly one.
    implied: Option<String>,
}

impl EnvSources {
    /// Reads every ConfigMap and Secret among `documents`, including the items of a `List`. A name
    /// found twice in a namespace gets the keys of both: more known keys only means fewer
    /// variables added.
    ///
    /// A document that names no namespace is created in the one the input is applied to. When
    /// the input names exactly one namespace, that is taken to be it: `helm template` writes the
    /// release namespace into the templates that ask for it and leaves it out of the others, and
    /// `helm install -n` puts both in the same place.
    pub fn collect<'a>(documents: impl IntoIterator<Item = &'a Value>) -> EnvSources {
        let mut sources = EnvSources::default();
        for document in documents {
            sources.add(document);
        }
        if sources.named.len() == 1 {
            sources.implied = sources.named.first().cloned();
            if let Some(unnamed) = sources.by_namespace.remove(&None) {
                let into = sources
                    .by_namespace
                    .entry(sources.implied.clone())
                    .or_default();
                merge(&mut into.config_maps, &unnamed.config_maps);
                merge(&mut into.secrets, &unnamed.secrets);
            }
        }
        sources
    }

    /// [`EnvSources::collect`] over every document that parsed.
    pub fn of_documents(documents: &[Vec<Document>]) -> EnvSources {
        EnvSources::collect(
            documents
                .iter()
                .flatten()
                .filter_map(|document| document.parsed.as_ref().ok()?.as_ref()),
        )
    }

    fn add(&mut self, object: &Value) {
        if let Some(namespace) = object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
        {
            self.named.insert(namespace.to_string());
        }
        let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
        if kind == "List" || kind.ends_with("List") {
            for item in object
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                self.add(item);
            }
            return;
        }
        let fields: &[&str] = match kind {
            "ConfigMap" => &["data", "binaryData"],
            "Secret" => &["data", "stringData"],
            _ => return,
        };
        let metadata = object.get("metadata");
        let Some(name) = metadata.and_then(|m| m.get("name")).and_then(Value::as_str) else {
            return;
        };
        let namespace = metadata
            .and_then(|m| m.get("namespace"))
            .and_then(Value::as_str)
            .map(str::to_string);
        let keys = fields
            .iter()
            .filter_map(|field| object.get(*field).and_then(Value::as_object))
            .flat_map(|map| map.keys().cloned());
        let sources = self.by_namespace.entry(namespace).or_default();
        let by_name = if kind == "Secret" {
            &mut sources.secrets
        } else {
            &mut sources.config_maps
        };
        by_name.entry(name.to_string()).or_default().extend(keys);
    }

    /// The context of one Pod or pod template: the sources of its namespace, and the kind of
    /// workload it belongs to (`DaemonSet/x` → `DaemonSet`).
    pub fn site_context(&self, ctx: &Context, site: &PodSite) -> Context {
        let mut ctx = Context {
            workload_kind: site
                .workload
                .split_once('/')
                .map(|(kind, _)| kind.to_string()),
            ..ctx.clone()
        };
        let namespace = site.namespace.clone().or_else(|| self.implied.clone());
        if let Some(sources) = self.by_namespace.get(&namespace) {
            merge(&mut ctx.config_map_keys, &sources.config_maps);
            merge(&mut ctx.secret_keys, &sources.secrets);
        }
        ctx
    }
}

fn merge(into: &mut KeysByName, from: &KeysByName) {
    for (name, keys) in from {
        into.entry(name.clone())
            .or_default()
            .extend(keys.iter().cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn site(namespace: Option<&str>) -> PodSite {
        PodSite {
            pointer: "/spec/template".to_string(),
            workload: "Deployment/web".to_string(),
            namespace: namespace.map(str::to_string),
            template: true,
        }
    }

    #[test]
    fn keys_of_config_maps_and_secrets_by_namespace() {
        let documents = [
            json!({"kind": "ConfigMap", "metadata": {"name": "env"},
                   "data": {"A": "1"}, "binaryData": {"B": "Ag=="}}),
            json!({"kind": "Secret", "metadata": {"name": "creds"},
                   "data": {"PASSWORD": "cA=="}, "stringData": {"USER": "u"}}),
            json!({"kind": "List", "items": [
                {"kind": "Secret", "metadata": {"name": "creds", "namespace": "prod"}, "data": {"TOKEN": "dA=="}}
            ]}),
            json!({"kind": "Deployment", "metadata": {"name": "web"}}),
            json!({"kind": "Deployment", "metadata": {"name": "api", "namespace": "stage"}}),
        ];
        let sources = EnvSources::collect(&documents);

        let ctx = sources.site_context(&Context::default(), &site(None));
        assert_eq!(ctx.workload_kind.as_deref(), Some("Deployment"));
        assert_eq!(
            ctx.config_map_keys["env"],
            ["A".to_string(), "B".to_string()].into()
        );
        assert_eq!(
            ctx.secret_keys["creds"],
            ["PASSWORD".to_string(), "USER".to_string()].into()
        );

        // Another namespace sees only its own sources.
        let prod = sources.site_context(&Context::default(), &site(Some("prod")));
        assert!(prod.config_map_keys.is_empty());
        assert_eq!(prod.secret_keys["creds"], ["TOKEN".to_string()].into());
    }

    #[test]
    fn documents_without_a_namespace_are_in_the_one_the_input_names() {
        // As `helm template` writes it: some templates name the release namespace, some none.
        let documents = [
            json!({"kind": "Secret", "metadata": {"name": "backend-secret"}, "stringData": {"DATABASE_HOST": "db"}}),
            json!({"kind": "ConfigMap", "metadata": {"name": "backend-config", "namespace": "default"}, "data": {"DATABASE_USER": "u"}}),
            json!({"kind": "Deployment", "metadata": {"name": "web", "namespace": "default"}}),
        ];
        let sources = EnvSources::collect(&documents);
        for namespace in [Some("default"), None] {
            let ctx = sources.site_context(&Context::default(), &site(namespace));
            assert_eq!(
                ctx.secret_keys["backend-secret"],
                ["DATABASE_HOST".to_string()].into(),
                "{namespace:?}"
            );
            assert_eq!(
                ctx.config_map_keys["backend-config"],
                ["DATABASE_USER".to_string()].into(),
                "{namespace:?}"
            );
        }
        // Another namespace is still another.
        let other = sources.site_context(&Context::default(), &site(Some("prod")));
        assert!(other.secret_keys.is_empty() && other.config_map_keys.is_empty());
    }

    #[test]
    fn a_source_without_data_defines_nothing_and_one_without_a_name_is_ignored() {
        let documents = [
            json!({"kind": "Secret", "metadata": {"name": "empty"}}),
            json!({"kind": "ConfigMap", "metadata": {}, "data": {"A": "1"}}),
        ];
        let ctx = EnvSources::collect(&documents).site_context(&Context::default(), &site(None));
        assert_eq!(ctx.secret_keys["empty"], BTreeSet::new());
        assert!(ctx.config_map_keys.is_empty());
    }
}
