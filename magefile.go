//go:build ignore

// This file lets claudecontainer run with nothing installed but Go:
//
//	go run magefile.go dev
//
// It runs mage from the module cache on the targets in magefiles/. Because of
// how `go run` works, every failure exits with status 1; `go tool mage <target>`
// keeps the real exit status.
package main

import (
	"os"

	"github.com/magefile/mage/mage"
)

func main() { os.Exit(mage.Main()) }
