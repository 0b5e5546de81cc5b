#!/usr/bin/env bash
# One attempt of a workflow step:  attempt.sh LOG -- COMMAND [ARG ...]
#
# COMMAND's output goes to LOG (what Snakemake shows for the job) and, as it is written,
# to LOG.attempts after a header naming the attempt (time, SLURM job, host). Snakemake
# deletes LOG before every attempt of a job; LOG.attempts keeps them all, so the "state
# saved" line of a pre-empted or timed-out attempt survives its retry.
#
# SLURM signals every process of the job step; the shell and the copy to the logs must
# outlive those signals so that COMMAND can save its state and its last lines are kept:
#  - SIGUSR1 (a site's early warning; the workflow itself does not ask for one) is
#    ignored here and by launchers started from here (torchrun would die of it); a
#    command that handles it installs its own handler (ldarnet pretrain does);
#  - SIGTERM / SIGINT are trapped here (a trap, unlike an ignore, is not inherited, so
#    COMMAND gets them as usual) and ignored by the log copy (tee), which ends when
#    COMMAND's output does.
# COMMAND imports ldarnet from the checkout this script belongs to (first on PYTHONPATH).
# The exit status is COMMAND's.
set -u
if [ $# -lt 3 ] || [ "$2" != "--" ]; then
  echo "usage: attempt.sh LOG -- COMMAND [ARG ...]" >&2
  exit 2
fi
log=$1
shift 2
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
export PYTHONPATH="$root${PYTHONPATH:+:$PYTHONPATH}"
trap '' USR1
trap ':' TERM INT
printf '=== attempt started %s, SLURM job %s, host %s\n' \
  "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "${SLURM_JOB_ID:-none}" "$(hostname)" >> "$log.attempts"
(
  trap ':' TERM INT  # pipeline parts are subshells: the trap is set again in each
  if [ -n "${LDARNET_TEST_BANNER:-}" ]; then echo "$LDARNET_TEST_BANNER"; fi
  "$@"
) 2>&1 | (trap '' TERM INT USR1; exec tee -a "$log.attempts") > "$log"
status=${PIPESTATUS[0]}
printf '=== attempt ended with exit status %s\n' "$status" >> "$log.attempts"
exit "$status"
