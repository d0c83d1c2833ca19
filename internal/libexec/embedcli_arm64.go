//go:build devbox_embedcli

package libexec

import _ "embed"

var (
	//go:embed devbox-cli-arm64
	cliBlob []byte
	//go:embed devbox-cli-arm64.sha256
	cliSum string
)

func init() { progs[CLI] = prog{cliBlob, cliSum} }
