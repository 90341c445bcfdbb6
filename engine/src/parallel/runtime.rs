//! The worker runtime: how many workers, which core each is pinned to, and which NUMA node each
//! core belongs to, so that idle workers steal from their own node first.

use std::path::Path;

/// Moves the calling thread to Linux's `SCHED_IDLE` class: it then runs only on a core that has
/// nothing else to run, so work handed to it fills idle time without slowing anyone down.
/// Returns whether that happened; elsewhere, or if refused, the thread keeps its priority.
pub fn run_only_when_idle() -> bool {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: `param` is a valid `sched_param`; pid 0 is the calling thread.
        unsafe { libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

/// Where workers run.
#[derive(Clone, Debug)]
pub struct Topology {
    /// For each worker, the core it is pinned to (`None`: unpinned) and that core's NUMA node.
    pub workers: Vec<(Option<core_affinity::CoreId>, usize)>,
}

impl Topology {
    /// `threads` workers on this machine's cores (default: all of them), one per core while
    /// cores last; more workers than cores run unpinned.
    pub fn detect(threads: Option<usize>) -> Self {
        let cores = core_affinity::get_core_ids().unwrap_or_default();
        let threads = threads.unwrap_or_else(|| cores.len().max(1)).max(1);
        let nodes = numa_nodes(Path::new("/sys/devices/system/node"));
        let workers = (0..threads)
            .map(|index| {
                let core = (threads <= cores.len()).then(|| cores[index]);
                let node = core
                    .and_then(|core| nodes.iter().find(|(cpu, _)| *cpu == core.id))
                    .map_or(0, |(_, node)| *node);
                (core, node)
            })
            .collect();
        Self { workers }
    }

    /// Number of workers.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    /// Number of distinct NUMA nodes the workers span.
    pub fn nodes(&self) -> usize {
        let mut nodes: Vec<usize> = self.workers.iter().map(|(_, node)| *node).collect();
        nodes.sort_unstable();
        nodes.dedup();
        nodes.len()
    }

    /// The workers `worker` steals from, same node first, each group in ring order from it.
    pub fn steal_order(&self, worker: usize) -> Vec<usize> {
        let count = self.workers.len();
        let node = self.workers[worker].1;
        let ring = (1..count).map(|offset| (worker + offset) % count);
        let (mut near, far): (Vec<usize>, Vec<usize>) =
            ring.partition(|&other| self.workers[other].1 == node);
        near.extend(far);
        near
    }
}

/// `(cpu, node)` pairs from `/sys/devices/system/node/node*/cpulist`; empty when absent.
fn numa_nodes(root: &Path) -> Vec<(usize, usize)> {
    let Ok(entries) = std::fs::read_dir(root) else { return Vec::new() };
    let mut pairs = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(node) = name.to_str().and_then(|n| n.strip_prefix("node")?.parse().ok()) else {
            continue;
        };
        if let Ok(list) = std::fs::read_to_string(entry.path().join("cpulist")) {
            pairs.extend(parse_cpu_list(&list).into_iter().map(|cpu| (cpu, node)));
        }
    }
    pairs
}

/// Parses a kernel CPU list such as `0-3,8,10-11`; malformed parts are skipped.
fn parse_cpu_list(list: &str) -> Vec<usize> {
    let mut cpus = Vec::new();
    for part in list.trim().split(',').filter(|part| !part.is_empty()) {
        match part.split_once('-') {
            Some((first, last)) => {
                if let (Ok(first), Ok(last)) = (first.parse::<usize>(), last.parse::<usize>()) {
                    cpus.extend(first..=last.min(first + 4096));
                }
            }
            None => cpus.extend(part.parse::<usize>().ok()),
        }
    }
    cpus
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_parse() {
        assert_eq!(parse_cpu_list("0-3,8,10-11\n"), vec![0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("x,5"), vec![5]);
        assert!(parse_cpu_list("").is_empty());
    }

    #[test]
    fn stealing_prefers_the_same_node() {
        let topology = Topology { workers: vec![(None, 0), (None, 1), (None, 0), (None, 1)] };
        assert_eq!(topology.steal_order(0), vec![2, 1, 3]);
        assert_eq!(topology.steal_order(3), vec![1, 0, 2]);
        assert_eq!(topology.nodes(), 2);
    }

    #[test]
    fn detect_gives_the_requested_workers() {
        assert_eq!(Topology::detect(Some(3)).threads(), 3);
        assert!(Topology::detect(None).threads() >= 1);
    }
}
