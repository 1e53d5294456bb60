# Process handling shared by scripts/demo.sh and scripts/demo-sso.sh:
# source it after defining say and die and setting LOG_DIR.
#
#   start NAME CMD...          run CMD in the background, logging to $LOG_DIR/NAME.log
#   wait_for WHAT SECS CMD...  rerun CMD until it succeeds; fail if a started
#                              process exits or SECS pass
#   wait_any                   return when one started process has exited
#   report_exited              say (on stderr) which started processes
#                              exited, with their exit status and the last
#                              line of their log, and exit 1
#
# On exit every started process is stopped, newest first (TERM, then KILL
# after 10 s). Ctrl-C is how a demo is meant to end: it stops everything,
# says so and exits 0, so make prints no error after it.

pids=()
names=()
interrupted=0

stop_started() {
  local rc=$?
  # Finish stopping even if Ctrl-C is pressed again.
  trap - EXIT
  trap '' INT TERM
  if ((${#pids[@]})); then
    say "stopping ${names[*]}"
    local i
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      kill -TERM "${pids[i]}" 2>/dev/null || true
    done
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
      local pid=${pids[i]} n=0
      while kill -0 "$pid" 2>/dev/null && ((n < 100)); do
        sleep 0.1 # polling a process we stopped, with a 10 s deadline
        n=$((n + 1))
      done
      if kill -0 "$pid" 2>/dev/null; then
        say "${names[i]} did not stop in 10s; killing it"
        kill -KILL "$pid" 2>/dev/null || true
      fi
      wait "$pid" 2>/dev/null || true
    done
  fi
  if ((interrupted)); then
    say "stopped everything it started (Ctrl-C)"
  fi
  exit "$rc"
}
trap stop_started EXIT
trap 'interrupted=1; exit 0' INT
trap 'exit 143' TERM

start() {
  local name=$1
  shift
  "$@" >"$LOG_DIR/$name.log" 2>&1 &
  pids+=($!)
  names+=("$name")
}

wait_for() {
  local what=$1 timeout=$2 deadline i
  shift 2
  deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    any_exited && report_exited
    ((SECONDS < deadline)) || die "$what not ready after ${timeout}s; see $LOG_DIR/"
    sleep 0.2 # polling readiness, with a deadline
  done
  # CMD can succeed against another program on the same port (a codec
  # server left running elsewhere answers the health check) while the one
  # started here has failed to listen.
  any_exited && report_exited
  return 0
}

# any_exited reports whether a started process has exited.
any_exited() {
  local p
  for p in "${pids[@]}"; do
    kill -0 "$p" 2>/dev/null || return 0
  done
  return 1
}

# report_exited says, for each started process that has exited, its exit
# status and the last line of its log, which says what happened, e.g.
#   demo: codec-server exited with status 1: codec-server: listen: listen
#   tcp 127.0.0.1:8081: bind: address already in use (see .data/demo/codec-server.log)
# and exits 1. It runs in the script's own shell (not in $(...)): only
# that shell can wait for the processes it started.
report_exited() {
  local i rc last
  for i in "${!pids[@]}"; do
    kill -0 "${pids[i]}" 2>/dev/null && continue
    rc=0
    wait "${pids[i]}" 2>/dev/null || rc=$?
    last=$(tail -n 1 "$LOG_DIR/${names[i]}.log" 2>/dev/null || true)
    say "${names[i]} exited with status $rc: ${last:-no output} (see $LOG_DIR/${names[i]}.log)" >&2
  done
  exit 1
}

# wait_any polls instead of `wait -n`, which needs bash 5.1 (macOS ships
# 3.2); Ctrl-C still ends the sleep at once.
wait_any() {
  local p
  while :; do
    for p in "${pids[@]}"; do
      kill -0 "$p" 2>/dev/null || return 0
    done
    sleep 1 # polling the processes we started
  done
}
