package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

var completionCmd = &command{
	name:    "completion",
	args:    "bash|zsh",
	summary: "print a shell completion script for skyfs",
	help: `bash: add to ~/.bashrc, or save as /etc/bash_completion.d/skyfs:
    source <(skyfs completion bash)
zsh: add to ~/.zshrc (it uses zsh's bash completion support):
    source <(skyfs completion zsh)
Commands, subcommands and flags complete; --output completes to text or
json; arguments complete as file names.`,
	local: true,
}

// runCompletion lists every command, completionCmd among them: it is set
// here rather than in completionCmd's literal, which would be an
// initialisation cycle.
func init() { completionCmd.run = runCompletion }

func runCompletion(_ context.Context, r *runner, args []string) error {
	if len(args) != 1 {
		return usagef("completion: want bash or zsh")
	}
	switch args[0] {
	case "bash":
		writeBashCompletion(r.env.Stdout)
	case "zsh":
		fmt.Fprint(r.env.Stdout, "# zsh completion for skyfs: source <(skyfs completion zsh)\nautoload -U +X bashcompinit && bashcompinit\n")
		writeBashCompletion(r.env.Stdout)
	default:
		return usagef("completion: %q: want bash or zsh", args[0])
	}
	return nil
}

// commandFlags returns the flags command c takes (every command's and its
// own), as --name, and those of them that take a value.
func commandFlags(c *command) (all, valued []string) {
	fs := flag.NewFlagSet(c.name, flag.ContinueOnError)
	var o opts
	commonFlags(fs, &o)
	if c.flags != nil {
		c.flags(fs, &o)
	}
	fs.VisitAll(func(f *flag.Flag) {
		name := "--" + f.Name
		if len(f.Name) == 1 {
			name = "-" + f.Name
		}
		all = append(all, name)
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok || !b.IsBoolFlag() {
			valued = append(valued, name)
		}
	})
	return all, valued
}

// writeBashCompletion writes the bash completion function of the commands.
func writeBashCompletion(w io.Writer) {
	var top, groups, valued []string
	subs := map[string][]string{}
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if !slices.Contains(top, words[0]) {
			top = append(top, words[0])
		}
		if len(words) == 2 {
			if !slices.Contains(groups, words[0]) {
				groups = append(groups, words[0])
			}
			subs[words[0]] = append(subs[words[0]], words[1])
		}
		_, v := commandFlags(c)
		for _, f := range v {
			if !slices.Contains(valued, f) {
				valued = append(valued, f)
			}
		}
	}
	top = append(top, "help")
	global, _ := commandFlags(&command{})

	fmt.Fprintf(w, `# bash completion for skyfs: source <(skyfs completion bash)
_skyfs() {
	local cur="${COMP_WORDS[COMP_CWORD]}" prev=""
	((COMP_CWORD > 0)) && prev="${COMP_WORDS[COMP_CWORD-1]}"
	local valued=" %s "
	local groups=" %s "
	local cmd="" sub="" i w skip=0
	for ((i = 1; i < COMP_CWORD; i++)); do
		w="${COMP_WORDS[i]}"
		if ((skip)); then
			skip=0
			continue
		fi
		case "$w" in
		-*=*) ;;
		-*) [[ $valued == *" $w "* ]] && skip=1 ;;
		*)
			if [[ -z $cmd ]]; then
				cmd=$w
			elif [[ -z $sub && $groups == *" $cmd "* ]]; then
				sub=$w
			fi
			;;
		esac
	done
	COMPREPLY=()
	if [[ $prev == --output ]]; then
		COMPREPLY=($(compgen -W "text json" -- "$cur"))
		return
	fi
	[[ $valued == *" $prev "* ]] && return
	if [[ -z $cmd ]]; then
		if [[ $cur == -* ]]; then
			COMPREPLY=($(compgen -W "%s" -- "$cur"))
		else
			COMPREPLY=($(compgen -W "%s" -- "$cur"))
		fi
		return
	fi
	if [[ -z $sub && $groups == *" $cmd "* ]]; then
		case "$cmd" in
`, strings.Join(valued, " "), strings.Join(groups, " "), strings.Join(global, " "), strings.Join(top, " "))
	for _, g := range groups {
		fmt.Fprintf(w, "\t\t%s) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", g, strings.Join(append(subs[g], "--help"), " "))
	}
	fmt.Fprintf(w, `		esac
		return
	fi
	local key="$cmd"
	[[ -n $sub ]] && key="$cmd $sub"
	if [[ $cur == -* ]]; then
		case "$key" in
`)
	for _, c := range commands() {
		all, _ := commandFlags(c)
		fmt.Fprintf(w, "\t\t%q) COMPREPLY=($(compgen -W %q -- \"$cur\")) ;;\n", c.name, strings.Join(append(all, "--help"), " "))
	}
	fmt.Fprintf(w, `		esac
		return
	fi
	case "$key" in
	completion) COMPREPLY=($(compgen -W "bash zsh" -- "$cur")) ;;
	help) COMPREPLY=($(compgen -W "%s" -- "$cur")) ;;
	esac
}
complete -o default -F _skyfs skyfs
`, strings.Join(top, " "))
}
