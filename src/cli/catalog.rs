//! `pytune catalog`: the entries pytune matches containers against — the policy's own first, then
//! the embedded ones — with what each states and where its facts come from.

use std::fmt::Write as _;

use serde::Serialize;

use crate::core::catalog::{Catalog, CountDefault, Entry, PortSpec};
use crate::core::policy::Policy;

/// One listed entry and where it comes from.
#[derive(Debug, Serialize)]
pub struct Listed<'a> {
    /// `policy`, or the embedded family (file) name.
    pub family: &'a str,
    #[serde(flatten)]
    pub entry: &'a Entry,
}

/// Every entry in matching order; `name` keeps only the entry of that name.
pub fn list<'a>(policy: &'a Policy, catalog: &'a Catalog, name: Option<&str>) -> Vec<Listed<'a>> {
    let own = policy.catalog.iter().map(|entry| Listed {
        family: "policy",
        entry,
    });
    let embedded = catalog.entries().map(|(family, entry)| Listed {
        family: &family.family,
        entry,
    });
    own.chain(embedded)
        .filter(|listed| name.is_none_or(|name| listed.entry.name == name))
        .collect()
}

/// A table: one row per entry.
pub fn render_table(listed: &[Listed]) -> String {
    let rows: Vec<[String; 7]> = listed
        .iter()
        .map(|listed| {
            let entry = listed.entry;
            [
                entry.name.clone(),
                listed.family.to_string(),
                entry.server.map_or_else(
                    || if entry.python { "python" } else { "-" }.to_string(),
                    |s| s.name().to_string(),
                ),
                entry.profile.map_or("-".to_string(), |p| p.to_string()),
                port(entry.port),
                knob(entry),
                entry
                    .health
                    .as_ref()
                    .map_or("-".to_string(), |health| health.path.clone()),
            ]
        })
        .collect();
    let titles = [
        "ENTRY", "FAMILY", "RUNS", "PROFILE", "PORT", "COUNT", "HEALTH",
    ];
    let widths: Vec<usize> = (0..titles.len())
        .map(|i| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([titles[i].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    let line = |cells: &[&str], text: &mut String| {
        let mut out = String::new();
        for (cell, width) in cells.iter().zip(&widths) {
            let _ = write!(out, "{cell:width$}  ");
        }
        let _ = writeln!(text, "{}", out.trim_end());
    };
    line(&titles, &mut text);
    for row in &rows {
        line(&row.each_ref().map(String::as_str), &mut text);
    }
    let _ = writeln!(text, "{} entries", rows.len());
    text
}

/// A Markdown table of the entries, for `docs/apps.md`.
pub fn render_markdown(listed: &[Listed]) -> String {
    let mut text = String::from(
        "| entry | family | runs | profile | port | count (default) | health |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for listed in listed {
        let entry = listed.entry;
        let runs = match entry.server {
            Some(server) => server.name().to_string(),
            None if entry.python => "python".to_string(),
            None => "-".to_string(),
        };
        let health = entry
            .health
            .as_ref()
            .map_or("-".to_string(), |health| format!("`{}`", health.path));
        let _ = writeln!(
            text,
            "| `{}` | {} | {runs} | {} | {} | `{}` | {health} |",
            entry.name,
            listed.family,
            entry.profile.map_or("-".to_string(), |p| p.to_string()),
            port(entry.port),
            knob(entry).replace('|', "\\|"),
        );
    }
    text
}

fn port(port: Option<PortSpec>) -> String {
    match port {
        Some(PortSpec::Number(number)) => number.to_string(),
        Some(PortSpec::Declared(_)) => "declared".to_string(),
        None => "-".to_string(),
    }
}

/// `WEB_CONCURRENCY|--workers=1`: what sets the count, and its default (and minimum, if any).
fn knob(entry: &Entry) -> String {
    let Some(concurrency) = &entry.concurrency else {
        return "-".to_string();
    };
    let mut names: Vec<&str> = Vec::new();
    if concurrency.web_concurrency {
        names.push("WEB_CONCURRENCY");
    }
    if let Some(env) = concurrency
        .env
        .as_deref()
        .filter(|env| *env != "WEB_CONCURRENCY")
    {
        names.push(env);
    }
    if let Some(flag) = &concurrency.flag {
        names.push(flag);
    }
    let default = match concurrency.default {
        Some(CountDefault::Number(count)) => count.to_string(),
        Some(CountDefault::Cpus(_)) => "cpus".to_string(),
        None => "?".to_string(),
    };
    // The fewest the project supports, which pytune never sizes below.
    let minimum = concurrency
        .minimum
        .map(|minimum| format!(" (min {minimum})"))
        .unwrap_or_default();
    if names.is_empty() {
        return format!("fixed={default}{minimum}");
    }
    format!("{}={default}{minimum}", names.join("|"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_entries_come_first_and_a_name_selects_one() {
        let policy = Policy::from_yaml(
            "catalog:\n- name: shop-api\n  match: [{image: team/shop}]\n  python: true\n  \
             server: gunicorn\n  profile: web\n  port: 9000\n  sources: [our Dockerfile]\n",
        )
        .expect("policy");
        let catalog = Catalog::embedded();
        let listed = list(&policy, catalog, None);
        assert_eq!(listed[0].entry.name, "shop-api");
        assert_eq!(listed[0].family, "policy");
        assert!(listed.len() > catalog.entries().count());
        let one = list(&policy, catalog, Some("gunicorn"));
        assert_eq!(one.len(), 1);
        let table = render_table(&one);
        assert!(
            table.contains(
                "gunicorn  servers  gunicorn  web      -     WEB_CONCURRENCY|--workers=1"
            ),
            "{table}"
        );
    }
}
