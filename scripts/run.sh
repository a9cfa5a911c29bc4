#!/usr/bin/env bash
# make run: a local skyfs on one host. Three masters on loopback with their data
# under ./.skyfs/ and, when bin/mountd is built, a mount daemon serving the
# namespace at ./mnt. Ctrl-C stops everything; running it again reuses the state.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${SKYFS_RUN_DIR:-$PWD/.skyfs}
mnt=${SKYFS_RUN_MNT:-$PWD/mnt}
mkdir -p "$state/logs"

peers=""
for i in 1 2 3; do
  peers+="${peers:+,}m$i=127.0.0.1:$((7710 + i))=127.0.0.1:$((7700 + i))"
done
masters=127.0.0.1:7701,127.0.0.1:7702,127.0.0.1:7703

pids=()
stop() {
  trap - INT TERM EXIT
  echo
  echo "skyfs: stopping"
  if mountpoint -q "$mnt" 2>/dev/null; then
    umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "skyfs: stopped; state kept in $state"
}
trap stop INT TERM EXIT

for i in 1 2 3; do
  ./bin/masterd --id "m$i" --data-dir "$state/m$i" \
    --raft-addr "127.0.0.1:$((7710 + i))" --rpc-addr "127.0.0.1:$((7700 + i))" \
    --peers "$peers" >"$state/logs/m$i.log" 2>&1 &
  pids+=($!)
done

export SKYFS_MASTERS=$masters
deadline=$((SECONDS + 30))
until ./bin/skyfs cluster status 2>/dev/null | grep -qw leader; do
  if ((SECONDS > deadline)); then
    echo "skyfs: the masters did not elect a leader in 30 s; see $state/logs" >&2
    exit 1
  fi
  sleep 0.2
done

if [ -x ./bin/mountd ]; then
  mkdir -p "$mnt"
  ./bin/mountd --masters "$masters" --cache-dir "$state/cache" "$mnt" >"$state/logs/mountd.log" 2>&1 &
  pids+=($!)
fi

cat <<MSG
skyfs is running.
  masters     $masters   (logs and data in $state)
  mount       $mnt
Try:
  export SKYFS_MASTERS=$masters
  ./bin/skyfs cluster status
  ./bin/skyfs mkdir /demo && ./bin/skyfs ls /
Press Ctrl-C to stop.
MSG
./bin/skyfs cluster status || true
wait "${pids[0]}"
