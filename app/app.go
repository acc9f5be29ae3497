// Package app carries out claudecontainer's mage targets. magefiles/ only
// forwards to it, so everything here is ordinary, tested Go.
package app

import (
	"errors"
)

func notYet(target, what string) error {
	return errors.New("mage " + target + " is not built yet: it arrives with " + what)
}
