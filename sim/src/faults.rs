//! Fault rates for one simulation run, drawn per seed (swarm testing: each run turns a
//! random subset of faults on, at random rates, so rare combinations get explored).
//!
//! Rates are probabilities in `[0, 1]` applied per operation; latencies are virtual.
//! [`FaultConfig::default`] is "no faults except latency" (disk ops still take virtual
//! time, so interleavings vary). [`FaultConfig::draw`] draws the original fault set;
//! [`FaultConfig::draw_full`] / [`DiskFaults::draw_full`] (opt-in) also turn on read bit
//! flips, latency spikes, misdirected writes and crash-filled appends, so runs drawn with
//! `draw` keep their exact behaviour. Machine-crash survival rates only matter when the world
//! decides to crash a machine; they are part of the config so one seed fixes them.
//!
//! What can fail here: nothing; [`FaultConfig::validate`] asserts rates are in range.

use rand::Rng;

/// Largest per-write misdirected-write rate [`DiskFaults::draw_full`] draws: with a few
/// thousand AOF writes per world run, about one misdirected write per run that has them on,
/// so most such runs still get far past it.
pub const MISDIRECTED_WRITE_RATE_MAX: f64 = 0.0005;

/// Largest per-read bit-flip rate [`DiskFaults::draw_full`] draws. The server reads its
/// files only at start-up (a few large reads per boot), so the rate is high enough that
/// recoveries do meet flipped reads.
pub const READ_BITFLIP_RATE_MAX: f64 = 0.1;

/// Disk faults and timing (see `disk.rs` for how each one is applied).
#[derive(Clone, Debug, PartialEq)]
pub struct DiskFaults {
    /// Smallest virtual latency of one disk operation, in µs.
    pub latency_min_us: u64,
    /// Largest virtual latency of one disk operation, in µs (inclusive).
    pub latency_max_us: u64,
    /// Probability that a `sync_data`/`sync_all`/`sync_dir` stalls for `stall_ms` on top.
    pub stall_rate: f64,
    /// Length of a stall, in ms (make it longer than the server's fsync timeout to test
    /// predecessor bug 4).
    pub stall_ms: u64,
    /// Probability that `sync_data`/`sync_all` fails with EIO. The pending writes then
    /// reach the platter only partly (a crash-like subset) and are no longer pending:
    /// the page cache still shows them, a later machine crash loses the rest.
    pub fsync_eio_rate: f64,
    /// Probability that `write_at` fails with EIO after writing a random prefix (maybe 0).
    pub write_eio_rate: f64,
    /// Probability that `write_at` writes only a random non-empty strict prefix.
    pub short_write_rate: f64,
    /// Disk capacity in bytes (sum of all file lengths); beyond it writes fail ENOSPC.
    pub capacity_bytes: Option<u64>,
    /// Probability that `read_at` returns data with one bit flipped.
    pub read_bitflip_rate: f64,
    /// Machine crash: probability that each pending write survives.
    pub crash_write_survive_rate: f64,
    /// Machine crash: probability that a surviving write is torn at sector granularity.
    pub crash_torn_rate: f64,
    /// Machine crash: probability that a pending `set_len` (truncate/extend) applies.
    pub crash_set_len_rate: f64,
    /// Machine crash: probability that each unsynced directory operation applies.
    pub crash_dir_op_rate: f64,
    /// Sector size for torn writes, in bytes (512 or 4096).
    pub sector_bytes: u64,
    /// Probability that any disk operation takes `latency_spike_ms` longer (a latency
    /// spike: GC in the SSD, a noisy neighbour). 0 (off) by default.
    pub latency_spike_rate: f64,
    /// Length of a latency spike, in ms.
    pub latency_spike_ms: u64,
    /// Probability that a `write_at` is misdirected: it reports success and the page
    /// cache shows it, but the device puts it at another sector-aligned offset of the same
    /// file, or drops it (seen after a machine crash or `SimDisk::evict_page_cache`).
    /// Rare by design; 0 (off) by default.
    pub misdirected_write_rate: f64,
    /// Machine crash: probability that a lost pending write which extended the file
    /// still extends it (the size reached the platter, the data did not), the appended
    /// range reading as zeros or garbage. 0 (off) by default.
    pub crash_append_fill_rate: f64,
}

impl Default for DiskFaults {
    fn default() -> DiskFaults {
        DiskFaults {
            latency_min_us: 5,
            latency_max_us: 200,
            stall_rate: 0.0,
            stall_ms: 0,
            fsync_eio_rate: 0.0,
            write_eio_rate: 0.0,
            short_write_rate: 0.0,
            capacity_bytes: None,
            read_bitflip_rate: 0.0,
            crash_write_survive_rate: 0.5,
            crash_torn_rate: 0.3,
            crash_set_len_rate: 0.5,
            crash_dir_op_rate: 0.5,
            sector_bytes: 512,
            latency_spike_rate: 0.0,
            latency_spike_ms: 0,
            misdirected_write_rate: 0.0,
            crash_append_fill_rate: 0.0,
        }
    }
}

impl DiskFaults {
    /// Swarm testing over the *full* disk fault model: [`FaultConfig::draw`]'s disk
    /// faults, plus read bit flips, latency spikes, misdirected writes (rare), appended
    /// ranges filled after a crash, and ENOSPC at a drawn capacity more often. Each extra
    /// fault is on with probability 1/2 at a random rate. Draws from `rng` after
    /// `FaultConfig::draw`'s own draws, so `draw_full` extends `draw` for the same seed.
    pub fn draw_full(rng: &mut impl Rng) -> DiskFaults {
        let mut disk = FaultConfig::draw(rng).disk;
        disk.extend_full(rng);
        disk
    }

    /// Turns on (each with probability 1/2, at a random rate) the faults that
    /// [`FaultConfig::draw`] leaves off.
    fn extend_full(&mut self, rng: &mut impl Rng) {
        self.read_bitflip_rate = maybe(rng, READ_BITFLIP_RATE_MAX);
        self.latency_spike_rate = maybe(rng, 0.02);
        self.latency_spike_ms = rng.gen_range(10..2_000);
        self.misdirected_write_rate = maybe(rng, MISDIRECTED_WRITE_RATE_MAX);
        self.crash_append_fill_rate = maybe(rng, 1.0);
        if self.capacity_bytes.is_none() && rng.gen_bool(0.3) {
            self.capacity_bytes = Some(rng.gen_range(16 * 1024..4 * 1024 * 1024));
        }
    }
}

/// Network faults and timing (see `net.rs`).
#[derive(Clone, Debug, PartialEq)]
pub struct NetFaults {
    /// Largest virtual delay before a `write_all` is delivered, in µs.
    pub latency_max_us: u64,
    /// Probability that a read returns a random-length prefix of what is available
    /// (otherwise it returns as much as fits).
    pub split_read_rate: f64,
    /// Probability that a `write_all` resets the connection (both sides get an error).
    pub reset_rate: f64,
    /// Bytes one direction of a connection buffers before `write_all` waits.
    pub pipe_capacity_bytes: usize,
}

impl Default for NetFaults {
    fn default() -> NetFaults {
        NetFaults {
            latency_max_us: 100,
            split_read_rate: 0.5,
            reset_rate: 0.0,
            pipe_capacity_bytes: 256 * 1024,
        }
    }
}

/// Half the time 0.0, otherwise uniform in `[0, max)`.
fn maybe(rng: &mut impl Rng, max: f64) -> f64 {
    if rng.gen_bool(0.5) {
        rng.gen_range(0.0..max)
    } else {
        0.0
    }
}

/// Every fault rate of a run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FaultConfig {
    /// Disk faults (the same for every node).
    pub disk: DiskFaults,
    /// Network faults.
    pub net: NetFaults,
}

impl FaultConfig {
    /// Swarm testing: turns each fault on with probability 1/2 at a random rate.
    /// Runtime fault rates stay small so runs still make progress.
    pub fn draw(rng: &mut impl Rng) -> FaultConfig {
        let latency_max_us = *[50u64, 200, 1_000, 10_000]
            .get(rng.gen_range(0..4))
            .unwrap_or(&200);
        let disk = DiskFaults {
            latency_min_us: rng.gen_range(1..=latency_max_us.min(20)),
            latency_max_us,
            stall_rate: maybe(rng, 0.01),
            stall_ms: rng.gen_range(100..10_000),
            fsync_eio_rate: maybe(rng, 0.02),
            write_eio_rate: maybe(rng, 0.02),
            short_write_rate: maybe(rng, 0.05),
            capacity_bytes: if rng.gen_bool(0.2) {
                Some(rng.gen_range(64 * 1024..16 * 1024 * 1024))
            } else {
                None
            },
            read_bitflip_rate: 0.0,
            crash_write_survive_rate: rng.gen_range(0.0..=1.0),
            crash_torn_rate: rng.gen_range(0.0..=1.0),
            crash_set_len_rate: rng.gen_range(0.0..=1.0),
            crash_dir_op_rate: rng.gen_range(0.0..=1.0),
            sector_bytes: if rng.gen_bool(0.5) { 512 } else { 4096 },
            // Off in `draw`; `draw_full` turns them on (keeps `draw`'s streams as they were).
            ..DiskFaults::default()
        };
        let net = NetFaults {
            latency_max_us: rng.gen_range(0..2_000),
            split_read_rate: rng.gen_range(0.0..=1.0),
            reset_rate: maybe(rng, 0.01),
            pipe_capacity_bytes: *[1usize, 64, 4096, 256 * 1024]
                .get(rng.gen_range(0..4))
                .unwrap_or(&4096),
        };
        let config = FaultConfig { disk, net };
        config.validate();
        config
    }

    /// Like [`FaultConfig::draw`] (same draws first, so the same net faults), then the
    /// extra disk faults of [`DiskFaults::draw_full`]. Opt-in: `draw` itself never turns
    /// the new faults on.
    pub fn draw_full(rng: &mut impl Rng) -> FaultConfig {
        let mut config = FaultConfig::draw(rng);
        config.disk.extend_full(rng);
        config.validate();
        config
    }

    /// Asserts every rate is a probability and every range is ordered.
    pub fn validate(&self) {
        let d = &self.disk;
        for rate in [
            d.stall_rate,
            d.fsync_eio_rate,
            d.write_eio_rate,
            d.short_write_rate,
            d.read_bitflip_rate,
            d.crash_write_survive_rate,
            d.crash_torn_rate,
            d.crash_set_len_rate,
            d.crash_dir_op_rate,
            d.latency_spike_rate,
            d.misdirected_write_rate,
            d.crash_append_fill_rate,
            self.net.split_read_rate,
            self.net.reset_rate,
        ] {
            assert!(
                (0.0..=1.0).contains(&rate),
                "fault rate {rate} out of [0, 1]"
            );
        }
        assert!(
            d.latency_min_us <= d.latency_max_us,
            "disk latency range inverted"
        );
        assert!(
            d.sector_bytes.is_power_of_two() && d.sector_bytes >= 512,
            "bad sector size"
        );
        assert!(
            self.net.pipe_capacity_bytes >= 1,
            "pipe capacity must be at least 1 byte"
        );
    }
}
