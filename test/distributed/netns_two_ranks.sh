#!/usr/bin/env bash
# Two ranks in two network namespaces of this machine (ip netns + a veth pair), Open MPI over
# TCP only: rank 0 in kiln_mn_a (10.77.0.1), rank 1 in kiln_mn_b (10.77.0.2), started by an
# rsh agent that enters the namespace, as ssh would on another machine. Runs the given
# distributed_test filters. Skips (exit 77) where namespaces cannot be made (not root, no ip).
#   netns_two_ranks.sh DISTRIBUTED_TEST GTEST_FILTER
set -euo pipefail
bin=$1 filter=$2
if [[ $(id -u) -ne 0 ]] || ! command -v ip >/dev/null; then
  echo "SKIP: needs root and iproute2 (ip netns) to make two network namespaces"; exit 77
fi
a=kiln_mn_a_$$ b=kiln_mn_b_$$
cleanup() { ip netns del "$a" 2>/dev/null || true; ip netns del "$b" 2>/dev/null || true; rm -rf "$tmp"; }
tmp=$(mktemp -d)
trap cleanup EXIT
if ! ip netns add "$a" 2>/dev/null || ! ip netns add "$b" 2>/dev/null; then
  echo "SKIP: ip netns add is not allowed here (no CAP_SYS_ADMIN / no /var/run/netns)"; exit 77
fi
ip link add vkmn_a$$ type veth peer name vkmn_b$$
ip link set vkmn_a$$ netns "$a"
ip link set vkmn_b$$ netns "$b"
ip -n "$a" addr add 10.77.0.1/24 dev vkmn_a$$
ip -n "$b" addr add 10.77.0.2/24 dev vkmn_b$$
for ns in "$a" "$b"; do ip -n "$ns" link set lo up; done
ip -n "$a" link set vkmn_a$$ up
ip -n "$b" link set vkmn_b$$ up
# The "ssh" of this test: run the remote command inside the namespace of its host.
cat > "$tmp/agent" <<AGENT
#!/bin/sh
host=\$1; shift
case "\$host" in 10.77.0.2) ns=$b ;; *) ns=$a ;; esac
exec ip netns exec "\$ns" /bin/sh -c "\$*"
AGENT
chmod +x "$tmp/agent"
printf '10.77.0.1 slots=1\n10.77.0.2 slots=1\n' > "$tmp/hosts"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec ip netns exec "$a" timeout 120 mpirun --allow-run-as-root -np 2 --hostfile "$tmp/hosts" \
  --mca plm_rsh_agent "$tmp/agent" --mca btl tcp,self --mca btl_tcp_if_include 10.77.0.0/24 \
  --mca oob_tcp_if_include 10.77.0.0/24 -x KILN_BACKEND -x KILN_CACHE_MAX_MB -x KILN_NUM_THREADS \
  -x KILN_TEST_OUT -x KILN_TEST_MACHINES=2 "$bin" --gtest_filter="$filter"
