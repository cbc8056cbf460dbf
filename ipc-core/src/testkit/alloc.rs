//! A counting allocator, so a case can prove that a rejected oversize frame was not
//! buffered. Counts are per thread (cases run on a single-threaded runtime).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

/// Install in the conformance binary: `#[global_allocator] static A: CountingAlloc = CountingAlloc;`
#[derive(Debug, Default, Clone, Copy)]
pub struct CountingAlloc;

fn track(delta: isize) {
    let _ = LIVE.try_with(|live| {
        let now = live.get() + delta;
        live.set(now);
        let _ = PEAK.try_with(|peak| {
            if now > peak.get() {
                peak.set(now);
            }
        });
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator; the bookkeeping
// only touches const-initialised thread locals, which never allocate.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        track(layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        track(-(layout.size() as isize));
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        track(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Measures the peak of this thread's live heap bytes from a starting point.
#[derive(Debug)]
pub struct AllocProbe {
    start: isize,
}

impl AllocProbe {
    /// Start measuring; `None` if [`CountingAlloc`] is not the global allocator.
    pub fn start() -> Option<Self> {
        let before = LIVE.with(Cell::get);
        let witness = std::hint::black_box(vec![0u8; 4096]);
        let during = LIVE.with(Cell::get);
        drop(witness);
        if during - before < 4096 {
            return None;
        }
        let start = LIVE.with(Cell::get);
        PEAK.with(|p| p.set(start));
        Some(AllocProbe { start })
    }

    /// Highest number of extra live bytes since [`start`](Self::start).
    pub fn peak(&self) -> usize {
        (PEAK.with(Cell::get) - self.start).max(0) as usize
    }
}
