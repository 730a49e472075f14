#!/usr/bin/env bash
# Fetch REPOSITORY at REF (default: the event's commit for the repository under test, else the
# default branch) into $GITHUB_WORKSPACE/DEST. No credentials are ever stored.
set -euo pipefail
dest="$GITHUB_WORKSPACE/$DEST"
ref="$REF"
if [ -z "$ref" ]; then
  if [ "${REPOSITORY,,}" = "${SELF,,}" ]; then ref="$GITHUB_SHA"; else ref=HEAD; fi
fi
mkdir -p "$dest"
find "$dest" -mindepth 1 -delete  # the workspace itself when DEST is "."
git -C "$dest" init -q
git -C "$dest" remote add origin "https://github.com/$REPOSITORY"
if [ -n "$SPARSE" ]; then
  if [ "$CONE" = "true" ]; then cone=--cone; else cone=--no-cone; fi
  # shellcheck disable=SC2086
  git -C "$dest" sparse-checkout set "$cone" $SPARSE
fi
git -C "$dest" fetch -q --depth 1 origin "$ref"
git -C "$dest" checkout -q --detach FETCH_HEAD
echo "checked out $REPOSITORY at $(git -C "$dest" rev-parse HEAD) into $DEST"
