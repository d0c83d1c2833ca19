package cmdutil

// The help texts of --host-loopback and --no-host-loopback (devbox run,
// create, shell); what they decide is box.HostLoopback.
const (
	HostLoopbackHelp   = "let the box reach the host's 127.0.0.1 as host.devbox.internal (the gateway): every local user's loopback services (default for dev boxes)"
	NoHostLoopbackHelp = "do not let the box reach the host's 127.0.0.1 (default for devbox run and --home boxes)"
	// DevBoxLoopbackNote is the one line of create's and shell's help.
	DevBoxLoopbackNote = "A box in your own home reaches the host's 127.0.0.1 (host.devbox.internal): every\n" +
		"local user's loopback services are reachable from it; --no-host-loopback turns that off."
)
