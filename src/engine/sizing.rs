//! How many worker processes a web container should run, from the CPU it gets.

use super::Target;
use super::resources::SizingBase;
use crate::quantity;

/// A worker count with the reasoning behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workers {
    pub count: u32,
    pub reason: String,
}

/// Workers for a web container; `None` when there is no CPU figure to size from.
pub fn web_workers(_target: &Target, base: &SizingBase) -> Option<Workers> {
    let cpus = quantity::whole_cpus(base.cpu_millis?);
    Some(Workers {
        count: cpus,
        reason: format!(
            "one worker per CPU ({cpus} from {}); no server-specific evidence",
            base.cpu_source
        ),
    })
}
