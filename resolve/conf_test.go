package resolve_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/VerilyPete/claudecontainer/resolve"
)

func writeConf(t *testing.T, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestFromResolvConfReadsServersAndOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		conf string
		want *resolve.Resolver
	}{
		{
			name: "IPv4 and IPv6 nameservers become ip:port in file order, with default options",
			conf: "# written by a network manager\nsearch corp.example\nnameserver 192.0.2.53\nnameserver 2001:db8::53\n",
			want: &resolve.Resolver{
				Servers:  []string{"192.0.2.53:53", "[2001:db8::53]:53"},
				Timeout:  2 * time.Second,
				Attempts: 2,
				MaxCNAME: 8,
			},
		},
		{
			name: "a link-local nameserver keeps its zone",
			conf: "nameserver fe80::1%eth0\n",
			want: &resolve.Resolver{Servers: []string{"[fe80::1%eth0]:53"}, Timeout: 2 * time.Second, Attempts: 2, MaxCNAME: 8},
		},
		{
			name: "timeout and attempts come from the options line",
			conf: "nameserver 127.0.0.53\noptions edns0 timeout:3 attempts:4 ndots:2\n",
			want: &resolve.Resolver{Servers: []string{"127.0.0.53:53"}, Timeout: 3 * time.Second, Attempts: 4, MaxCNAME: 8},
		},
		{
			name: "options beyond the resolv.conf limits are capped",
			conf: "nameserver 127.0.0.53\noptions timeout:99\noptions attempts:9\n",
			want: &resolve.Resolver{Servers: []string{"127.0.0.53:53"}, Timeout: 30 * time.Second, Attempts: 5, MaxCNAME: 8},
		},
		{
			name: "options below one become one",
			conf: "nameserver 127.0.0.53\noptions timeout:0 attempts:0\n",
			want: &resolve.Resolver{Servers: []string{"127.0.0.53:53"}, Timeout: time.Second, Attempts: 1, MaxCNAME: 8},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := resolve.FromResolvConf(writeConf(t, tt.conf))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("FromResolvConf (-want +got):\n%s", diff)
			}
		})
	}
}

func TestFromResolvConfRejectsUnusableFiles(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		conf    string
		wantMsg string
	}{
		{"a file without nameserver", "search example.com\noptions timeout:1\n", "lists no nameserver; add a line such as"},
		{"an empty file", "", "lists no nameserver"},
		{"a nameserver given by name", "nameserver dns.example.com\n", `nameserver "dns.example.com" is not an IP address`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			path := writeConf(t, tt.conf)
			r, err := resolve.FromResolvConf(path)
			if err == nil {
				t.Fatalf("FromResolvConf = %+v, want an error", r)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name %s and say %q", err, path, tt.wantMsg)
			}
		})
	}
}

func TestFromResolvConfOfAMissingFileIsNotExist(t *testing.T) {
	t.Parallel()
	_, err := resolve.FromResolvConf(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %v, want fs.ErrNotExist", err)
	}
}
