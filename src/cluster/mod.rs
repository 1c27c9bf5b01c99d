//! Reads from the Kubernetes API that the webhook and the CLI share: the workload a Pod belongs
//! to, and the labeled Pods of a cluster page by page. What cannot be read is reported, never
//! guessed.

pub mod owners;
pub mod pods;

/// A kube error in a line: the API's message and code, without the request around it.
pub fn short(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
