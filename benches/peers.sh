#!/usr/bin/env bash
# kino side by side with nginx, Caddy and static-web-server: same files, same certificate,
# each server pinned to CPU 0 and the load generator to CPU 1, workloads interleaved across
# rounds, medians reported with kino/peer ratios. Writes the table into benches/README.md.
#
#   bash benches/peers.sh            # ~10 minutes on 2 cores, after the first build
#   ROUNDS=1 SECONDS_PER_RUN=3 bash benches/peers.sh   # a quick look
#
# Installs what it needs (Debian: nginx caddy wrk nghttp2-client; crates.io: static-web-server).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS="${ROUNDS:-3}"
SECS="${SECONDS_PER_RUN:-5}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/var/tmp/kino-target}"

# --- tools -------------------------------------------------------------------------------
missing=()
for tool in nginx:nginx caddy:caddy wrk:wrk h2load:nghttp2-client taskset:util-linux; do
  command -v "${tool%%:*}" >/dev/null || missing+=("${tool#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v static-web-server >/dev/null || cargo install static-web-server --locked
cargo build --profile bench --bin kino --bench load >/dev/null 2>&1 || cargo build --profile bench --bin kino --bench load
KINO="$CARGO_TARGET_DIR/release/kino"
LOAD="$(ls -t "$CARGO_TARGET_DIR"/release/deps/load-* | grep -v '\.d$' | head -1)"

# --- files and certificate ---------------------------------------------------------------
WORK="$(mktemp -d)"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM
mkdir -p "$WORK/media" "$WORK/data"
head -c 104857600 /dev/urandom > "$WORK/media/big.bin"
head -c 10485760 /dev/urandom > "$WORK/media/ten.bin"
"$KINO" cert --cert-dir "$WORK/certs" >/dev/null
CERT="$WORK/certs/cert.pem"; KEY="$WORK/certs/key.pem"; CA="$WORK/certs/ca.pem"

# --- servers (CPU 0), one port pair each -------------------------------------------------
on_server() { exec taskset -c 0 "$@"; }  # exec: the background pid is the server itself
on_client() { taskset -c 1 "$@"; }

# The load generator is one address; nginx and Caddy run without rate limits, so kino does too.
KINO_RATE_LIMIT_ENABLED=false KINO_LIMITS_MAX_CONNECTIONS_PER_IP=0 \
KINO_LOG_FILTER=warn TOKIO_WORKER_THREADS=1 KINO_DATA_DIR="$WORK/data" KINO_SECRET=benchmark-secret-benchmark-secret-0 \
  on_server "$KINO" serve --http-addr 127.0.0.1:18080 --https-addr 127.0.0.1:18443 \
  --media-dir "$WORK/media" --cert-dir "$WORK/certs" >"$WORK/kino.log" 2>&1 &
pids+=($!); declare -A PID_HTTP=([kino]=$!) PID_HTTPS=([kino]=$!)

cat >"$WORK/nginx.conf" <<EOF
user root;
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  sendfile on; tcp_nopush off; tcp_nodelay on; keepalive_requests 100000;
  types { application/octet-stream bin; }
  client_body_temp_path $WORK/nginx-tmp; proxy_temp_path $WORK/nginx-tmp; fastcgi_temp_path $WORK/nginx-tmp;
  uwsgi_temp_path $WORK/nginx-tmp; scgi_temp_path $WORK/nginx-tmp;
  server {
    listen 127.0.0.1:28080;
    listen 127.0.0.1:28443 ssl http2;
    ssl_certificate $CERT; ssl_certificate_key $KEY;
    root $WORK/media; location /media/ { alias $WORK/media/; }
  }
}
EOF
mkdir -p "$WORK/nginx-tmp"
on_server nginx -c "$WORK/nginx.conf" -g 'daemon off;' &
pids+=($!); PID_HTTP[nginx]=$!; PID_HTTPS[nginx]=$!

cat >"$WORK/Caddyfile" <<EOF
{
	admin off
	auto_https off
	servers {
		protocols h1 h2 h3
	}
}
http://127.0.0.1:38080 {
	handle_path /media/* {
		root * $WORK/media
		file_server
	}
}
https://localhost:38443 {
	tls $CERT $KEY
	handle_path /media/* {
		root * $WORK/media
		file_server
	}
}
EOF
GOMAXPROCS=1 XDG_DATA_HOME="$WORK/caddy" XDG_CONFIG_HOME="$WORK/caddy" \
  on_server caddy run --config "$WORK/Caddyfile" --adapter caddyfile >"$WORK/caddy.log" 2>&1 &
pids+=($!); PID_HTTP[caddy]=$!; PID_HTTPS[caddy]=$!

mkdir -p "$WORK/sws/media" && ln "$WORK/media/big.bin" "$WORK/sws/media/big.bin" && ln "$WORK/media/ten.bin" "$WORK/sws/media/ten.bin"
SERVER_THREADS_MULTIPLIER=1 on_server static-web-server --host 127.0.0.1 --port 48080 --root "$WORK/sws" \
  --log-level error >"$WORK/sws.log" 2>&1 &
pids+=($!); PID_HTTP[sws]=$!
SERVER_THREADS_MULTIPLIER=1 on_server static-web-server --host 127.0.0.1 --port 48443 --root "$WORK/sws" \
  --http2 true --http2-tls-cert "$CERT" --http2-tls-key "$KEY" --log-level error >"$WORK/sws-tls.log" 2>&1 &
pids+=($!); PID_HTTPS[sws]=$!
sleep 3
for url in http://127.0.0.1:18080 http://127.0.0.1:28080 http://127.0.0.1:38080 http://127.0.0.1:48080; do
  curl -sf -o /dev/null -r 0-1 "$url/media/big.bin" || { echo "a server at $url is not serving; logs in $WORK" >&2; tail -n 5 "$WORK"/*.log >&2; exit 1; }
done

# --- workloads (CPU 1) -------------------------------------------------------------------
# Each prints one number: requests/s (ranges) or MB/s (whole files).
h1_ranges() { on_client wrk -t1 -c16 -d"${SECS}s" -s benches/range.lua "$1/media/big.bin" | awk '/Requests\/sec/ {print $2}'; }
h2_range() { on_client h2load -c16 -m10 -D "$SECS" -H 'range: bytes=0-65535' "$1/media/big.bin" 2>/dev/null | awk '/^finished in/ {gsub(",", "", $4); print $4}'; }
h2_whole() { on_client h2load -c1 -m1 -D "$SECS" "$1/media/ten.bin" 2>/dev/null | awk '/^finished in/ {v=$6; u=$6; sub(/[A-Za-z\/]+$/, "", v); if (u ~ /GB/) v*=1000; if (u ~ /KB/) v/=1000; print v}'; }
# kino's own clients (benches/load.rs): the same random ranges over HTTP/2 and HTTP/3.
own_ranges() { KINO_LOAD_TARGET="$1,$2,/media/big.bin,$CA,$SECS,16" RUST_BACKTRACE=0 on_client "$LOAD" 2>/dev/null | awk '{print $1}'; }

declare -A HTTP=([kino]=http://127.0.0.1:18080 [nginx]=http://127.0.0.1:28080 [caddy]=http://127.0.0.1:38080 [sws]=http://127.0.0.1:48080)
declare -A HTTPS=([kino]=https://localhost:18443 [nginx]=https://localhost:28443 [caddy]=https://localhost:38443 [sws]=https://localhost:48443)
declare -A QUIC=([kino]=127.0.0.1:18443 [caddy]=127.0.0.1:38443)
declare -A TLS_ADDR=([kino]=127.0.0.1:18443 [nginx]=127.0.0.1:28443 [caddy]=127.0.0.1:38443 [sws]=127.0.0.1:48443)
SERVERS=(kino nginx caddy sws)
WORKLOADS=("HTTP/1.1 random 64 KiB ranges, c16 (req/s)" "HTTP/1.1 TLS random 64 KiB ranges, c16 (req/s)" \
  "HTTP/2 64 KiB range, c16 m10 (req/s)" "HTTP/2 whole 10 MB, c1 (MB/s)" \
  "HTTP/2 random 64 KiB ranges, c16, kino's client (req/s)" "HTTP/3 random 64 KiB ranges, c16 (req/s)")
export SSL_CERT_FILE="$CA"  # wrk and h2load do not verify, but keep the CA handy for clients that do

# CPU time a server has used so far, in clock ticks: the process (all its threads) and its
# children (nginx's worker). Fields 14 and 15 of /proc/PID/stat are utime and stime.
cpu_ticks() {
  local total=0 p f
  for p in "$1" $(pgrep -P "$1" || true); do
    read -r -a f <"/proc/$p/stat" && total=$((total + f[13] + f[14]))
  done
  echo "$total"
}
HZ="$(getconf CLK_TCK)"

# RESULTS holds the raw figures of every run, PER_CORE the same figure divided by the share of
# its core the server used: when the load generator is the limit, a server that idles half the
# time would do twice as much on a core of its own, which is what the targets compare.
declare -A RESULTS PER_CORE SHARE
run() { # workload index, server
  case "$1" in
    0) h1_ranges "${HTTP[$2]}" ;;
    1) h1_ranges "${HTTPS[$2]}" ;;
    2) h2_range "${HTTPS[$2]}" ;;
    3) h2_whole "${HTTPS[$2]}" ;;
    4) own_ranges h2 "${TLS_ADDR[$2]}" ;;
    5) [ -n "${QUIC[$2]:-}" ] && own_ranges h3 "${QUIC[$2]}" || echo "" ;;
  esac
}
for round in $(seq 1 "$ROUNDS"); do
  for w in "${!WORKLOADS[@]}"; do
    for s in "${SERVERS[@]}"; do   # interleaved: every server once per workload per round
      pid="${PID_HTTPS[$s]}"; [ "$w" = 0 ] && pid="${PID_HTTP[$s]}"
      ticks0="$(cpu_ticks "$pid")"; t0="$(date +%s%N)"
      value="$(run "$w" "$s" || true)"
      ticks1="$(cpu_ticks "$pid")"; t1="$(date +%s%N)"
      share="$(awk "BEGIN {s = ($ticks1 - $ticks0) / $HZ / (($t1 - $t0) / 1e9); printf \"%.2f\", (s > 1 ? 1 : s)}")"
      if [ -n "$value" ]; then
        RESULTS["$w,$s"]="${RESULTS["$w,$s"]:-} $value"
        SHARE["$w,$s"]="${SHARE["$w,$s"]:-} $share"
        PER_CORE["$w,$s"]="${PER_CORE["$w,$s"]:-} $(awk "BEGIN {print ($share > 0.05 ? $value / $share : 0)}")"
      fi
      echo "round $round: ${WORKLOADS[$w]} · $s: ${value:-n/a} (server CPU ${share})" >&2
    done
  done
done

median() { tr ' ' '\n' | { grep -v '^$' || true; } | sort -g | awk '{a[NR]=$1} END {if (NR) print a[int((NR+1)/2)]; else print ""}'; }
fmt() { awk "BEGIN {printf \"%d\", $1}" | sed -E ':a;s/([0-9])([0-9]{3})($|,)/\1,\2\3/;ta'; }
table="$(mktemp)"
{
  echo "| workload | kino | nginx | Caddy | static-web-server | kino / best peer | per server core |"
  echo "|---|---|---|---|---|---|---|"
  for w in "${!WORKLOADS[@]}"; do
    row="| ${WORKLOADS[$w]} |"; best=0; kino=0; best_core=0; kino_core=0
    for s in "${SERVERS[@]}"; do
      m="$(echo "${RESULTS["$w,$s"]:-}" | median)"
      c="$(echo "${PER_CORE["$w,$s"]:-}" | median)"
      cpu="$(echo "${SHARE["$w,$s"]:-}" | median)"
      if [ -n "$m" ]; then
        row="$row $(fmt "$m") ($(awk "BEGIN {printf \"%d\", $cpu * 100}")% CPU) |"
        if [ "$s" = kino ]; then kino="$m"; kino_core="$c"
        else
          awk "BEGIN {exit !($m > $best)}" && best="$m"
          awk "BEGIN {exit !($c > $best_core)}" && best_core="$c"
        fi
      else
        row="$row — |"
      fi
    done
    ratio="$(awk "BEGIN {if ($best > 0 && $kino > 0) printf \"%.2f\", $kino / $best; else print \"—\"}")"
    ratio_core="$(awk "BEGIN {if ($best_core > 0 && $kino_core > 0) printf \"%.2f\", $kino_core / $best_core; else print \"—\"}")"
    echo "$row $ratio | $ratio_core |"
  done
} >"$table"
cat "$table"

# Replace the section between the markers in benches/README.md.
{
  awk '/<!-- peers:start -->/ {print; exit} {print}' benches/README.md
  echo
  echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), servers on CPU 0,"
  echo "load generators on CPU 1 (wrk, h2load, kino's own HTTP/2 and HTTP/3 clients), medians of $ROUNDS interleaved rounds of ${SECS} s;"
  echo "nginx $(nginx -v 2>&1 | cut -d/ -f2), Caddy $(caddy version | cut -d' ' -f1), static-web-server $(static-web-server --version | head -1 | awk "{print \$NF}")."
  echo
  cat "$table"
  echo
  awk 'f {print} /<!-- peers:end -->/ {f=1; print}' benches/README.md | sed -n '1,$p'
} >"$WORK/README.md"
cp "$WORK/README.md" benches/README.md
