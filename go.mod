module github.com/VerilyPete/claudecontainer

go 1.26

tool github.com/magefile/mage

require (
	github.com/bitfield/script v0.25.2
	go4.org/netipx v0.0.0-20260823151212-3075585bcbeb
)

require (
	github.com/google/go-cmp v0.7.0 // indirect
	github.com/itchyny/gojq v0.12.13 // indirect
	github.com/itchyny/timefmt-go v0.1.5 // indirect
	github.com/magefile/mage v1.17.2 // indirect
	golang.org/x/sys v0.47.0 // indirect
	golang.org/x/tools v0.48.0 // indirect
	mvdan.cc/sh/v3 v3.7.0 // indirect
)
