#!/bin/bash
# The longer fuzz run of the .vmx parser and the qcow2 metadata reader
# (check-slow): a minute per target, corpus seeded as in vmfs-fuzz.sh.
# Longer still, by hand: build-fuzz/fuzz_qcow2 -max_total_time=3600 DIR
FUZZ_SECONDS=${FUZZ_SECONDS:-60} exec bash "$(dirname "$0")/vmfs-fuzz.sh"
