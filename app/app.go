// Package app carries out claudecontainer's mage targets. magefiles/ only
// forwards to it, so everything here is ordinary, tested Go.
package app
