package filterd

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidateRefusesWhatTheDaemonMustNotActOn(t *testing.T) {
	good := Spec{
		Token: "00112233445566778899aabbccddeeff", Backend: "pf", Table: "claude_firewall", Set: "allowed_destinations",
		Listen:        []netip.AddrPort{netip.MustParseAddrPort("127.0.0.1:15353")},
		Clients:       []netip.Prefix{netip.MustParsePrefix("192.168.64.0/24")},
		Upstreams:     []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")},
		AllowlistFile: "/etc/pf.anchors/allowed_destinations",
	}
	if err := good.Validate(); err != nil {
		t.Fatalf("a good spec: %v", err)
	}
	for _, tt := range []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"a short token", func(s *Spec) { s.Token = "abc" }, "token"},
		{"a token a shell would read", func(s *Spec) { s.Token = "0011223344556677;rm -rf /" }, "token"},
		{"another backend", func(s *Spec) { s.Backend = "iptables" }, "backend"},
		{"a table name with a space", func(s *Spec) { s.Table = "a b" }, "table"},
		{"port 53", func(s *Spec) { s.Listen[0] = netip.MustParseAddrPort("127.0.0.1:53") }, "listen"},
		{"every address", func(s *Spec) { s.Listen[0] = netip.MustParseAddrPort("0.0.0.0:15353") }, "listen"},
		{"no clients", func(s *Spec) { s.Clients = nil }, "client"},
		{"every client", func(s *Spec) { s.Clients = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0")} }, "client"},
		{"no upstream", func(s *Spec) { s.Upstreams = nil }, "DNS_UPSTREAM"},
		{"itself as upstream", func(s *Spec) { s.Upstreams = s.Listen }, "the filter itself"},
		{"a relative allowlist path", func(s *Spec) { s.AllowlistFile = "allow" }, "absolute"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := good
			s.Listen = append([]netip.AddrPort(nil), good.Listen...)
			tt.edit(&s)
			err := s.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Validate = %v, want an error about %q", err, tt.want)
			}
		})
	}
}
