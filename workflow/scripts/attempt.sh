#!/usr/bin/env bash
# One attempt of a workflow step:  attempt.sh LOG -- COMMAND [ARG ...]
#
# Runs COMMAND with its output in LOG (what Snakemake shows for the job) and appends that
# output, after a header naming the attempt (time, SLURM job, host), to LOG.attempts.
# Snakemake deletes LOG before every attempt of a job; LOG.attempts keeps them all, so the
# "state saved" line of a pre-empted or timed-out attempt survives its retry.
#
# The shell must outlive the signals SLURM sends to every process of the job step, so that
# COMMAND can save its state and this script can still record its output:
#  - SIGUSR1 (the early warning the pretraining rule asks for with --signal) is ignored
#    here and by launchers started from here (torchrun would die of it); a command that
#    handles it installs its own handler (ldarnet pretrain does);
#  - SIGTERM / SIGINT are trapped here (a trap, unlike an ignore, is not inherited, so
#    COMMAND gets them as usual) and this script waits for COMMAND to end.
# COMMAND imports ldarnet from the checkout this script belongs to (first on PYTHONPATH).
# The exit status is COMMAND's.
set -u
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
log=$1
if [ "${2:-}" != "--" ] || [ $# -lt 3 ]; then
  echo "usage: attempt.sh LOG -- COMMAND [ARG ...]" >&2
  exit 2
fi
shift 2
trap '' USR1
trap ':' TERM INT
printf '=== attempt started %s, SLURM job %s, host %s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${SLURM_JOB_ID:-none}" "$(hostname)" >> "$log.attempts"
if [ -n "${LDARNET_TEST_BANNER:-}" ]; then
  echo "$LDARNET_TEST_BANNER" > "$log"
else
  : > "$log"
fi
# in the foreground: bash runs a trap only after COMMAND has ended
"$@" >> "$log" 2>&1
status=$?
cat "$log" >> "$log.attempts"
printf '=== attempt ended with exit status %s\n' "$status" >> "$log.attempts"
exit "$status"
