//! The API server's audit log of the controller identity's writes (`DEVPORTAL_AUDIT_LOG`, see
//! hack/local-cluster.sh), read incrementally: each refresh reads only what was appended.

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;

/// Writes by `verb resource[/subresource]`.
pub type Writes = BTreeMap<String, u64>;

/// Counts of the audit log's events so far.
pub struct AuditLog {
    path: PathBuf,
    offset: u64,
    /// An incomplete last line, kept until the rest is written.
    partial: String,
    counts: Writes,
}

impl AuditLog {
    /// The log at `path` (it may not exist yet).
    pub fn new(path: PathBuf) -> Self {
        AuditLog {
            path,
            offset: 0,
            partial: String::new(),
            counts: Writes::new(),
        }
    }

    /// Reads what was appended since the last call and returns the counts so far.
    pub fn refresh(&mut self) -> &Writes {
        let Ok(mut file) = std::fs::File::open(&self.path) else {
            return &self.counts;
        };
        // The API server rotates its audit log at --audit-log-maxsize (hack/local-cluster.sh sets
        // it far above any run): a shorter file than what was read means a rotation, and counts
        // that would silently miss writes.
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        assert!(
            len >= self.offset,
            "the audit log {} was rotated or truncated; its counts would be wrong",
            self.path.display()
        );
        let mut text = String::new();
        if file.seek(SeekFrom::Start(self.offset)).is_err()
            || file.read_to_string(&mut text).is_err()
        {
            return &self.counts;
        }
        self.offset += text.len() as u64;
        self.partial.push_str(&text);
        let complete = match self.partial.rfind('\n') {
            Some(end) => self.partial.drain(..=end).collect::<String>(),
            None => return &self.counts,
        };
        for line in complete.lines() {
            let Ok(event) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let verb = event["verb"].as_str().unwrap_or("?");
            let resource = event["objectRef"]["resource"].as_str().unwrap_or("?");
            let sub = event["objectRef"]["subresource"]
                .as_str()
                .map(|s| format!("/{s}"))
                .unwrap_or_default();
            *self
                .counts
                .entry(format!("{verb} {resource}{sub}"))
                .or_insert(0) += 1;
        }
        &self.counts
    }

    /// Every write so far but the Lease's (the election renews it every few seconds forever).
    pub fn non_lease_total(&mut self) -> u64 {
        self.refresh()
            .iter()
            .filter(|(what, _)| !what.ends_with(" leases"))
            .map(|(_, count)| count)
            .sum()
    }

    /// Removes the log file.
    pub fn remove(self) {
        let _ = std::fs::remove_file(self.path);
    }
}

/// The writes between two snapshots, split into the keys' objects, Events and the election's
/// Lease writes.
pub struct Split {
    /// Writes of objects (keys, Secrets, requests...), by kind.
    pub objects: Vec<(String, u64)>,
    /// Event writes.
    pub events: u64,
    /// Lease writes (the leader election's, not per key).
    pub leases: u64,
}

impl Split {
    /// `after` minus `before`, split.
    pub fn between(before: &Writes, after: &Writes) -> Self {
        let mut split = Split {
            objects: Vec::new(),
            events: 0,
            leases: 0,
        };
        for (what, count) in after {
            let delta = count - before.get(what).copied().unwrap_or(0);
            if delta == 0 {
                continue;
            }
            match what.split_once(' ').map(|(_, r)| r) {
                Some("events") => split.events += delta,
                Some("leases") => split.leases += delta,
                _ => split.objects.push((what.clone(), delta)),
            }
        }
        split
    }

    /// Object writes in all.
    pub fn object_total(&self) -> u64 {
        self.objects.iter().map(|(_, c)| c).sum()
    }

    /// Prints the split, per key when `n` > 0.
    pub fn print(&self, title: &str, n: usize) {
        let per = |c: u64| {
            if n > 0 {
                format!(" ({:.2}/key)", c as f64 / n as f64)
            } else {
                String::new()
            }
        };
        let objects = self.object_total();
        println!(
            "  {title}: objects {objects}{}, Events {}{}, Lease writes {} (the election's)",
            per(objects),
            self.events,
            per(self.events),
            self.leases
        );
        for (what, count) in &self.objects {
            println!("    {what:<32} {count:>9}{}", per(*count));
        }
    }
}
