//go:build !(linux || darwin)

package local

import (
	"errors"
	"os"
)

var errNoXattr = errors.New("local backend: extended attributes are not supported on this platform")

func setMeta(*os.File, []byte) error   { return errNoXattr }
func getMeta(*os.File) ([]byte, error) { return nil, nil }
