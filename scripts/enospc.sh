#!/usr/bin/env bash
# ENOSPC against the real binary: its data dir on a small filesystem that runs full mid-run.
#
# Mounts an 8 MiB tmpfs (needs root; falls back to a loop-mounted 16 MiB ext4 image, which
# also makes fsync real), then runs `tidemark-crash enospc`: SETs until the filesystem is
# filled by a filler file, then checks writes get `MISCONF Errors writing to the AOF file:
# No space left on device`, reads keep working, INFO persistence shows
# aof_last_write_status:err with the cause; deletes the filler and checks writes are
# accepted again without a restart; every acknowledged SET present, also after kill -9 +
# restart. Runs shards 1 and 2 × appendfsync always and everysec on each filesystem kind.
#
# Usage: scripts/enospc.sh [tmpfs|ext4|both]   (default both)
set -euo pipefail
cd "$(dirname "$0")/.."
kinds=${1:-both}
[ "$kinds" = both ] && kinds="tmpfs ext4"
cargo build --release -q -p tidemark -p tidemark-crash
work=$(mktemp -d /tmp/tidemark-enospc.XXXXXX)
mnt="$work/mnt"
mkdir -p "$mnt"
cleanup() { umount "$mnt" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
status=0
for kind in $kinds; do
  for shards in 1 2; do
    for fsync in always everysec; do
      case $kind in
        tmpfs)
          if ! mount -t tmpfs -o size=8m tmpfs "$mnt"; then
            echo "SKIP tmpfs: mount -t tmpfs failed (not root?)" >&2; continue
          fi ;;
        ext4)
          truncate -s 16M "$work/fs.img"
          mkfs.ext4 -q -F "$work/fs.img"
          if ! mount -o loop "$work/fs.img" "$mnt"; then
            echo "SKIP ext4: mount -o loop failed (not root, or no loop devices)" >&2; continue
          fi ;;
      esac
      echo "== $kind shards=$shards appendfsync=$fsync"
      target/release/tidemark-crash enospc --binary target/release/tidemark \
        --dir "$mnt/data" --shards "$shards" --appendfsync "$fsync" || status=1
      umount "$mnt"
      rm -f "$work/fs.img"
    done
  done
done
exit $status
