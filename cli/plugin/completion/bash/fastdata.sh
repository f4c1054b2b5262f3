# Bash completion for `dcos fastdata` (DC/OS CLI plugin) and for `dcos-fastdata` run directly.
#
# The DC/OS CLI sources every completion/bash/*.sh of its plugins and, completing
# `dcos fastdata ...`, calls `_dcos_fastdata` with `words`, `cword` and `cur` set and `c` at
# the word after "fastdata". This file uses none of the DC/OS CLI's own helpers, so it also
# completes the binary on its own (`complete -F _dcos_fastdata_direct dcos-fastdata` below).
# Keep the lists in step with `dcos-fastdata <command> --help` (a test compares them).

__dcos_fastdata_reply() {
    local candidate
    COMPREPLY=()
    for candidate in "$@"; do
        if [[ $candidate == "$cur"* ]]; then
            COMPREPLY+=("$candidate ")
        fi
    done
}

_dcos_fastdata() {
    # Flags that take a value: their value is not a subcommand, and is not completed.
    local valued=" --name --url --interval --limit --mode --scale-up-lag --scale-down-lag --min --min-consumers --max --max-consumers --step-interval --stabilization-window --cooldown --target-drain-time --headroom --max-observation-age "
    local common=(--name --url --help)
    local path="" skip=0 i word
    for ((i = c; i < cword; i++)); do
        word=${words[i]}
        if ((skip)); then
            skip=0
            continue
        fi
        case "$word" in
            --*=*) ;;
            -*) [[ $valued == *" $word "* ]] && skip=1 ;;
            *) path="${path:+$path }$word" ;;
        esac
    done
    case "${words[cword - 1]}" in
        --mode)
            __dcos_fastdata_reply step proportional
            return
            ;;
    esac
    if ((skip)); then
        COMPREPLY=()
        return
    fi
    case "$path" in
        "")
            if [[ $cur == -* ]]; then
                __dcos_fastdata_reply --info --version --config-schema --help --name --url
            else
                __dcos_fastdata_reply status scaling decisions producers
            fi
            ;;
        status)
            __dcos_fastdata_reply --json --watch --interval "${common[@]}"
            ;;
        scaling)
            if [[ $cur == -* ]]; then
                __dcos_fastdata_reply "${common[@]}"
            else
                __dcos_fastdata_reply get set
            fi
            ;;
        "scaling get")
            __dcos_fastdata_reply --json "${common[@]}"
            ;;
        "scaling set")
            __dcos_fastdata_reply --mode --scale-up-lag --scale-down-lag --min --min-consumers \
                --max --max-consumers --step-interval --stabilization-window --cooldown \
                --target-drain-time --headroom --max-observation-age --json "${common[@]}"
            ;;
        decisions)
            __dcos_fastdata_reply --json --limit "${common[@]}"
            ;;
        producers)
            if [[ $cur == -* ]]; then
                __dcos_fastdata_reply --json "${common[@]}"
            else
                __dcos_fastdata_reply set-rate
            fi
            ;;
        "producers set-rate" | "producers set-rate "*)
            # The rate itself (a number) is not completed.
            if [[ $cur == -* ]]; then
                __dcos_fastdata_reply --json "${common[@]}"
            else
                COMPREPLY=()
            fi
            ;;
        *)
            COMPREPLY=()
            ;;
    esac
}

# `dcos-fastdata ...` typed directly (also as `dcos-fastdata fastdata ...`, as the DC/OS CLI
# runs it).
_dcos_fastdata_direct() {
    local cur=${COMP_WORDS[COMP_CWORD]} cword=$COMP_CWORD c=1
    local words=("${COMP_WORDS[@]}")
    if ((cword > 1)) && [[ ${words[1]} == fastdata ]]; then
        c=2
    fi
    _dcos_fastdata
}

complete -o nospace -F _dcos_fastdata_direct dcos-fastdata
