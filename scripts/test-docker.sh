#!/usr/bin/env bash
# A 3-member kvorum cluster in Docker containers, driven by etcdctl from the host:
#
#   1. form     3 containers of the image from scripts/build-image.sh, mutual TLS between peers,
#               TLS + client certificates on the client API, read-only root filesystem, no
#               capabilities; they must elect one leader
#   2. kill     `docker kill` the leader while a writer puts keys: the other two keep serving, and
#               every acknowledged write is there afterwards with its value; the killed member
#               restarts from its volume and catches up
#   3. cut      `docker network disconnect` the leader from the peer network: the majority elects
#               a new leader and commits; the cut-off member cannot commit a put nor serve a
#               linearizable read, and its serializable reads do not see the majority's writes
#   4. heal     reconnect: it catches up, its uncommitted put is gone, and `etcdctl endpoint hashkv`
#               and the revision are equal on all three
#
# Networks, like a StatefulSet's: members find each other only on an internal network (no
# gateway, no published ports) by the aliases kv-N.kv-peer.kvorum-test.svc; each also sits on a
# "client" network with inter-container traffic disabled, which only carries the client port
# published on 127.0.0.1 for etcdctl. Disconnecting the peer network therefore partitions a member
# from its peers while etcdctl can still reach it.
#
# Everything (containers, networks, volumes) is removed on exit, failure included.
#   KVORUM_IMAGE=ref        use this image instead of building one (scripts/build-image.sh)
#   KVORUM_KEEP=1           keep the containers etc. for inspection (prints how to remove them)
# Ends with "docker: N passed, N failed"; exits non-zero on the first failed assertion.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
cd "$repo"

# etcdctl 3.4 from Debian; CI runs as root, so it can install it like scripts/test.sh installs tools.
if ! command -v etcdctl >/dev/null; then
  apt-get update -qq && apt-get install -y -qq etcd-client >/dev/null
fi
export ETCDCTL_API=3

image=${KVORUM_IMAGE:-}
if [ -z "$image" ]; then
  image=$(scripts/build-image.sh | tail -1)
fi

run=kvt$$ # prefix of every Docker object of this run, so parallel runs do not collide
domain=kv-peer.kvorum-test.svc
members=(kv-0 kv-1 kv-2)
work=$(mktemp -d)
started=$(date +%s)
passed=0

log() { echo "[$(($(date +%s) - started))s] $*"; }
pass() { passed=$((passed + 1)); log "ok   $*"; }
fail() {
  log "FAIL $*"
  echo "docker: $passed passed, 1 failed"
  exit 1
}

cleanup() {
  local rc=$?
  if [ "$rc" -ne 0 ]; then
    for m in "${members[@]}"; do
      echo "--- last log lines of $m"
      docker logs --tail 40 "$run-$m" 2>&1 | sed 's/^/    /' || true
    done
  fi
  if [ "${KVORUM_KEEP:-0}" = 1 ]; then
    echo "kept: docker rm -f $run-kv-{0,1,2}; docker network rm $run-peer $run-client; docker volume rm $run-pki $run-data-kv-{0,1,2}"
  else
    docker rm -f "${members[@]/#/$run-}" "$run-init" >/dev/null 2>&1 || true
    docker network rm "$run-peer" "$run-client" >/dev/null 2>&1 || true
    docker volume rm "$run-pki" "${members[@]/#/$run-data-}" >/dev/null 2>&1 || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- etcdctl helpers ---------------------------------------------------------------------------

port_of() { docker port "$run-$1" 2379/tcp | head -1 | sed 's/.*://'; }
endpoint_of() { echo "https://127.0.0.1:$(port_of "$1")"; }
endpoints_of() { # comma-separated endpoints of the members given
  local out=() m
  for m in "$@"; do out+=("$(endpoint_of "$m")"); done
  (IFS=,; echo "${out[*]}")
}
ectl() { # ectl ENDPOINTS ARGS...: etcdctl with the test PKI, short deadlines
  local eps=$1
  shift
  etcdctl --endpoints "$eps" --cacert "$work/pki/ca.pem" --cert "$work/pki/etcdctl.pem" \
    --key "$work/pki/etcdctl-key.pem" --dial-timeout 2s --command-timeout 3s "$@"
}
status_field() { # status_field MEMBER FIELD: member_id | leader | revision | raft_index
  ectl "$(endpoint_of "$1")" endpoint status -w json 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)[0]["Status"]
print({"member_id": s["header"]["member_id"], "leader": s["leader"],
       "revision": s["header"]["revision"], "raft_index": s["raftIndex"]}[sys.argv[1]])' "$2"
}
leader_of() { # leader_of MEMBER...: the member all of them name as leader, or fail (status 1)
  local m id leader="" name=""
  for m in "$@"; do
    id=$(status_field "$m" leader) || return 1
    [ "$id" != 0 ] || return 1
    [ -z "$leader" ] || [ "$leader" = "$id" ] || return 1
    leader=$id
  done
  for m in "${members[@]}"; do
    [ "${member_id[$m]}" = "$leader" ] && name=$m
  done
  [ -n "$name" ] && echo "$name"
}
hashkv() { # hashkv MEMBER: "<revision> <hash>" of its keyspace
  ectl "$(endpoint_of "$1")" endpoint hashkv -w json 2>/dev/null | python3 -c '
import json, sys
h = json.load(sys.stdin)[0]["HashKV"]
print(h["header"]["revision"], h["hash"])'
}
wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...: poll every 0.5 s
  local seconds=$1 what=$2
  local deadline=$(($(date +%s) + seconds))
  shift 2
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "timed out after ${seconds}s waiting for: $what"
    sleep 0.5
  done
}
converged() { # all members report the same keyspace hash at the same revision
  local m first="" h
  for m in "${members[@]}"; do
    h=$(hashkv "$m") || return 1
    [ -z "$first" ] || [ "$first" = "$h" ] || return 1
    first=$h
  done
}

# --- 1. form -----------------------------------------------------------------------------------

log "image $image; run $run"
docker network create --internal "$run-peer" >/dev/null
docker network create -o com.docker.network.bridge.enable_icc=false "$run-client" >/dev/null

# Certificates from the image itself (`kvorum cert`), into a volume the members mount read-only.
# It is mounted at /var/lib/kvorum, which the image owns as uid 65532, so the fresh volume is
# writable by that user.
docker volume create "$run-pki" >/dev/null
kvorum_cert() { docker run --rm --name "$run-init" -v "$run-pki:/var/lib/kvorum" "$image" cert "$@" >/dev/null; }
kvorum_cert ca --dir /var/lib/kvorum
for m in "${members[@]}"; do
  kvorum_cert node "$m" --dir /var/lib/kvorum --san "$m.$domain,$m,localhost,127.0.0.1"
done
kvorum_cert client etcdctl --dir /var/lib/kvorum

initial_cluster=""
for m in "${members[@]}"; do initial_cluster+="${initial_cluster:+,}$m=https://$m.$domain:2380"; done
declare -A member_id
for m in "${members[@]}"; do
  docker volume create "$run-data-$m" >/dev/null
  # Created on the client network (publishing the port), then joined to the peer network under
  # its stable name, then started: the member never runs without its peer network.
  docker create --name "$run-$m" --hostname "$m" \
    --network "$run-client" --publish 127.0.0.1::2379 \
    --read-only --cap-drop ALL --security-opt no-new-privileges \
    --volume "$run-data-$m:/var/lib/kvorum" --volume "$run-pki:/etc/kvorum/pki:ro" \
    --env KVORUM_NAME="$m" \
    --env KVORUM_ADVERTISE_PEER_URL="https://$m.$domain:2380" \
    --env KVORUM_ADVERTISE_CLIENT_URLS="https://$m.$domain:2379" \
    --env KVORUM_INITIAL_CLUSTER="$initial_cluster" \
    --env KVORUM_INITIAL_CLUSTER_STATE=new \
    --env KVORUM_INITIAL_CLUSTER_TOKEN="$run" \
    --env KVORUM_CERT_FILE="/etc/kvorum/pki/$m.pem" \
    --env KVORUM_KEY_FILE="/etc/kvorum/pki/$m-key.pem" \
    --env KVORUM_TRUSTED_CA_FILE=/etc/kvorum/pki/ca.pem \
    --env KVORUM_CLIENT_CERT_AUTH=true \
    --env KVORUM_PEER_CERT_FILE="/etc/kvorum/pki/$m.pem" \
    --env KVORUM_PEER_KEY_FILE="/etc/kvorum/pki/$m-key.pem" \
    --env KVORUM_PEER_TRUSTED_CA_FILE=/etc/kvorum/pki/ca.pem \
    "$image" serve >/dev/null
  docker network connect --alias "$m.$domain" "$run-peer" "$run-$m"
done
docker start "${members[@]/#/$run-}" >/dev/null
# The host's etcdctl needs the CA and its client certificate (docker cp reads the volume).
docker cp "$run-kv-0:/etc/kvorum/pki" "$work/pki"
log "started ${members[*]} (client ports $(for m in "${members[@]}"; do printf '%s ' "$(port_of "$m")"; done))"

wait_until 60 "all members answer over TLS" ectl "$(endpoints_of "${members[@]}")" endpoint health
for m in "${members[@]}"; do member_id[$m]=$(status_field "$m" member_id); done
wait_until 30 "one leader that all members agree on" leader_of "${members[@]}"
leader=$(leader_of "${members[@]}")
pass "cluster formed over mutual TLS; leader $leader"
[ "$(ectl "$(endpoint_of kv-0)" member list | wc -l)" = 3 ] || fail "member list does not show 3 members"
pass "member list shows 3 members"

# --- 2. kill the leader under writes -----------------------------------------------------------

writes=240
kill_after=60
all=$(endpoints_of "${members[@]}")
: >"$work/acked"
(
  for i in $(seq 1 "$writes"); do
    key=$(printf 'lk/%04d' "$i")
    if ectl "$all" put "$key" "v$i" >/dev/null 2>>"$work/writer.err"; then
      echo "$i $(date +%s.%N)" >>"$work/acked"
    fi
  done
) &
writer=$!
wait_until 60 "$kill_after acknowledged writes" test "$(wc -l <"$work/acked")" -ge "$kill_after"
docker kill "$run-$leader" >/dev/null
killed_at=$(date +%s.%N)
killed_index=$(wc -l <"$work/acked")
log "killed leader $leader after $killed_index acknowledged writes"
wait "$writer" || true
survivors=()
for m in "${members[@]}"; do [ "$m" = "$leader" ] || survivors+=("$m"); done

acked=$(wc -l <"$work/acked")
last_acked=$(tail -1 "$work/acked" | cut -d' ' -f1)
[ "$last_acked" = "$writes" ] || fail "the last write ($writes) was not acknowledged: the survivors stopped serving"
tail_ok=$(awk -v from=$((writes - 100)) '$1 > from' "$work/acked" | wc -l)
[ "$tail_ok" = 100 ] || fail "only $tail_ok of the last 100 writes were acknowledged after the kill"
gap=$(awk -v k="$killed_at" '$2 > k { print $2 - k; exit }' "$work/acked")
pass "survivors ${survivors[*]} kept serving: $acked/$writes writes acknowledged, first one ${gap}s after the kill"

new_leader=$(leader_of "${survivors[@]}") || fail "survivors do not agree on a leader"
[ "$new_leader" != "$leader" ] || fail "the killed member is still named leader"
pass "survivors elected $new_leader"

ectl "$(endpoints_of "${survivors[@]}")" get lk/ --prefix -w json >"$work/lk.json"
python3 - "$work/acked" "$work/lk.json" <<'PY' || fail "an acknowledged write is missing or wrong"
import base64, json, sys
acked = [int(line.split()[0]) for line in open(sys.argv[1])]
kvs = json.load(open(sys.argv[2])).get("kvs", [])
have = {base64.b64decode(kv["key"]).decode(): base64.b64decode(kv["value"]).decode() for kv in kvs}
bad = [i for i in acked if have.get(f"lk/{i:04d}") != f"v{i}"]
if bad:
    print(f"acknowledged but missing or wrong: {bad[:20]} ({len(bad)} in all)")
    sys.exit(1)
print(f"all {len(acked)} acknowledged writes present with their values ({len(have) - len(acked)} unacknowledged ones also committed)")
PY
pass "no acknowledged write lost"

docker start "$run-$leader" >/dev/null
wait_until 60 "restarted $leader serves again" ectl "$(endpoint_of "$leader")" endpoint health
wait_until 60 "restarted $leader caught up (equal hashkv on all)" converged
pass "$leader restarted from its volume and caught up; hashkv equal on all three"

# --- 3. cut the leader off the peer network ----------------------------------------------------

cut=$(leader_of "${members[@]}") || fail "no agreed leader before the partition"
majority=()
for m in "${members[@]}"; do [ "$m" = "$cut" ] || majority+=("$m"); done
majority_eps=$(endpoints_of "${majority[@]}")
before=$(status_field "$cut" revision)
docker network disconnect "$run-peer" "$run-$cut"
log "disconnected leader $cut from the peer network"

new_leader_of_majority() { local l; l=$(leader_of "${majority[@]}") && [ "$l" != "$cut" ] && echo "$l"; }
wait_until 30 "the majority ${majority[*]} elects a new leader" new_leader_of_majority
pass "majority elected $(new_leader_of_majority)"
for i in $(seq 1 50); do
  ectl "$majority_eps" put "$(printf 'pt/%02d' "$i")" "p$i" >/dev/null || fail "put pt/$i via the majority failed"
done
pass "majority committed 50 puts during the partition"

if ectl "$(endpoint_of "$cut")" put pt/cut-off lost >/dev/null 2>"$work/cut.err"; then
  fail "a put via the cut-off member $cut succeeded"
fi
pass "put via cut-off $cut fails: $(head -1 "$work/cut.err" | cut -c1-100)"
if ectl "$(endpoint_of "$cut")" get pt/01 >/dev/null 2>&1; then
  fail "a linearizable read via the cut-off member $cut succeeded"
fi
pass "linearizable read via cut-off $cut fails"
seen=$(ectl "$(endpoint_of "$cut")" get pt/ --prefix --keys-only --consistency=s | grep -c . || true)
[ "$seen" = 0 ] || fail "cut-off $cut serves $seen of the majority's new keys"
after=$(status_field "$cut" revision)
[ "$after" = "$before" ] || fail "cut-off $cut revision moved from $before to $after"
pass "serializable read on cut-off $cut sees none of the majority's writes (revision still $after)"

# --- 4. heal -----------------------------------------------------------------------------------

docker network connect --alias "$cut.$domain" "$run-peer" "$run-$cut"
log "reconnected $cut"
wait_until 60 "all three converge after the partition" converged
seen=$(ectl "$(endpoint_of "$cut")" get pt/ --prefix --keys-only --consistency=s | grep -c . || true)
[ "$seen" = 50 ] || fail "$cut sees $seen of the 50 keys written during the partition"
for m in "${members[@]}"; do
  n=$(ectl "$(endpoint_of "$m")" get pt/cut-off --keys-only --consistency=s | grep -c . || true)
  [ "$n" = 0 ] || fail "the put sent to the cut-off member was committed after all (seen on $m)"
done
pass "$cut caught up: 50/50 partition writes, its own uncommitted put discarded everywhere"
ectl "$all" endpoint hashkv -w table
hashes=$(for m in "${members[@]}"; do hashkv "$m"; done | sort -u | wc -l)
[ "$hashes" = 1 ] || fail "hashkv differs between members"
pass "hashkv and revision equal on all three: $(hashkv kv-0)"

echo "docker: $passed passed, 0 failed ($(($(date +%s) - started))s)"
