# bash completion for lockstepctl. Command names come from `lockstepctl -j help`: the
# commands lockstepctl knows, extended by the running daemon's.
_lockstepctl() {
  local cur prev words cword
  _init_completion 2>/dev/null || {
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    words=("${COMP_WORDS[@]}")
    cword=$COMP_CWORD
  }
  local opts="-s --socket -j --json --pretty -t --timeout -h --help -V --version"
  case $prev in
    -s|--socket) COMPREPLY=($(compgen -f -- "$cur")); return ;;
    -t|--timeout) return ;;
  esac
  # Options before the command; the socket given with -s is used for the command list.
  # After the command only -j, --json, --pretty and -h, --help are lockstepctl's.
  local i sock="" cmd=()
  for ((i = 1; i < cword; i++)); do
    if [[ ${#cmd[@]} -gt 0 ]]; then
      case ${words[i]} in
        -j|--json|--pretty|-h|--help) ;;
        *) cmd+=("${words[i]}") ;;
      esac
      continue
    fi
    case ${words[i]} in
      -s|--socket) sock=${words[i+1]}; ((i++)) ;;
      --socket=*) sock=${words[i]#--socket=} ;;
      -j|--json|--pretty|-h|--help|-V|--version) ;;
      -t|--timeout) ((i++)) ;;
      -*) ;;
      *) cmd+=("${words[i]}") ;;
    esac
  done
  if [[ ${#cmd[@]} -eq 0 && $cur == -* ]]; then
    COMPREPLY=($(compgen -W "$opts" -- "$cur")); return
  fi
  local list
  list=$(lockstepctl ${sock:+-s "$sock"} -t 1 -j help 2>/dev/null |
         grep -o '"command":"[^"]*"' | cut -d'"' -f4)
  [[ -z $list ]] && list=$'help\nlist-commands\nstatus\nstats\nconns\nconfig get\nconfig set\ncheckpoint\ncheckpoint-policy\nfailover\ncluster status\ncluster failover\nmode\ncapture start\ncapture stop\nrules list\nrules add\nrules del\nqos show\nqos qdisc\nqos class\nqos filter\nqos role\nqos roles\nversion\nmetrics'
  local first=${cmd[0]} 
  if [[ ${#cmd[@]} -eq 0 ]]; then
    COMPREPLY=($(compgen -W "$(cut -d' ' -f1 <<<"$list" | sort -u)" -- "$cur")); return
  fi
  case "${cmd[*]}" in
    stats) COMPREPLY=($(compgen -W "--reset" -- "$cur")) ;;
    conns|conns\ *) COMPREPLY=($(compgen -W "--limit" -- "$cur")) ;;
    checkpoint-policy|checkpoint-policy\ *)
      compopt -o nospace 2>/dev/null
      COMPREPLY=($(compgen -W "max_epoch_ms= timeout_ms= on_timeout= max_retries= failover_survivor=" -- "$cur")) ;;
    failover) COMPREPLY=($(compgen -W "primary secondary" -- "$cur")) ;;
    mode) COMPREPLY=($(compgen -W "colo buffer passthrough" -- "$cur")) ;;
    help) COMPREPLY=($(compgen -W "$(cut -d' ' -f1 <<<"$list" | sort -u)" -- "$cur")) ;;
    "qos role") COMPREPLY=($(compgen -W "add replace del" -- "$cur")) ;;
    "qos role add"|"qos role add pref "*|"qos role replace pref "*)
      COMPREPLY=($(compgen -W "pref proxy svm_output checkpoint block_replication heartbeat other" -- "$cur")) ;;
    "qos role "*) COMPREPLY=($(compgen -W "src dst sport dport port proto dscp family all" -- "$cur")) ;;
    "config get"|"config set"*)
      local keys
      keys=$(lockstepctl ${sock:+-s "$sock"} -t 1 -j config get 2>/dev/null | tr -d '{}"' | tr ',' '\n' | cut -d: -f1)
      if [[ ${cmd[1]} == set ]]; then
        compopt -o nospace 2>/dev/null
        COMPREPLY=($(compgen -W "$(sed 's/$/=/' <<<"$keys")" -- "$cur"))
      else
        COMPREPLY=($(compgen -W "$keys" -- "$cur"))
      fi ;;
    *)
      # the second word of a two-word command (config get|set, capture start|stop)
      if [[ ${#cmd[@]} -eq 1 ]]; then
        COMPREPLY=($(compgen -W "$(awk -v f="$first" '$1 == f && NF > 1 {print $2}' <<<"$list")" -- "$cur"))
      fi ;;
  esac
}
complete -F _lockstepctl lockstepctl
