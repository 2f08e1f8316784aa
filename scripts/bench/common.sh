# common.sh — what the timed benchmark scripts (e2e.sh, light.sh) share:
# waiting for a server and for processes, reading a process' CPU time,
# stopping processes, reading wrk's output. Sourced after the caller sets
# prog (its name, for messages) and PY (the Python interpreter).

# gone PID SECONDS: true once PID has exited, waiting up to SECONDS.
gone() {
  local _
  for _ in $(seq $(( $2 * 20 ))); do
    kill -0 "$1" 2>/dev/null || return 0
    sleep 0.05
  done
  ! kill -0 "$1" 2>/dev/null
}

# ready PORT PID PATH [ENCODING]: wait up to 15 s until the server answers
# PATH with 200 and a body (compressed with ENCODING, asked for, when
# given); prints why not and fails when PID exits or time runs out.
ready() {
  "$PY" - "$1" "$3" "$2" "${4:-}" <<'PY'
import http.client, sys, time
port, path, pid, enc = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
end = time.monotonic() + 15
def alive():
    try:
        return open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
while True:
    if not alive():
        print("exited")
        sys.exit(1)
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", path, headers={"Accept-Encoding": enc} if enc else {})
        r = c.getresponse()
        body = r.read()
        if r.status != 200 or not body or \
                (enc and r.getheader("Content-Encoding") != enc):
            print(f"status {r.status}, {len(body)} bytes, "
                  f"Content-Encoding {r.getheader('Content-Encoding')}")
            sys.exit(1)
        sys.exit(0)
    except (ConnectionError, OSError):
        if time.monotonic() > end:
            print("no answer within 15 s")
            sys.exit(1)
        time.sleep(0.05)
PY
}

# cpu_ticks PID: utime+stime of the whole process, in clock ticks.
cpu_ticks() {
  local stat rest
  stat=$(<"/proc/$1/stat")
  rest=${stat##*) }            # fields from 3 (state) on; comm may hold spaces
  read -r -a f <<<"$rest"
  echo $(( f[11] + f[12] ))    # fields 14 (utime) and 15 (stime)
}

# stop PID NAME SIGNAL: signal, wait up to 10 s, then SIGKILL.
stop() {
  local pid=$1 name=$2 sig=$3
  kill "-$sig" "$pid" 2>/dev/null || true
  for _ in $(seq 200); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "$prog: $name (pid $pid) did not exit on SIG$sig within 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# parse_wrk FILE: prints "REQUESTS RPS"; fails on non-2xx answers.
parse_wrk() {
  "$PY" - "$1" "$prog" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
m = re.search(r"^\s*(\d+) requests in ", t, re.M)
r = re.search(r"^Requests/sec:\s*([0-9.]+)", t, re.M)
if not m or not r:
    sys.exit("cannot parse wrk output:\n" + t)
bad = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", t)
if bad:
    sys.exit(f"wrk got {bad.group(1)} non-2xx/3xx responses:\n" + t)
err = re.search(r"Socket errors:.*", t)
if err:
    print(sys.argv[2] + ": wrk " + err.group(0), file=sys.stderr)
if int(m.group(1)) == 0:
    sys.exit("wrk completed no requests:\n" + t)
print(m.group(1), r.group(1))
PY
}
