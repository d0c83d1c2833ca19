// Package completions holds devbox's generated shell completion scripts
// (devbox.bash, _devbox for zsh, devbox.fish, devbox.ps1), written by
// generate.sh from `devbox completion SHELL`. It has no code: its tests fail
// when a committed script differs from what the command tree generates, and
// drive the real bash, zsh and fish completion of the devbox binary.
package completions
