//! Short copies for the static (musl) build.
//!
//! musl's x86_64 `memcpy` starts every copy of 8 bytes or more with `rep movsq`, whose
//! start-up costs tens of cycles, and most of ward's copies are short: the keys, values
//! and punctuation serde_json and the `jlist` writer append one at a time, and log lines.
//! With `make static` they made half of the daemon's time answering `jlist` for 1,000
//! apps (perf: `memcpy` 32%, `Vec::extend_from_slice` 9%).
//!
//! `make static` links with `--wrap=memcpy` and builds with `--cfg ward_wrap_memcpy`:
//! every call to `memcpy`, musl's own included, comes here. Copies of up to 64 bytes are
//! done with a few overlapping loads and stores, up to 512 bytes with a 16-byte loop (on
//! x86_64), and longer ones go on to musl's (`__real_memcpy`). Nothing here may call
//! `memcpy`: only fixed-size unaligned loads and stores, which the compiler emits as
//! single moves, and a loop in assembly. Other builds leave `memcpy` alone.

use std::ptr::{read_unaligned as load, write_unaligned as store};

#[cfg(ward_wrap_memcpy)]
unsafe extern "C" {
    fn __real_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8;
}

/// `memcpy`, as the C standard defines it: `n` bytes from `src` to `dst`, which do not
/// overlap; returns `dst`.
///
/// # Safety
/// As `memcpy`: `src` readable and `dst` writable for `n` bytes, not overlapping.
#[cfg(ward_wrap_memcpy)]
#[unsafe(no_mangle)]
pub unsafe extern "C" fn __wrap_memcpy(dst: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: every load reads inside src[0..n] and every store writes inside dst[0..n]
    // (each branch checks n first); all loads are done before the stores of the same
    // branch, and the caller promises that the two do not overlap.
    unsafe {
        if !copy_short(dst, src, n) {
            __real_memcpy(dst, src, n);
        }
    }
    dst
}

/// Copies `n` ≤ `MEDIUM` bytes; false (nothing copied) for longer copies.
///
/// # Safety
/// As `memcpy`.
#[cfg_attr(not(ward_wrap_memcpy), allow(dead_code))]
#[inline(always)]
unsafe fn copy_short(dst: *mut u8, src: *const u8, n: usize) -> bool {
    // SAFETY: see `__wrap_memcpy`.
    unsafe {
        if n <= 16 {
            if n >= 8 {
                let (a, b) = (load(src as *const u64), load(src.add(n - 8) as *const u64));
                store(dst as *mut u64, a);
                store(dst.add(n - 8) as *mut u64, b);
            } else if n >= 4 {
                let (a, b) = (load(src as *const u32), load(src.add(n - 4) as *const u32));
                store(dst as *mut u32, a);
                store(dst.add(n - 4) as *mut u32, b);
            } else if n >= 2 {
                let (a, b) = (load(src as *const u16), load(src.add(n - 2) as *const u16));
                store(dst as *mut u16, a);
                store(dst.add(n - 2) as *mut u16, b);
            } else if n == 1 {
                *dst = *src;
            }
        } else if n <= 32 {
            let (a, b) = (
                load(src as *const u128),
                load(src.add(n - 16) as *const u128),
            );
            store(dst as *mut u128, a);
            store(dst.add(n - 16) as *mut u128, b);
        } else if n <= 64 {
            let a = load(src as *const u128);
            let b = load(src.add(16) as *const u128);
            let c = load(src.add(n - 32) as *const u128);
            let d = load(src.add(n - 16) as *const u128);
            store(dst as *mut u128, a);
            store(dst.add(16) as *mut u128, b);
            store(dst.add(n - 32) as *mut u128, c);
            store(dst.add(n - 16) as *mut u128, d);
        } else if n <= MEDIUM {
            copy_medium(dst, src, n);
        } else {
            return false;
        }
    }
    true
}

/// Up to this many bytes are copied here; `rep movsq`'s start-up pays off beyond.
const MEDIUM: usize = if cfg!(target_arch = "x86_64") {
    512
} else {
    64
};

/// Copies 64 < `n` ≤ `MEDIUM` bytes, 16 at a time, the last 16 overlapping. The loop is
/// written in assembly: in Rust, the compiler would see a copy loop and make it a call to
/// `memcpy`, that is, to this function.
///
/// # Safety
/// As `memcpy`, with `n` > 16.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn copy_medium(dst: *mut u8, src: *const u8, n: usize) {
    // SAFETY: the loop copies 16 bytes at a time from offset 0 while fewer than n - 16
    // have been copied: its last block ends before n; the last 16 bytes, src[n-16..n],
    // are copied after it. Both stay inside the n bytes the caller promises.
    unsafe {
        let last = load(src.add(n - 16) as *const u128);
        std::arch::asm!(
            "2:",
            "movups {x}, xmmword ptr [{s}]",
            "movups xmmword ptr [{d}], {x}",
            "add {s}, 16",
            "add {d}, 16",
            "sub {left}, 16",
            "ja 2b",
            s = inout(reg) src => _,
            d = inout(reg) dst => _,
            left = inout(reg) n - 16 => _,
            x = out(xmm_reg) _,
            options(nostack),
        );
        store(dst.add(n - 16) as *mut u128, last);
    }
}

#[cfg(not(target_arch = "x86_64"))]
unsafe fn copy_medium(_: *mut u8, _: *const u8, _: usize) {
    unreachable!("MEDIUM is 64 here")
}

#[cfg(test)]
mod tests {
    use super::{MEDIUM, copy_short};

    #[test]
    fn copies_every_short_length_exactly() {
        let src: Vec<u8> = (0..MEDIUM + 8)
            .map(|i| (i as u8).wrapping_mul(37).wrapping_add(1))
            .collect();
        for n in 0..=MEDIUM {
            for off in 0..4 {
                let mut dst = vec![0xAAu8; MEDIUM + 16];
                // SAFETY: src holds off + n ≤ MEDIUM + 3 bytes from 0, dst MEDIUM + 16 from 0,
                // written from 1 + off for n bytes.
                let done =
                    unsafe { copy_short(dst.as_mut_ptr().add(1 + off), src.as_ptr().add(off), n) };
                assert!(done, "n = {n}");
                assert_eq!(&dst[1 + off..1 + off + n], &src[off..off + n], "n = {n}");
                assert!(dst[..1 + off].iter().all(|&b| b == 0xAA), "before, n = {n}");
                assert!(
                    dst[1 + off + n..].iter().all(|&b| b == 0xAA),
                    "after, n = {n}"
                );
            }
        }
        let mut dst = vec![0u8; MEDIUM + 1];
        // SAFETY: both hold MEDIUM + 1 bytes (nothing is copied).
        assert!(!unsafe { copy_short(dst.as_mut_ptr(), src.as_ptr(), MEDIUM + 1) });
        assert!(
            dst.iter().all(|&b| b == 0),
            "a long copy is left to the caller"
        );
    }
}
