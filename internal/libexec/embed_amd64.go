//go:build devbox_embedinit

package libexec

import _ "embed"

var (
	//go:embed devbox-init-amd64
	initBlob []byte
	//go:embed devbox-init-amd64.sha256
	initSum string
	//go:embed devbox-net-amd64
	netBlob []byte
	//go:embed devbox-net-amd64.sha256
	netSum string
)

func init() {
	progs[Init] = prog{initBlob, initSum}
	progs[Net] = prog{netBlob, netSum}
}
