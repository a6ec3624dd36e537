//! Small allocations from free lists, in the static (musl) build.
//!
//! musl's allocator is built for small memory, not speed: `ls` of 1,000 apps spent 17%
//! of its time in malloc and free, and more in page faults, as musl gives freed memory
//! back to the kernel at once (the daemon made eight mmap/munmap calls per app started).
//! After [`enable`], allocations of up to 32 kB come from free lists of 40 size classes,
//! carved from one region reserved for the purpose, and nothing is given back.
//! - `ls`, `jlist`, `prettylist`, `describe` and `start` (not `start --attach`) enable it
//!   whole: they end when they have printed.
//! - the daemon (and the runtime) and the fork server enable it for their first 8 and 2
//!   MiB ([`enable_up_to`]): what they keep after a peak is bounded (the daemon's RSS with
//!   1,000 apps went from 4.9 to 6.0 MiB, glibc's build has 5.4), and musl's allocator
//!   serves what comes after.
//! - `logs`, `monit` and the other commands that run for long never enable it.
//!
//! Built into `make static` only (`--cfg ward_small_alloc`); other builds use the system
//! allocator throughout.

#![cfg_attr(not(ward_small_alloc), allow(dead_code))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// The address space reserved: only the pages used are ever backed by memory.
const REGION: usize = 1 << 30;
/// The largest size served here; larger ones go to the system allocator.
const MAX: usize = 32 * 1024;
/// Size classes: 16..=128 by 16, then four per doubling up to `MAX`.
const CLASSES: usize = 8 + 4 * 8;

/// The class of a request of `size` bytes and that class's block size, or `None` when
/// larger than `MAX`.
fn class_of(size: usize) -> Option<(usize, usize)> {
    if size > MAX {
        return None;
    }
    let s = size.max(1) - 1;
    if s < 128 {
        let i = s >> 4;
        return Some((i, (i + 1) << 4));
    }
    // s has `bits` significant bits (8..=15): four classes between 2^(bits-1) and 2^bits.
    let bits = (usize::BITS - s.leading_zeros()) as usize;
    let shift = bits - 3;
    let q = s >> shift; // 4..=7
    Some((8 + (bits - 8) * 4 + (q & 3), (q + 1) << shift))
}

struct Lists {
    /// The first free block of each class; each free block holds the address of the next.
    heads: [usize; CLASSES],
    /// The next unused byte of the region, and its end.
    next: usize,
    end: usize,
}

pub struct Pool {
    lock: AtomicBool,
    lists: UnsafeCell<Lists>,
    /// The region, 0 until `enable`, and its length; read without the lock to tell its
    /// blocks apart.
    base: AtomicUsize,
    len: AtomicUsize,
}

// SAFETY: `lists` is only touched with `lock` held.
unsafe impl Sync for Pool {}

#[cfg(ward_small_alloc)]
#[global_allocator]
static POOL: Pool = Pool::new();

/// Serves this process's small allocations from the pool from now on; false when the
/// region cannot be reserved (the system allocator goes on serving everything) or this
/// build has no pool.
pub fn enable() -> bool {
    enable_up_to(REGION)
}

/// `enable`, with at most `limit` bytes served from the pool; the system allocator serves
/// what comes after.
pub fn enable_up_to(limit: usize) -> bool {
    #[cfg(ward_small_alloc)]
    return POOL.reserve(limit);
    #[cfg(not(ward_small_alloc))]
    {
        let _ = limit;
        false
    }
}

impl Pool {
    const fn new() -> Pool {
        Pool {
            lock: AtomicBool::new(false),
            lists: UnsafeCell::new(Lists {
                heads: [0; CLASSES],
                next: 0,
                end: 0,
            }),
            base: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
        }
    }

    /// Reserves the region (once): `limit` bytes of address space, backed only as used.
    fn reserve(&self, limit: usize) -> bool {
        if self.base.load(Ordering::Acquire) != 0 {
            return true;
        }
        let len = limit.min(REGION);
        // SAFETY: a new private anonymous mapping, touching no memory of the program.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return false;
        }
        self.with(|l| {
            l.next = p as usize;
            l.end = p as usize + len;
        });
        self.len.store(len, Ordering::Relaxed);
        self.base.store(p as usize, Ordering::Release);
        true
    }

    fn with<T>(&self, f: impl FnOnce(&mut Lists) -> T) -> T {
        while self
            .lock
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            std::hint::spin_loop();
        }
        // SAFETY: the lock is held, so this is the only reference to the lists.
        let out = f(unsafe { &mut *self.lists.get() });
        self.lock.store(false, Ordering::Release);
        out
    }

    /// Is `p` a block of the pool?
    fn owns(&self, p: *mut u8) -> bool {
        let base = self.base.load(Ordering::Acquire);
        base != 0 && (p as usize).wrapping_sub(base) < self.len.load(Ordering::Relaxed)
    }

    /// A block of class `class` (`size` bytes), or null when the region is used up.
    fn take(&self, class: usize, size: usize) -> *mut u8 {
        self.with(|l| {
            let head = l.heads[class];
            if head != 0 {
                // SAFETY: a free block of the pool holds the address of the next one.
                l.heads[class] = unsafe { *(head as *const usize) };
                head as *mut u8
            } else if l.end - l.next >= size {
                let p = l.next;
                l.next += size;
                p as *mut u8
            } else {
                std::ptr::null_mut()
            }
        })
    }
}

unsafe impl GlobalAlloc for Pool {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if layout.align() <= 16 && self.base.load(Ordering::Relaxed) != 0 {
            if let Some((class, size)) = class_of(layout.size()) {
                let p = self.take(class, size);
                if !p.is_null() {
                    return p;
                }
            }
        }
        // SAFETY: the caller's layout, as GlobalAlloc requires.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if self.owns(p) {
            // A block of the pool was allocated with this layout, so with this class.
            if let Some((class, _)) = class_of(layout.size()) {
                self.with(|l| {
                    // SAFETY: the block is free now and at least 16 bytes long.
                    unsafe { *(p as *mut usize) = l.heads[class] };
                    l.heads[class] = p as usize;
                });
            }
            return;
        }
        // SAFETY: not the pool's, so the system allocator's, with this layout.
        unsafe { System.dealloc(p, layout) }
    }

    unsafe fn realloc(&self, p: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if !self.owns(p) {
            // SAFETY: the system allocator's block, as the caller describes it.
            return unsafe { System.realloc(p, layout, new_size) };
        }
        if class_of(new_size).map(|c| c.0) == class_of(layout.size()).map(|c| c.0) {
            return p;
        }
        // SAFETY: align came from a valid layout; new_size is what the caller asks for.
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: a fresh block of new_size bytes; the two blocks do not overlap.
        unsafe {
            let q = self.alloc(new_layout);
            if !q.is_null() {
                std::ptr::copy_nonoverlapping(p, q, layout.size().min(new_size));
                self.dealloc(p, layout);
            }
            q
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_cover_every_size_with_little_waste() {
        let mut last = (0, 16);
        for size in 1..=MAX {
            let (class, block) = class_of(size).unwrap();
            assert!(class < CLASSES, "{size}");
            assert!(block >= size && block % 16 == 0, "{size}: {block}");
            // At most a quarter more than asked for, past the 16-byte steps.
            assert!(size <= 128 || block * 4 <= size * 5 + 64, "{size}: {block}");
            // Classes grow with size, each with one block size.
            assert!(class >= last.0, "{size}");
            if class == last.0 {
                assert_eq!(block, last.1, "{size}");
            }
            last = (class, block);
        }
        assert_eq!(last.0, CLASSES - 1);
        assert_eq!(class_of(MAX + 1), None);
        assert_eq!(class_of(0), Some((0, 16)));
    }

    /// Many blocks of many sizes, freed and grown at random: each keeps its bytes, none
    /// overlaps another, all are 16-byte aligned, and freed blocks are used again.
    #[test]
    fn blocks_keep_their_bytes_through_frees_and_growth() {
        let pool = Pool::new();
        assert!(pool.reserve(REGION));
        let mut seed = 0x2545F4914F6CDD1Du64;
        let mut rand = move |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut live: Vec<(*mut u8, Layout, u8)> = Vec::new();
        let fill = |p: *mut u8, n: usize, v: u8| unsafe { std::ptr::write_bytes(p, v, n) };
        let check = |p: *mut u8, n: usize, v: u8| unsafe {
            std::slice::from_raw_parts(p, n).iter().all(|&b| b == v)
        };
        let mut reused = 0;
        let mut freed = std::collections::HashSet::new();
        for step in 0..20_000u32 {
            let tag = (step % 251) as u8;
            match rand(4) {
                0 | 1 => {
                    let big = rand(10) == 0;
                    let size = 1 + rand(if big { 3 * MAX } else { 300 });
                    let layout = Layout::from_size_align(size, 8).unwrap();
                    let p = unsafe { pool.alloc(layout) };
                    assert!(!p.is_null() && p as usize % 16 == 0);
                    if freed.remove(&(p as usize)) {
                        reused += 1;
                    }
                    fill(p, size, tag);
                    live.push((p, layout, tag));
                }
                2 if !live.is_empty() => {
                    let (p, layout, v) = live.swap_remove(rand(live.len()));
                    assert!(check(p, layout.size(), v), "step {step}");
                    if pool.owns(p) {
                        freed.insert(p as usize);
                    }
                    unsafe { pool.dealloc(p, layout) };
                }
                _ if !live.is_empty() => {
                    let i = rand(live.len());
                    let (p, layout, v) = live[i];
                    let new = 1 + rand(2 * layout.size() + 100);
                    let q = unsafe { pool.realloc(p, layout, new) };
                    assert!(!q.is_null() && q as usize % 16 == 0);
                    assert!(check(q, layout.size().min(new), v), "step {step}");
                    if q != p && pool.owns(p) {
                        freed.insert(p as usize);
                    }
                    freed.remove(&(q as usize));
                    let layout = Layout::from_size_align(new, 8).unwrap();
                    fill(q, new, tag);
                    live[i] = (q, layout, tag);
                }
                _ => {}
            }
        }
        for &(p, layout, v) in &live {
            assert!(check(p, layout.size(), v));
        }
        assert!(reused > 100, "freed blocks are used again ({reused})");
        for (p, layout, _) in live {
            unsafe { pool.dealloc(p, layout) };
        }
    }

    #[test]
    fn past_its_limit_the_system_serves() {
        let pool = Pool::new();
        assert!(pool.reserve(64 * 1024));
        let layout = Layout::from_size_align(1000, 8).unwrap();
        let blocks: Vec<*mut u8> = (0..100).map(|_| unsafe { pool.alloc(layout) }).collect();
        // 1000 bytes take a block of 1024: 64 of them fill 64 kB.
        let ours = blocks.iter().filter(|&&p| pool.owns(p)).count();
        assert_eq!(ours, 64);
        for p in blocks {
            assert!(!p.is_null());
            unsafe { pool.dealloc(p, layout) };
        }
        // Freed blocks of the pool serve again.
        let p = unsafe { pool.alloc(layout) };
        assert!(pool.owns(p));
        unsafe { pool.dealloc(p, layout) };
    }

    #[test]
    fn without_a_region_everything_goes_to_the_system() {
        let pool = Pool::new();
        let layout = Layout::from_size_align(24, 8).unwrap();
        let p = unsafe { pool.alloc(layout) };
        assert!(!p.is_null() && !pool.owns(p));
        unsafe { pool.dealloc(p, layout) };
    }
}
