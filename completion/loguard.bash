# bash completion for loguard(8)                                   -*- shell-script -*-
# shellcheck shell=bash disable=SC2207 # COMPREPLY=($(compgen ...)): the completion idiom
#
# Commands and options come from the binary's own --help (`loguard --help`,
# `loguard COMMAND --help`), so new ones complete without touching this file; the lists below
# are only a fallback for when the binary cannot be run. An option whose help names its
# value as "a|b|c" completes to those words; POLICY and PATH complete to file names, DIR to
# directories, USER to user names.

_loguard_help()
{
	# $1: the loguard being completed (as typed, ~ expanded); $2: command or empty
	local bin=$1
	[[ $bin == "~"* ]] && bin=${HOME}${bin#"~"}
	LC_ALL=C "$bin" ${2:+"$2"} --help 2>/dev/null
}

_loguard_commands()
{
	local out
	out=$(_loguard_help "$1" "" | sed -n '/^Commands:/,/^$/{s/^  \([a-z][a-z-]*\) .*/\1/p}')
	[[ -n $out ]] || out="check print apply show run exec suggest why share unshare shares flush version"
	printf '%s\n' "$out"
}

# Lines "  -x, --long ARG   help" of a command's --help, as "--long -x ARG" (ARG may be empty).
_loguard_options()
{
	local out
	out=$(_loguard_help "$1" "$2" |
		sed -n 's/^  \(-[A-Za-z]\), \(--[a-z][a-z-]*\)\( \([^ ]*\)\)\{0,1\} .*/\2 \1 \4/p')
	if [[ -z $out ]]; then
		out=$'--file -f POLICY\n--dir -d DIR'
		case $2 in
		apply) out+=$'\n--dry-run -n ' ;;
		print) out+=$'\n--live -l ' ;;
		show) out+=$'\n--json -j ' ;;
		run) out+=$'\n--keep-rules -k \n--log-file -l PATH\n--format -F json|text' ;;
		exec) out+=$'\n--as -a NAME\n--user -u USER\n--wait -w MS' ;;
		why) out+=$'\n--user -u USER\n--exe -e PATH\n--udp -U ' ;;
		share) out+=$'\n--with -w USER|@GROUP\n--for -t DURATION\n--udp -U ' ;;
		unshare) out+=$'\n--with -w USER|@GROUP\n--udp -U ' ;;
		suggest) out+=$'\n--log-file -l PATH\n--diff -d \n--by -b users|units|executables\n--group-threshold -g N\n--include-denied -i ' ;;
		esac
	fi
	printf '%s\n' "$out"
}

_loguard()
{
	local cur prev words cword
	_init_completion -s || return

	local bin=${words[0]} cmd="" i w
	# The command is the first word that is not an option or the value of -f/--file.
	for ((i = 1; i < cword; i++)); do
		w=${words[i]}
		case $w in
		-f | --file | -d | --dir) ((i++)) ;;
		-*) ;;
		*)
			cmd=$w
			break
			;;
		esac
	done

	local opts arg=""
	opts=$(_loguard_options "$bin" "$cmd")

	# The value of an option: what its help line names after it.
	if [[ $prev == -* ]]; then
		local long short value
		while read -r long short value; do
			[[ $prev == "$long" || $prev == "$short" ]] && arg=$value
		done <<<"$opts"
		case $prev in
		-f | --file) arg=POLICY ;;
		--dir) arg=DIR ;; # suggest lists it without -d (its -d is --diff)
		esac
		case $arg in
		"USER|@GROUP")
			if [[ $cur == @* ]]; then
				COMPREPLY=($(compgen -P @ -g -- "${cur#@}"))
			else
				COMPREPLY=($(compgen -u -- "$cur"))
			fi
			return
			;;
		DURATION)
			COMPREPLY=($(compgen -W "30m 1h 2h 8h 1d" -- "$cur"))
			return
			;;
		POLICY)
			_filedir '@(yaml|yml)'
			return
			;;
		PATH | FILE)
			_filedir
			return
			;;
		DIR)
			_filedir -d
			return
			;;
		USER)
			COMPREPLY=($(compgen -u -- "$cur"))
			return
			;;
		*"|"*)
			COMPREPLY=($(compgen -W "${arg//|/ }" -- "$cur"))
			return
			;;
		esac
	fi

	if [[ $cur == -* ]]; then
		local names
		names=$(printf '%s\n' "$opts" --help | cut -d' ' -f1 | sort -u)
		COMPREPLY=($(compgen -W "$names" -- "$cur"))
		return
	fi
	if [[ -z $cmd ]]; then
		COMPREPLY=($(compgen -W "$(_loguard_commands "$bin")" -- "$cur"))
	elif [[ $cmd == share || $cmd == unshare ]]; then
		# PORT: the ports this user's own sockets listen on (what the daemon will let them share).
		local proto=t
		[[ " ${words[*]} " == *" --udp "* || " ${words[*]} " == *" -U "* ]] && proto=u
		COMPREPLY=($(compgen -W "$(ss -Hl"$proto"nep 2>/dev/null | sed -n "s/.*:\([0-9]*\) .*uid:$(id -u) .*/\1/p" | sort -un)" -- "$cur"))
	fi
} &&
	complete -F _loguard loguard
