//! Applies the core's stat changes to Envoy's stats. Each name is defined once per VM; Envoy
//! keeps one stat per name, so the workers' VMs add up to one counter.
//!
//! Counter increments are gathered in the VM and handed to Envoy by the root's tick (`flush`,
//! once a second): a host call on every protected request costs more than its counter is
//! worth, and a second's delay is far below any scrape interval. Gauges and histogram samples
//! are rare and go at once.
//!
//! The SDK's metric wrappers panic on a status they do not expect, which would abort the VM,
//! so the three ABI calls are made directly and every failure is ignored: a stat is never
//! worth a request.

use std::cell::RefCell;
use std::collections::HashMap;

use auth0_filter_core::metrics::{MetricEvent, MetricKind};

// The proxy-wasm ABI's metric calls (the same imports the SDK declares).
extern "C" {
    fn proxy_define_metric(kind: u32, name_data: *const u8, name_size: usize, id: *mut u32) -> u32;
    fn proxy_increment_metric(id: u32, offset: i64) -> u32;
    fn proxy_record_metric(id: u32, value: u64) -> u32;
}

const STATUS_OK: u32 = 0;

thread_local! {
    static DEFINED: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
    /// Counter increments not yet handed to Envoy, by metric id: a few entries, one per
    /// counter that moved since the last tick.
    static PENDING: RefCell<Vec<(u32, u64)>> = const { RefCell::new(Vec::new()) };
}

fn define(kind: MetricKind, name: &str) -> Option<u32> {
    if let Some(id) = DEFINED.with(|d| d.borrow().get(name).copied()) {
        return Some(id);
    }
    let abi_kind = match kind {
        MetricKind::Counter => 0,
        MetricKind::Gauge => 1,
        MetricKind::Histogram => 2,
    };
    let mut id = 0u32;
    // SAFETY: the name pointer and length come from a live &str, and `id` is a valid u32 the
    // host writes once before returning.
    let status = unsafe { proxy_define_metric(abi_kind, name.as_ptr(), name.len(), &mut id) };
    if status != STATUS_OK {
        return None;
    }
    DEFINED.with(|d| d.borrow_mut().insert(name.to_string(), id));
    Some(id)
}

pub(super) fn apply(events: Vec<MetricEvent>) {
    for event in events {
        let Some(id) = define(event.kind, &event.name) else {
            continue;
        };
        match event.kind {
            MetricKind::Counter => PENDING.with(|pending| {
                let Ok(mut pending) = pending.try_borrow_mut() else {
                    return;
                };
                match pending.iter_mut().find(|(pending_id, _)| *pending_id == id) {
                    Some((_, count)) => *count = count.saturating_add(event.value),
                    None => pending.push((id, event.value)),
                }
            }),
            // SAFETY: plain integer arguments; the host validates the id.
            MetricKind::Gauge | MetricKind::Histogram => unsafe {
                proxy_record_metric(id, event.value);
            },
        }
    }
}

/// Hands Envoy the counter increments gathered since the last call.
pub(super) fn flush() {
    let pending = PENDING.with(|pending| {
        pending
            .try_borrow_mut()
            .map(|mut pending| std::mem::take(&mut *pending))
            .unwrap_or_default()
    });
    for (id, count) in pending {
        // SAFETY: plain integer arguments; the host validates the id.
        unsafe {
            proxy_increment_metric(id, i64::try_from(count).unwrap_or(i64::MAX));
        }
    }
}
