//! Memory the graph walk leans on: the per-thread visited list, buffers on 2 MiB pages, and
//! prefetching.

use std::cell::RefCell;

use super::Near;

/// Nodes visited by one search: a node is visited when its stamp equals the current one. It
/// also keeps the candidate heap's buffer, so a search allocates nothing but its result.
#[derive(Default)]
pub(super) struct Visited {
    stamp: u16,
    marks: Vec<u16>,
    pub(super) candidates: Vec<std::cmp::Reverse<Near>>,
}

thread_local! {
    pub(super) static VISITED: RefCell<Visited> = const { RefCell::new(Visited { stamp: 0, marks: Vec::new(), candidates: Vec::new() }) };
}

impl Visited {
    /// Starts a new search over `n` nodes.
    pub(super) fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            let extra = n - self.marks.len();
            reserve_huge(&mut self.marks, extra);
            self.marks.resize(n, 0);
        }
        self.stamp = self.stamp.wrapping_add(1);
        if self.stamp == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.stamp = 1;
        }
    }

    /// Marks `node` seen; true if it was not seen before in this search. Branch-free, so a run
    /// of calls issues all its loads at once.
    #[inline(always)]
    pub(super) fn mark(&mut self, node: u32) -> bool {
        let m = &mut self.marks[node as usize];
        let new = *m != self.stamp;
        *m = self.stamp;
        new
    }
}

/// A vector with room for `cap` elements whose buffer Linux is asked to back with 2 MiB pages.
/// The walk touches vectors, link lists and visited marks at random over hundreds of
/// megabytes; with 4 KiB pages nearly every step also misses the TLB. The advice only helps
/// pages not yet written, so it is given before the buffer is filled (hence our own growth).
pub(super) fn huge_vec<T>(cap: usize) -> Vec<T> {
    let v = Vec::with_capacity(cap);
    #[cfg(target_os = "linux")]
    // A buffer smaller than one 2 MiB page cannot use one.
    if cap * std::mem::size_of::<T>() >= 2 << 20 {
        const PAGE: usize = 4096;
        let start = (v.as_ptr() as usize).next_multiple_of(PAGE);
        let end = (v.as_ptr() as usize + cap * std::mem::size_of::<T>()) & !(PAGE - 1);
        if end > start {
            // SAFETY: the range lies inside the allocation just made; MADV_HUGEPAGE is advice
            // and changes no contents. A refusal (e.g. huge pages disabled) is harmless.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_HUGEPAGE);
            }
        }
    }
    v
}

/// Makes room for `extra` more elements in `v`, moving it into a [`huge_vec`] when it grows.
pub(super) fn reserve_huge<T>(v: &mut Vec<T>, extra: usize) {
    let need = v.len() + extra;
    if need > v.capacity() {
        let mut grown = huge_vec(need.max(v.capacity() + v.capacity() / 2));
        grown.append(v);
        *v = grown;
    }
}

#[inline(always)]
pub(super) fn prefetch(p: *const f32) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: prefetching is a hint; any address is allowed.
    unsafe {
        std::arch::x86_64::_mm_prefetch(p as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn growing_a_huge_page_buffer_keeps_its_contents() {
        let mut v: Vec<u32> = (0..1000).collect();
        reserve_huge(&mut v, 3 << 20);
        assert!(v.capacity() >= 1000 + (3 << 20));
        assert_eq!(v, (0..1000).collect::<Vec<u32>>());
        v.extend(1000..2000);
        assert_eq!(v[1500], 1500);
    }
}
