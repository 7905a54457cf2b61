#!/usr/bin/env bash
# make compose-test: build the edgekv image, bring central + us/eu/ap up with docker compose,
# and check the multi-region contract through the published (127.0.0.1) ports:
#   * a key created through one region is served by every other region at once (C1);
#   * an update reaches every region within the configured propagation delay (C2).
# Then tear everything down: containers, network, volumes, and the dockerd this script
# started (if it started one).
#
# Works on a machine with no container registry: the Docker engine comes from Debian
# (docker.io, docker-compose), and the base image is a local stand-in built with debootstrap
# (Debian bookworm minbase + python3, python3-venv, python3-pip), cached between runs as an
# image and as a rootfs tarball under $EDGEKV_CACHE_DIR.
#
# Knobs (environment):
#   COMPOSE_TEST_DELAY       propagation delay given to central (default 5 s)
#   COMPOSE_TEST_BASE_IMAGE  use this base image instead of the debootstrap stand-in
#   EDGEKV_CACHE_DIR         cache directory (default ~/.cache/edgekv)
#   DOCKERD_EXTRA_ARGS       extra flags for a dockerd this script starts
set -Eeuo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DEPLOY="$ROOT/deploy"
DELAY=${COMPOSE_TEST_DELAY:-5}
SLACK=5                                   # seconds on top of DELAY for an update to arrive
CACHE_DIR=${EDGEKV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/edgekv}
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_RECIPE=v1                            # bump when the stand-in's recipe below changes
BASE_TAG="edgekv-base:$SUITE-$BASE_RECIPE"
BASE_TARBALL="$CACHE_DIR/edgekv-base-$SUITE-$BASE_RECIPE.rootfs.tar"
IMAGE=edgekv:compose-test
PROJECT=edgekv-compose-test
WORK=$(mktemp -d /tmp/edgekv-compose-test.XXXXXX)

STARTED_DOCKERD_PID=""
COMPOSE_UP=0
PHASES=()
T_START=$(date +%s.%N)

log() { printf '[compose-test %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
FAILURE=""
die() { FAILURE=$*; printf '[compose-test] FAIL: %s\n' "$*" >&2; exit 1; }

phase_t0=""
PHASE_NAME=""
phase_begin() { PHASE_NAME=$1; phase_t0=$(date +%s.%N); log "== $1"; }
phase_end() {
  local dt
  dt=$(awk -v a="$phase_t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  PHASES+=("$(printf '%-46s %7ss%s' "$PHASE_NAME" "$dt" "${1:-}")")
  log "   $PHASE_NAME took ${dt}s${1:-}"
  PHASE_NAME=""
}

print_phases() {
  local total
  total=$(awk -v a="$T_START" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}')
  echo "---- compose-test phase timings ----"
  local p
  for p in "${PHASES[@]}"; do echo "  $p"; done
  printf '  %-46s %7ss\n' "total" "$total"
}

# ---------------------------------------------------------------------------------------------
# teardown: always, whatever happened

compose() { "${COMPOSE[@]}" -p "$PROJECT" -f "$DEPLOY/docker-compose.yml" "$@"; }

teardown() {
  local rc=$?
  set +e
  trap - EXIT INT TERM
  [ -n "$PHASE_NAME" ] && phase_end "  (FAILED)"
  if [ "$rc" -ne 0 ] && [ "$COMPOSE_UP" = 1 ]; then
    log "failure: last logs of the services"
    compose ps
    compose logs --no-color --tail=40
  fi
  if [ "$COMPOSE_UP" = 1 ]; then
    phase_begin "teardown (compose down -v)"
    timeout 120 "${COMPOSE[@]}" -p "$PROJECT" -f "$DEPLOY/docker-compose.yml" down -v --remove-orphans --timeout 10 \
      || log "compose down failed (rc=$?)"
    phase_end
  fi
  if [ -n "$STARTED_DOCKERD_PID" ]; then
    phase_begin "stop the dockerd we started"
    kill -TERM "$STARTED_DOCKERD_PID" 2>/dev/null
    for _ in $(seq 1 60); do kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
      log "dockerd (pid $STARTED_DOCKERD_PID) did not stop in 30 s: SIGKILL"
      kill -KILL "$STARTED_DOCKERD_PID" 2>/dev/null
    fi
    wait "$STARTED_DOCKERD_PID" 2>/dev/null
    phase_end
  fi
  rm -rf "$WORK"
  print_phases
  if [ "$rc" -eq 0 ]; then log "PASS"; else log "FAILED (exit $rc)${FAILURE:+: $FAILURE}"; fi
  exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

[ "$(id -u)" = 0 ] || die "must run as root (installs packages, starts dockerd, runs debootstrap)"

# ---------------------------------------------------------------------------------------------
phase_begin "prerequisites (Debian packages)"
need=()
command -v dockerd >/dev/null || need+=(docker.io)
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then need+=(docker-compose); fi
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing ${need[*]}"
  timeout 300 apt-get update -qq || die "apt-get update failed"
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null \
    || die "apt-get install ${need[*]} failed"
fi
if docker compose version >/dev/null 2>&1; then
  COMPOSE=(docker compose)
else
  COMPOSE=(docker-compose)
fi
log "compose: ${COMPOSE[*]} ($("${COMPOSE[@]}" version --short 2>/dev/null || echo '?'))"
phase_end

# ---------------------------------------------------------------------------------------------
phase_begin "docker engine"
if timeout 10 docker info >/dev/null 2>&1; then
  log "using the running Docker engine"
else
  # What works in this sandbox (no systemd): dockerd in the background, overlay2 storage,
  # iptables on; vfs storage as a fallback for kernels without overlayfs.
  start_dockerd() {
    log "starting dockerd $*"
    # shellcheck disable=SC2086  # DOCKERD_EXTRA_ARGS is split into flags on purpose
    dockerd --host=unix:///var/run/docker.sock --pidfile="$WORK/dockerd.pid" \
      ${DOCKERD_EXTRA_ARGS:-} "$@" >"$WORK/dockerd.log" 2>&1 &
    STARTED_DOCKERD_PID=$!
    for _ in $(seq 1 60); do
      if ! kill -0 "$STARTED_DOCKERD_PID" 2>/dev/null; then
        wait "$STARTED_DOCKERD_PID" 2>/dev/null || true
        STARTED_DOCKERD_PID=""
        return 1
      fi
      timeout 5 docker info >/dev/null 2>&1 && return 0
      sleep 0.5
    done
    return 1
  }
  if ! start_dockerd; then
    tail -20 "$WORK/dockerd.log" >&2 || true
    if [ -n "$STARTED_DOCKERD_PID" ]; then kill "$STARTED_DOCKERD_PID"; wait "$STARTED_DOCKERD_PID" || true; STARTED_DOCKERD_PID=""; fi
    start_dockerd --storage-driver=vfs || { tail -30 "$WORK/dockerd.log" >&2; die "dockerd did not start (log above)"; }
  fi
  log "dockerd pid $STARTED_DOCKERD_PID ($(docker info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
fi
phase_end

# ---------------------------------------------------------------------------------------------
if [ -n "${COMPOSE_TEST_BASE_IMAGE:-}" ]; then
  BASE_TAG=$COMPOSE_TEST_BASE_IMAGE
  log "base image: $BASE_TAG (from COMPOSE_TEST_BASE_IMAGE)"
else
  phase_begin "stand-in base image ($BASE_TAG)"
  import_base() {
    docker import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["/bin/bash"]' \
      "$BASE_TARBALL" "$BASE_TAG" >/dev/null
  }
  if docker image inspect "$BASE_TAG" >/dev/null 2>&1; then
    log "cached image $BASE_TAG"
  elif [ -s "$BASE_TARBALL" ]; then
    log "importing cached rootfs $BASE_TARBALL"
    import_base || die "docker import of $BASE_TARBALL failed"
  else
    mkdir -p "$CACHE_DIR"
    rootfs="$WORK/rootfs"
    log "debootstrap $SUITE (minbase + python3, python3-venv, python3-pip) from $MIRROR"
    timeout 900 debootstrap --variant=minbase --include=python3,python3-venv,python3-pip,ca-certificates \
      "$SUITE" "$rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1 \
      || { tail -30 "$WORK/debootstrap.log" >&2; die "debootstrap failed (log above)"; }
    # pip in the build must reach the package index the way this machine does: same CA
    # bundle (a TLS-inspecting proxy's CA, if any, is in it), same remote index if one is set.
    cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/ca-certificates.crt"
    index_url=${PIP_INDEX_URL:-$(pip3 config get global.index-url 2>/dev/null || true)}
    {
      echo "# written by scripts/compose_test.sh for the stand-in base image"
      echo "[global]"
      echo "cert = /etc/ssl/certs/ca-certificates.crt"
      echo "timeout = 60"
      case "$index_url" in http://*|https://*) echo "index-url = $index_url" ;; esac
    } >"$rootfs/etc/pip.conf"
    # Smaller image: no package caches, lists, docs.
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* "$rootfs"/usr/share/locale/*
    tar --numeric-owner -C "$rootfs" -cf "$BASE_TARBALL.tmp" . && mv "$BASE_TARBALL.tmp" "$BASE_TARBALL"
    rm -rf "$rootfs"
    import_base || die "docker import failed"
    log "cached rootfs at $BASE_TARBALL ($(du -h "$BASE_TARBALL" | cut -f1))"
  fi
  phase_end
fi

# ---------------------------------------------------------------------------------------------
phase_begin "docker build ($IMAGE)"
# --network host: pip inside the build reaches the package index exactly as this machine does.
timeout 900 docker build --force-rm --network host --build-arg "BASE_IMAGE=$BASE_TAG" \
  -f "$DEPLOY/Dockerfile" -t "$IMAGE" "$ROOT" >"$WORK/build.log" 2>&1 \
  || { tail -40 "$WORK/build.log" >&2; die "docker build failed (log above)"; }
# The previous build's image, untagged now, is garbage (its layers stay cached as parents).
docker image prune -f --filter "label=org.opencontainers.image.title=edgekv" >/dev/null || true
log "built $IMAGE ($(docker image inspect --format '{{.Size}}' "$IMAGE" | awk '{printf "%.0f MB", $1/1e6}'))"
phase_end

# ---------------------------------------------------------------------------------------------
phase_begin "compose up + healthy"
# Free loopback ports for the published HTTP ports, a fresh account and token for this run.
read -r P_CENTRAL P_US P_EU P_AP < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(4):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(*(s.getsockname()[1] for s in socks))
EOF
)
export EDGEKV_IMAGE=$IMAGE EDGEKV_BASE_IMAGE=$BASE_TAG EDGEKV_PROPAGATION_DELAY=$DELAY
export EDGEKV_CENTRAL_PORT=$P_CENTRAL EDGEKV_US_PORT=$P_US EDGEKV_EU_PORT=$P_EU EDGEKV_AP_PORT=$P_AP
EDGEKV_BOOTSTRAP_ACCOUNT=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
EDGEKV_BOOTSTRAP_TOKEN=compose-test-$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')
EDGEKV_CLUSTER_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(16))')
export EDGEKV_BOOTSTRAP_ACCOUNT EDGEKV_BOOTSTRAP_TOKEN EDGEKV_CLUSTER_SECRET
# A leftover project from an interrupted run would hold the names: remove it first.
compose down -v --remove-orphans --timeout 5 >/dev/null 2>&1 || true
COMPOSE_UP=1
timeout 180 "${COMPOSE[@]}" -p "$PROJECT" -f "$DEPLOY/docker-compose.yml" up -d --no-build central us eu ap \
  || die "compose up failed"
deadline=$(( $(date +%s) + 120 ))
for svc in central us eu ap; do
  cid=$(compose ps -q "$svc")
  [ -n "$cid" ] || die "no container for service $svc"
  while :; do
    st=$(docker inspect --format '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' "$cid")
    restarts=$(docker inspect --format '{{.RestartCount}}' "$cid")
    case "$st" in
      "running healthy") break ;;
      exited*|dead*) die "service $svc stopped: $st" ;;
    esac
    [ "$restarts" -lt 2 ] || die "service $svc keeps crashing (restarted $restarts times; logs below)"
    [ "$(date +%s)" -lt "$deadline" ] || die "service $svc not healthy after 120 s (state: $st)"
    sleep 0.5
  done
  log "   $svc healthy"
done
phase_end

# ---------------------------------------------------------------------------------------------
phase_begin "create -> every region at once"
python3 - "$WORK/ns" "create" <<'EOF' || die "create check failed"
import json, os, sys, time, urllib.error, urllib.request

acct, token = os.environ["EDGEKV_BOOTSTRAP_ACCOUNT"], os.environ["EDGEKV_BOOTSTRAP_TOKEN"]
ports = {"central": os.environ["EDGEKV_CENTRAL_PORT"], "us": os.environ["EDGEKV_US_PORT"],
         "eu": os.environ["EDGEKV_EU_PORT"], "ap": os.environ["EDGEKV_AP_PORT"]}
base = {r: f"http://127.0.0.1:{p}/client/v4/accounts/{acct}/storage/kv/namespaces" for r, p in ports.items()}

def call(method, url, body=None, ctype="application/json"):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

# Namespace through us.
st, body = call("POST", base["us"], json.dumps({"title": f"compose-test-{int(time.time())}"}).encode())
assert st == 200, f"create namespace via us: HTTP {st} {body[:300]!r}"
env = json.loads(body)
assert env.get("success") is True, f"create namespace: {env}"
ns = env["result"]["id"]
print(f"   namespace {ns} created via us")
open(sys.argv[1], "w").write(ns)

key, value = "greeting", b"hello from us"
# Reads of the missing key first, so the other regions hold a negative cache entry that the
# create must clear (C1).
for r in ("eu", "ap"):
    st, _ = call("GET", f"{base[r]}/{ns}/values/{key}")
    assert st == 404, f"{r}: missing key answered HTTP {st}"
t0 = time.monotonic()
st, body = call("PUT", f"{base['us']}/{ns}/values/{key}", value, "application/octet-stream")
assert st == 200 and json.loads(body).get("success"), f"put via us: HTTP {st} {body[:300]!r}"
t_ack = time.monotonic()
print(f"   create acknowledged via us in {1000 * (t_ack - t0):.0f} ms")
for r in ("us", "eu", "ap", "central"):
    deadline = time.monotonic() + 1.0  # "at once": retry only briefly
    while True:
        st, got = call("GET", f"{base[r]}/{ns}/values/{key}")
        if st == 200 and got == value:
            print(f"   {r:8s} serves the create {1000 * (time.monotonic() - t_ack):6.0f} ms after the ack")
            break
        if time.monotonic() > deadline:
            sys.exit(f"{r}: create not visible within 1 s of the ack (last: HTTP {st} {got[:200]!r})")
        time.sleep(0.02)
EOF
phase_end

# ---------------------------------------------------------------------------------------------
phase_begin "update -> every region within ${DELAY}s+${SLACK}s"
python3 - "$WORK/ns" "$DELAY" "$SLACK" <<'EOF' || die "update check failed"
import json, os, sys, time, urllib.error, urllib.request

acct, token = os.environ["EDGEKV_BOOTSTRAP_ACCOUNT"], os.environ["EDGEKV_BOOTSTRAP_TOKEN"]
ports = {"central": os.environ["EDGEKV_CENTRAL_PORT"], "us": os.environ["EDGEKV_US_PORT"],
         "eu": os.environ["EDGEKV_EU_PORT"], "ap": os.environ["EDGEKV_AP_PORT"]}
base = {r: f"http://127.0.0.1:{p}/client/v4/accounts/{acct}/storage/kv/namespaces" for r, p in ports.items()}
ns = open(sys.argv[1]).read().strip()
delay, slack = float(sys.argv[2]), float(sys.argv[3])
key = "greeting"

def call(method, url, body=None, ctype="application/json"):
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": ctype})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()

# Make the key hot everywhere, so the edges serve it from their caches and the update has to
# travel the lazy path.
for r in ("us", "eu", "ap"):
    for _ in range(30):
        st, got = call("GET", f"{base[r]}/{ns}/values/{key}")
        assert st == 200, f"{r}: hot read HTTP {st}"
new = b"updated via eu"
t0 = time.monotonic()
st, body = call("PUT", f"{base['eu']}/{ns}/values/{key}", new, "application/octet-stream")
assert st == 200 and json.loads(body).get("success"), f"update via eu: HTTP {st} {body[:300]!r}"
t_ack = time.monotonic()
print(f"   update acknowledged via eu in {1000 * (t_ack - t0):.0f} ms")
pending = {"eu", "us", "ap", "central"}
seen = {}
deadline = t_ack + delay + slack
while pending:
    for r in sorted(pending):
        st, got = call("GET", f"{base[r]}/{ns}/values/{key}")
        if st == 200 and got == new:
            seen[r] = time.monotonic() - t_ack
            pending.discard(r)
            print(f"   {r:8s} serves the update {seen[r]:6.2f} s after the ack")
        elif st != 200:
            sys.exit(f"{r}: read during propagation answered HTTP {st} {got[:200]!r}")
    if pending and time.monotonic() > deadline:
        sys.exit(f"update not seen in {sorted(pending)} within {delay + slack:.0f} s of the ack")
    time.sleep(0.1)
for r in ("eu", "central"):  # C3 (the writing region) and central serve it at once
    if seen[r] > 1.0:
        sys.exit(f"{r} took {seen[r]:.2f} s to serve the update it took/committed (expected at once)")
# Each process exposes its metrics with the DESIGN.md names.
for r, p in ports.items():
    with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10) as resp:
        text = resp.read().decode()
    assert "edgekv_http_requests_total" in text, f"{r}: /metrics lacks edgekv_http_requests_total"
print("   /metrics served by every process")
# The dashboard ships in the image, and central reaches each region at its advertised URL.
for r, p in ports.items():
    with urllib.request.urlopen(f"http://127.0.0.1:{p}/ui", timeout=10) as resp:
        assert b"API token" in resp.read(), f"{r}: /ui is not the dashboard"
st, body = call("GET", f"http://127.0.0.1:{ports['central']}/ui/api/regions?account_id={acct}")
assert st == 200, f"/ui/api/regions: HTTP {st} {body[:300]!r}"
rows = {row["region"]: row for row in json.loads(body)["result"]["regions"]}
for r in ("us", "eu", "ap"):
    assert (rows.get(r) or {}).get("status"), f"central's dashboard cannot reach {r}: {rows.get(r)}"
print("   /ui served by every process; central's dashboard reaches us, eu and ap")
EOF
phase_end
