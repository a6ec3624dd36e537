#!/bin/sh
# A tiny app for the README's first run: says hello every 5 seconds, until stopped.
n=0
while :; do
  n=$((n + 1))
  echo "hello #$n from pid $$"
  sleep 5
done
