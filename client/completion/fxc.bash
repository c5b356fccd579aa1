# bash completion for fxc: commands, options, local files, and for download,
# rm and stat the names stored on the server (asked with `fxc --json ls`,
# using the connection options already on the line and a login remembered by
# `fxc login` or $FXC_PASSWORD; never a password prompt).

_fxc_remote_names()
{
    local -a conn=()
    local i word
    for ((i = 1; i < COMP_CWORD; i++)); do
        word=${COMP_WORDS[i]}
        case $word in
            --host|--port|--user|--cacert|--cert|--key|--timeout)
                conn+=("$word" "${COMP_WORDS[i+1]}"); ((i++)) ;;
            --tls) conn+=("$word") ;;
        esac
    done
    # setsid: no controlling terminal, so fxc cannot stop to ask for a password.
    setsid -w fxc --quiet --timeout 3 "${conn[@]}" --json ls 2>/dev/null </dev/null |
        grep -o '"name":"[^"\\]*"' | sed 's/^"name":"//; s/"$//'
}

_fxc()
{
    local cur prev command="" i
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD-1]}
    local commands="ping hello echo stats register login logout whoami upload download ls stat rm shell"
    local options="--host --port --udp-port --timeout --user --udp --tls --cacert --cert --key -o --output
                   -f --force --as -q --quiet --json -h --help -V --version"
    case $prev in
        --cacert|--cert|--key|-o|--output) COMPREPLY=($(compgen -f -- "$cur")); return ;;
        --host|--port|--udp-port|--timeout|--user|--as) return ;;
    esac
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
            --host|--port|--udp-port|--timeout|--user|--cacert|--cert|--key|-o|--output|--as) ((i++)) ;;
            -*) ;;
            *) command=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$options" -- "$cur"))
    elif [[ -z $command ]]; then
        COMPREPLY=($(compgen -W "$commands" -- "$cur"))
    elif [[ $command == upload ]]; then
        COMPREPLY=($(compgen -f -- "$cur"))
    elif [[ $command == download || $command == rm || $command == stat ]]; then
        local IFS=$'\n'
        COMPREPLY=($(compgen -W "$(_fxc_remote_names)" -- "$cur"))
    fi
}
complete -o default -F _fxc fxc
