#!/bin/sh
# Entrypoint of the claudecontainer image.
#
# Container volumes are created owned by root, so the first time a volume is
# mounted the claude user cannot write to it. This gives the user back its
# home, the shell history directory, ~/.config and ~/.ssh (each only when it
# exists and belongs to someone else), then replaces itself with the command:
# the image's CMD (/bin/zsh) unless another one is given.
#
# It never stops the container from starting: when a directory cannot be
# taken over it says so and carries on.
set -u

uid=$(id -u)
gid=$(id -g)
history_dir=${COMMAND_HISTORY_DIR:-/commandhistory}

# owner prints the numeric owner of the path $1.
owner() {
	# shellcheck disable=SC2012 # ls -n is the POSIX way to read a numeric owner
	ls -dn -- "$1" 2>/dev/null | awk '{ print $3 }'
}

# take gives the directory $1 to this user; the remaining arguments are
# passed to chown (-R for a whole tree).
take() {
	dir=$1
	shift
	[ -d "$dir" ] || return 0
	[ "$(owner "$dir")" = "$uid" ] && return 0
	if [ "$uid" -eq 0 ]; then
		chown "$@" -- "$uid:$gid" "$dir"
	else
		sudo -n chown "$@" -- "$uid:$gid" "$dir"
	fi || echo "entrypoint: could not take ownership of $dir (uid $uid); fix it with: sudo chown -R $uid:$gid $dir" >&2
}

if [ -n "${HOME:-}" ]; then
	take "$HOME"
	take "$HOME/.config" -R
	take "$HOME/.ssh" -R
fi
take "$history_dir" -R

# zsh walks a new user through a setup menu when none of its startup files
# exist (a fresh home volume); a stub ~/.zshrc skips it. The image's settings
# are in /etc/zsh/zshrc.d/claudecontainer.zsh.
if [ -n "${HOME:-}" ] && [ -w "$HOME" ] &&
	! [ -e "$HOME/.zshenv" ] && ! [ -e "$HOME/.zprofile" ] &&
	! [ -e "$HOME/.zshrc" ] && ! [ -e "$HOME/.zlogin" ]; then
	printf '%s\n' "# Your zsh settings. claudecontainer's own are in /etc/zsh/zshrc.d/claudecontainer.zsh." >"$HOME/.zshrc" ||
		echo "entrypoint: could not write $HOME/.zshrc" >&2
fi

if [ "$#" -eq 0 ]; then
	set -- /bin/zsh
fi
exec "$@"
