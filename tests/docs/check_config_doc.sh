#!/usr/bin/env bash
# Checks docs/configuration.md against the binaries' own --help: every long option of embedd, of
# every gpu-worker subcommand and of every embedctl subcommand must have a table row of its own
# ("| `--opt` | default | meaning |") in that command's section of the doc (a heading "## `embedd`",
# "## `gpu-worker serve`", ...), and a default that --help shows (`--opt TYPE=DEFAULT`) must appear
# on that row, in backticks.
#   tests/docs/check_config_doc.sh build/bin
set -euo pipefail
bin=${1:?usage: check_config_doc.sh BIN_DIR}
root=$(cd "$(dirname "$0")/../.." && pwd)
doc=$root/docs/configuration.md
[[ -f $doc ]] || { echo "missing $doc" >&2; exit 1; }

fail=0
checked=0

# The lines of the doc between the heading "#... `CMD`" and the next heading.
section() {
  awk -v want="\`$1\`" '
    /^#+ / { on = (substr($0, index($0, " ") + 1) == want); next }
    on { print }' "$doc"
}

# Subcommand names listed under "Subcommands:" in a --help text.
subcommands() {
  awk '/^Subcommands:/ { on = 1; next } on && /^  [a-z]/ { print $1 } on && /^$/ { on = 0 }'
}

check() { # CMD... : checks the --help of that command against its section
  local cmd="$*" help sect
  help=$("$bin/$1" "${@:2}" --help)
  sect=$(section "$cmd")
  if [[ -z $sect ]]; then
    echo "FAIL: docs/configuration.md has no section headed \`$cmd\`"
    fail=1
    return
  fi
  # Option lines: two spaces, an optional short flag, then the long option and its type/default.
  while IFS= read -r line; do
    local opt default=""
    opt=$(sed -E 's/^ +(-[A-Za-z],)?(--[A-Za-z0-9][A-Za-z0-9-]*).*/\2/' <<<"$line")
    [[ $opt == --help ]] && continue # every command has -h,--help; the doc says so once
    checked=$((checked + 1))
    local rest=${line#*"$opt"}
    local first=${rest# }
    first=${first%% *}
    [[ $first == *=* ]] && default=${first##*=}
    local row
    row=$(grep -E "^\| \`$opt\` \|" <<<"$sect" || true)
    if [[ -z $row ]]; then
      echo "FAIL: $cmd $opt has no row of its own in its section of docs/configuration.md"
      fail=1
      continue
    fi
    # Defaults that are paths depend on the build folder; the doc names them generically.
    if [[ -n $default && $default != /* ]]; then
      if ! grep -qF -- "\`$default\`" <<<"$row"; then
        echo "FAIL: $cmd $opt: default '$default' (from --help) is not on its row"
        fail=1
      fi
    fi
  done < <(grep -E '^ +(-[A-Za-z],)?--[A-Za-z0-9]' <<<"$help")
}

check embedd
for sub in $("$bin/gpu-worker" --help | subcommands); do check gpu-worker "$sub"; done
for sub in $("$bin/embedctl" --help | subcommands); do check embedctl "$sub"; done

if ((fail)); then
  echo "check_config_doc: FAILED"
  exit 1
fi
echo "check_config_doc: OK, $checked options of embedd, gpu-worker and embedctl documented (defaults checked where --help shows one)"
