//! The daemon's request decoder: datagrams from a few senders put back together
//! (`Reassembly`), then each whole message read as a `Request`, as the daemon does.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ward_fuzz::json::from_bytes;
use ward_fuzz::protocol::{Reassembly, Request};

fuzz_target!(|data: &[u8]| {
    let mut r: Reassembly<u8> = Reassembly::default();
    // Input: [sender, len_lo, len_hi, datagram…]*; a short tail is one last datagram.
    let mut rest = data;
    let mut now = 0u64;
    while !rest.is_empty() {
        let sender = rest[0] % 4;
        let len = match rest.get(1..3) {
            Some(l) => u16::from_le_bytes([l[0], l[1]]) as usize,
            None => rest.len(),
        };
        let body_start = 3.min(rest.len());
        let end = (body_start + len).min(rest.len());
        let d = &rest[body_start..end];
        rest = &rest[end..];
        now += 1;
        if let Ok(Some((_, msg))) = r.feed(&sender, d, now) {
            let _ = from_bytes::<Request>(&msg);
        }
        if now % 16 == 0 {
            r.expire(now - 8);
        }
    }
    // A whole input read directly too: most of the decoder's surface is the JSON itself.
    let _ = from_bytes::<Request>(data);
});
