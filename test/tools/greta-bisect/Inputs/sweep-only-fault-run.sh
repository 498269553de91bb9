#!/usr/bin/env bash
# A greta-run whose test run is not deterministic, for
# moe-routing-sweep.test: a run given --side=test (stripped) plants layer
# 1's router fault in the routing sweep's run only (--stages
# router_logits,expert_selection), so the flip the sweep sees is gone in
# every later step. Every other run is greta-run ($GRETA_RUN) as it is.
args=() test=0 sweep=0 prev=
for a in "$@"; do
  case "$a" in
    --side=test) test=1 ;;
    *) args+=("$a") ;;
  esac
  if [ "$prev" = --stages ] && [ "$a" = router_logits,expert_selection ]; then
    sweep=1
  fi
  prev=$a
done
if [ $test = 1 ] && [ $sweep = 1 ]; then
  args+=("--pass-pipeline=greta-moe-router-fault{layer=1 from-position=20}")
fi
exec "$GRETA_RUN" "${args[@]}"
