#!/usr/bin/env bash
# make run: a local skyfs on one host. Three masters on loopback with their
# data under ./.skyfs/, the root of the namespace on a local directory
# (./.skyfs/ufs), and a mount daemon serving the namespace at ./mnt.
# Ctrl-C (or SIGTERM) unmounts and stops everything; running it again reuses
# the state.
#
# The cluster is secured as any new one: on first start the masters create
# its tokens and cluster key in ./.skyfs/secrets (root-only files). The CLI
# uses the admin token (SKYFS_TOKEN_FILE), mountd the mount token; a master
# hands UFS credentials only to a caller with a token, and the cluster key
# seals them in the journal.
#
# SKYFS_RUN_STATE and SKYFS_RUN_MNT move the state and the mount point;
# SKYFS_RUN_PORT (default 7700) is the first of the ports it uses: masters'
# RPC on PORT+1..3, Raft on PORT+11..13, admin pages on PORT+21..23, and
# mountd's admin page on PORT+30.
set -euo pipefail
cd "$(dirname "$0")/.."

state=${SKYFS_RUN_STATE:-$PWD/.skyfs}
mnt=${SKYFS_RUN_MNT:-$PWD/mnt}
port=${SKYFS_RUN_PORT:-7700}
mkdir -p "$state/logs" "$state/ufs" "$mnt"
state=$(cd "$state" && pwd)
mnt=$(cd "$mnt" && pwd)

for b in masterd mountd skyfs; do
  if [ ! -x "./bin/$b" ]; then
    echo "skyfs: ./bin/$b is missing; run make run (it builds first)" >&2
    exit 1
  fi
done
if mountpoint -q "$mnt"; then
  echo "skyfs: $mnt is already a mount point (another make run?); unmount it first: umount $mnt" >&2
  exit 1
fi

secrets=$state/secrets
peers="" masters=""
for i in 1 2 3; do
  peers+="${peers:+,}m$i=127.0.0.1:$((port + 10 + i))=127.0.0.1:$((port + i))"
  masters+="${masters:+,}127.0.0.1:$((port + i))"
done

# The daemons run in sessions of their own, so that a Ctrl-C in the terminal
# reaches this script only and it stops them in order: the mount first
# (uploads of closed files finish), then the masters.
pids=()
stopped=0
stop() {
  ((stopped)) && return
  stopped=1
  trap - INT TERM EXIT
  echo
  echo "skyfs: stopping"
  # Unmounting ends mountd: it finishes uploads of released files first.
  if mountpoint -q "$mnt" 2>/dev/null; then
    umount "$mnt" 2>/dev/null || fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null || true
  fi
  if [ -n "${mountd_pid:-}" ]; then
    for _ in $(seq 100); do kill -0 "$mountd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -TERM "$mountd_pid" 2>/dev/null || true
    wait "$mountd_pid" 2>/dev/null || true
  fi
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  echo "skyfs: stopped; state kept in $state"
}
trap stop INT TERM EXIT

for i in 1 2 3; do
  setsid ./bin/masterd --id "m$i" --data-dir "$state/m$i" \
    --raft-addr "127.0.0.1:$((port + 10 + i))" --rpc-addr "127.0.0.1:$((port + i))" \
    --admin-addr "127.0.0.1:$((port + 20 + i))" \
    --peers "$peers" --root-ufs "file://$state/ufs" --secrets-dir "$secrets" \
    >>"$state/logs/m$i.log" 2>&1 &
  pids+=($!)
done

export SKYFS_MASTERS=$masters SKYFS_TOKEN_FILE=$secrets/admin.token
deadline=$((SECONDS + 30))
until ./bin/skyfs cluster status 2>/dev/null | grep -qw leader; do
  if ((SECONDS > deadline)); then
    echo "skyfs: the masters did not elect a leader in 30 s; see $state/logs" >&2
    exit 1
  fi
  for p in "${pids[@]}"; do
    if ! kill -0 "$p" 2>/dev/null; then
      echo "skyfs: a master exited; see $state/logs:" >&2
      tail -n 3 "$state"/logs/m*.log >&2
      exit 1
    fi
  done
  sleep 0.2
done

# mountd in the foreground of a background job: it prints "ready" on
# descriptor 3 once the mount can be used.
ready=$state/mountd.ready
rm -f "$ready"
setsid ./bin/mountd --cache-dir "$state/cache" --cache-size 4G --token-file "$secrets/mount.token" \
  --admin-addr "127.0.0.1:$((port + 30))" --ready-fd 3 \
  "$masters:/" "$mnt" >>"$state/logs/mountd.log" 2>&1 3>"$ready" &
mountd_pid=$!
deadline=$((SECONDS + 30))
until grep -q ready "$ready" 2>/dev/null; do
  if ! kill -0 "$mountd_pid" 2>/dev/null || ((SECONDS > deadline)); then
    echo "skyfs: mountd did not mount $mnt; see $state/logs/mountd.log:" >&2
    tail -n 3 "$state/logs/mountd.log" >&2
    exit 1
  fi
  sleep 0.1
done

cat <<MSG
skyfs is running.
  mount        $mnt                 (the namespace root)
  masters      $masters
  root UFS     $state/ufs             (what the masters write files to)
  state, logs  $state
  tokens, key  $secrets   (root-only; admin.token is the CLI's)
  status page  http://127.0.0.1:$((port + 21))/   (and :$((port + 22)), :$((port + 23)))
  metrics      http://127.0.0.1:$((port + 30))/metrics   (mountd)

Try, in another shell:
  export SKYFS_MASTERS=$masters SKYFS_TOKEN_FILE=$secrets/admin.token
  echo hello > $mnt/hello.txt && cat $mnt/hello.txt
  ./bin/skyfs ls /
  ./bin/skyfs cluster status

Mount a MinIO or S3 bucket under /data (credentials stay on the masters):
  ./bin/skyfs mount /data s3://BUCKET/PREFIX --option s3.endpoint=http://127.0.0.1:9000 \\
      --option s3.pathStyle=true --option s3.region=us-east-1 --option-file /root/s3-credentials
  (/root/s3-credentials, mode 0600: s3.accessKeyId=... and s3.secretAccessKey=... lines)
  ls $mnt/data

Press Ctrl-C to unmount and stop.
MSG
# Wait until mountd or a master ends (or a signal arrives).
wait -n "$mountd_pid" "${pids[@]}" || true
