//! SimFile: an open file on a [`SimDisk`] — reads (with bit flips), writes (with EIO,
//! short write, ENOSPC and misdirected-write faults), fsync (with EIO), set_len. Every
//! injected fault emits a `disk.fault.*` trace event. Every operation waits its virtual latency
//! first and then applies atomically (see `disk.rs` for the model).
//!
//! What can fail here: EBADF (read-only handle, or inode lost in a machine crash), EIO,
//! ENOSPC, EFBIG.

use std::future::Future;
use std::io;

use rand::Rng;
use tidemark::io::BufResult;

use super::{
    apply_op, crash, errno, Inode, PendingOp, SimDisk, EBADF, EFBIG, EIO, ENOSPC,
    FILE_LEN_MAX_BYTES,
};

/// An open file on a [`SimDisk`]. Refers to the inode, like a file descriptor: it keeps
/// working after its name is renamed or removed, and goes stale (EBADF) after a machine
/// crash if the inode did not survive.
pub struct SimFile {
    pub(super) disk: SimDisk,
    pub(super) ino: u64,
    pub(super) writable: bool,
}

impl SimFile {
    fn with_inode<T>(&self, f: impl FnOnce(&mut Inode) -> io::Result<T>) -> io::Result<T> {
        let mut state = self.disk.inner.state.borrow_mut();
        match state.inodes.get_mut(&self.ino) {
            Some(inode) => f(inode),
            None => Err(errno(EBADF)),
        }
    }

    async fn read(&self, mut buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        self.disk.begin("disk.read", self.ino, pos, false).await;
        let flip = self
            .disk
            .chance(self.disk.inner.faults.borrow().read_bitflip_rate);
        let flip_at = self.disk.inner.rng.borrow_mut().gen::<u64>();
        let result = self.with_inode(|inode| {
            let want = buf.capacity() - buf.len();
            let len = inode.current.len() as u64;
            if pos >= len || want == 0 {
                return Ok(0);
            }
            let start = usize::try_from(pos).expect("pos < len");
            let n = want.min(inode.current.len() - start);
            let old_len = buf.len();
            buf.extend_from_slice(&inode.current[start..start + n]);
            if flip {
                let bit = usize::try_from(flip_at % (n as u64 * 8)).expect("small");
                buf[old_len + bit / 8] ^= 1 << (bit % 8);
                self.disk
                    .fault("disk.fault.read_bitflip", self.ino, pos * 8 + bit as u64);
            }
            Ok(n)
        });
        self.disk.end();
        (result, buf)
    }

    async fn write(&self, buf: Vec<u8>, pos: u64) -> BufResult<usize> {
        self.disk.begin("disk.write", self.ino, pos, false).await;
        let result = self.write_now(&buf, pos);
        self.disk.end_mutation();
        (result, buf)
    }

    /// Applies a write with its faults: ENOSPC / EFBIG limits, EIO after a prefix, short
    /// writes. The part that was written is pending.
    fn write_now(&self, data: &[u8], pos: u64) -> io::Result<usize> {
        if !self.writable {
            return Err(errno(EBADF));
        }
        if data.is_empty() {
            return Ok(0);
        }
        let end = pos
            .checked_add(data.len() as u64)
            .ok_or_else(|| errno(EFBIG))?;
        if end > FILE_LEN_MAX_BYTES {
            return Err(errno(EFBIG));
        }
        let faults = self.disk.faults();
        let mut n = data.len();
        let mut fail = None;
        if let Some(capacity) = faults.capacity_bytes {
            let (used, cur_len) = {
                let state = self.disk.inner.state.borrow();
                let inode = state.inodes.get(&self.ino).ok_or_else(|| errno(EBADF))?;
                (state.used_bytes(), inode.current.len() as u64)
            };
            let free = capacity.saturating_sub(used);
            let growth = end.saturating_sub(cur_len);
            if growth > free {
                // Only the part that fits is written; nothing fits ⇒ ENOSPC.
                let fits = cur_len.saturating_sub(pos) + free;
                n = usize::try_from(fits.min(n as u64)).expect("≤ n");
                self.disk.fault("disk.fault.enospc", self.ino, n as u64);
                if n == 0 {
                    return Err(errno(ENOSPC));
                }
            }
        }
        if self.disk.chance(faults.write_eio_rate) {
            n = self.disk.inner.rng.borrow_mut().gen_range(0..n);
            fail = Some(errno(EIO));
            self.disk.fault("disk.fault.write_eio", self.ino, n as u64);
        } else if n > 1 && self.disk.chance(faults.short_write_rate) {
            n = self.disk.inner.rng.borrow_mut().gen_range(1..n);
            self.disk
                .fault("disk.fault.short_write", self.ino, n as u64);
        }
        if n > 0 {
            let misdirect = fail.is_none() && self.disk.chance(faults.misdirected_write_rate);
            let target = if misdirect {
                self.misdirect_target(pos, n as u64, faults.sector_bytes)
            } else {
                Some(pos)
            };
            self.with_inode(|inode| {
                let op = PendingOp::Write {
                    pos,
                    data: data[..n].to_vec(),
                };
                if misdirect {
                    // The file system thinks it wrote at `pos` (size and page cache say
                    // so); the device got the data at `target`, or not at all.
                    let end = pos + n as u64;
                    if end > inode.current.len() as u64 {
                        inode.pending.push(PendingOp::SetLen(end));
                    }
                    if let Some(target) = target {
                        inode.pending.push(PendingOp::Write {
                            pos: target,
                            data: data[..n].to_vec(),
                        });
                    }
                    if inode.believed_durable.is_none() {
                        inode.believed_durable = Some(inode.durable.clone());
                    }
                    inode.misdirected_ranges.push((pos, end));
                    if let Some(target) = target {
                        inode.misdirected_ranges.push((target, target + n as u64));
                    }
                    apply_op(&mut inode.current, &op);
                    inode.misdirected = true;
                } else {
                    apply_op(&mut inode.current, &op);
                    inode.pending.push(op);
                }
                Ok(())
            })?;
            if misdirect {
                self.disk.fault(
                    "disk.fault.misdirected_write",
                    self.ino,
                    target.map_or(u64::MAX, |t| t),
                );
            }
        }
        match fail {
            Some(e) => Err(e),
            None => Ok(n),
        }
    }

    /// Where a misdirected write of `n` bytes meant for `pos` lands: another offset of
    /// this file congruent to `pos` modulo the sector size, inside the file's length after
    /// the write; `None` (lost) a quarter of the time or when there is no such offset.
    fn misdirect_target(&self, pos: u64, n: u64, sector_bytes: u64) -> Option<u64> {
        let len = {
            let state = self.disk.inner.state.borrow();
            state
                .inodes
                .get(&self.ino)
                .map_or(0, |i| i.current.len() as u64)
        };
        let last = len.max(pos + n) - n; // largest start that stays inside the file
        let first = pos % sector_bytes;
        let slots = (last - first) / sector_bytes + 1; // includes `pos` itself
        let mut rng = self.disk.inner.rng.borrow_mut();
        if slots < 2 || rng.gen_range(0..4) == 0 {
            return None;
        }
        let own = (pos - first) / sector_bytes;
        let mut slot = rng.gen_range(0..slots - 1);
        if slot >= own {
            slot += 1;
        }
        Some(first + slot * sector_bytes)
    }

    async fn sync(&self) -> io::Result<()> {
        self.disk.begin("disk.fsync", self.ino, 0, true).await;
        let eio = self
            .disk
            .chance(self.disk.inner.faults.borrow().fsync_eio_rate);
        let result = if eio {
            let faults = self.disk.faults();
            let mut rng = self.disk.inner.rng.borrow_mut();
            let result = self.with_inode(|inode| {
                // Some pages reached the platter, the rest is marked clean and lost.
                let dropped = inode.pending.len() as u64;
                crash::settle_partially(inode, &faults, &mut *rng);
                Ok(dropped)
            });
            drop(rng);
            result.and_then(|dropped| {
                self.disk.fault("disk.fault.fsync_eio", self.ino, dropped);
                Err(errno(EIO))
            })
        } else {
            self.with_inode(|inode| {
                for op in std::mem::take(&mut inode.pending) {
                    apply_op(&mut inode.durable, &op);
                }
                if inode.believed_durable.is_some() {
                    inode.believed_durable = Some(inode.current.clone());
                }
                assert!(
                    inode.lost_to_eio || inode.misdirected || inode.durable == inode.current,
                    "page cache and platter diverge after a clean fsync history"
                );
                Ok(())
            })
        };
        self.disk.end_mutation();
        result
    }

    async fn truncate(&self, len: u64) -> io::Result<()> {
        self.disk.begin("disk.set_len", self.ino, len, false).await;
        let result = (|| {
            if !self.writable {
                return Err(errno(EBADF));
            }
            if len > FILE_LEN_MAX_BYTES {
                return Err(errno(EFBIG));
            }
            let faults = self.disk.faults();
            if let Some(capacity) = faults.capacity_bytes {
                let state = self.disk.inner.state.borrow();
                let cur = state
                    .inodes
                    .get(&self.ino)
                    .map_or(0, |i| i.current.len() as u64);
                if len > cur && len - cur > capacity.saturating_sub(state.used_bytes()) {
                    drop(state);
                    self.disk.fault("disk.fault.enospc", self.ino, len);
                    return Err(errno(ENOSPC));
                }
            }
            self.with_inode(|inode| {
                let op = PendingOp::SetLen(len);
                apply_op(&mut inode.current, &op);
                inode.pending.push(op);
                Ok(())
            })
        })();
        self.disk.end_mutation();
        result
    }
}

impl tidemark::io::File for SimFile {
    fn read_at(&self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<usize>> {
        self.read(buf, pos)
    }

    fn write_at(&self, buf: Vec<u8>, pos: u64) -> impl Future<Output = BufResult<usize>> {
        self.write(buf, pos)
    }

    fn sync_data(&self) -> impl Future<Output = io::Result<()>> {
        self.sync()
    }

    fn sync_all(&self) -> impl Future<Output = io::Result<()>> {
        self.sync()
    }

    fn set_len(&self, len: u64) -> impl Future<Output = io::Result<()>> {
        self.truncate(len)
    }

    async fn len(&self) -> io::Result<u64> {
        self.with_inode(|inode| Ok(inode.current.len() as u64))
    }
}
