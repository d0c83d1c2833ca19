//go:build devbox_embedinit

package initbin

import _ "embed"

//go:embed devbox-init-amd64
var embedded []byte

//go:embed devbox-init-amd64.sha256
var embeddedSum string

func init() { blob, sum = embedded, embeddedSum }
