#!/usr/bin/env bash
# Runs the runnable shell blocks of the documentation: every ```sh block in docs/*.md and
# README.md whose fence is preceded, on the line just before, by `<!-- runnable -->`. A file's
# blocks run in order in one `bash -euo pipefail` shell started in the repository root (so a
# block may use what an earlier block of the same file started or defined); files run one after
# another. Reports each file, and for a failing one which block failed and its output.
#   tests/docs/run_doc_blocks.sh [REPO_ROOT]        (default: this checkout)
# Environment: DOC_BLOCK_TIMEOUT seconds per file (default 600); DOC_BLOCK_VERBOSE=1 prints the
# output of passing files too.
set -euo pipefail
root=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
limit=${DOC_BLOCK_TIMEOUT:-600}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Writes FILE's runnable blocks as one script to stdout; prints nothing when it has none.
# Each block is preceded by a line recording "N FILE:LINE" in $__doc_status, and followed by one
# recording "N ok", so that the runner can tell which block failed.
extract() {
  awk -v file="$2" '
    marker && /^```sh[[:space:]]*$/ {
      ++n; inblock = 1; marker = 0
      printf "printf \"%%s %%s\\n\" %d %s >>\"$__doc_status\"\n", n, "\"" file ":" NR + 1 "\""
      next
    }
    inblock && /^```[[:space:]]*$/ { inblock = 0; print "printf \"%s ok\\n\" " n " >>\"$__doc_status\""; next }
    inblock { print; next }
    { marker = ($0 ~ /^<!-- runnable -->[[:space:]]*$/) }
  ' "$1"
}

files=()
for f in "$root"/docs/*.md "$root"/README.md; do
  [[ -f $f ]] && files+=("$f")
done

failed=0
total=0
for f in "${files[@]}"; do
  rel=${f#"$root"/}
  script=$work/$(tr '/' '_' <<<"$rel").sh
  extract "$f" "$rel" >"$script"
  blocks=$(grep -c '^printf "%s %s\\n"' "$script" || true)
  ((blocks > 0)) || continue
  total=$((total + blocks))
  status=$work/$(tr '/' '_' <<<"$rel").status
  out=$work/$(tr '/' '_' <<<"$rel").out
  : >"$status"
  start=$SECONDS
  set +e
  # timeout signals the whole process group on expiry, so servers a block started go too.
  (cd "$root" && __doc_status=$status timeout -k 10 "$limit" bash -euo pipefail "$script") \
    >"$out" 2>&1 </dev/null
  rc=$?
  set -e
  if ((rc == 0)); then
    printf 'PASS %s (%d block(s), %d s)\n' "$rel" "$blocks" $((SECONDS - start))
    [[ ${DOC_BLOCK_VERBOSE:-0} == 1 ]] && sed 's/^/    /' "$out"
    continue
  fi
  failed=1
  last=$(grep -v ' ok$' "$status" | tail -n 1)
  if [[ -n $last && -z $(grep -x "${last%% *} ok" "$status") ]]; then
    where="block ${last%% *} at ${last#* }"
  else
    where="after the last block"
  fi
  ((rc == 124 || rc == 137)) && where="$where (timed out after $limit s)"
  printf 'FAIL %s: %s, exit code %d; its output:\n' "$rel" "$where" "$rc"
  tail -n 40 "$out" | sed 's/^/    /'
done

if ((total == 0)); then
  echo "run_doc_blocks: no runnable blocks found under $root/docs or in README.md"
  exit 1
fi
if ((failed)); then
  echo "run_doc_blocks: FAILED"
  exit 1
fi
echo "run_doc_blocks: OK, $total block(s)"
