//! Argon2 working memory, mapped from the system directly.
//!
//! A hash needs `m` KiB (19 MiB with the defaults). Taken from the global
//! allocator, that memory stays with the allocator after it is freed (the
//! process's resident size never comes back down after the first hash);
//! mapped with `mmap`, it goes back to the system the moment the buffer is
//! dropped (pool.rs drops idle buffers). Elsewhere than on Linux, a plain
//! vector.

use argon2::Block;

/// A growable run of argon2 blocks, zeroed when first mapped.
#[derive(Default)]
pub struct Memory {
    #[cfg(target_os = "linux")]
    map: Option<Mapping>,
    #[cfg(not(target_os = "linux"))]
    blocks: Vec<Block>,
}

impl Memory {
    /// At least `count` blocks (kept: a later, smaller hash reuses them).
    pub fn blocks(&mut self, count: usize) -> &mut [Block] {
        #[cfg(target_os = "linux")]
        {
            if self.map.as_ref().is_none_or(|m| m.blocks < count) {
                self.map = None;
                self.map = Some(Mapping::new(count));
            }
            let map = self.map.as_mut().expect("mapped above");
            // SAFETY: `map` owns `blocks` blocks of zero-initialised (or
            // since written) memory, aligned to a page (and so to a
            // block), borrowed mutably through `self`.
            unsafe { std::slice::from_raw_parts_mut(map.ptr.cast::<Block>(), count) }
        }
        #[cfg(not(target_os = "linux"))]
        {
            if self.blocks.len() < count {
                self.blocks.resize(count, Block::default());
            }
            &mut self.blocks[..count]
        }
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        #[cfg(target_os = "linux")]
        {
            self.map
                .as_ref()
                .map_or(0, |m| m.blocks * std::mem::size_of::<Block>())
        }
        #[cfg(not(target_os = "linux"))]
        {
            self.blocks.len() * std::mem::size_of::<Block>()
        }
    }
}

#[cfg(target_os = "linux")]
struct Mapping {
    ptr: *mut libc::c_void,
    blocks: usize,
}

// SAFETY: the mapping is plain memory owned by this value alone.
#[cfg(target_os = "linux")]
unsafe impl Send for Mapping {}

#[cfg(target_os = "linux")]
impl Mapping {
    fn new(blocks: usize) -> Mapping {
        let len = blocks.max(1) * std::mem::size_of::<Block>();
        // SAFETY: an anonymous private mapping; no file, no fixed address.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            // As the global allocator does when memory runs out.
            std::alloc::handle_alloc_error(
                std::alloc::Layout::from_size_align(len, 4096).expect("a valid layout"),
            );
        }
        Mapping { ptr, blocks }
    }
}

#[cfg(target_os = "linux")]
impl Drop for Mapping {
    fn drop(&mut self) {
        let len = self.blocks.max(1) * std::mem::size_of::<Block>();
        // SAFETY: unmaps exactly the mapping made in `new`, once.
        unsafe {
            libc::munmap(self.ptr, len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_grows_and_keeps_what_was_written() {
        let mut memory = Memory::default();
        assert_eq!(memory.bytes(), 0);
        let blocks = memory.blocks(16);
        assert_eq!(blocks.len(), 16);
        assert!(blocks.iter().all(|b| b.as_ref().iter().all(|w| *w == 0)));
        blocks[3].as_mut()[0] = 7;
        assert_eq!(
            memory.blocks(8)[3].as_ref()[0],
            7,
            "smaller: the same buffer"
        );
        assert_eq!(memory.blocks(64).len(), 64);
        assert_eq!(memory.bytes(), 64 * 1024);
    }
}
