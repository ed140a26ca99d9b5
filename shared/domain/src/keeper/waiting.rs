//! The companies a keeper run could not reach (its deadline, or Tripletex's rate limit): kept in the
//! order they have waited, so that the longest-waiting go first and none waits for ever.

use std::collections::HashMap;

/// Where a tenant stands in line: its place among those still waiting, or after all of them.
pub fn place_in_line(waiting: &[String]) -> impl Fn(&str) -> usize + '_ {
    let places: HashMap<&str, usize> = waiting
        .iter()
        .enumerate()
        .map(|(place, tenant)| (tenant.as_str(), place))
        .collect();
    move |tenant| places.get(tenant).copied().unwrap_or(usize::MAX)
}

/// The line after a run: those that waited before and are still not handled keep their places,
/// then the ones this run did not reach, each once.
pub fn still_waiting(
    before: &[String],
    handled: impl Fn(&str) -> bool,
    not_reached: &[String],
) -> Vec<String> {
    let mut line: Vec<String> = before.iter().filter(|t| !handled(t)).cloned().collect();
    for tenant in not_reached {
        if !line.contains(tenant) {
            line.push(tenant.clone());
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenants(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn the_longest_waiting_keep_their_place_and_the_new_ones_queue_behind() {
        let before = tenants(&["c", "a", "d"]);
        let line = still_waiting(&before, |t| t == "a", &tenants(&["b", "c", "d", "e"]));
        assert_eq!(line, tenants(&["c", "d", "b", "e"]));
        let place = place_in_line(&line);
        let mut jobs = tenants(&["a", "b", "c", "d", "e", "f"]);
        jobs.sort_by_key(|t| place(t));
        assert_eq!(jobs, tenants(&["c", "d", "b", "e", "a", "f"]));
    }

    #[test]
    fn a_run_that_reached_everyone_leaves_no_line() {
        let line = still_waiting(&tenants(&["a", "b"]), |_| true, &[]);
        assert!(line.is_empty());
    }
}
