//! Start and stop order of services from their `after` lists.
//!
//! Pure functions over indices: no IO, no names, no clocks. The start order is a stable
//! topological order (among services whose dependencies are satisfied, the one listed first
//! in the file goes first); the stop order is exactly its reverse.
//!
//! **Invariant:** a service appears in the start order after every service it names in
//! `after`, and in the stop order before every one of them.

/// A dependency cycle: the services on it, in order, the first one repeated at the end.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("dependency cycle through services {members:?}")]
pub struct Cycle {
    /// Indices of the services on the cycle; `members[0] == members[last]`.
    pub members: Vec<usize>,
}

/// The order in which to start services, given `deps[i]` = the services `i` must start after.
///
/// Indices in `deps` must be `< deps.len()` (the config validation guarantees it; out-of-range
/// indices are ignored). Returns the cycle when there is one.
pub fn start_order(deps: &[Vec<usize>]) -> Result<Vec<usize>, Cycle> {
    let n = deps.len();
    let mut remaining: Vec<usize> = (0..n)
        .map(|i| deps[i].iter().filter(|&&d| d < n && d != i).count())
        .collect();
    // A service that names itself is a cycle of one.
    if let Some(i) = (0..n).find(|&i| deps[i].contains(&i)) {
        return Err(Cycle {
            members: vec![i, i],
        });
    }
    let mut dependants: Vec<Vec<usize>> = vec![Vec::new(); n];
    for (i, ds) in deps.iter().enumerate() {
        for &d in ds {
            if d < n && d != i {
                dependants[d].push(i);
            }
        }
    }
    let mut placed = vec![false; n];
    let mut order = Vec::with_capacity(n);
    while order.len() < n {
        // Smallest index whose dependencies are all placed: stable with respect to the file.
        let Some(next) = (0..n).find(|&i| !placed[i] && remaining[i] == 0) else {
            return Err(Cycle {
                members: find_cycle(deps, &placed),
            });
        };
        placed[next] = true;
        order.push(next);
        for &j in &dependants[next] {
            remaining[j] -= 1;
        }
    }
    Ok(order)
}

/// The order in which to stop services: the reverse of `start`.
pub fn stop_order(start: &[usize]) -> Vec<usize> {
    start.iter().rev().copied().collect()
}

/// Walks dependencies among the unplaced nodes until a node repeats; every unplaced node has
/// an unplaced dependency when Kahn's algorithm is stuck, so the walk always closes.
fn find_cycle(deps: &[Vec<usize>], placed: &[bool]) -> Vec<usize> {
    let n = deps.len();
    let Some(start) = (0..n).find(|&i| !placed[i]) else {
        return Vec::new();
    };
    let mut path = vec![start];
    let mut current = start;
    loop {
        let Some(&next) = deps[current]
            .iter()
            .find(|&&d| d < n && !placed[d] && d != current)
        else {
            return path;
        };
        if let Some(pos) = path.iter().position(|&p| p == next) {
            let mut cycle: Vec<usize> = path[pos..].to_vec();
            cycle.push(next);
            // Report it in "a after b" reading order: a -> b means a waits for b.
            return cycle;
        }
        path.push(next);
        current = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(deps: &[&[usize]]) -> Result<Vec<usize>, Cycle> {
        let deps: Vec<Vec<usize>> = deps.iter().map(|d| d.to_vec()).collect();
        let order = start_order(&deps)?;
        // Every dependency comes earlier, and every index appears exactly once.
        let mut seen = vec![false; deps.len()];
        for (pos, &i) in order.iter().enumerate() {
            assert!(!seen[i], "{i} twice in {order:?}");
            seen[i] = true;
            for &d in &deps[i] {
                let dpos = order.iter().position(|&x| x == d).unwrap();
                assert!(dpos < pos, "{i} before its dependency {d} in {order:?}");
            }
        }
        assert!(seen.iter().all(|&s| s));
        Ok(order)
    }

    #[test]
    fn empty_and_independent_services_keep_file_order() {
        assert_eq!(check(&[]).unwrap(), Vec::<usize>::new());
        assert_eq!(check(&[&[], &[], &[]]).unwrap(), vec![0, 1, 2]);
    }

    #[test]
    fn a_service_listed_first_that_depends_on_a_later_one_waits() {
        assert_eq!(check(&[&[1], &[]]).unwrap(), vec![1, 0]);
        assert_eq!(check(&[&[2], &[], &[]]).unwrap(), vec![1, 2, 0]);
    }

    #[test]
    fn chain_diamond_and_fan_in() {
        assert_eq!(check(&[&[], &[0], &[1], &[2]]).unwrap(), vec![0, 1, 2, 3]);
        assert_eq!(check(&[&[1], &[2], &[3], &[]]).unwrap(), vec![3, 2, 1, 0]);
        // 0 <- 1, 0 <- 2, {1,2} <- 3
        assert_eq!(
            check(&[&[], &[0], &[0], &[1, 2]]).unwrap(),
            vec![0, 1, 2, 3]
        );
        assert_eq!(
            check(&[&[1, 2, 3], &[], &[], &[]]).unwrap(),
            vec![1, 2, 3, 0]
        );
    }

    #[test]
    fn order_is_stable_the_earliest_ready_service_goes_first() {
        // 2 is ready as soon as 0 is; 1 waits for 3.
        assert_eq!(check(&[&[], &[3], &[0], &[]]).unwrap(), vec![0, 2, 3, 1]);
    }

    #[test]
    fn duplicate_dependencies_are_harmless() {
        assert_eq!(check(&[&[1, 1], &[]]).unwrap(), vec![1, 0]);
    }

    #[test]
    fn cycles_are_found_and_named() {
        assert_eq!(check(&[&[0]]).unwrap_err().members, vec![0, 0]);
        let c = check(&[&[1], &[0]]).unwrap_err().members;
        assert_eq!(c.first(), c.last());
        assert_eq!(c.len(), 3);
        let c = check(&[&[], &[3], &[1], &[2], &[0]]).unwrap_err().members;
        assert_eq!(c.first(), c.last());
        let mut on_cycle = c[..c.len() - 1].to_vec();
        on_cycle.sort();
        assert_eq!(on_cycle, vec![1, 2, 3]);
        // A cycle downstream of a healthy service is still a cycle.
        assert!(check(&[&[], &[0, 2], &[1]]).is_err());
    }

    #[test]
    fn exhaustive_small_graphs_order_or_cycle() {
        // Every graph on 4 nodes (2^12 edge sets): either a valid order or a real cycle.
        let n = 4;
        let pairs: Vec<(usize, usize)> = (0..n)
            .flat_map(|a| (0..n).filter(move |&b| b != a).map(move |b| (a, b)))
            .collect();
        for mask in 0u32..(1 << pairs.len()) {
            let mut deps = vec![Vec::new(); n];
            for (bit, &(a, b)) in pairs.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    deps[a].push(b);
                }
            }
            let refs: Vec<&[usize]> = deps.iter().map(|d| d.as_slice()).collect();
            match check(&refs) {
                Ok(order) => assert_eq!(stop_order(&order).len(), n),
                Err(Cycle { members }) => {
                    assert!(members.len() >= 3, "{members:?}");
                    assert_eq!(members.first(), members.last());
                    for w in members.windows(2) {
                        assert!(deps[w[0]].contains(&w[1]), "{members:?} in {deps:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn stop_order_is_the_reverse() {
        assert_eq!(stop_order(&[3, 0, 2, 1]), vec![1, 2, 0, 3]);
        assert_eq!(stop_order(&[]), Vec::<usize>::new());
    }
}
